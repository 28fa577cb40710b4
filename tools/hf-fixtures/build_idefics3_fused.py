#!/usr/bin/python3
"""hf-idefics3 model-ort-fused/: the fp32 graphs of tests/fixtures/hf-idefics3/model/ after ONNX Runtime's
transformer optimizer, made exactly as hf-llava's model-ort-fused/ (build_llava.make_fused: `optimize_model`,
opt_level=0, only_onnxruntime=False, use_gpu=False; json files copied).

Settings   vision_encoder.onnx: model_type "clip" (it fuses the LayerNorms and GELUs of this SigLIP-like tower;
           "vit" was tried too and is recorded, not written: see loupe-fixture.json `alternatives`),
           decoder_model_merged.onnx and embed_tokens.onnx: "gpt2"; num_heads / hidden_size from config.json's
           vision_config / text_config.
Record     model-ort-fused/loupe-fixture.json: tool, settings, ONNX Runtime tools commit, fused operator statistics
           and op counts before / after.

Run (from the repository root, after tools/hf-fixtures/build_idefics3.py, which rebuilds hf-idefics3/ from
scratch and so removes this folder):
    /usr/bin/python3 tools/hf-fixtures/build_idefics3_fused.py
    node tools/hf-fixtures/check_idefics3.mjs
Environment: ORT_TOOLS (default /work/.cache-hf/ort-tools; see tools/hf-fixtures/README.md), and build_llava's
HF_TRANSFORMERS_SRC / HF_STUBS (build_llava is imported for make_fused). Deterministic: a rerun is byte-identical.
"""
import json
import logging
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import build_llava as bl  # noqa: E402  (make_fused, op_counts, ort_tools_info)
import onnx  # noqa: E402

import ort_shim  # noqa: E402
from fixture_io import dump  # noqa: E402

GENERATOR = "tools/hf-fixtures/build_idefics3_fused.py"
OUT = os.path.join(bl.ROOT, "tests", "fixtures", "hf-idefics3")
MODEL_DIR = os.path.join(OUT, "model")
FUSED_DIR = os.path.join(OUT, "model-ort-fused")
ONNX_FILES = ["vision_encoder", "embed_tokens", "decoder_model_merged"]


def settings_from_config(config):
    v, t = config["vision_config"], config["text_config"]
    return {"vision_encoder": ("clip", v["num_attention_heads"], v["hidden_size"]),
            "embed_tokens": ("gpt2", t["num_attention_heads"], t["hidden_size"]),
            "decoder_model_merged": ("gpt2", t["num_attention_heads"], t["hidden_size"])}


def main():
    ort_version = ort_shim.install(bl.ORT_TOOLS)
    logging.disable(logging.INFO)
    print(f"onnxruntime python tools {ort_version} ({bl.ORT_TOOLS}), onnx {onnx.__version__}")
    config = json.load(open(os.path.join(MODEL_DIR, "config.json")))
    settings = settings_from_config(config)
    if os.path.isdir(FUSED_DIR):
        shutil.rmtree(FUSED_DIR)
    fused = bl.make_fused(MODEL_DIR, FUSED_DIR, settings)

    # the vision encoder with "vit" instead, for the record (not written)
    _, heads, hidden = settings["vision_encoder"]
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "model", "onnx"))
        shutil.copyfile(os.path.join(MODEL_DIR, "onnx", "vision_encoder.onnx"),
                        os.path.join(tmp, "model", "onnx", "vision_encoder.onnx"))
        alt = bl.make_fused(os.path.join(tmp, "model"), os.path.join(tmp, "vit"),
                            {"vision_encoder": ("vit", heads, hidden)})["vision_encoder.onnx"]
        alt_path = os.path.join(tmp, "vit", "onnx", "vision_encoder.onnx")
        alt["nodes"] = len(onnx.load(alt_path).graph.node)
        alt["attention_nodes"] = [{"name": n.name, "inputs": list(n.input)} for n in onnx.load(alt_path).graph.node
                                  if n.op_type == "Attention"]
    alt["note"] = ("not used: vit fuses layer 1's attention into com.microsoft::Attention with an empty mask input "
                   "(the Add of HF's 4-D padding mask is dropped; layer 0 stays unfused). Measured with "
                   "onnxruntime-node 1.30 when this folder was made: on a tile whose bottom 8 pixel rows are "
                   "padding (pixel_attention_mask false), its image_features are 1.4e-1 off model/'s; the clip "
                   "graph written here is 3.8e-7 off. No reference case has padding pixels, so the check's "
                   "cases do not show it")

    record = {
        "generator": GENERATOR,
        "what": ("hf-idefics3's model/ graphs after ONNX Runtime's transformer optimizer (python fusions, "
                 "opt_level=0), made with tools/hf-fixtures/build_llava.py's make_fused; json files copied"),
        "onnx_version": onnx.__version__,
        "onnxruntime_tools": dict(bl.ort_tools_info(), version=ort_version),
        "fused": fused,
        "vision_attention_note": ("no Attention fusion with clip: FusionAttentionClip accepts an Add before the "
                                  "Softmax if its other input is a graph input named attention_mask, or comes from "
                                  "Where <- Sub <- Cast <- Expand <- Unsqueeze <- Unsqueeze <- Reshape <- Reshape <- "
                                  "Cast, or from a causal-mask path (Expand <- Unsqueeze <- Unsqueeze <- Where <- "
                                  "Less); here it carries HF's 4-D padding mask built from pixel_attention_mask, so "
                                  "both layers stop at 'fuse_attention: failed to match causal mask subgraph'"),
        "nodes": {}, "op_counts": {},
        "alternatives": {"vision_encoder.onnx model_type='vit' (not written)": alt},
    }
    for d in (MODEL_DIR, FUSED_DIR):
        for name in ONNX_FILES:
            path = os.path.join(d, "onnx", f"{name}.onnx")
            rel = os.path.relpath(path, OUT)
            record["op_counts"][rel] = bl.op_counts(path)
            record["nodes"][rel] = len(onnx.load(path).graph.node)
    dump(os.path.join(FUSED_DIR, "loupe-fixture.json"), record)
    for name in ONNX_FILES:
        f = f"{name}.onnx"
        print(f"  {f}: {record['nodes'][f'model/onnx/{f}']} -> {record['nodes'][f'model-ort-fused/onnx/{f}']} nodes, "
              f"{fused[f]['settings'].split(',')[0]}, fused {fused[f]['fused_operator_statistics']}")
    print(f"  (vit for the vision encoder: {alt['nodes']} nodes, fused {alt['fused_operator_statistics']})")
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(FUSED_DIR) for f in fs)
    print(f"wrote {FUSED_DIR} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
