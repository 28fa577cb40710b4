"""Reference fixtures from the PyTorch model, for ONNX parity and engine tests.

For each case: one safetensors file with every internal the engine may expose, and an entry
in cases.json. Tensor names (batch 1; n = images in the case, S = prompt length):
    input_ids                    I64 [1, S]       (chat template rendered, <image> expanded)
    pixel_values                 F32 [n, 3, 64, 64]  (absent for text-only)
    vision.hidden_states.{k}     F32 [n, 65, 64]  k = 0 (embeddings after pre_layrnorm) .. L
    image_features               F32 [n, 64, 128] (projector output = vision_encoder.onnx output)
    text.hidden_states.{k}       F32 [1, S, 128]  k = 0 (inputs_embeds after the merge) .. layers
    text.final_norm              F32 [1, S, 128]
    present.{i}.key / .value     F32 [1, kv, S, hd] (K after RoPE, V; the decoder's present.*)
    logits                       F32 [1, S, vocab]
    greedy_tokens                I64 [steps]      (greedy with KV cache, stops after </s>)
"""
import json
import os
from typing import List

import numpy as np
import torch

import safetensors_io
from model import MicroLlava
from processor import preprocess
from tokenizer import WordTokenizer, render_prompt

MAX_NEW_TOKENS = 4


@torch.no_grad()
def greedy(m: MicroLlava, input_ids: torch.Tensor, pixel_values, steps: int) -> List[int]:
    """Greedy decoding with the KV cache, step by step, as the ONNX decoder is driven."""
    logits, _, _, presents, _ = m(input_ids, pixel_values)
    out, n = [], input_ids.shape[1]
    for _ in range(steps):
        tok = int(logits[0, -1].argmax())
        out.append(tok)
        if tok == m.c.eos_token_id:
            break
        emb = m.embed(torch.tensor([[tok]]))
        hidden, _, presents, _ = m.language_model(emb, torch.ones(1, n + 1, dtype=torch.long), torch.tensor([[n]]), presents)
        logits = m.lm_head(hidden)
        n += 1
    return out


@torch.no_grad()
def case_tensors(m: MicroLlava, tok: WordTokenizer, question: str, images_u8) -> dict:
    n_img = 0 if images_u8 is None else len(images_u8)
    text = tok.expand_images(render_prompt(question, n_img), m.c.num_patches)
    input_ids = torch.tensor([tok.encode(text)])
    t = {"input_ids": input_ids.numpy()}
    px = None
    if n_img:
        px = torch.from_numpy(preprocess(np.stack(images_u8)))
        t["pixel_values"] = px.numpy()
        vstates, _ = m.vision_states(px)
        for k, h in enumerate(vstates):
            t[f"vision.hidden_states.{k}"] = h.numpy()
        t["image_features"] = m.image_features(px).numpy()
    logits, final, states, presents, _ = m(input_ids, px)
    for k, h in enumerate(states):
        t[f"text.hidden_states.{k}"] = h.numpy()
    t["text.final_norm"] = final.numpy()
    for i, (k, v) in enumerate(presents):
        t[f"present.{i}.key"] = k.numpy()
        t[f"present.{i}.value"] = v.numpy()
    t["logits"] = logits.numpy()
    t["greedy_tokens"] = np.array(greedy(m, input_ids, px, MAX_NEW_TOKENS), np.int64)
    return t


def runs(positions: List[int]) -> List[List[int]]:
    """[[start, end), ...] runs of consecutive image-token positions (one run per image)."""
    out = []
    for p in positions:
        if out and out[-1][1] == p:
            out[-1][1] = p + 1
        else:
            out.append([p, p + 1])
    return out


def write_fixtures(m: MicroLlava, tok: WordTokenizer, cases: List[dict], out_dir: str) -> None:
    """cases: [{name, question, images: [uint8 HWC] | None, source, answer?, choices?}]."""
    m.eval()
    os.makedirs(out_dir, exist_ok=True)
    entries = []
    for case in cases:
        t = case_tensors(m, tok, case["question"], case.get("images"))
        fname = f"{case['name']}.safetensors"
        safetensors_io.save(os.path.join(out_dir, fname), t)
        ids = t["input_ids"][0].tolist()
        entries.append({
            "name": case["name"],
            "file": fname,
            "source": case.get("source", ""),
            "question": case["question"],
            "prompt": render_prompt(case["question"], len(case["images"] or [])),
            "num_images": len(case["images"] or []),
            "image_token_runs": runs([i for i, x in enumerate(ids) if x == m.c.image_token_index]),
            "choices": case.get("choices"),
            "answer": case.get("answer"),
            "greedy_tokens": t["greedy_tokens"].tolist(),
            "greedy_text": tok.decode(t["greedy_tokens"].tolist()),
            "tensors": {k: list(v.shape) for k, v in sorted(t.items())},
        })
    meta = {
        "model": "resources/models/micro-llava",
        "generator": "tools/micro-vlm/fixtures.py (PyTorch, float32)",
        "max_new_tokens": MAX_NEW_TOKENS,
        "vision_layers": m.c.vision_layers,
        "vision_feature_layer": m.c.vision_feature_layer,
        "text_layers": m.c.text_layers,
        "image_token_index": m.c.image_token_index,
        "eos_token_id": m.c.eos_token_id,
        "cases": entries,
    }
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
