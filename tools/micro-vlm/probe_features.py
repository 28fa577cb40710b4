"""Is an answer linearly readable from the vision features at the marker patch?

    /usr/bin/python3 tools/micro-vlm/probe_features.py CHECKPOINT LABEL [--letters]

For each point task (shape, style, colour at the marker): a softmax probe (standardised inputs,
Adam, 300 full-batch steps) on the feature-layer state of the marker's patch, and on it
concatenated with the mean of its 3x3 neighbourhood; 3000 corpus train items, tested on the 500
test items. Separates "the tower does not encode it" from "the LLM does not use it".
--letters: instead, which letter (a-d) a referring scene's marker is, at each lettered marker's
patch (1500 train scenes -> 6000 markers; tested on the 500 test scenes), from the feature-layer
state and from the projector's output (the `image_features` the LLM reads).
"""
import os, sys
import numpy as np
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus import load_task, marker_points
from processor import preprocess
import checkpoint
torch.set_num_threads(2); torch.manual_seed(0)
corpus = os.environ.get('CORPUS', '.cache/world-train')
def feature_layer(m, items):
    """Feature-layer states (CLS dropped) of the items' first images, in chunks of 256."""
    out = []
    for s in range(0, len(items), 256):
        px = torch.from_numpy(preprocess(np.concatenate([np.asarray(it.images) for it in items[s:s+256]])))
        with torch.no_grad():
            st, _ = m.vision_states(px, all_layers=False)
        out.append(st[m.feature_layer_index()][:, 1:])
    return torch.cat(out)
def letter_feats(f, items):
    x, y = [], []
    for b, it in enumerate(items):
        for (_, name), (_, px, py) in marker_points(it).items():
            x.append(f[b, (py // 8) * 8 + px // 8].numpy()); y.append('abcd'.index(name))
    return np.stack(x), y
def letter_report(m, label):
    items = load_task(corpus, 'referring')
    tr = [it for it in items if it.split == 'train'][:1500]; te = [it for it in items if it.split == 'test']
    ftr, fte = feature_layer(m, tr), feature_layer(m, te)
    with torch.no_grad():
        stages = {'feature layer': (ftr, fte), 'image_features': (m.multi_modal_projector(ftr), m.multi_modal_projector(fte))}
    for stage, (a, b) in stages.items():
        (xtr, ytr), (xte, yte) = letter_feats(a, tr), letter_feats(b, te)
        print(label, 'referring letter at marker patch,', stage, round(probe(xtr, ytr, xte, yte, 4), 3), f'({len(ytr)} train / {len(yte)} test markers)', flush=True)
def marker_feats(m, items):
    out = []
    for s in range(0, len(items), 256):
        ch = items[s:s+256]
        px = torch.from_numpy(preprocess(np.concatenate([np.asarray(it.images) for it in ch])))
        with torch.no_grad():
            st, _ = m.vision_states(px, all_layers=False)
        f = st[m.feature_layer_index()][:, 1:]
        for b, it in enumerate(ch):
            p = [l for l in it.labels if l['kind'] == 'point'][0]['at']
            k = (int(p[1]) // 8) * 8 + int(p[0]) // 8
            nb = [k + d for d in (-9, -8, -7, -1, 0, 1, 7, 8, 9) if 0 <= k + d < 64]
            out.append(torch.cat([f[b, k], f[b, nb].mean(0)]).numpy())
    return np.stack(out)
def probe(xtr, ytr, xte, yte, classes):
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr = torch.tensor((xtr - mu) / sd, dtype=torch.float32); xte = torch.tensor((xte - mu) / sd, dtype=torch.float32)
    lin = torch.nn.Linear(xtr.shape[1], classes); opt = torch.optim.Adam(lin.parameters(), 1e-2, weight_decay=1e-4)
    ytr_t = torch.tensor(ytr)
    for _ in range(300):
        opt.zero_grad(); torch.nn.functional.cross_entropy(lin(xtr), ytr_t).backward(); opt.step()
    return float((lin(xte).argmax(1).numpy() == np.array(yte)).mean())
def report(m, label):
    for task in ['shape-at-point', 'style', 'colour-at-point']:
        items = load_task(corpus, task)
        tr = [it for it in items if it.split == 'train'][:3000]; te = [it for it in items if it.split == 'test']
        xtr, xte = marker_feats(m, tr), marker_feats(m, te)
        d = xtr.shape[1] // 2
        ytr = [it.answer_index for it in tr]; yte = [it.answer_index for it in te]; n = len(tr[0].choices)
        print(label, task, 'marker patch', round(probe(xtr[:, :d], ytr, xte[:, :d], yte, n), 3), 'patch+3x3 mean', round(probe(xtr, ytr, xte, yte, n), 3), flush=True)
if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if a != '--letters']
    (letter_report if '--letters' in sys.argv else report)(checkpoint.load(args[0])[0], args[1] if len(args) > 1 else args[0])
