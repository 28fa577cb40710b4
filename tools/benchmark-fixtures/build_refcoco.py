#!/usr/bin/env python3
"""Builds the RefCOCO fixtures in the two layouts the Hugging Face hub publishes, plus expected.json
computed here (boxes, polygons, mask pixel counts by an independent point-in-polygon test):

lmms-lab/ — lmms-lab/RefCOCO and lmms-lab/RefCOCOg (RefCOCOplus is the same schema):
  <Variant>/data/<split>-0000k-of-0000n.parquet, columns (dataset card dataset_info):
  question_id string, image Image (struct<bytes, path>), question string, answer Sequence(string)
  (the referring sentences), segmentation Sequence(float32) (one flat polygon), bbox Sequence(float32)
  (COCO x, y, w, h), iscrowd int8, file_name string.
jxu124/ — jxu124/refcoco: refcoco/data/<split>-00000-of-00001-<hash>.parquet, no pixels, columns:
  sent_ids list<int64>, file_name, ann_id int64, ref_id int64, image_id int64, split, sentences
  list<struct<raw, sent, sent_id int64, tokens list<string>>>, category_id int64, raw_anns (JSON),
  raw_image_info (JSON), raw_sentences (JSON), image_path, bbox list<float64>, captions list<string>,
  global_image_id, anns_id; images come from a COCO train2014/ folder beside it.

Snappy, 2 rows per row group (the hub: 100 for image datasets). Pixel (x, y) is inside a polygon
when its centre (x + 0.5, y + 0.5) is (even-odd); the polygons avoid centres on edges.

Run: python3 tools/benchmark-fixtures/build_refcoco.py  (needs pyarrow, numpy, Pillow)
"""
import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

OUT = Path(__file__).resolve().parents[2] / 'tests' / 'fixtures' / 'benchmarks' / 'refcoco'
ROW_GROUP = 2
W, H = 40, 30
IMAGE = pa.struct([('bytes', pa.binary()), ('path', pa.string())])
LMMS_SCHEMA = pa.schema([
    ('question_id', pa.string()), ('image', IMAGE), ('question', pa.string()), ('answer', pa.list_(pa.string())),
    ('segmentation', pa.list_(pa.float32())), ('bbox', pa.list_(pa.float32())), ('iscrowd', pa.int8()), ('file_name', pa.string()),
])
V = lambda t: {'dtype': t, '_type': 'Value'}  # noqa: E731
LMMS_FEATURES = {
    'question_id': V('string'), 'image': {'_type': 'Image'}, 'question': V('string'), 'answer': {'feature': V('string'), '_type': 'Sequence'},
    'segmentation': {'feature': V('float32'), '_type': 'Sequence'}, 'bbox': {'feature': V('float32'), '_type': 'Sequence'},
    'iscrowd': V('int8'), 'file_name': V('string'),
}
SENTENCE = pa.struct([('raw', pa.string()), ('sent', pa.string()), ('sent_id', pa.int64()), ('tokens', pa.list_(pa.string()))])
REFER_SCHEMA = pa.schema([
    ('sent_ids', pa.list_(pa.int64())), ('file_name', pa.string()), ('ann_id', pa.int64()), ('ref_id', pa.int64()), ('image_id', pa.int64()),
    ('split', pa.string()), ('sentences', pa.list_(SENTENCE)), ('category_id', pa.int64()), ('raw_anns', pa.string()),
    ('raw_image_info', pa.string()), ('raw_sentences', pa.string()), ('image_path', pa.string()), ('bbox', pa.list_(pa.float64())),
    ('captions', pa.list_(pa.string())), ('global_image_id', pa.string()), ('anns_id', pa.string()),
])
PROMPT = 'Please carefully observe the area circled in the image and come up with a caption for the area.'


def jpeg(seed):
    im = Image.new('RGB', (W, H))
    im.putdata([((x * 6 + seed * 50) % 256, (y * 8 + seed * 30) % 256, (seed * 90 + x * y) % 256) for y in range(H) for x in range(W)])
    buf = io.BytesIO()
    im.save(buf, format='JPEG', quality=92)
    return buf.getvalue()


