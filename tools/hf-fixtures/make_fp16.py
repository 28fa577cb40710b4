#!/usr/bin/python3
"""fp16 variants of a fixture's fp32 graphs, with ONNX Runtime's own converter.

`onnxruntime.transformers.float16.convert_float_to_float16` (the tool onnx-community's `_fp16` files come from),
run from ONNX Runtime's source through ort_shim.py. keep_io_types=False: every graph input and output is fp16 too,
as the onnx-community decoders ship (fp16 inputs_embeds, past and logits), so Loupe's fp16 I/O path is exercised.

Run: /usr/bin/python3 tools/hf-fixtures/make_fp16.py tests/fixtures/hf-llava/model
     (ORT_TOOLS=/path/to/onnxruntime source with onnxruntime/python/tools; default /work/.cache-hf/ort-tools)
Writes onnx/<session>_fp16.onnx beside each fp32 file and records the tool in fp16.json in the fixture folder.
"""
import json
import os
import sys

import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ort_shim  # noqa: E402

SESSIONS = ("vision_encoder", "embed_tokens", "decoder_model_merged")


def main(model_dir):
    tools = os.environ.get("ORT_TOOLS", "/work/.cache-hf/ort-tools")
    version = ort_shim.install(tools)
    from onnxruntime.transformers.float16 import convert_float_to_float16

    info = {"tool": "onnxruntime.transformers.float16.convert_float_to_float16", "onnxruntime_tools_version": version,
            "settings": "keep_io_types=False, default op block list", "files": []}
    for name in SESSIONS:
        src = os.path.join(model_dir, "onnx", f"{name}.onnx")
        dst = os.path.join(model_dir, "onnx", f"{name}_fp16.onnx")
        m = convert_float_to_float16(onnx.load(src), keep_io_types=False)
        onnx.save(m, dst)
        info["files"].append(os.path.basename(dst))
        print(f"{dst}: {os.path.getsize(dst)} bytes")
    with open(os.path.join(os.path.dirname(model_dir.rstrip('/')), "fp16.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
