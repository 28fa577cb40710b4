"""Trains micro-llava from scratch on the world corpus's question-answer pairs.

    /usr/bin/python3 tools/micro-vlm/train.py --corpus .cache/world-train --out tools/micro-vlm/weights/micro-llava.safetensors

Only the TRAINED_TASKS are used; relative-depth, correspondence and temporal-correspondence are
held out entirely (no questions, no images), so evaluate.py can show visual information
that the encoder has but the answers do not use.

Loss = answer loss (answer word + </s>) + AUX_WEIGHT * per-patch auxiliary loss on the vision
tower (data.py): linear heads on the feature layer the LLM reads (hidden_states[-2]) and on
the last layer (like a CLIP tower's own pretraining objective, which is what the LLM's
"penultimate layer" convention assumes exists). The heads are not part of the shipped model.
Deterministic for a seed: fixed shuffles, single process, fixed thread count.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checkpoint  # noqa: E402
from config import MicroConfig  # noqa: E402
from corpus import load_task, vocabulary  # noqa: E402
from data import COLOURS, MARKERS, SHAPES, STYLES, collate, make_example  # noqa: E402
from evaluate import choice_accuracy  # noqa: E402
from model import MicroLlava  # noqa: E402
from tokenizer import WordTokenizer  # noqa: E402

TRAINED_TASKS = ["colour-at-point", "shape-at-point", "style", "count", "relation", "referring"]
HELD_OUT_TASKS = ["relative-depth", "correspondence", "temporal-correspondence"]
AUX_WEIGHT = 0.5
AUX_SIZES = [len(COLOURS) + 1, len(SHAPES) + 1, len(STYLES) + 1, len(MARKERS) + 1, 3]  # classes..., regression (z, dx, dy)


class AuxHeads(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(d, sum(AUX_SIZES)) for _ in range(2)])

    def loss(self, states, targets):
        """states: two [N, 65, d] tensors; targets: [N, 64, 7]."""
        total = 0.0
        for head, h in zip(self.heads, states):
            out = head(h[:, 1:])
            o = 0
            for j, size in enumerate(AUX_SIZES[:4]):
                total = total + F.cross_entropy(out[..., o : o + size].reshape(-1, size), targets[..., j].long().reshape(-1))
                o += size
            reg, t = out[..., o:], targets[..., 4:]
            ok = ~torch.isnan(t)
            total = total + 4 * F.mse_loss(reg[ok], t[ok])
        return total / len(self.heads)


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup))))


def training_set(corpus: str, tok, tokens_per_image: int, per_task: int, **example_options):
    """Training examples of the TRAINED_TASKS (first `per_task` of each) and 64 test items per task to monitor."""
    train, monitor = [], []
    for task in TRAINED_TASKS:
        items = load_task(corpus, task)
        tr = [it for it in items if it.split == "train"][:per_task]
        train += [make_example(it, tok, tokens_per_image, **example_options) for it in tr]
        monitor += [it for it in items if it.split == "test"][:64]
    return train, monitor


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=".cache/world-train")
    ap.add_argument("--out", default="tools/micro-vlm/weights/micro-llava.safetensors")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--train-per-task", type=int, default=8000)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--vision-steps", type=int, default=300,
                    help="stage 1: auxiliary objective only, vision tower alone (cheap), before joint training")
    ap.add_argument("--vision-batch", type=int, default=128)
    ap.add_argument("--init", help="continue from this checkpoint's weights (use with --vision-steps 0)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    tok = WordTokenizer(vocabulary(a.corpus))
    c = MicroConfig(vocab_size=len(tok))
    m = MicroLlava(c)
    aux = AuxHeads(c.vision_hidden)
    if a.init:
        m.load_state_dict(checkpoint.load(a.init)[0].state_dict())
    t0 = time.time()
    train, monitor = training_set(a.corpus, tok, c.num_patches, a.train_per_task)
    print(f"{len(train)} training examples from {TRAINED_TASKS} in {time.time() - t0:.0f}s", flush=True)

    t0 = time.time()
    params = list(m.parameters()) + list(aux.parameters())
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.98))
    # Stage 1 (like the CLIP pretraining a LLaVA tower starts from): vision tower + aux heads only.
    # Without it the LLM sits at the answer prior for hundreds of steps while features form.
    vparams = list(m.vision_tower.parameters()) + list(aux.parameters())
    vopt = torch.optim.AdamW(vparams, lr=a.lr, betas=(0.9, 0.98), weight_decay=0.05)
    vorder = rng.permutation(len(train))
    for step in range(a.vision_steps):
        for g in vopt.param_groups:
            g["lr"] = lr_at(step, a.vision_steps, a.lr, 30)
        idx = vorder[(np.arange(a.vision_batch) + step * a.vision_batch) % len(train)]
        _, px, _, _, aux_t = collate([train[i] for i in idx], c.eos_token_id, c.pad_token_id)
        vstates, _ = m.vision_states(px)
        al = aux.loss([vstates[m.feature_layer_index()], vstates[-1]], aux_t)
        vopt.zero_grad(set_to_none=True)
        al.backward()
        torch.nn.utils.clip_grad_norm_(vparams, 1.0)
        vopt.step()
        if step % 25 == 0:
            print(f"vision step {step} aux {al.item():.3f} {time.time() - t0:.0f}s", flush=True)

    order = np.concatenate([rng.permutation(len(train)) for _ in range(math.ceil(a.steps * a.batch / len(train)) + 1)])
    log = []
    for step in range(a.steps):
        m.train()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr, 60)
        batch = [train[i] for i in order[step * a.batch : (step + 1) * a.batch]]
        ids, px, tpos, tids, aux_t = collate(batch, c.eos_token_id, c.pad_token_id)
        vstates, _ = m.vision_states(px)
        feats = m.multi_modal_projector(vstates[m.feature_layer_index()][:, 1:])
        qa = F.cross_entropy(m.logits_at(ids, feats, tpos), tids)
        al = aux.loss([vstates[m.feature_layer_index()], vstates[-1]], aux_t)
        loss = qa + AUX_WEIGHT * al
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 25 == 0:
            print(f"step {step} qa {qa.item():.3f} aux {al.item():.3f} lr {opt.param_groups[0]['lr']:.2e} {time.time() - t0:.0f}s", flush=True)
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            m.eval()
            acc = choice_accuracy(m, tok, monitor)
            log.append({"step": step + 1, "seconds": round(time.time() - t0), "qa_loss": qa.item(), "aux_loss": al.item(), "monitor": acc})
            print("monitor", json.dumps(acc), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    info = {"seed": a.seed, "steps": a.steps, "vision_steps": a.vision_steps, "vision_batch": a.vision_batch, "batch": a.batch, "lr": a.lr, "train_per_task": a.train_per_task,
            "trained_tasks": TRAINED_TASKS, "held_out_tasks": HELD_OUT_TASKS, "aux_weight": AUX_WEIGHT,
            "train_seconds": round(time.time() - t0), "log": log}
    checkpoint.save(a.out, m.eval(), tok, info)
    print(f"saved {a.out} after {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
