#!/usr/bin/env python3
"""Builds tests/fixtures/benchmarks/imagenet-s: a tiny ImageNet-S in the layout the LUSSeg toolbox prepares.

    imagenet-s/ImageNetS50/validation/<wnid>/ILSVRC2012_val_<8 digits>.JPEG
    imagenet-s/ImageNetS50/validation-segmentation/<wnid>/ILSVRC2012_val_<8 digits>.png
    imagenet-s/ImageNetS50/train-semi/<wnid>/<wnid>_<n>.JPEG  (+ train-semi-segmentation/)
    imagenet-s/ImageNetS919/validation/…, validation-segmentation/…

as github.com/LUSSeg/ImageNet-S lays it out (README "Structure"; datapreparation_val.py copies
ImageNet val images into <save>/ImageNetS<N>/validation/<wnid>/; datapreparation_anno.sh unzips the
masks beside them; data/names/ImageNetS_im50_validation.txt pairs `<wnid>/<name>.JPEG <wnid>/<name>.png`).
Masks are RGB PNGs whose class id is R + G*256 (README Q&A, data/data.py `gt[:, :, 1] * 256 +
gt[:, :, 0]`): 0 = other category, 1000 = ignored (R 232, G 3), k = the k-th wnid of the sorted
data/categories/ImageNetS_categories_im<N>.txt. The ImageNetS919 images use ids above 255 (G > 0),
including both categories the toolbox names "crane" (135 the bird, 496 the machine).

Beside them it writes expected.json, the truth the importer must reproduce (from the arrays this
script drew, never from reading the files back): per variant and split, per image its wnid, class id,
size, and every pixel's class id; and extra/ with broken masks for the refusal tests.
Images are 16-24 px instead of ~500 so the fixture stays a few tens of KB.
Run: python3 tools/benchmark-fixtures/build_imagenet_s.py
"""
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parents[2] / 'tests' / 'fixtures' / 'benchmarks' / 'imagenet-s'
IGNORE = 1000

# Class ids from the published sorted category lists (line number, 1-based) and the toolbox names
# (data/data.py classes_50 / classes_919).
S50 = {'n01443537': (1, 'goldfish'), 'n02119022': (6, 'red fox'), 'n04026417': (37, 'purse'), 'n12998815': (50, 'agaric')}
S919 = {'n02012849': (135, 'crane'), 'n02119022': (278, 'red fox'), 'n03126707': (496, 'crane'), 'n13054560': (917, 'bolete')}

rng = np.random.default_rng(20220116)


def draw(w, h, regions, ignore_border):
    """Class ids (h x w, uint16): background 0, then each (id, x0, y0, x1, y1) rectangle, then a 1-pixel
    ignored (1000) outline around the first region when `ignore_border`, as the annotators mark
    uncertain object edges."""
    ids = np.zeros((h, w), np.uint16)
    for cid, x0, y0, x1, y1 in regions:
        ids[y0:y1, x0:x1] = cid
    if ignore_border:
        _, x0, y0, x1, y1 = regions[0]
        ids[max(y0 - 1, 0), max(x0 - 1, 0):x1 + 1] = IGNORE
        ids[min(y1, h - 1), max(x0 - 1, 0):x1 + 1] = IGNORE
    return ids


