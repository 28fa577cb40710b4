"""EXPERIMENTAL recipe (not what built the shipped weights — that is train.py, run by build.sh):

    /usr/bin/python3 tools/micro-vlm/train_two_stage.py --out /tmp/two-stage.safetensors [--tune-vision 0.3]

Two stages, as LLaVA-1.5 is built on a pretrained CLIP tower:
1. Vision pretraining (stand-in for CLIP): the vision tower alone, long and cheap, on the dense
   per-patch auxiliary objective (data.py, plus an object-centre target).
2. Instruction tuning: projector + LLM on the answer loss, the tower frozen (features cached
   once, so a step costs only the projector and LLM) or tuned at --tune-vision × lr.
Findings so far (tools/micro-vlm/README.md, "Experiments"): 2000 vision steps make shape and
style linearly readable at the marker patch (63% / 76%, vs 30% / 61% in the shipped tower),
yet with the tower frozen the LLM never used them in 3500 steps (answers at chance).
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checkpoint  # noqa: E402
from config import MicroConfig  # noqa: E402
from corpus import vocabulary  # noqa: E402
from data import collate  # noqa: E402
from dense import dense_heads  # noqa: E402
from tower_stage import train_tower  # noqa: E402
from train import HELD_OUT_TASKS, TRAINED_TASKS, lr_at, training_set  # noqa: E402
from processor import preprocess  # noqa: E402
from evaluate import choice_accuracy  # noqa: E402
from model import MicroLlava  # noqa: E402
from tokenizer import WordTokenizer  # noqa: E402

@torch.no_grad()
def cache_features(m: MicroLlava, train: list, batch: int = 256) -> torch.Tensor:
    """Feature-layer states (CLS dropped) of every training image: [n_images, 64, vision_hidden]."""
    m.eval()
    out = []
    for s in range(0, len(train), batch):
        px = torch.from_numpy(preprocess(np.concatenate([np.asarray(e.item.images) for e in train[s : s + batch]])))
        states, _ = m.vision_states(px, all_layers=False)
        out.append(states[m.feature_layer_index()][:, 1:].clone())
    return torch.cat(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=".cache/world-train")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--train-per-task", type=int, default=8000)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--vision-steps", type=int, default=2000, help="stage 1: vision tower alone on the auxiliary objective")
    ap.add_argument("--vision-batch", type=int, default=128)
    ap.add_argument("--vision-lr", type=float, default=2e-3)
    ap.add_argument("--tune-vision", type=float, default=0.0,
                    help="stage 2 also trains the vision tower at this fraction of --lr (0 = frozen, features cached)")
    ap.add_argument("--init", help="start from this checkpoint's weights (e.g. --vision-steps 0 to reuse its tower)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    tok = WordTokenizer(vocabulary(a.corpus))
    c = MicroConfig(vocab_size=len(tok))
    m = MicroLlava(c)
    aux = dense_heads(c.vision_hidden)
    if a.init:
        m.load_state_dict(checkpoint.load(a.init)[0].state_dict())
    t0 = time.time()
    train, monitor = training_set(a.corpus, tok, c.num_patches, a.train_per_task, with_centre=True)
    assert all(len(e.item.images) == 1 for e in train), "the trained tasks have one image per item"
    print(f"{len(train)} training examples from {TRAINED_TASKS} in {time.time() - t0:.0f}s", flush=True)
    log = []

    # Stage 1: vision pretraining.
    t0 = time.time()
    train_tower(m, aux, train, a.vision_steps, a.vision_batch, a.vision_lr, rng, log=log)
    vision_seconds = time.time() - t0

    # Stage 2: projector + LLM; the tower frozen (features cached) or tuned at a lower rate.
    t0 = time.time()
    tune = a.tune_vision > 0
    if not tune:
        for p in m.vision_tower.parameters():
            p.requires_grad_(False)
        feats_cache = cache_features(m, train)
        print(f"cached {tuple(feats_cache.shape)} feature-layer states in {time.time() - t0:.0f}s", flush=True)
    params = list(m.multi_modal_projector.parameters()) + list(m.language_model.parameters()) + list(m.lm_head.parameters())
    vision = list(m.vision_tower.parameters()) if tune else []
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.05, "scale": 1.0},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0, "scale": 1.0}]
    if tune:
        groups.append({"params": vision, "weight_decay": 0.05, "scale": a.tune_vision})
    params += vision
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.98))
    order = np.concatenate([rng.permutation(len(train)) for _ in range(math.ceil(a.steps * a.batch / len(train)) + 1)])
    for step in range(a.steps):
        m.train()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr, 100) * g["scale"]
        idx = order[step * a.batch : (step + 1) * a.batch]
        ids, px, tpos, tids, _ = collate([train[i] for i in idx], c.eos_token_id, c.pad_token_id, with_pixels=tune)
        if tune:
            vstates, _ = m.vision_states(px, all_layers=False)
            feats = m.multi_modal_projector(vstates[m.feature_layer_index()][:, 1:])
        else:
            feats = m.multi_modal_projector(feats_cache[torch.from_numpy(idx)])
        qa = F.cross_entropy(m.logits_at(ids, feats, tpos), tids)
        opt.zero_grad(set_to_none=True)
        qa.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 50 == 0:
            print(f"step {step} qa {qa.item():.3f} lr {opt.param_groups[0]['lr']:.2e} {time.time() - t0:.0f}s", flush=True)
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            m.eval()
            acc = choice_accuracy(m, tok, monitor)
            log.append({"stage": "llm", "step": step + 1, "seconds": round(time.time() - t0), "qa_loss": round(qa.item(), 4), "monitor": acc})
            print("monitor", json.dumps(acc), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    info = {"seed": a.seed, "steps": a.steps, "vision_steps": a.vision_steps, "vision_batch": a.vision_batch, "vision_lr": a.vision_lr,
            "batch": a.batch, "lr": a.lr, "train_per_task": a.train_per_task, "tune_vision": a.tune_vision, "recipe": "two-stage",
            "trained_tasks": TRAINED_TASKS, "held_out_tasks": HELD_OUT_TASKS,
            "vision_seconds": round(vision_seconds), "train_seconds": round(vision_seconds + time.time() - t0), "log": log}
    checkpoint.save(a.out, m.eval(), tok, info)
    print(f"saved {a.out} after {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
