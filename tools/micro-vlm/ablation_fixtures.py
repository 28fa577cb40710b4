"""PyTorch reference fixtures for attention ablation (tests/integration/ablation.test.ts).

Loads the trained micro-llava checkpoint, takes the inputs of an existing parity fixture case
(tests/fixtures/micro-llava/<case>.safetensors: input_ids, pixel_values), and for a few ablation
specs (the JSON schema of src-shared/ablation/spec.ts) writes
    tests/fixtures/micro-llava/ablation-<name>.safetensors
        bias.vision.{layer}     F32 [1, heads|1, 65, 65]   the exact additive biases used
        bias.llm.{layer}        F32 [1, heads|1, S, S]
        logits                  F32 [1, S, vocab]
        image_features          F32 [1, 64, text_hidden]
        vision.hidden_states.{k} F32 [1, 65, vision_hidden]
    tests/fixtures/micro-llava/ablation.json   (specs, source case, tensor shapes)
The biases are computed here independently of the TypeScript mask builder (same semantics:
blocked edges -1e9, never on the diagonal; scaled edges log(factor) summed; a block wins), so
the test checks the builder and the ONNX surgery against PyTorch's `attn_bias` arguments.

Usage: /usr/bin/python3 tools/micro-vlm/ablation_fixtures.py [--checkpoint PATH] [--case NAME]
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from checkpoint import load  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "micro-llava")
BLOCK = -1e9

SPECS = {
    "vision-patch-isolation": {"edits": [
        {"op": "block", "part": "vision", "queries": {"kind": "patches"}, "keys": {"kind": "all"}, "excludeSelf": True},
    ]},
    "text-blind": {"edits": [
        {"op": "block", "part": "llm", "queries": {"kind": "text"}, "keys": {"kind": "image"}},
    ]},
    "scale-mixed": {"edits": [
        {"op": "scale", "part": "llm", "layers": [1, 2], "heads": [0, 3], "factor": 0.25, "queries": {"kind": "last"}, "keys": {"kind": "image"}},
        {"op": "scale", "part": "vision", "layers": [0], "factor": 3.0, "queries": {"kind": "patches", "indices": list(range(8))}, "keys": {"kind": "cls"}},
        {"op": "block", "part": "llm", "layers": [3], "heads": [1], "queries": {"kind": "all"}, "keys": {"kind": "positions", "positions": [0, 1]}},
    ]},
}


def resolve(s, roles, patch, last, vision):
    n = len(roles)
    k = s["kind"]
    if k == "all":
        return [True] * n
    if k == "cls":
        return [r == "cls" for r in roles]
    if k == "patches":
        want = set(s["indices"]) if s.get("indices") else None
        return [r == "patch" and (want is None or patch[i] in want) for i, r in enumerate(roles)]
    if k == "image":
        return [vision or r != "text" for r in roles]
    if k == "text":
        return [r == "text" for r in roles]
    if k == "last":
        return [i == last for i in range(n)]
    if k == "positions":
        return [i in set(s["positions"]) for i in range(n)]
    raise ValueError(k)


def biases(spec, part, roles, patch, last, layers, heads):
    """{layer: float32 [1, H|1, n, n]} for a prefill of n tokens."""
    n = len(roles)
    edits = [e for e in spec["edits"] if e["part"] == part]
    out = {}
    for layer in layers:
        mine = [e for e in edits if e.get("layers", "all") == "all" or layer in e["layers"]]
        if not mine:
            continue
        per_head = any(e.get("heads", "all") != "all" for e in mine)
        H = heads if per_head else 1
        total = np.zeros((H, n, n), np.float32)
        blocked = np.zeros((H, n, n), bool)
        for e in mine:
            qs = resolve(e["queries"], roles, patch, last, part == "vision")
            ks = resolve(e["keys"], roles, patch, last, part == "vision")
            hs = range(H) if e.get("heads", "all") == "all" else e["heads"]
            for i in range(n):
                if not qs[i]:
                    continue
                for j in range(n):
                    if not ks[j] or (i == j and (e.get("excludeSelf", False) or e["op"] == "block")):
                        continue
                    for h in hs:
                        if e["op"] == "block":
                            blocked[h, i, j] = True
                        else:
                            total[h, i, j] = np.float32(total[h, i, j] + math.log(e["factor"]))
        total[blocked] = BLOCK
        out[layer] = total[None]
    return out


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=os.path.join(ROOT, "tools", "micro-vlm", "weights", "micro-llava.safetensors"))
    ap.add_argument("--case", default="colour-at-point")
    ap.add_argument("--out", default=FIXTURES)
    a = ap.parse_args()
    m, _tok, _info = load(a.checkpoint)
    c = m.c
    src = safetensors_io.load(os.path.join(FIXTURES, f"{a.case}.safetensors"))
    ids = torch.from_numpy(src["input_ids"])
    px = torch.from_numpy(src["pixel_values"])
    S = ids.shape[1]
    side = c.image_size // c.patch_size
    v_roles = ["cls"] + ["patch"] * (side * side)
    v_patch = [-1] + list(range(side * side))
    img = [i for i, t in enumerate(ids[0].tolist()) if t == c.image_token_index]
    l_roles = ["text"] * S
    l_patch = [-1] * S
    for k, p in enumerate(img):
        l_roles[p] = "patch"
        l_patch[p] = k % (side * side)
    exported_vision_layers = list(range(m.feature_layer_index()))
    entries = []
    os.makedirs(a.out, exist_ok=True)
    for name, spec in SPECS.items():
        vb = biases(spec, "vision", v_roles, v_patch, -1, exported_vision_layers, c.vision_heads)
        tb = biases(spec, "llm", l_roles, l_patch, S - 1, list(range(c.text_layers)), c.text_heads)
        v_list = [torch.from_numpy(vb[i]) if i in vb else None for i in range(c.vision_layers)]
        t_list = [torch.from_numpy(tb[i]) if i in tb else None for i in range(c.text_layers)]
        logits, _, _, _, _ = m(ids, px, vision_attn_bias=v_list, text_attn_bias=t_list)
        states, _ = m.vision_states(px, v_list, all_layers=False)
        t = {
            "logits": logits.numpy(),
            "image_features": m.image_features(px, v_list).numpy(),
            **{f"vision.hidden_states.{k}": h.numpy() for k, h in enumerate(states)},
            **{f"bias.vision.{layer}": b for layer, b in vb.items()},
            **{f"bias.llm.{layer}": b for layer, b in tb.items()},
        }
        fname = f"ablation-{name}.safetensors"
        safetensors_io.save(os.path.join(a.out, fname), t)
        entries.append({"name": name, "file": fname, "source_case": a.case, "spec": spec, "tensors": {k: list(v.shape) for k, v in sorted(t.items())}})
    meta = {
        "model": "resources/models/micro-llava",
        "checkpoint": os.path.relpath(a.checkpoint, ROOT),
        "generator": "tools/micro-vlm/ablation_fixtures.py (PyTorch, float32, attn_bias per layer)",
        "block_bias": BLOCK,
        "cases": entries,
    }
    with open(os.path.join(a.out, "ablation.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
