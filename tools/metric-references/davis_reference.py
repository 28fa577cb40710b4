#!/usr/bin/env python3
"""Reference values for src-shared/metrics/davis.ts, computed with the OFFICIAL DAVIS code.

Needs a checkout of https://github.com/davisvideochallenge/davis2017-evaluation (tested at
ac7c43f) and its dependencies (numpy, scipy, opencv-python-headless, scikit-image, Pillow, tqdm):

    python3 tools/metric-references/davis_reference.py --davis-repo /path/to/davis2017-evaluation

It writes tests/fixtures/metric-references/davis.json with
  - `frames`: pairs of binary masks (truth, prediction, optional void) and, for several bound_th,
    J = davis2017.metrics.db_eval_iou and F = davis2017.metrics.db_eval_boundary;
  - `sequences`: a tiny DAVIS-layout dataset (written to a temp folder: JPEGImages, Annotations,
    ImageSets/2017/val.txt, and a results folder) scored end to end by
    davis2017.evaluation.DAVISEvaluation(task='semi-supervised'), giving per-object J/F
    mean/recall/decay and the global J&F-Mean.
Masks are stored run-length encoded, row-major: binary masks as alternating run lengths starting
with a run of 0s; id masks as [value, length, value, length, ...].
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
from PIL import Image

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'tests', 'fixtures', 'metric-references', 'davis.json')


def rle_binary(m):
    flat = m.astype(bool).ravel()
    counts, cur, run = [], False, 0
    for v in flat:
        if v == cur:
            run += 1
        else:
            counts.append(run)
            cur, run = v, 1
    counts.append(run)
    return counts


def rle_ids(m):
    flat = m.astype(np.int64).ravel()
    out, cur, run = [], int(flat[0]), 0
    for v in flat:
        v = int(v)
        if v == cur:
            run += 1
        else:
            out += [cur, run]
            cur, run = v, 1
    out += [cur, run]
    return out


def ellipse(h, w, cy, cx, ry, rx):
    y, x = np.mgrid[0:h, 0:w]
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def rect(h, w, y0, x0, y1, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def frame_cases(rng):
    cases = []

    def add(name, gt, pred, void=None):
        cases.append((name, gt, pred, void))

    add('small shifted ellipse', ellipse(30, 40, 14, 18, 8, 12), ellipse(30, 40, 15, 20, 8, 11))
    add('rect vs ellipse', rect(48, 64, 10, 12, 38, 50), ellipse(48, 64, 24, 31, 14, 19))
    hole = ellipse(120, 200, 60, 100, 45, 80) & ~ellipse(120, 200, 60, 100, 15, 25)
    add('ellipse vs ellipse with a hole', ellipse(120, 200, 60, 100, 45, 80), hole)
    gt_big = ellipse(480, 854, 240, 300, 150, 200) | ellipse(480, 854, 200, 650, 90, 120)
    pred_big = ellipse(480, 854, 246, 310, 140, 205) | ellipse(480, 854, 215, 640, 80, 110)
    add('DAVIS-size two blobs (radius 8)', gt_big, pred_big)
    add('DAVIS-size empty prediction', ellipse(480, 854, 240, 427, 100, 180), np.zeros((480, 854), bool))
    add('both empty', np.zeros((60, 80), bool), np.zeros((60, 80), bool))
    add('empty truth', np.zeros((60, 80), bool), ellipse(60, 80, 30, 40, 10, 10))
    add('touching every border', rect(64, 64, 0, 0, 64, 40), rect(64, 64, 0, 10, 50, 64))
    add('random noise', rng.random((50, 70)) < 0.3, rng.random((50, 70)) < 0.35)
    base = ellipse(100, 150, 50, 75, 35, 55)
    ring = ellipse(100, 150, 50, 75, 40, 60) & ~ellipse(100, 150, 50, 75, 30, 50)
    add('ragged boundary', base, (base & ~(ring & (rng.random((100, 150)) < 0.5))) | (ring & (rng.random((100, 150)) < 0.3)))
    corner_gt = np.zeros((20, 20), bool)
    corner_gt[19, 19] = True
    corner_gt[0, 0] = True
    corner_pred = np.zeros((20, 20), bool)
    corner_pred[19, 18] = True
    corner_pred[1, 1] = True
    add('corner pixels', corner_gt, corner_pred)
    add('full mask vs part', np.ones((40, 60), bool), rect(40, 60, 5, 5, 35, 55))
    void = rect(90, 120, 0, 60, 90, 120)
    add('with void pixels', ellipse(90, 120, 45, 60, 30, 40), ellipse(90, 120, 40, 55, 30, 45), void)
    return cases


def write_png(path, arr):
    Image.fromarray(arr.astype(np.uint8), mode='L').save(path)


def sequence_cases(rng):
    seqs = []
    # seqa: 7 frames, 2 objects, a void band in the truth; the prediction never finds object 2.
    h, w = 60, 80
    gt, pr = [], []
    for t in range(7):
        g = np.zeros((h, w), np.uint8)
        g[ellipse(h, w, 30, 20 + 3 * t, 10, 12)] = 1
        g[rect(h, w, 5, 50, 25, 70 - t)] = 2
        g[rect(h, w, 55, 0, 60, 80)] = 255
        p = np.zeros((h, w), np.uint8)
        p[ellipse(h, w, 31, 22 + 3 * t, 10, 11)] = 1
        gt.append(g)
        pr.append(p)
    seqs.append(('seqa', gt, pr))
    # seqb: 13 frames, 3 objects moving, noisy prediction (decay bins cover several frames).
    h, w = 40, 50
    gt, pr = [], []
    for t in range(13):
        g = np.zeros((h, w), np.uint8)
        g[ellipse(h, w, 12, 10 + t, 6, 7)] = 1
        g[rect(h, w, 22, 5 + t, 34, 18 + t)] = 2
        g[ellipse(h, w, 28, 40, 5, 4 + t % 3)] = 3
        p = g.copy()
        flip = rng.random((h, w)) < 0.02 * t
        p[flip] = rng.integers(0, 4, size=int(flip.sum()))
        gt.append(g)
        pr.append(p.astype(np.uint8))
    seqs.append(('seqb', gt, pr))
    return seqs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--davis-repo', required=True, help='checkout of davisvideochallenge/davis2017-evaluation')
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.davis_repo))
    from davis2017.metrics import db_eval_boundary, db_eval_iou  # noqa: E402
    from davis2017.evaluation import DAVISEvaluation  # noqa: E402

    rng = np.random.default_rng(20240611)
    frames = []
    for name, gt, pred, void in frame_cases(rng):
        entry = {'name': name, 'height': gt.shape[0], 'width': gt.shape[1], 'truth': rle_binary(gt), 'predicted': rle_binary(pred)}
        if void is not None:
            entry['void'] = rle_binary(void)
        entry['j'] = float(db_eval_iou(gt, pred, void))
        entry['f'] = {str(th): float(db_eval_boundary(gt, pred, void, bound_th=th)) for th in (0.008, 0.02, 3)}
        frames.append(entry)

    with tempfile.TemporaryDirectory() as tmp:
        root, res = os.path.join(tmp, 'DAVIS'), os.path.join(tmp, 'results')
        os.makedirs(os.path.join(root, 'ImageSets', '2017'))
        seqs = sequence_cases(rng)
        with open(os.path.join(root, 'ImageSets', '2017', 'val.txt'), 'w') as f:
            f.write('\n'.join(s[0] for s in seqs) + '\n')
        for name, gt, pr in seqs:
            for sub in ('JPEGImages/480p', 'Annotations/480p'):
                os.makedirs(os.path.join(root, sub, name))
            os.makedirs(os.path.join(res, name))
            for t, (g, p) in enumerate(zip(gt, pr)):
                Image.new('RGB', (g.shape[1], g.shape[0])).save(os.path.join(root, 'JPEGImages/480p', name, f'{t:05d}.jpg'))
                write_png(os.path.join(root, 'Annotations/480p', name, f'{t:05d}.png'), g)
                write_png(os.path.join(res, name, f'{t:05d}.png'), p)
        ev = DAVISEvaluation(davis_root=root, task='semi-supervised', gt_set='val')
        m = ev.evaluate(res)
        objects = []
        k = 0
        for name, gt, _ in seqs:
            for obj in range(int(max(v for v in gt[0].ravel() if v != 255))):
                objects.append({'sequence': name, 'id': obj + 1,
                                'jMean': float(m['J']['M'][k]), 'jRecall': float(m['J']['R'][k]), 'jDecay': float(m['J']['D'][k]),
                                'fMean': float(m['F']['M'][k]), 'fRecall': float(m['F']['R'][k]), 'fDecay': float(m['F']['D'][k])})
                k += 1
        sequences = [{'name': name, 'height': int(gt[0].shape[0]), 'width': int(gt[0].shape[1]),
                      'truth': [rle_ids(g) for g in gt], 'predicted': [rle_ids(p) for p in pr]} for name, gt, pr in seqs]
        jm, fm = float(np.mean(m['J']['M'])), float(np.mean(m['F']['M']))
        summary = {'jMean': jm, 'jRecall': float(np.mean(m['J']['R'])), 'jDecay': float(np.mean(m['J']['D'])),
                   'fMean': fm, 'fRecall': float(np.mean(m['F']['R'])), 'fDecay': float(np.mean(m['F']['D'])), 'jAndFMean': (jm + fm) / 2}

    doc = {
        'source': 'davisvideochallenge/davis2017-evaluation @ ac7c43f (db_eval_iou, db_eval_boundary, DAVISEvaluation semi-supervised)',
        'generator': 'tools/metric-references/davis_reference.py',
        'encoding': 'binary masks: alternating run lengths, row-major, starting with 0s; id masks: [value, length, ...]',
        'frames': frames,
        'sequences': sequences,
        'objects': objects,
        'summary': summary,
    }
    with open(OUT, 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
    print(f'wrote {OUT}: {len(frames)} frame cases, {len(objects)} objects, J&F-Mean {summary["jAndFMean"]:.6f}')


if __name__ == '__main__':
    main()
