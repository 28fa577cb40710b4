#!/usr/bin/env python3
"""Builds the CV-Bench fixture: hub/test_2d.parquet and hub/test_3d.parquet (the top of the download), as
nyu-visionx/CV-Bench publishes them (README configs: default = test*.parquet, 2D = test_2d.parquet,
3D = test_3d.parquet), with tiny real images, plus expected.json computed here.

Columns, in the dataset card's order: idx, type ("2D"/"3D"), task (Count, Relation, Depth,
Distance), image (Image: struct<bytes, path>), question, choices (list<string>), answer ("(C)"),
prompt, filename, source (ADE20K/COCO/Omni3D), source_dataset, source_filename, target_class
(COCO rows only), target_size (COCO rows only), bbox (Omni3D rows only). The card names the
fields but not their arrow types; idx/target_size are written as int64 and bbox as
list<list<double>> (two boxes for the two objects a 3D question compares). The importer passes
those three through to `meta` whatever their type. Snappy; 2 rows per row group (the hub: 100).

Run: python3 tools/benchmark-fixtures/build_cv_bench.py  (needs pyarrow, Pillow)
"""
import hashlib
import io
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

OUT = Path(__file__).resolve().parents[2] / 'tests' / 'fixtures' / 'benchmarks' / 'cv-bench'
ROW_GROUP = 2
IMAGE = pa.struct([('bytes', pa.binary()), ('path', pa.string())])
SCHEMA = pa.schema([
    ('idx', pa.int64()), ('type', pa.string()), ('task', pa.string()), ('image', IMAGE), ('question', pa.string()),
    ('choices', pa.list_(pa.string())), ('answer', pa.string()), ('prompt', pa.string()), ('filename', pa.string()),
    ('source', pa.string()), ('source_dataset', pa.string()), ('source_filename', pa.string()),
    ('target_class', pa.string()), ('target_size', pa.int64()), ('bbox', pa.list_(pa.list_(pa.float64()))),
])
V = lambda t: {'dtype': t, '_type': 'Value'}  # noqa: E731
HF_FEATURES = {
    'idx': V('int64'), 'type': V('string'), 'task': V('string'), 'image': {'_type': 'Image'}, 'question': V('string'),
    'choices': {'feature': V('string'), '_type': 'Sequence'}, 'answer': V('string'), 'prompt': V('string'),
    'filename': V('string'), 'source': V('string'), 'source_dataset': V('string'), 'source_filename': V('string'),
    'target_class': V('string'), 'target_size': V('int64'), 'bbox': {'feature': {'feature': V('float64'), '_type': 'Sequence'}, '_type': 'Sequence'},
}


def image(seed, fmt):
    im = Image.new('RGB', (28, 20))
    im.putdata([((x * 9 + seed * 31) % 256, (y * 13 + seed * 17) % 256, (seed * 53 + x + y) % 256) for y in range(20) for x in range(28)])
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def row(idx, typ, task, question, choices, answer, fmt, source, source_dataset, target_class=None, target_size=None, bbox=None):
    prompt = question + ' Select from the following choices.\n' + '\n'.join(f'({chr(65 + i)}) {c}' for i, c in enumerate(choices))
    folder = f'img/{typ}/{task.lower()}'
    return {
        'idx': idx, 'type': typ, 'task': task, 'image': {'bytes': image(idx, fmt), 'path': None}, 'question': question,
        'choices': choices, 'answer': answer, 'prompt': prompt, 'filename': f'{folder}/{source_dataset.lower()}_{idx}.{"png" if fmt == "PNG" else "jpg"}',
        'source': source, 'source_dataset': source_dataset, 'source_filename': f'{source_dataset.lower()}/{1000 + idx}.jpg',
        'target_class': target_class, 'target_size': target_size, 'bbox': bbox,
    }


def write(path, rows, schema=SCHEMA):
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema).replace_schema_metadata({'huggingface': json.dumps({'info': {'features': HF_FEATURES}})})
    pq.write_table(table, path, row_group_size=ROW_GROUP, compression='snappy')


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    rows2d = [
        row(0, '2D', 'Count', 'How many organs are in the image?', ['3', '2', '1', '0', '4'], '(C)', 'JPEG', 'ADE20K', 'ADE20K Validation Set'),
        row(1, '2D', 'Relation', 'Considering the relative positions of the dog and the chair, where is the dog located with respect to the chair?',
            ['left', 'right'], '(B)', 'JPEG', 'COCO', 'COCO 2017 Validation Set', 'chair', 4512),
        row(2, '2D', 'Count', 'How many pictures are in the image?', ['0', '1', '2', '3', '4'], '(E)', 'PNG', 'ADE20K', 'ADE20K Validation Set'),
        row(3, '2D', 'Relation', 'Where is the cup located with respect to the laptop?', ['above', 'below'], '(A)', 'JPEG', 'COCO',
            'COCO 2017 Validation Set', 'laptop', 20317),
    ]
    rows3d = [
        row(4, '3D', 'Depth', 'Which object is closer to the camera taking this photo, the lamp (highlighted by a red box) or the sofa (highlighted by a blue box)?',
            ['lamp', 'sofa'], '(A)', 'JPEG', 'Omni3D', 'SUN-RGBD', bbox=[[2.5, 3.0, 10.25, 12.0], [12.0, 4.5, 26.0, 18.75]]),
        row(5, '3D', 'Distance', 'Which of these two objects, the table (red box) or the bed (blue box), is closer to the pillow (green box)?',
            ['table', 'bed'], '(B)', 'PNG', 'Omni3D', 'Hypersim', bbox=[[1.0, 1.0, 8.0, 9.0], [9.5, 2.0, 20.0, 16.0], [21.0, 3.0, 27.0, 10.0]]),
        row(6, '3D', 'Depth', 'Which object is closer to the camera, the door or the shelves?', ['door', 'shelves'], '(B)', 'JPEG', 'Omni3D', 'ARKitScenes',
            bbox=[[0.0, 0.0, 5.0, 19.0], [6.0, 2.0, 14.0, 12.0]]),
    ]
    write(OUT / 'hub' / 'test_2d.parquet', rows2d)
    write(OUT / 'hub' / 'test_3d.parquet', rows3d)
    # test_2d.parquet without its answer column: the importer must refuse it by name.
    write(OUT / 'missing-column' / 'test_2d.parquet', [{k: v for k, v in r.items() if k != 'answer'} for r in rows2d],
          pa.schema([f for f in SCHEMA if f.name != 'answer']))
    expected = []
    for r in rows2d + rows3d:
        letter = r['answer'][1]
        expected.append({
            'id': f"{r['type']}_{r['idx']}", 'idx': r['idx'], 'type': r['type'], 'task': r['task'], 'prompt': r['question'],
            'choices': r['choices'], 'answer': r['choices'][ord(letter) - 65], 'answerLetter': letter, 'answerRaw': r['answer'],
            'promptField': r['prompt'], 'filename': r['filename'], 'source': r['source'], 'source_dataset': r['source_dataset'],
            'source_filename': r['source_filename'], 'target_class': r['target_class'], 'target_size': r['target_size'], 'bbox': r['bbox'],
            'imageSha256': hashlib.sha256(r['image']['bytes']).hexdigest(),
        })
    (OUT / 'expected.json').write_text(json.dumps({'rowGroupSize': ROW_GROUP, 'items': expected}, indent=1) + '\n')
    print(f'wrote {len(expected)} CV-Bench rows under {OUT}')


if __name__ == '__main__':
    main()
