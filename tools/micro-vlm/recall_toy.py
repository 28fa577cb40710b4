"""Diagnostic: what lets micro-llava's LLM learn a question-dependent lookup at all?

    /usr/bin/python3 tools/micro-vlm/recall_toy.py --task referring --steps 800 [options]

No images and no corpus: each "image" is 64 tokens of one-hot patch facts (colour, shape, column,
row, marker letter) for K objects on 2x2-patch blocks of the 8x8 grid, with a letter on one patch
of each object. Questions use the shipped vocabulary and chat layout:

    referring: "which marker is on the {colour} {shape} ?"            -> the letter on that object
    relation:  "is the {colour} {shape} {left of|right of} the ... ?"  -> yes / no (block columns)

A fresh LLM of the shipped sizes (`--text-layers`) reads the patch facts through a small MLP, as
`oracle_llm.py` does, and is trained on freshly sampled questions (no train/test overlap by
construction); it prints accuracy on 512 fixed questions with `--objects` objects. Each option is
one hypothesis about why relation / referring stay at chance (README, "Session 13"):

    --feature-scale S  multiply the patch features by S (the MLP's initial output is ~0.05 in norm,
                       text embeddings ~0.2; the shipped projector's output is ~170)
    --mix-two P        a share P of training questions shows only 2 objects: a partial answer
                       ("one of the letters present") exists, so copying a letter is learned first
    --column-aux W     weight of a regression of each named object's column, read after LLM layer 1
                       at that object's shape word (an intermediate target for hop one)
"""
import argparse
import dataclasses
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checkpoint  # noqa: E402
from data import COLOURS, SHAPES  # noqa: E402
from model import MicroLlava  # noqa: E402
from train import lr_at  # noqa: E402

LETTERS = ["a", "b", "c", "d"]
GRID, BLOCKS = 8, 4  # 8x8 patches; objects sit on a 4x4 grid of 2x2-patch blocks
# feature columns: colour (0 = background), shape (0 = background), column, row, marker (0 = none)
C0, S0, X0, Y0, M0 = 0, 8, 13, 21, 29
WIDTH = M0 + 1 + len(LETTERS)
PREFIX = ["<s>", "USER", ":"]


@dataclasses.dataclass
class Question:
    ids: list
    features: np.ndarray  # [64, WIDTH]
    answer: str
    columns: list  # (sequence position of a named object's shape word, that object's block column in [-1, 1])