def mask_pixels(polygons):
    """Pixels whose centre lies inside any polygon (even-odd ray casting, PNPOLY), counted with numpy."""
    ys, xs = np.mgrid[0:H, 0:W]
    px, py = xs + 0.5, ys + 0.5
    union = np.zeros((H, W), bool)
    for poly in polygons:
        inside = np.zeros((H, W), bool)
        n = len(poly)
        for i in range(n):
            (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % n]
            crosses = ((y1 > py) != (y2 > py)) & (px < (x2 - x1) * (py - y1) / ((y2 - y1) if y2 != y1 else 1e-300) + x1)
            inside ^= crosses
        union |= inside
    return int(union.sum())


def f32(values):
    return [float(np.float32(v)) for v in values]


def pairs(flat):
    return [[flat[2 * k], flat[2 * k + 1]] for k in range(len(flat) // 2)]


REFS = [
    # (question_id, image seed, file_name, sentences, flat polygon, bbox xywh)
    ('0', 1, 'COCO_train2014_000000000077.jpg', ['man in red on the left', 'left guy'], [3.3, 4.2, 17.7, 5.1, 15.2, 22.6, 4.1, 19.8], [3.3, 4.2, 14.4, 18.4]),
    ('1', 1, 'COCO_train2014_000000000077.jpg', ['right dog'], [22.2, 8.3, 36.6, 7.9, 37.1, 27.3, 29.4, 18.2, 21.8, 26.7], [21.8, 7.9, 15.3, 19.4]),
    ('2', 2, 'COCO_train2014_000000000139.jpg', ['blue chair bottom'], [6.1, 12.3, 30.7, 11.8, 18.4, 27.9], [6.1, 11.8, 24.6, 16.1]),
    ('3', 3, 'COCO_train2014_000000000285.jpg', ['crowd region without a polygon'], [], [1.0, 2.0, 5.5, 6.25]),
]
G_REFS = [
    ('g0', 4, 'COCO_train2014_000000000632.jpg', ['a white plate with a sandwich on it, near the window'], [10.3, 3.3, 33.2, 4.4, 34.7, 20.1, 11.9, 24.6], [10.3, 3.3, 24.4, 21.3]),
]


def lmms_rows(refs):
    rows = []
    for qid, seed, fn, sents, seg, bbox in refs:
        rows.append({'question_id': qid, 'image': {'bytes': jpeg(seed), 'path': None}, 'question': PROMPT, 'answer': sents,
                     'segmentation': seg, 'bbox': bbox, 'iscrowd': 0, 'file_name': fn})
    return rows


def write(path, rows, schema, features=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema)
    if features:
        table = table.replace_schema_metadata({'huggingface': json.dumps({'info': {'features': features}})})
    pq.write_table(table, path, row_group_size=ROW_GROUP, compression='snappy')


def expect_lmms(variant, split, row):
    seg = f32(row['segmentation'])
    polygons = [pairs(seg)] if len(seg) >= 6 else None
    x, y, w, h = f32(row['bbox'])
    return {'id': f"{variant}:{split}:{row['question_id']}", 'variant': variant, 'split': split, 'prompt': row['question'],
            'sentences': row['answer'], 'box': [x, y, x + w, y + h], 'bbox': [x, y, w, h], 'polygons': polygons,
            'maskPixels': mask_pixels(polygons) if polygons else None, 'imageSha256': hashlib.sha256(row['image']['bytes']).hexdigest(),
            'imageSize': [W, H]}


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    expected = []
    # lmms-lab/RefCOCO: val in two shards, testA in one; lmms-lab/RefCOCOg: val.
    rc = lmms_rows(REFS)
    shards = {('RefCOCO', 'val', 0, 2): rc[:3], ('RefCOCO', 'val', 1, 2): rc[3:], ('RefCOCO', 'testA', 0, 1): lmms_rows(REFS[:1]),
              ('RefCOCOg', 'val', 0, 1): lmms_rows(G_REFS)}
    for (folder, split, k, n), rows in shards.items():
        write(OUT / 'lmms-lab' / folder / 'data' / f'{split}-{k:05d}-of-{n:05d}.parquet', rows, LMMS_SCHEMA, LMMS_FEATURES)
        variant = 'refcocog' if folder == 'RefCOCOg' else 'refcoco'
        expected += [expect_lmms(variant, split, r) for r in rows]

    # jxu124/refcoco: refs only; the COCO image lives in train2014/ beside the download.
    refer_rows, refer_expected = [], []
    img_bytes = jpeg(5)
    (OUT / 'jxu124' / 'train2014').mkdir(parents=True)
    coco_name = 'COCO_train2014_000000000009.jpg'
    (OUT / 'jxu124' / 'train2014' / coco_name).write_bytes(img_bytes)
    image_info = {'license': 1, 'file_name': coco_name, 'coco_url': '', 'height': H, 'width': W, 'date_captured': '', 'flickr_url': '', 'id': 9}
    for ref_id, ann_id, polys, bbox, sents in [
        (4417, 1038967, [[4.3, 3.3, 18.6, 4.1, 12.2, 20.7]], [4.3, 3.3, 14.3, 17.4], ['bowl of broccoli on the left', 'green bowl']),
        (4418, 1039564, [[20.3, 5.2, 36.1, 6.3, 35.8, 25.6, 21.4, 24.1], [5.3, 22.2, 12.6, 22.7, 9.1, 28.4]], [5.3, 5.2, 30.8, 23.2], ['two pieces on the right']),
    ]:
        ann = {'segmentation': polys, 'area': 1.0, 'iscrowd': 0, 'image_id': 9, 'bbox': bbox, 'category_id': 51, 'id': ann_id}
        sentences = [{'raw': s, 'sent': s, 'sent_id': 9000 + k, 'tokens': s.split()} for k, s in enumerate(sents)]
        refer_rows.append({
            'sent_ids': [s['sent_id'] for s in sentences], 'file_name': f'COCO_train2014_000000000009_{ann_id}.jpg', 'ann_id': ann_id,
            'ref_id': ref_id, 'image_id': 9, 'split': 'val', 'sentences': sentences, 'category_id': 51, 'raw_anns': json.dumps(ann),
            'raw_image_info': json.dumps(image_info), 'raw_sentences': json.dumps(sentences), 'image_path': f'coco/train2014/{coco_name}',
            'bbox': bbox, 'captions': sents, 'global_image_id': 'coco.9', 'anns_id': str(ann_id),
        })
        x, y, w, h = bbox
        refer_expected.append({'id': f'refcoco:validation:{ref_id}', 'variant': 'refcoco', 'split': 'validation', 'prompt': None, 'sentences': sents,
                               'box': [x, y, x + w, y + h], 'bbox': bbox, 'polygons': [pairs(p) for p in polys], 'maskPixels': mask_pixels([pairs(p) for p in polys]),
                               'imageSha256': hashlib.sha256(img_bytes).hexdigest(), 'imageSize': [W, H]})
    write(OUT / 'jxu124' / 'refcoco' / 'data' / 'validation-00000-of-00001-6fb1cc7e9f1ab2f8.parquet', refer_rows, REFER_SCHEMA)

    # A lmms-lab file whose bbox column is named "box": refused by name.
    broken = [{('box' if k == 'bbox' else k): v for k, v in r.items()} for r in lmms_rows(REFS[:1])]
    write(OUT / 'renamed-column' / 'RefCOCO' / 'data' / 'val-00000-of-00001.parquet', broken,
          pa.schema([pa.field('box' if f.name == 'bbox' else f.name, f.type) for f in LMMS_SCHEMA]))

    (OUT / 'expected.json').write_text(json.dumps({'rowGroupSize': ROW_GROUP, 'lmms': expected, 'jxu124': refer_expected}, indent=1) + '\n')
    print(f'wrote {len(expected)} lmms-lab rows and {len(refer_expected)} jxu124 refs under {OUT}')


if __name__ == '__main__':
    main()
