#!/usr/bin/python3
"""hf-llava-next, hf-llava-onevision and hf-paligemma model-ort-fused/: the fp32 graphs of
tests/fixtures/<fixture>/model/ after ONNX Runtime's transformer optimizer, made exactly as hf-llava's,
hf-idefics3's and hf-qwen2-vl's model-ort-fused/ (build_llava.make_fused: `optimize_model`, opt_level=0,
only_onnxruntime=False, use_gpu=False; json files copied).

Settings   vision_encoder.onnx: model_type "clip"; decoder_model_merged.onnx and embed_tokens.onnx: "gpt2";
           num_heads / hidden_size from config.json's vision_config / text_config (all three configs are nested).
           "vit" for the vision encoder is tried too and recorded, not written (loupe-fixture.json `alternatives`).
Record     model-ort-fused/loupe-fixture.json: tool, settings, ONNX Runtime tools commit, fused operator statistics,
           node and op counts before / after, the vit trial.

Run (from the repository root, after tools/hf-fixtures/build_llava_next.py / build_paligemma.py, which rebuild
the fixtures from scratch and so remove these folders):
    /usr/bin/python3 tools/hf-fixtures/build_more_fused.py     # all three; --fixture next|onevision|paligemma
    node tools/hf-fixtures/check_llava_next.mjs && node tools/hf-fixtures/check_paligemma.mjs
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

GENERATOR = "tools/hf-fixtures/build_more_fused.py"
FIXTURES = {"next": "hf-llava-next", "onevision": "hf-llava-onevision", "paligemma": "hf-paligemma"}
ONNX_FILES = ["vision_encoder", "embed_tokens", "decoder_model_merged"]


def settings_from_config(config):
    v, t = config["vision_config"], config["text_config"]
    return {"vision_encoder": ("clip", v["num_attention_heads"], v["hidden_size"]),
            "embed_tokens": ("gpt2", t["num_attention_heads"], t["hidden_size"]),
            "decoder_model_merged": ("gpt2", t["num_attention_heads"], t["hidden_size"])}


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
    alt["note"] = "not used: clip is kept for the vision encoder as for hf-llava, hf-idefics3 and hf-qwen2-vl"

    record = {
        "generator": GENERATOR,
        "what": (f"{fixture}'s model/ graphs after ONNX Runtime's transformer optimizer (python fusions, "
                 "opt_level=0), made with tools/hf-fixtures/build_llava.py's make_fused; json files copied"),
        "onnx_version": onnx.__version__,
        "onnxruntime_tools": dict(bl.ort_tools_info(), version=ort_version),
        "fused": fused,
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
    sizes = {f: os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(fused_dir) for f in fs}
    print(f"wrote {fused_dir} ({sum(sizes.values()) / 1e6:.2f} MB, largest file {max(sizes.values()) / 1e6:.2f} MB)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture", choices=sorted(FIXTURES), action="append",
                    help="next, onevision or paligemma; default all three")
    args = ap.parse_args()
    ort_version = ort_shim.install(bl.ORT_TOOLS)
    logging.disable(logging.INFO)
    print(f"onnxruntime python tools {ort_version} ({bl.ORT_TOOLS}), onnx {onnx.__version__}")
    for k in args.fixture or list(FIXTURES):
        build(FIXTURES[k], ort_version)


if __name__ == "__main__":
    main()