def sample_question(rng: np.random.Generator, task: str, objects: int, vocab: dict, relations=("left of", "right of")) -> Question:
    f = np.zeros((GRID * GRID, WIDTH), np.float32)
    cells = np.arange(GRID * GRID)
    f[cells, C0] = f[cells, S0] = f[cells, M0] = 1
    f[cells, X0 + cells % GRID] = f[cells, Y0 + cells // GRID] = 1
    names = set()
    while len(names) < objects:  # distinct (colour, shape) pairs; colours or shapes may repeat
        names.add((int(rng.integers(len(COLOURS))), int(rng.integers(len(SHAPES)))))
    names = sorted(names)
    blocks = rng.permutation(BLOCKS * BLOCKS)[:objects]
    letters = rng.permutation(len(LETTERS))[:objects]
    for (ci, si), block, li in zip(names, blocks, letters):
        by, bx = divmod(int(block), BLOCKS)
        patches = [(2 * by + dy) * GRID + 2 * bx + dx for dy in range(2) for dx in range(2)]
        f[patches, C0], f[patches, C0 + 1 + ci] = 0, 1
        f[patches, S0], f[patches, S0 + 1 + si] = 0, 1
        mark = patches[rng.integers(len(patches))]
        f[mark, M0], f[mark, M0 + 1 + li] = 0, 1
    name = lambda i: f"{COLOURS[names[i][0]]} {SHAPES[names[i][1]]}"  # noqa: E731
    column = lambda i: int(blocks[i]) % BLOCKS  # noqa: E731
    k = int(rng.integers(objects))
    columns = []
    if task == "referring":
        words, answer = f"which marker is on the {name(k)} ?".split(), LETTERS[letters[k]]
        columns = [(len(PREFIX) + GRID * GRID + len(words) - 2, column(k) / 1.5 - 1)]
    else:
        others = [j for j in range(objects) if column(j) != column(k)]
        if not others:
            return sample_question(rng, task, objects, vocab, relations)
        j = others[int(rng.integers(len(others)))]
        rel = relations[int(rng.integers(len(relations)))]
        words = f"is the {name(k)} {rel} the {name(j)} ?".split()
        answer = "yes" if (column(k) < column(j)) == (rel == "left of") else "no"
        start = len(PREFIX) + GRID * GRID
        columns = [(start + 3, column(k) / 1.5 - 1), (start + len(words) - 2, column(j) / 1.5 - 1)]
    ids = [vocab[w] for w in PREFIX] + [vocab["<image>"]] * (GRID * GRID) + [vocab[w] for w in words + ["ASSISTANT", ":"]]
    return Question(ids, f, answer, columns)


def collate(questions, vocab):
    n, s = len(questions), max(len(q.ids) for q in questions)
    ids = torch.zeros(n, s, dtype=torch.long)
    for b, q in enumerate(questions):
        ids[b, : len(q.ids)] = torch.tensor(q.ids)
    last = torch.tensor([[b, len(q.ids) - 1] for b, q in enumerate(questions)])
    answers = torch.tensor([vocab[q.answer] for q in questions])
    cols = [(b, p, v) for b, q in enumerate(questions) for p, v in q.columns]
    return ids, torch.from_numpy(np.stack([q.features for q in questions])), last, answers, cols


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=["referring", "relation"], default="referring")
    ap.add_argument("--objects", type=int, default=4)
    ap.add_argument("--mix-two", type=float, default=0.0)
    ap.add_argument("--feature-scale", type=float, default=1.0)
    ap.add_argument("--column-aux", type=float, default=0.0)
    ap.add_argument("--relations", default="left of,right of", help="relation: the relations asked, comma-separated")
    ap.add_argument("--first-relation-only", type=int, default=0, metavar="STEPS",
                    help="relation: ask only the first of --relations for the first STEPS steps (a curriculum)")
    ap.add_argument("--text-layers", type=int, default=4)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    shipped, tok, _ = checkpoint.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "micro-llava.safetensors"))
    vocab = tok.vocab
    rels = tuple(a.relations.split(","))
    m = MicroLlava(dataclasses.replace(shipped.c, text_layers=a.text_layers))  # fresh weights
    proj = torch.nn.Sequential(torch.nn.Linear(WIDTH, 128), torch.nn.GELU(), torch.nn.Linear(128, m.c.text_hidden))
    column_head = torch.nn.Linear(m.c.text_hidden, 1)
    params = [*m.language_model.parameters(), *m.lm_head.parameters(), *proj.parameters(), *column_head.parameters()]
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.98), weight_decay=0.05)
    test = collate([sample_question(rng, a.task, a.objects, vocab, rels) for _ in range(512)], vocab)

    def forward(ids, feats):
        embeds = m.merge(ids, m.embed(ids), proj(feats) * a.feature_scale)
        pos = torch.arange(ids.shape[1])[None].expand_as(ids)
        hidden, states, _, _ = m.language_model(embeds, torch.ones_like(ids), pos)
        return hidden, states

    t0 = time.time()
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr, 60)
        qs = [sample_question(rng, a.task, 2 if rng.random() < a.mix_two else a.objects, vocab,
                              rels[:1] if step < a.first_relation_only else rels) for _ in range(a.batch)]
        ids, feats, last, answers, cols = collate(qs, vocab)
        hidden, states = forward(ids, feats)
        answer_loss = F.cross_entropy(m.lm_head(hidden[last[:, 0], last[:, 1]]), answers)
        loss = answer_loss
        if a.column_aux and cols:
            b, p, v = (torch.tensor(x) for x in zip(*cols))
            loss = loss + a.column_aux * F.mse_loss(column_head(states[2][b, p]).squeeze(-1), v.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 100 == 0 or step + 1 == a.steps:
            with torch.no_grad():
                hidden, _ = forward(test[0], test[1])
                acc = (m.lm_head(hidden[test[2][:, 0], test[2][:, 1]]).argmax(-1) == test[3]).float().mean().item()
            print(f"step {step} answer-loss {answer_loss.item():.3f} loss {loss.item():.3f} test {acc:.3f} {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
