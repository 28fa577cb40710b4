#!/usr/bin/env python3
"""Builds the BLINK fixture: parquet files in the layout and schema of BLINK-Benchmark/BLINK on the
Hugging Face hub (one folder per subtask, <Subtask>/<split>-00000-of-00001.parquet), with tiny real
PNG/JPEG images, plus expected.json: what an importer must produce, computed here (not by Loupe).

Schema (dataset card dataset_info, every config the same): idx string, question string, sub_task
string, image_1..image_4 Image (parquet struct<bytes: binary, path: string>, null when the item has
fewer images), choices Sequence(string) (list<string>), answer string "(A)", prompt string,
explanation string. Snappy compression, as pyarrow/datasets write by default. The hub files hold
up to 100 rows per row group (datasets' writer batch for image features); the fixture uses 2 so
one file spans several row groups and the importer's row-group streaming is exercised.

Run: python3 tools/benchmark-fixtures/build_blink.py  (needs pyarrow, Pillow)
"""
import hashlib
import io
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

OUT = Path(__file__).resolve().parents[2] / 'tests' / 'fixtures' / 'benchmarks' / 'blink'
ROW_GROUP = 2

IMAGE = pa.struct([('bytes', pa.binary()), ('path', pa.string())])
SCHEMA = pa.schema([
    ('idx', pa.string()), ('question', pa.string()), ('sub_task', pa.string()),
    ('image_1', IMAGE), ('image_2', IMAGE), ('image_3', IMAGE), ('image_4', IMAGE),
    ('choices', pa.list_(pa.string())), ('answer', pa.string()), ('prompt', pa.string()), ('explanation', pa.string()),
])
# The features block `datasets` stores in the parquet schema metadata (key b"huggingface").
HF_FEATURES = {
    'idx': {'dtype': 'string', '_type': 'Value'}, 'question': {'dtype': 'string', '_type': 'Value'},
    'sub_task': {'dtype': 'string', '_type': 'Value'},
    **{f'image_{k}': {'_type': 'Image'} for k in range(1, 5)},
    'choices': {'feature': {'dtype': 'string', '_type': 'Value'}, '_type': 'Sequence'},
    'answer': {'dtype': 'string', '_type': 'Value'}, 'prompt': {'dtype': 'string', '_type': 'Value'},
    'explanation': {'dtype': 'string', '_type': 'Value'},
}


def image(seed, fmt, size=(24, 16)):
    """A small real image with a pattern that differs per seed."""
    w, h = size
    im = Image.new('RGB', size)
    im.putdata([((x * 10 + seed * 40) % 256, (y * 15 + seed * 25) % 256, (seed * 70 + x * y) % 256) for y in range(h) for x in range(w)])
    buf = io.BytesIO()
    im.save(buf, format=fmt, **({'quality': 90} if fmt == 'JPEG' else {}))
    return buf.getvalue()


def prompt_of(question, choices):
    return question + '\nSelect from the following choices.\n' + '\n'.join(f'({chr(65 + i)}) {c}' for i, c in enumerate(choices))


def row(split, subtask, n, question, choices, answer, images, sub_task_text):
    return {
        'idx': f'{split}_{subtask}_{n}', 'question': question, 'sub_task': sub_task_text,
        **{f'image_{k + 1}': ({'bytes': images[k], 'path': None} if k < len(images) else None) for k in range(4)},
        'choices': choices, 'answer': answer, 'prompt': prompt_of(question, choices), 'explanation': '',
    }


def write(path, rows, schema=SCHEMA, features=HF_FEATURES):
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema)
    table = table.replace_schema_metadata({'huggingface': json.dumps({'info': {'features': features}})})
    pq.write_table(table, path, row_group_size=ROW_GROUP, compression='snappy')


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    files = {
        ('Counting', 'val'): [
            row('val', 'Counting', 1, 'How many blue floats are there?', ['0', '3', '2', '1'], '(B)', [image(1, 'JPEG')], 'Counting'),
            row('val', 'Counting', 2, 'How many chairs are in the image?', ['4', '2', '3', '1'], '(D)', [image(2, 'PNG')], 'Counting'),
            row('val', 'Counting', 3, 'How many birds are there?', ['2', '5', '3', '0'], '(A)', [image(3, 'JPEG')], 'Counting'),
        ],
        # The test split's answers are withheld on the hub.
        ('Counting', 'test'): [
            row('test', 'Counting', 1, 'How many cups are on the table?', ['1', '2', '3', '4'], 'hidden', [image(4, 'PNG')], 'Counting'),
        ],
        ('Visual_Correspondence', 'val'): [
            row('val', 'Visual_Correspondence', 1, 'Which point on the second image matches the REF point on the first image?',
                ['Point A', 'Point B', 'Point C', 'Point D'], '(C)', [image(5, 'JPEG'), image(6, 'JPEG', (20, 20))], 'Visual Correspondence'),
            row('val', 'Visual_Correspondence', 2, 'Which point on the second image corresponds to the REF point?',
                ['Point A', 'Point B', 'Point C', 'Point D'], '(A)', [image(7, 'PNG'), image(8, 'JPEG', (20, 20))], 'Visual Correspondence'),
        ],
        ('Art_Style', 'val'): [
            row('val', 'Art_Style', 1, 'Which image shares the same style as the reference image?',
                ['the second image', 'the third image'], '(B)', [image(9, 'JPEG'), image(10, 'PNG'), image(11, 'JPEG')], 'Art Style'),
        ],
    }
    expected = []
    for (subtask, split), rows in files.items():
        write(OUT / 'hub' / subtask / f'{split}-00000-of-00001.parquet', rows)
        for r in rows:
            images = [r[f'image_{k}']['bytes'] for k in range(1, 5) if r[f'image_{k}']]
            letter = r['answer'][1] if r['answer'].startswith('(') else None
            expected.append({
                'id': r['idx'], 'subtask': subtask, 'split': split, 'sub_task': r['sub_task'], 'prompt': r['question'],
                'choices': r['choices'], 'answer': r['choices'][ord(letter) - 65] if letter else None,
                'answerLetter': letter, 'answerRaw': r['answer'], 'promptField': r['prompt'],
                'imageSha256': [hashlib.sha256(b).hexdigest() for b in images],
                'imageExt': ['.png' if b.startswith(b'\x89PNG') else '.jpg' for b in images],
            })
    # A download whose subtask file names the choices column "options": the importer must refuse it by name.
    renamed = [{('options' if k == 'choices' else k): v for k, v in r.items()} for r in files[('Counting', 'val')]]
    schema = pa.schema([pa.field('options' if f.name == 'choices' else f.name, f.type) for f in SCHEMA])
    write(OUT / 'renamed-column' / 'Counting' / 'val-00000-of-00001.parquet', renamed, schema,
          {('options' if k == 'choices' else k): v for k, v in HF_FEATURES.items()})
    (OUT / 'expected.json').write_text(json.dumps({'rowGroupSize': ROW_GROUP, 'items': expected}, indent=1) + '\n')
    print(f'wrote {len(expected)} BLINK rows in {len(files)} files under {OUT}')


if __name__ == '__main__':
    main()
