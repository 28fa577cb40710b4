"""Answer accuracy, blind baseline and linear/cosine readouts of the vision features.

Answer scoring: the logits of the first answer token (every answer is one word) at the last
prompt position, restricted to the task's choice set; the argmax is the model's answer.
Blind: the same questions with every image replaced by an all-black image.
"""
from collections import defaultdict
from typing import Dict, List

import numpy as np
import torch

from corpus import Item
from processor import blank_image, preprocess
from tokenizer import WordTokenizer, render_prompt


@torch.no_grad()
def choice_logits(m, tok: WordTokenizer, items: List[Item], blind=False, batch=64) -> List[np.ndarray]:
    out, dev = [], next(m.parameters()).device
    for s in range(0, len(items), batch):
        chunk = items[s : s + batch]
        seqs = [tok.encode(tok.expand_images(render_prompt(it.prompt, len(it.images)), m.c.num_patches)) for it in chunk]
        L = max(map(len, seqs))
        ids = torch.full((len(chunk), L), m.c.pad_token_id, dtype=torch.long)
        for b, q in enumerate(seqs):
            ids[b, : len(q)] = torch.tensor(q)
        imgs = np.concatenate([np.asarray(it.images) for it in chunk])
        if blind:
            imgs = np.broadcast_to(blank_image(), imgs.shape)
        logits, _, _, _, _ = m(ids.to(dev), torch.from_numpy(preprocess(imgs)).to(dev))
        for b, (it, q) in enumerate(zip(chunk, seqs)):
            out.append(logits[b, len(q) - 1, [tok.vocab[ch] for ch in it.choices]].cpu().numpy())
    return out


def choice_accuracy(m, tok, items: List[Item], blind=False) -> Dict[str, float]:
    scores = choice_logits(m, tok, items, blind)
    hit = defaultdict(list)
    for it, sc in zip(items, scores):
        hit[it.task].append(int(np.argmax(sc)) == it.answer_index)
    return {t: round(float(np.mean(v)), 4) for t, v in hit.items()}


# ----------------------------------------------------------------------------- readouts


@torch.no_grad()
def patch_features(m, images: np.ndarray, batch=128) -> np.ndarray:
    """image_features (the vision_encoder.onnx output, what the LLM receives): [n, 64, text_hidden]."""
    out, dev = [], next(m.parameters()).device
    for s in range(0, len(images), batch):
        out.append(m.image_features(torch.from_numpy(preprocess(np.asarray(images[s : s + batch]))).to(dev)).cpu().numpy())
    return np.concatenate(out)


def patch_index(x: int, y: int, patch=8, grid=8) -> int:
    return (y // patch) * grid + x // patch


def points(item: Item) -> Dict[tuple, tuple]:
    return {(lab["image"], lab["name"]): (int(lab["at"][0]), int(lab["at"][1]))
            for lab in item.labels if lab["kind"] == "point" and "name" in lab}


def logistic_regression(x: np.ndarray, y: np.ndarray, l2=1e-2, steps=300) -> np.ndarray:
    """Binary logistic regression by full-batch LBFGS (torch), weights incl. bias."""
    xt = torch.from_numpy(np.concatenate([x, np.ones((len(x), 1), np.float32)], 1))
    yt = torch.from_numpy(y.astype(np.float32))
    w = torch.zeros(xt.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w, yt) + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy()


def depth_readout(m, train: List[Item], test: List[Item]) -> float:
    """Logistic regression on feat(a) - feat(b) at the two marked patches -> is a closer?"""
    def xy(items):
        feats = patch_features(m, np.stack([np.asarray(it.images[0]) for it in items]))
        x, y = [], []
        for f, it in zip(feats, items):
            p = points(it)
            x.append(f[patch_index(*p[(0, "a")])] - f[patch_index(*p[(0, "b")])])
            y.append(it.answer == "a")
        return np.stack(x), np.array(y)

    xtr, ytr = xy(train)
    xte, yte = xy(test)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    w = logistic_regression((xtr - mu) / sd, ytr)
    pred = np.concatenate([(xte - mu) / sd, np.ones((len(xte), 1), np.float32)], 1) @ w > 0
    return float(np.mean(pred == yte))


def correspondence_readout(m, test: List[Item], train: List[Item] = None) -> Dict[str, float]:
    """Cosine similarity between the reference patch (first image, `point` marker) and the four
    candidate patches (last image, letters a-d); the most similar is the readout's answer.
    `centred`: the mean patch feature of each marker type (from `train`) is subtracted first,
    so the drawn marker's own appearance does not dominate the comparison."""
    last = lambda it: len(it.images) - 1  # noqa: E731

    def gather(items):
        f0 = patch_features(m, np.stack([np.asarray(it.images[0]) for it in items]))
        fl = patch_features(m, np.stack([np.asarray(it.images[last(it)]) for it in items]))
        ref, cands = [], []
        for a, b, it in zip(f0, fl, items):
            p = points(it)
            ref.append(a[patch_index(*p[(0, "point")])])
            cands.append(np.stack([b[patch_index(*p[(last(it), k)])] for k in "abcd"]))
        return np.stack(ref), np.stack(cands)

    ref, cands = gather(test)
    answers = np.array(["abcd".index(it.answer) for it in test])
    cos = lambda r, c: (c @ r) / (np.linalg.norm(c, axis=-1) * np.linalg.norm(r) + 1e-9)  # noqa: E731
    out = {"cosine": float(np.mean([np.argmax(cos(r, c)) == a for r, c, a in zip(ref, cands, answers)]))}
    if train:
        tr_ref, tr_c = gather(train)
        mu_ref, mu_c = tr_ref.mean(0), tr_c.mean(0)  # [d], [4, d]: per-letter mean
        out["cosine_centred"] = float(np.mean([np.argmax(cos(r - mu_ref, c - mu_c)) == a for r, c, a in zip(ref, cands, answers)]))
    return out
