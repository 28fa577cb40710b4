"""A LLaVA-1.5-7B-shaped model folder for bench/capture-7b.ts: random weights, few layers.

Per-layer shapes are LLaVA-1.5-7B's, so every captured tensor has its real size:
  vision (CLIP-L/14-336): 577 tokens (576 patches + CLS) x 1024 wide, 16 heads;
  LLM (Llama-7B): 4096 wide, 32 heads (32 K/V heads, head dim 128); a ~600-token prompt
  (576 image tokens + the question).
What is NOT 7B-sized, so a forward pass runs in about a second on 2 CPU cores:
  - depth: 8 LLM layers, 3 vision layers (LLaVA reads layer -2, so 2 run), default;
  - every projection (q/k/v/o, MLP) is low rank (a Linear to 64 dims then back), MLP width 256:
    the tensors between ops — what Loupe captures — keep their 7B shapes, the FLOPs do not.
The tokenizer and chat template are micro-llava's (its 76-word vocabulary).

    /usr/bin/python3 tools/bench/build_7b_shaped.py OUT_DIR [--text-layers 8] [--vision-layers 3]
"""
import argparse
import json
import os
import shutil
import sys

import torch
from torch import nn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "micro-vlm"))
from config import MicroConfig, hf_config  # noqa: E402
from export import export_all  # noqa: E402
from model import MicroLlava  # noqa: E402
from processor import preprocessor_config  # noqa: E402

RANK = 64


def low_rank(linear: nn.Linear) -> nn.Module:
    """Same input and output width as `linear`, through a RANK-wide bottleneck."""
    return nn.Sequential(nn.Linear(linear.in_features, RANK, bias=False), nn.Linear(RANK, linear.out_features, bias=linear.bias is not None))


def slim(module: nn.Module) -> None:
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear) and name != "lm_head" and max(child.in_features, child.out_features) >= 1024:
            setattr(module, name, low_rank(child))
        else:
            slim(child)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--text-layers", type=int, default=8)
    ap.add_argument("--vision-layers", type=int, default=3)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    micro = os.path.join(ROOT, "resources", "models", "micro-llava")
    vocab = json.load(open(os.path.join(micro, "config.json")))["text_config"]["vocab_size"]
    c = MicroConfig(image_size=336, patch_size=14, vision_hidden=1024, vision_layers=a.vision_layers, vision_heads=16,
                    vision_intermediate=256, vocab_size=vocab, text_hidden=4096, text_layers=a.text_layers, text_heads=32,
                    text_kv_heads=32, text_intermediate=256, max_position_embeddings=4096)
    m = MicroLlava(c).eval()
    slim(m)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.02)
    os.makedirs(a.out, exist_ok=True)
    cfg = hf_config(c)
    cfg["transformers.js_config"] = {"dtype": "fp32"}
    json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=2)
    json.dump(preprocessor_config(c.image_size), open(os.path.join(a.out, "preprocessor_config.json"), "w"), indent=2)
    json.dump({"image_token": "<image>", "num_additional_image_tokens": 0, "patch_size": c.patch_size, "processor_class": "LlavaProcessor"},
              open(os.path.join(a.out, "processor_config.json"), "w"), indent=2)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        shutil.copy(os.path.join(micro, f), os.path.join(a.out, f))
    export_all(m, a.out)
    print(json.dumps({f: os.path.getsize(os.path.join(a.out, "onnx", f)) for f in sorted(os.listdir(os.path.join(a.out, "onnx")))}))


if __name__ == "__main__":
    main()
