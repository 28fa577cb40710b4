"""Stage 0 of the shipped recipe: the vision tower alone on the dense per-patch objective.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/micro-vlm/pretrain_vision.py --out T.safetensors

A stand-in for the CLIP pretraining a LLaVA tower starts from: linear heads on the feature layer
and the last layer predict each patch's object colour / shape / pattern, marker, object centre,
depth and offset from the centre (data.patch_targets, with_centre). The marker patch's attribute
terms weigh `--marker-weight` + 1 times a plain patch's (the LLM reads point answers from that
patch). Saves a whole checkpoint (the LLM untrained) for `train_turns.py --init`, then prints
linear-probe accuracy of shape / pattern / colour at the marker patch (probe_features.py).
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checkpoint  # noqa: E402
import probe_features  # noqa: E402  (imported before seeding: it seeds torch at import)
from dense import dense_heads  # noqa: E402
from config import MicroConfig  # noqa: E402
from corpus import vocabulary  # noqa: E402
from model import MicroLlava  # noqa: E402
from tokenizer import WordTokenizer  # noqa: E402
from tower_stage import train_tower  # noqa: E402
from train import training_set  # noqa: E402

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=".cache/world-train")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--marker-weight", type=float, default=5.0)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--per-task", type=int, default=8000)
    ap.add_argument("--no-probe", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tok = WordTokenizer(vocabulary(a.corpus))
    c = MicroConfig(vocab_size=len(tok), vision_hidden=a.hidden, vision_layers=a.layers, vision_intermediate=4 * a.hidden)
    m = MicroLlava(c)
    heads = dense_heads(a.hidden)
    train, _ = training_set(a.corpus, tok, c.num_patches, a.per_task, with_centre=True)
    print(len(train), "examples", flush=True)
    t0 = time.time()
    train_tower(m, heads, train, a.steps, a.batch, a.lr, rng, a.marker_weight)
    checkpoint.save(a.out, m.eval(), tok, {"recipe": "pretrain_vision.py", "vision_steps": a.steps, "vision_batch": a.batch, "vision_lr": a.lr,
                                          "vision_hidden": a.hidden, "marker_weight": a.marker_weight, "train_seconds": round(time.time() - t0)})
    print("trained in", round(time.time() - t0), "s", flush=True)
    if not a.no_probe:
        probe_features.report(m, os.path.basename(a.out))


if __name__ == "__main__":
    main()