def rgb_mask(ids):
    """The published encoding: R = id % 256, G = id // 256, B = 0."""
    return np.stack([(ids % 256).astype(np.uint8), (ids // 256).astype(np.uint8), np.zeros(ids.shape, np.uint8)], axis=-1)


def write_pair(root, split, wnid, stem, ids):
    h, w = ids.shape
    img_dir = root / split / wnid
    mask_dir = root / f'{split}-segmentation' / wnid
    img_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels, 'RGB').save(img_dir / f'{stem}.JPEG', quality=70)
    Image.fromarray(rgb_mask(ids), 'RGB').save(mask_dir / f'{stem}.png')


# (variant, split, wnid, stem, w, h, regions, ignore outline)
IMAGES = [
    (50, 'validation', 'n01443537', 'ILSVRC2012_val_00004677', 20, 16, [(1, 4, 3, 12, 11)], True),
    (50, 'validation', 'n01443537', 'ILSVRC2012_val_00021905', 16, 20, [(1, 2, 2, 9, 9), (37, 10, 12, 15, 19)], False),
    (50, 'validation', 'n02119022', 'ILSVRC2012_val_00001189', 24, 18, [(6, 5, 4, 18, 14), (50, 0, 15, 6, 18)], True),
    (50, 'validation', 'n12998815', 'ILSVRC2012_val_00000218', 18, 18, [(50, 3, 3, 15, 15)], False),
    (50, 'validation', 'n12998815', 'ILSVRC2012_val_00049770', 22, 16, [(1, 0, 0, 8, 6)], True),  # no agaric pixel
    (50, 'train-semi', 'n02119022', 'n02119022_1074', 16, 16, [(6, 4, 4, 12, 12)], True),
    (919, 'validation', 'n02012849', 'ILSVRC2012_val_00008260', 24, 20, [(135, 3, 3, 14, 15), (496, 15, 2, 23, 18)], True),
    (919, 'validation', 'n13054560', 'ILSVRC2012_val_00030207', 20, 16, [(917, 6, 4, 16, 12), (278, 0, 12, 5, 16)], False),
]


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    truth = {'ignore': IGNORE, 'categories': {'50': {k: list(v) for k, v in S50.items()}, '919': {k: list(v) for k, v in S919.items()}}, 'variants': {}}
    for variant, split, wnid, stem, w, h, regions, border in IMAGES:
        cats = S50 if variant == 50 else S919
        ids = draw(w, h, regions, border)
        write_pair(OUT / f'ImageNetS{variant}', split, wnid, stem, ids)
        present = sorted(int(v) for v in np.unique(ids) if v not in (0, IGNORE))
        cid, name = cats[wnid]
        truth['variants'].setdefault(str(variant), {}).setdefault(split, []).append({
            'id': stem,
            'wnid': wnid,
            'classId': cid,
            'className': name,
            'image': f'{split}/{wnid}/{stem}.JPEG',
            'mask': f'{split}-segmentation/{wnid}/{stem}.png',
            'size': [w, h],
            'classIds': present,
            'labelOrder': ([cid] if cid in present else []) + [c for c in present if c != cid],
            'backgroundPixels': int((ids == 0).sum()),
            'ignoredPixels': int((ids == IGNORE).sum()),
            'pixels': ids.reshape(-1).tolist(),
        })
    for splits in truth['variants'].values():
        for items in splits.values():
            items.sort(key=lambda i: (i['wnid'], i['id']))

    extra = OUT / 'extra'
    extra.mkdir()
    base = draw(20, 16, [(1, 4, 3, 12, 11)], True)
    # one pixel too narrow for ILSVRC2012_val_00004677 (20 x 16)
    Image.fromarray(rgb_mask(base[:, :19]), 'RGB').save(extra / 'wrong-size.png')
    # class 51 (R 51): outside ImageNet-S50's 1..50
    bad = base.copy()
    bad[0, 0] = 51
    Image.fromarray(rgb_mask(bad), 'RGB').save(extra / 'class-51.png')
    # class 1001 (R 233, G 3): neither a category nor the ignore id
    bad = base.copy()
    bad[15, 19] = 1001
    Image.fromarray(rgb_mask(bad), 'RGB').save(extra / 'class-1001.png')
    # the ids as an 8-bit greyscale PNG (not the published RGB encoding)
    Image.fromarray((base % 256).astype(np.uint8), 'L').save(extra / 'greyscale.png')
    # a JPEG saved under a .png name
    Image.fromarray(rgb_mask(base), 'RGB').save(extra / 'jpeg-bytes.png', format='JPEG')
    truth['extra'] = {'class-51.png': {'at': [0, 0], 'id': 51}, 'class-1001.png': {'at': [19, 15], 'id': 1001}}

    (OUT / 'expected.json').write_text(json.dumps(truth, separators=(',', ':')) + '\n')


if __name__ == '__main__':
    main()
