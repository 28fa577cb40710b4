#!/usr/bin/env python3
"""Builds tests/fixtures/benchmarks/spair-71k: a tiny SPair-71k in the published folder layout.

    SPair-71k/PairAnnotation/{trn,val,test}/<pair_id:06d>-<src>-<trg>:<category>.json
    SPair-71k/ImageAnnotation/<category>/<img>.json   kps {"0": [x, y] | null, ...}, bndbox, pose ...
    SPair-71k/JPEGImages/<category>/<img>.jpg
    SPair-71k/Segmentation/<category>/<img>.png       indexed PNG (object = 1)
    SPair-71k/Layout/{large,small}/{trn,val,test}.txt pair names (no .json), one a line

Keys as in the SPair-71k download (cvlab.postech.ac.kr/research/SPair-71k; the same keys are read
by the Hugging Face loader 0jl/SPair-71k and the authors' dataset classes): a pair holds pair_id,
filename, src_imname, trg_imname, src_imsize / trg_imsize ([width, height, 3]), src_bndbox /
trg_bndbox ([x1, y1, x2, y2]), src_pose, trg_pose, src_kps / trg_kps ([[x, y], ...], the
keypoints visible in both images, in kps_ids order), kps_ids (strings), category,
viewpoint_variation, scale_variation, truncation, occlusion, mirror.

Beside SPair-71k/ it writes expected.json, the truth the importer must reproduce (from the values
this script drew, not from re-reading its own files).
Images are ~40 px instead of ~500 px so the fixture stays a few tens of KB.
Run: python3 tools/benchmark-fixtures/build_spair.py
"""
import json
import random
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parents[2] / 'tests' / 'fixtures' / 'benchmarks' / 'spair-71k'
POSES = ['Unspecified', 'Frontal', 'Left', 'Rear', 'Right']

# category → (number of keypoint ids in this fixture, images as (name, width, height))
CATEGORIES = {
    'aeroplane': (8, [('2008_000585', 48, 36), ('2008_004704', 40, 30), ('2009_001163', 44, 32)]),
    'cat': (6, [('2008_000116', 36, 48), ('2010_003950', 42, 42)]),
    'bicycle': (5, [('2007_005064', 40, 28), ('2011_001285', 30, 40)]),
}
# split → (category, src index, trg index, viewpoint_variation, scale_variation, truncation, occlusion, mirror)
PAIRS = {
    'test': [('aeroplane', 0, 1, 0, 1, 0, 2, 0), ('aeroplane', 1, 2, 2, 0, 1, 0, 1), ('aeroplane', 2, 0, 1, 2, 0, 0, 0), ('cat', 0, 1, 1, 1, 2, 1, 0), ('cat', 1, 0, 0, 0, 0, 0, 1), ('bicycle', 0, 1, 2, 2, 3, 3, 0)],
    'trn': [('aeroplane', 0, 2, 0, 0, 0, 0, 0), ('cat', 1, 0, 1, 0, 1, 0, 0), ('bicycle', 1, 0, 0, 1, 0, 1, 1)],
    'val': [('cat', 0, 1, 2, 1, 0, 0, 0), ('bicycle', 0, 1, 0, 0, 2, 2, 0)],
}
# Layout/small lists these positions of each large split.
SMALL = {'test': [1, 3, 5], 'trn': [0, 2], 'val': [1]}


