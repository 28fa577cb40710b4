"""Diagnostic: can micro-llava's LLM learn a task from *perfect* patch features?

    /usr/bin/python3 tools/micro-vlm/oracle_llm.py --task relation --minutes 3 [--device cuda]

Replaces the vision tower + projector with ground truth per patch (the colour and shape of the
object covering most of it, the marker drawn there, its column and row, all one-hot) through a
small trainable MLP, and trains a fresh LLM of the shipped size on the task's chats alone. If the
task stays at chance here, the obstacle is the LLM's optimisation, not the vision features
(tools/micro-vlm/README.md, "Session 12"). Prints test accuracy of the task's own single question.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checkpoint  # noqa: E402
from corpus import load_task  # noqa: E402
from data import COLOURS, MARKERS, SHAPES, centre_names  # noqa: E402
from model import MicroLlava  # noqa: E402
from train import lr_at  # noqa: E402
from turns import collate_hop_grounds, collate_named, collate_turns, make_turns_example, parse_relation_stages, stage_at, uneven_spread  # noqa: E402

GRID = 8
WIDTH = (len(COLOURS) + 1) + (len(SHAPES) + 1) + GRID + GRID + (len(MARKERS) + 1)
CENTRE_WIDTH = (len(COLOURS) + 1) + (len(SHAPES) + 1)  # --centre-names: the centre's object's colour and shape


def oracle_features(targets: np.ndarray, scalar_position: bool = False) -> np.ndarray:
    """[64, WIDTH] one-hot ground truth per patch, from an image's dense targets
    (data.patch_targets: the majority object's colour and shape, the marker drawn there) plus the
    patch's column and row; scalar_position: the column and row as two numbers in [-1, 1] as well
    ([64, WIDTH + 2]), so "left of" is a subtraction away rather than a comparison of two one-hots."""
    eye = lambda n, col: np.eye(n, dtype=np.float32)[targets[:, col].astype(int)]  # noqa: E731
    grid = np.arange(GRID * GRID)
    parts = [eye(len(COLOURS) + 1, 0), eye(len(SHAPES) + 1, 1), np.eye(GRID, dtype=np.float32)[grid % GRID],
             np.eye(GRID, dtype=np.float32)[grid // GRID], eye(len(MARKERS) + 1, 3)]
    if scalar_position:
        parts.append(np.stack([grid % GRID, grid // GRID], 1).astype(np.float32) / (GRID - 1) * 2 - 1)
    return np.concatenate(parts, 1)


def question_first(e, tok):
    """The first turn's question moved in front of its image (a text prefix: every image token can
    then see the question); answer positions do not move."""
    img = tok.vocab["<image>"]
    i0 = e.ids.index(img)
    i1 = i0 + e.ids.count(img)
    q_end = e.ids.index(tok.vocab["ASSISTANT"], i1)
    e.ids = e.ids[:i0] + e.ids[i1:q_end] + e.ids[i0:i1] + e.ids[q_end:]
    return e


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=".cache/world-train")
    ap.add_argument("--task", required=True)
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--max-turns", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lookups", action="store_true", help="one-hop lookup turns in the chats (turns.lookup_turns)")
    ap.add_argument("--scalar-position", action="store_true", help="also give each patch's column and row as numbers")
    ap.add_argument("--question-first", action="store_true", help="put each chat's first question before its image")
    ap.add_argument("--feature-scale", type=float, default=1.0,
                    help="multiply the patch features (the MLP's initial output is ~0.05 in norm, text embeddings ~0.2)")
    ap.add_argument("--relation-stages", default="", metavar="STEP=REL,...;...",
                    help="relation curriculum, e.g. \"400=left of;900=left of,right of\" (turns.parse_relation_stages)")
    ap.add_argument("--centre-names", action="store_true",
                    help="also give, at each object's centre patch, that object's colour and shape (data.centre_names), even where another object covers it")
    ap.add_argument("--hop-attend", type=float, default=0.0,
                    help="count: weight of layer 1 head 2 spreading its attention evenly over the counted centres and <s> (train_turns.py --hop-attend)")
    ap.add_argument("--name-aux", type=float, default=0.0,
                    help="relation: weight of regressing each named object's centre (x, y) after LLM layer 1 at its shape word")
    a = ap.parse_args()
    assert not (a.hop_attend and a.name_aux), "--hop-attend and --name-aux are not combined here"
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    dev = torch.device(a.device)
    shipped, tok, _ = checkpoint.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "micro-llava.safetensors"))
    m = MicroLlava(shipped.c).to(dev)  # fresh weights, shipped sizes
    items = load_task(a.corpus, a.task)
    named = a.name_aux > 0
    train = [make_turns_example(it, tok, rng, a.max_turns, grounded=True, lookups=a.lookups, name_positions=named, hop_grounds=a.hop_attend > 0)
             for it in items if it.split == "train"]
    stages = parse_relation_stages(a.relation_stages)
    staged = [[e for e in (make_turns_example(it, tok, rng, a.max_turns, grounded=True, lookups=a.lookups, name_positions=named, relations=rels)
                           for it in items if it.split == "train") if e is not None] for _, rels in stages]
    test = [make_turns_example(it, tok, rng, 1) for it in items if it.split == "test"]  # the task's own question only
    if a.question_first:
        train = [question_first(e, tok) for e in train]
        test = [question_first(e, tok) for e in test]
    def features(e):
        f = oracle_features(e.aux[0], a.scalar_position)
        if a.centre_names:
            names = centre_names(e.item.meta.get("objects", []))
            f = np.concatenate([f, np.eye(len(COLOURS) + 1, dtype=np.float32)[names[:, 0]], np.eye(len(SHAPES) + 1, dtype=np.float32)[names[:, 1]]], 1)
        return torch.from_numpy(f)

    feats = {id(e.item): features(e) for e in train + sum(staged, []) + test}
    proj = torch.nn.Sequential(torch.nn.Linear(WIDTH + 2 * a.scalar_position + CENTRE_WIDTH * a.centre_names, 128), torch.nn.GELU(), torch.nn.Linear(128, m.c.text_hidden)).to(dev)
    params = list(m.language_model.parameters()) + list(m.lm_head.parameters()) + list(proj.parameters())
    if named:  # made only when asked: it draws from torch's RNG
        name_head = torch.nn.Linear(m.c.text_hidden, 2).to(dev)
        params += list(name_head.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.98), weight_decay=0.05)

    def forward(batch):
        ids, _, tpos, tids, _ = (t.to(dev) if t is not None else None for t in collate_turns(batch, m.c.pad_token_id, with_pixels=False))
        x = proj(torch.stack([feats[id(e.item)] for e in batch]).to(dev)) * a.feature_scale
        if a.hop_attend and torch.is_grad_enabled():  # training batches; accuracy() runs without grad
            logits, probs = m.logits_at(ids, x, tpos, want_probs=True)
            gi, gmask, even = (t.to(dev) for t in collate_hop_grounds(batch, ids.shape[1]))
            rows = probs[1][gi[:, 0], gi[:, 2], gi[:, 1]]
            looked = uneven_spread(rows, gmask)[even].mean() if bool(even.any()) else logits.new_zeros(())
            return logits, tids, looked
        if not named:
            return m.logits_at(ids, x, tpos), tids
        logits, states = m.logits_at(ids, x, tpos, want_states=True)
        name_loss = torch.zeros((), device=dev)
        where = collate_named(batch, dev)
        if where is not None:
            at, centres = where
            # states[2] as is: a fresh LLM stays near unit scale (train_turns.py RMS-normalises, for trained ones)
            name_loss = F.mse_loss(name_head(states[2][at[:, 0], at[:, 1]]), centres)
        return logits, tids, name_loss

    @torch.no_grad()
    def accuracy():
        hits = 0
        for s in range(0, len(test), 256):
            logits, tids = forward(test[s : s + 256])[:2]
            hits += (logits[0::2].argmax(-1) == tids[0::2]).sum().item()  # targets alternate answer, </s>
        return hits / len(test)

    t0, step, steps, order = time.time(), 0, 10**9, np.zeros(0, np.int64)
    while step < steps:
        if step == 50:  # fix the cosine schedule from the measured speed
            steps = max(100, int(a.minutes * 60 / ((time.time() - t0) / 50)))
            print(f"{steps} steps", flush=True)
        while (step + 1) * a.batch > len(order):
            order = np.concatenate([order, rng.permutation(len(train))])
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, a.lr, 60)  # steps is fixed at step 50, inside the 60 warm-up steps
        k = stage_at(stages, step)
        if k is not None:
            out = forward([staged[k][i] for i in rng.integers(len(staged[k]), size=a.batch)])
        else:
            out = forward([train[i] for i in order[step * a.batch : (step + 1) * a.batch]])
        logits, tids = out[:2]
        loss = F.cross_entropy(logits, tids) + (a.name_aux * out[2] if named else 0) + (a.hop_attend * out[2] if a.hop_attend else 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 250 == 0 or step + 1 == steps:
            answers = tids != tok.vocab["</s>"]
            fit = (logits.argmax(-1) == tids)[answers].float().mean().item()  # every answer turn of this training batch
            print(f"step {step} loss {loss.item():.3f}" + (f" name {out[2].item():.3f}" if named else "") + (f" look {out[2].item():.3f}" if a.hop_attend else "") + f" batch-answers {fit:.3f} test {accuracy():.3f} {time.time() - t0:.0f}s", flush=True)
        step += 1


if __name__ == "__main__":
    main()
