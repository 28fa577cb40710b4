#!/usr/bin/env python3
"""Builds tests/fixtures/benchmarks/davis-2017: a tiny DAVIS-2017 in the published folder layout.

    DAVIS/JPEGImages/480p/<seq>/00000.jpg ...      frames (JPEG)
    DAVIS/Annotations/480p/<seq>/00000.png ...     indexed PNGs, DAVIS palette, pixel = object id
    DAVIS/ImageSets/2017/{train,val,test-dev}.txt  one sequence name a line

as the trainval and test-dev 480p zips unpack (davischallenge.org/davis2017/code.html; the reader is
davis2017-evaluation's davis2017/davis.py: frames = sorted *.jpg, masks = sorted *.png, 255 = void
set to 0). train/val sequences have every frame annotated, test-dev only the first.

Beside DAVIS/ it writes expected.json, the truth the importer must reproduce (from the arrays this
script drew, never from reading the PNGs back), and extra/duplicate-colour-palette.png, an indexed
PNG whose palette repeats a colour, so only a reader of the indices gets its ids right.

Frames are 32x24 instead of 854x480 so the whole fixture stays a few tens of KB.
Run: python3 tools/benchmark-fixtures/build_davis.py
"""
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parents[2] / 'tests' / 'fixtures' / 'benchmarks' / 'davis-2017'
W, H = 32, 24


def davis_palette():
    """The palette of the DAVIS annotation PNGs: the PASCAL VOC colour map (bit-interleaved id bits),
    id 1 = (128,0,0), 2 = (0,128,0), 3 = (128,128,0), 4 = (0,0,128) ... Ids 1 and 3 share red,
    1 and 2 share blue, so one channel of the RGB expansion is not the id."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


PALETTE = davis_palette()
assert PALETTE[3:6] == [128, 0, 0] and PALETTE[9:12] == [128, 128, 0]


def rect(ids, obj, x0, y0, x1, y1):
    ids[y0:y1, x0:x1] = obj


def frame_ids(seq, t, objects):
    """Objects move one pixel right per frame; `objects` = [(id, x0, y0, w, h, first, last)]."""
    ids = np.zeros((H, W), np.uint8)
    for obj, x0, y0, w, h, first, last in objects:
        if first <= t <= last:
            rect(ids, obj, x0 + t, y0, x0 + t + w, y0 + h)
    return ids


# name, split, frame count, objects, void pixels per frame {t: [(x, y)]}
SEQUENCES = [
    # ids 1 and 3 share a red value (128): a red-channel reader merges them.
    ('bike-packing', 'val', 4, [(1, 2, 2, 6, 5, 0, 3), (2, 12, 4, 5, 8, 0, 1), (3, 20, 12, 6, 6, 0, 3)], {}),
    # every object leaves in the last frame: an annotated frame with no object (ids []).
    ('blackswan', 'val', 3, [(1, 4, 6, 10, 8, 0, 1)], {}),
    ('bear', 'train', 3, [(1, 3, 3, 9, 9, 0, 2)], {1: [(0, 0), (1, 0), (31, 23)]}),
    ('boxing-fisheye', 'train', 2, [(1, 1, 1, 4, 4, 0, 1), (2, 8, 8, 4, 4, 0, 1), (3, 16, 2, 4, 4, 0, 1), (4, 22, 14, 5, 5, 0, 1)], {}),
    # test-dev: only the first frame is annotated.
    ('aerobatics', 'test-dev', 3, [(1, 5, 5, 7, 7, 0, 0), (2, 18, 10, 6, 6, 0, 0)], {}),
]


def frame_rgb(seq_index, t):
    """A deterministic frame; its content is irrelevant to the importer, its bytes are compared."""
    y, x = np.mgrid[0:H, 0:W]
    img = np.stack([(x * 7 + t * 13) % 256, (y * 11 + seq_index * 40) % 256, ((x + y) * 5 + t * 3) % 256], -1)
    return Image.fromarray(img.astype(np.uint8), 'RGB')


def save_indexed(ids, path, palette):
    im = Image.fromarray(ids, 'P')
    im.putpalette(palette)
    im.save(path, optimize=False)
    assert Image.open(path).mode == 'P'


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    root = OUT / 'DAVIS'
    expected = {'frameSize': [W, H], 'sequences': {}}
    splits = {}
    for si, (name, split, n, objects, void) in enumerate(SEQUENCES):
        splits.setdefault(split, []).append(name)
        (root / 'JPEGImages' / '480p' / name).mkdir(parents=True)
        (root / 'Annotations' / '480p' / name).mkdir(parents=True)
        frames, annotated = [], {}
        for t in range(n):
            stem = f'{t:05d}'
            frames.append(stem)
            frame_rgb(si, t).save(root / 'JPEGImages' / '480p' / name / f'{stem}.jpg', quality=70)
            if split == 'test-dev' and t > 0:
                continue
            ids = frame_ids(name, t, objects)
            raw = ids.copy()
            for x, y in void.get(t, []):
                raw[y, x] = 255
            save_indexed(raw, root / 'Annotations' / '480p' / name / f'{stem}.png', PALETTE)
            # davis2017-evaluation sets void (255) to 0 before scoring; the truth is that map.
            truth = np.where(raw == 255, 0, raw)
            annotated[stem] = {
                'ids': sorted(int(v) for v in np.unique(truth) if v != 0),
                'void': int((raw == 255).sum()),
                'pixels': truth.flatten().tolist(),
            }
        all_ids = sorted({i for a in annotated.values() for i in a['ids']})
        expected['sequences'][name] = {'split': split, 'frames': frames, 'annotated': annotated, 'objectIds': all_ids}
    for split in ('train', 'val', 'test-dev'):
        (root / 'ImageSets' / '2017').mkdir(parents=True, exist_ok=True)
        (root / 'ImageSets' / '2017' / f'{split}.txt').write_text(''.join(f'{s}\n' for s in splits[split]))
    expected['splits'] = splits

    # A palette where ids 1 and 2 have the same colour: neither a channel nor the colour gives the id.
    dup = list(PALETTE)
    dup[6:9] = dup[3:6]
    ids = np.zeros((H, W), np.uint8)
    rect(ids, 1, 2, 2, 10, 10)
    rect(ids, 2, 14, 6, 22, 16)
    rect(ids, 3, 24, 14, 30, 22)
    (OUT / 'extra').mkdir(parents=True)
    save_indexed(ids, OUT / 'extra' / 'duplicate-colour-palette.png', dup)
    rgb = np.array(Image.open(OUT / 'extra' / 'duplicate-colour-palette.png').convert('RGB'))
    assert (rgb[2, 2] == rgb[6, 14]).all(), 'ids 1 and 2 must look identical'
    expected['duplicateColourPalette'] = {'ids': [1, 2, 3], 'pixels': ids.flatten().tolist()}
    # Broken annotations for the error tests: one pixel narrower than the frames, and an RGB PNG
    # (a colour rendering of a mask, which carries no ids).
    save_indexed(ids[:, : W - 1].copy(), OUT / 'extra' / 'wrong-size.png', PALETTE)
    Image.open(OUT / 'extra' / 'duplicate-colour-palette.png').convert('RGB').save(OUT / 'extra' / 'rgb-annotation.png')

    (OUT / 'expected.json').write_text(json.dumps(expected, separators=(',', ':')) + '\n')
    total = sum(f.stat().st_size for f in OUT.rglob('*') if f.is_file())
    print(f'wrote {OUT} ({total} bytes)')


if __name__ == '__main__':
    main()