def image_annotation(rng, category, name, w, h, nkps):
    x1, y1 = rng.randint(0, w // 4), rng.randint(0, h // 4)
    x2, y2 = rng.randint(w // 2, w), rng.randint(h // 2, h)
    kps = {}
    for k in range(nkps):
        # about a third of the keypoints are invisible (null), as in the published files
        kps[str(k)] = None if rng.random() < 0.3 else [rng.randint(0, w - 1), rng.randint(0, h - 1)]
    return {
        'filename': f'{name}.jpg',
        'src_database': 'PASCAL VOC 2012',
        'src_annotation': 'PASCAL VOC',
        'src_image': f'{name}.jpg',
        'image_width': w,
        'image_height': h,
        'image_depth': 3,
        'category': category,
        'pose': rng.choice(POSES),
        'truncated': rng.randint(0, 1),
        'occluded': rng.randint(0, 1),
        'difficult': 0,
        'bndbox': [x1, y1, x2, y2],
        'kps': kps,
        'azimuth_id': rng.randint(0, 7),
    }


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    root = OUT / 'SPair-71k'
    rng = random.Random(71)
    images = {}
    for ci, (category, (nkps, imgs)) in enumerate(CATEGORIES.items()):
        for d in ('ImageAnnotation', 'JPEGImages', 'Segmentation'):
            (root / d / category).mkdir(parents=True)
        for ii, (name, w, h) in enumerate(imgs):
            ann = image_annotation(rng, category, name, w, h, nkps)
            images[(category, ii)] = ann
            (root / 'ImageAnnotation' / category / f'{name}.json').write_text(json.dumps(ann))
            y, x = np.mgrid[0:h, 0:w]
            rgb = np.stack([(x * 9 + ci * 60) % 256, (y * 7 + ii * 50) % 256, (x * y) % 256], -1).astype(np.uint8)
            Image.fromarray(rgb, 'RGB').save(root / 'JPEGImages' / category / f'{name}.jpg', quality=70)
            seg = np.zeros((h, w), np.uint8)
            x1, y1, x2, y2 = ann['bndbox']
            seg[y1:y2, x1:x2] = 1
            im = Image.fromarray(seg, 'P')
            im.putpalette([0, 0, 0, 128, 0, 0] + [0, 0, 0] * 254)
            im.save(root / 'Segmentation' / category / f'{name}.png')

    expected = {'splits': {}, 'pairs': {}}
    for split, pairs in PAIRS.items():
        (root / 'PairAnnotation' / split).mkdir(parents=True)
        names = []
        for pid, (category, si, ti, vp, sc, tr, oc, mi) in enumerate(pairs, start=1):
            src, trg = images[(category, si)], images[(category, ti)]
            src_stem, trg_stem = src['filename'][:-4], trg['filename'][:-4]
            name = f'{pid:06d}-{src_stem}-{trg_stem}:{category}'
            ids = [k for k in src['kps'] if src['kps'][k] is not None and trg['kps'][k] is not None]
            assert ids, f'pair {name} has no common keypoint; change the seed'
            pair = {
                'pair_id': pid,
                'filename': f'{name}.json',
                'src_imname': src['filename'],
                'trg_imname': trg['filename'],
                'src_imsize': [src['image_width'], src['image_height'], 3],
                'trg_imsize': [trg['image_width'], trg['image_height'], 3],
                'src_bndbox': src['bndbox'],
                'trg_bndbox': trg['bndbox'],
                'src_pose': src['pose'],
                'trg_pose': trg['pose'],
                'src_kps': [src['kps'][k] for k in ids],
                'trg_kps': [trg['kps'][k] for k in ids],
                'kps_ids': ids,
                'category': category,
                'viewpoint_variation': vp,
                'scale_variation': sc,
                'truncation': tr,
                'occlusion': oc,
                'mirror': mi,
            }
            (root / 'PairAnnotation' / split / f'{name}.json').write_text(json.dumps(pair))
            names.append(name)
            expected['pairs'][f'{split}/{name}'] = pair
        expected['splits'][split] = names
        expected['splits'][f'small/{split}'] = [names[i] for i in SMALL[split]]
        for layout, listed in (('large', names), ('small', expected['splits'][f'small/{split}'])):
            (root / 'Layout' / layout).mkdir(parents=True, exist_ok=True)
            (root / 'Layout' / layout / f'{split}.txt').write_text(''.join(f'{n}\n' for n in listed))

    (OUT / 'expected.json').write_text(json.dumps(expected, indent=1) + '\n')
    total = sum(f.stat().st_size for f in OUT.rglob('*') if f.is_file())
    print(f'wrote {OUT} ({total} bytes, {sum(len(v) for k, v in expected["splits"].items() if "/" not in k)} pairs)')


if __name__ == '__main__':
    main()
