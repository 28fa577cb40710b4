"""Average the weights of a checkpoint and of tails trained from it (a uniform "model soup",
Wortsman et al. 2022): tails from the same weights stay in one basin, and their mean answers
better than each (session 18, count on 2000 fresh scenes: a parent and two tails 88.6 / 88.8 / 89.0%
alone, 89.7% averaged; with two more tails (89.4 / 88.7%) 90.3% — recipe v6).
The first checkpoint is the parent; every other one must have been trained from it (`--init`), with
the same config and vocabulary (refused otherwise). The result's training info chains to the
parent's, the tails' own stages listed beside it, so report.py's card shows the whole recipe.

    python3 tools/micro-vlm/average.py A.safetensors B.safetensors ... --out soup.safetensors
"""
import argparse
import sys

import torch

import checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if len(a.checkpoints) < 2:
        sys.exit("average.py: give at least two checkpoints")
    models = [checkpoint.load(p) for p in a.checkpoints]
    first, tok, parent = models[0]
    for p, (m, t, info) in zip(a.checkpoints[1:], models[1:]):
        if m.c.to_dict() != first.c.to_dict() or t.inv != tok.inv:
            sys.exit(f"average.py: {p} has another config or vocabulary than {a.checkpoints[0]}")
        if checkpoint.without_logs(info.get("init_info") or {}) != checkpoint.without_logs(parent):
            sys.exit(f"average.py: {p} was not trained from {a.checkpoints[0]}")
    states = [m.state_dict() for m, _, _ in models]
    # Summed in float64 in the given order, so the result is the same bits on every machine.
    mean = {k: (sum(s[k].double() for s in states) / len(states)).to(states[0][k].dtype) for k in states[0]}
    first.load_state_dict(mean)
    own = lambda i: {k: v for k, v in i.items() if k not in ("log", "init_info")}  # one stage's settings, not its ancestry
    # The parent's top-level settings (tasks, weights, turns) describe the data for the card too.
    info = {**own(parent), "recipe": "average.py", "averaged": a.checkpoints, "init_info": parent, "train_seconds": 0,
            "init": a.checkpoints[0], "members": [own(i) for _, _, i in models[1:]]}
    checkpoint.save(a.out, first, tok, info)
    print(f"saved {a.out}: mean of {len(states)} checkpoints, {len(mean)} tensors", flush=True)


if __name__ == "__main__":
    main()
