#!/usr/bin/python3
"""hf-qwen2-vl and hf-qwen2_5-vl model-ort-fused/: the fp32 graphs of tests/fixtures/<fixture>/model/ after ONNX
Runtime's transformer optimizer, made exactly as hf-llava's and hf-idefics3's model-ort-fused/
(build_llava.make_fused: `optimize_model`, opt_level=0, only_onnxruntime=False, use_gpu=False; json files copied).

Settings   vision_encoder.onnx: model_type "clip". "vit" was tried too and gives a byte-identical graph (both fuse
           quick_gelu -> QuickGelu and the merger's exact GELU -> Gelu; nothing else, see loupe-fixture.json
           `vision_note`); "clip" is kept because its statistics count the QuickGelu nodes it made.
           decoder_model_merged.onnx and embed_tokens.onnx: "gpt2". num_heads / hidden_size from config.json — Qwen
           configs are flat: the text settings are top-level keys (num_attention_heads, hidden_size), the vision
           ones under vision_config (num_heads; embed_dim for Qwen2-VL, whose vision_config.hidden_size is the
           merger's output width, hidden_size for Qwen2.5-VL).
Record     model-ort-fused/loupe-fixture.json: tool, settings, ONNX Runtime tools commit, fused operator statistics,
           node and op counts before / after, the vit trial.

Run (from the repository root, after tools/hf-fixtures/build_qwen2_vl.py, which rebuilds the fixture from scratch
and so removes this folder):
    /usr/bin/python3 tools/hf-fixtures/build_qwen2_vl_fused.py            # both fixtures; --version 2 or 2.5 for one
    node tools/hf-fixtures/check_qwen2_vl.mjs
Environment: ORT_TOOLS (default /work/.cache-hf/ort-tools; see tools/hf-fixtures/README.md), and build_llava's
HF_TRANSFORMERS_SRC / HF_STUBS (build_llava is imported for make_fused). Deterministic: a rerun is byte-identical.
"""
import argparse
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

GENERATOR = "tools/hf-fixtures/build_qwen2_vl_fused.py"
FIXTURES = {"2": "hf-qwen2-vl", "2.5": "hf-qwen2_5-vl"}
ONNX_FILES = ["vision_encoder", "embed_tokens", "decoder_model_merged"]

VISION_NOTE = (
    "vision fusions are only QuickGelu (Qwen2-VL's quick_gelu MLP; Qwen2.5-VL's is SiLU-gated) and Gelu (the "
    "merger's exact GELU, Div -> Erf -> Add -> Mul -> Mul); LayerNormalization in the statistics are Qwen2-VL's "
    "own norms (LayerNormalization already in the export). Symbolic shape inference fails on this export "
    "(AssertionError in SymbolicShapeInference._infer_impl at '/visual/Expand', whose shape input "
    "'/visual/Where_output_0' - from the cu_seqlens repeat_interleave -> cat(expand) replacement - has no symbolic "
    "value), so the optimizer skips SkipLayerNormalization ('skip SkipLayerNormalization fusion since symbolic "
    "shape inference failed') and removes no Cast. No Attention fusion: clip's FusionAttentionClip searches only "
    "SkipLayerNormalization nodes (there are none); vit's FusionAttention starts from a LayerNormalization "
    "(Qwen2.5-VL has none: RMSNorm) whose residual Add reads out_proj as MatMul + bias Add, and the vision Linear "
    "layers are Gemm (2-D stream [patches, dim]). Qwen2.5-VL's vision RMSNorms are not fused (no SimplifiedLayerNormalization in the "
    "clip / vit fusion lists). 'clip' and 'vit' give byte-identical graphs")


def settings_from_config(config):
    """Qwen2-VL / Qwen2.5-VL config.json is flat: text settings at the top level, vision under vision_config."""
    v = config["vision_config"]
    vision_hidden = v["embed_dim"] if "embed_dim" in v else v["hidden_size"]
    return {"vision_encoder": ("clip", v["num_heads"], vision_hidden),
            "embed_tokens": ("gpt2", config["num_attention_heads"], config["hidden_size"]),
            "decoder_model_merged": ("gpt2", config["num_attention_heads"], config["hidden_size"])}


