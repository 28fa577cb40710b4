"""Save/load a trained micro-llava as one safetensors file (weights + config + vocabulary).

Committed at tools/micro-vlm/weights/micro-llava.safetensors so fixtures (e.g. attention
knockout references via the model's `attn_bias` arguments) can be regenerated without
retraining. Tensor names are this repo's module names, not HF's.
"""
import json

import numpy as np
import torch

import safetensors_io
from config import MicroConfig
from model import MicroLlava
from tokenizer import WordTokenizer


def without_logs(info: dict) -> dict:
    """A training info without its stages' per-step logs (each stage's info holds its parent's as
    `init_info`; report.py keeps only the final stage's log, average.py compares parents)."""
    return {k: (without_logs(v) if k == "init_info" and v else v) for k, v in info.items() if k != "log"}


def save(path: str, m: MicroLlava, tok: WordTokenizer, info: dict = None) -> None:
    sd = {k: v.detach().cpu().numpy() for k, v in m.state_dict().items()}
    if m.c.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    meta = {"config": json.dumps(m.c.to_dict()), "vocab": json.dumps(tok.inv), "info": json.dumps(info or {})}
    safetensors_io.save(path, sd, meta)


def load(path: str):
    import struct

    raw = open(path, "rb").read(8)
    (n,) = struct.unpack("<Q", raw)
    header = json.loads(open(path, "rb").read(8 + n)[8:])
    meta = header["__metadata__"]
    c = MicroConfig(**json.loads(meta["config"]))
    tok = WordTokenizer([])
    tok.inv = json.loads(meta["vocab"])
    tok.vocab = {w: i for i, w in enumerate(tok.inv)}
    m = MicroLlava(c)
    sd = {k: torch.from_numpy(np.array(v)) for k, v in safetensors_io.load(path).items()}
    m.load_state_dict(sd, strict=not c.tie_word_embeddings)
    m.eval()
    return m, tok, json.loads(meta.get("info", "{}"))
