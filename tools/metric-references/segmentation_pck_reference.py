#!/usr/bin/env python3
"""Reference values for src-shared/metrics/{miou,pck}.ts, computed the way the benchmarks' code does.

    python3 tools/metric-references/segmentation_pck_reference.py   # numpy only

Writes tests/fixtures/metric-references/segmentation-pck.json. Each reference follows a named
public implementation (re-typed here in numpy; the TypeScript under test is written differently):
  - class-wise mIoU: the confusion-matrix method of FCN's `fast_hist`
    (np.bincount(n * truth + pred, minlength=n*n)), ignore pixels dropped, IoU = diag / (rowsum +
    colsum - diag), mIoU = np.nanmean (mmsegmentation `mean_iou` does the same);
  - referring segmentation: per-image IoU averaged (mIoU) and sum(I) / sum(U) (oIoU / cIoU), LAVT;
  - PCK@alpha_bbox: DHPF common/evaluation.py (distance <= alpha * max(bbox w, h), per image
    fraction, then mean = "per image") and GeoAware-SC pck_train.py KPT_RESULT (all keypoints
    pooled = "per keypoint"); threshold unit max(x2 - x1, y2 - y1) of the target box.
"""
import json
import os

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'tests', 'fixtures', 'metric-references', 'segmentation-pck.json')


def fast_hist(a, b, n):
    k = (a >= 0) & (a < n)
    return np.bincount(n * a[k].astype(int) + b[k], minlength=n ** 2).reshape(n, n)


def main():
    rng = np.random.default_rng(7)
    n_classes, ignore = 6, 255
    images = []
    hist = np.zeros((n_classes, n_classes))
    for i in range(5):
        h, w = 12 + i, 17 - i
        truth = rng.integers(0, 4, size=(h, w))  # classes 4, 5 never in the truth
        truth[rng.random((h, w)) < 0.1] = ignore
        pred = truth.copy()
        noise = rng.random((h, w)) < 0.4
        pred[noise] = rng.integers(0, 5, size=int(noise.sum()))  # class 4 predicted but never true; class 5 nowhere
        pred[pred == ignore] = rng.integers(0, 4, size=int((pred == ignore).sum()))
        keep = truth != ignore
        hist += fast_hist(truth[keep].ravel(), pred[keep].ravel(), n_classes)
        images.append({'height': h, 'width': w, 'truth': truth.ravel().tolist(), 'predicted': pred.ravel().tolist()})
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
    miou = {'numClasses': n_classes, 'ignoreIndex': ignore, 'images': images,
            'perClass': [None if np.isnan(v) else float(v) for v in iou], 'mIoU': float(np.nanmean(iou))}

    refs = []
    inter_sum = union_sum = 0
    per = []
    for i in range(6):
        h, w = 10, 14
        truth = np.zeros((h, w), bool)
        y0, x0 = rng.integers(0, 5), rng.integers(0, 7)
        truth[y0:y0 + rng.integers(2, 6), x0:x0 + rng.integers(2, 8)] = True
        pred = truth.copy()
        flip = rng.random((h, w)) < 0.15 * (i % 3)
        pred[flip] = ~pred[flip]
        I, U = int((truth & pred).sum()), int((truth | pred).sum())
        inter_sum += I
        union_sum += U
        per.append(I / U)
        refs.append({'truth': truth.ravel().astype(int).tolist(), 'predicted': pred.ravel().astype(int).tolist()})
    referring = {'images': refs, 'perImage': per, 'meanIoU': float(np.mean(per)), 'cumulativeIoU': inter_sum / union_sum,
                 'precisionAt': [{'threshold': t, 'precision': float(np.mean(np.array(per) > t))} for t in (0.5, 0.6, 0.7, 0.8, 0.9)]}

    pairs = []
    for i in range(8):
        k = int(rng.integers(1, 9))
        trg = rng.uniform(0, 300, size=(k, 2))
        box = [float(trg[:, 0].min() - 5), float(trg[:, 1].min() - 3), float(trg[:, 0].max() + 8), float(trg[:, 1].max() + 2)]
        pred = trg + rng.normal(0, 4 + 5 * i, size=(k, 2))
        vis = rng.random(k) < 0.8
        if i == 3:
            vis[:] = False  # a pair with nothing visible: skipped by both aggregations
        pairs.append({'predicted': pred.tolist(), 'truth': trg.tolist(), 'visible': vis.tolist(), 'targetBox': box})
    pck = []
    for alpha in (0.01, 0.05, 0.1, 0.15):
        per_image, pooled_c, pooled_n = [], 0, 0
        for p in pairs:
            vis = np.array(p['visible'])
            if not vis.any():
                continue
            thr = max(p['targetBox'][2] - p['targetBox'][0], p['targetBox'][3] - p['targetBox'][1])
            d = np.sqrt(((np.array(p['predicted'])[vis] - np.array(p['truth'])[vis]) ** 2).sum(1))
            ok = d <= alpha * thr
            per_image.append(ok.sum() / vis.sum())
            pooled_c += int(ok.sum())
            pooled_n += int(vis.sum())
        pck.append({'alpha': alpha, 'perImage': float(np.mean(per_image)), 'perKeypoint': pooled_c / pooled_n, 'correct': pooled_c, 'visible': pooled_n})

    doc = {'generator': 'tools/metric-references/segmentation_pck_reference.py', 'classIoU': miou, 'referring': referring, 'pck': {'pairs': pairs, 'results': pck}}
    with open(OUT, 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
    print(f'wrote {OUT}: mIoU {miou["mIoU"]:.6f}, referring mIoU {referring["meanIoU"]:.6f} cIoU {referring["cumulativeIoU"]:.6f}, PCK@0.1 {pck[2]}')


if __name__ == '__main__':
    main()