def build(fixture, ort_version):
    out = os.path.join(bl.ROOT, "tests", "fixtures", fixture)
    model_dir = os.path.join(out, "model")
    fused_dir = os.path.join(out, "model-ort-fused")
    config = json.load(open(os.path.join(model_dir, "config.json")))
    settings = settings_from_config(config)
    if os.path.isdir(fused_dir):
        shutil.rmtree(fused_dir)
    fused = bl.make_fused(model_dir, fused_dir, settings)
    written = os.path.join(fused_dir, "onnx", "vision_encoder.onnx")

    # the vision encoder with "vit" instead, for the record (not written)
    _, heads, hidden = settings["vision_encoder"]
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "model", "onnx"))
        shutil.copyfile(os.path.join(model_dir, "onnx", "vision_encoder.onnx"),
                        os.path.join(tmp, "model", "onnx", "vision_encoder.onnx"))
        alt = bl.make_fused(os.path.join(tmp, "model"), os.path.join(tmp, "vit"),
                            {"vision_encoder": ("vit", heads, hidden)})["vision_encoder.onnx"]
        alt_path = os.path.join(tmp, "vit", "onnx", "vision_encoder.onnx")
        alt["nodes"] = len(onnx.load(alt_path).graph.node)
        alt["op_counts"] = bl.op_counts(alt_path)
        alt["byte_identical_to_written_clip_graph"] = open(alt_path, "rb").read() == open(written, "rb").read()
    alt["note"] = ("not used: the same graph as clip's (QuickGelu and Gelu are fused by both; vit's statistics "
                   "just do not list QuickGelu), so nothing to choose on results; clip is kept as for hf-llava "
                   "and hf-idefics3")

    record = {
        "generator": GENERATOR,
        "what": (f"{fixture}'s model/ graphs after ONNX Runtime's transformer optimizer (python fusions, "
                 "opt_level=0), made with tools/hf-fixtures/build_llava.py's make_fused; json files copied"),
        "onnx_version": onnx.__version__,
        "onnxruntime_tools": dict(bl.ort_tools_info(), version=ort_version),
        "fused": fused,
        "vision_note": VISION_NOTE,
        "nodes": {}, "op_counts": {},
        "alternatives": {"vision_encoder.onnx model_type='vit' (not written)": alt},
    }
    for d in (model_dir, fused_dir):
        for name in ONNX_FILES:
            path = os.path.join(d, "onnx", f"{name}.onnx")
            rel = os.path.relpath(path, out)
            record["op_counts"][rel] = bl.op_counts(path)
            record["nodes"][rel] = len(onnx.load(path).graph.node)
    dump(os.path.join(fused_dir, "loupe-fixture.json"), record)
    print(fixture)
    for name in ONNX_FILES:
        f = f"{name}.onnx"
        print(f"  {f}: {record['nodes'][f'model/onnx/{f}']} -> {record['nodes'][f'model-ort-fused/onnx/{f}']} nodes, "
              f"{fused[f]['settings'].split(',')[0]}, fused {fused[f]['fused_operator_statistics']}")
    print(f"  (vit for the vision encoder: {alt['nodes']} nodes, fused {alt['fused_operator_statistics']}, "
          f"byte-identical to clip's: {alt['byte_identical_to_written_clip_graph']})")
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(fused_dir) for f in fs)
    print(f"wrote {fused_dir} ({total / 1e6:.2f} MB)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", choices=sorted(FIXTURES), action="append",
                    help="2 (hf-qwen2-vl) or 2.5 (hf-qwen2_5-vl); default both")
    args = ap.parse_args()
    ort_version = ort_shim.install(bl.ORT_TOOLS)
    logging.disable(logging.INFO)
    print(f"onnxruntime python tools {ort_version} ({bl.ORT_TOOLS}), onnx {onnx.__version__}")
    for v in args.version or sorted(FIXTURES):
        build(FIXTURES[v], ort_version)


if __name__ == "__main__":
    main()
