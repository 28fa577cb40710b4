#!/usr/bin/python3
"""hf-llava model-optimum-merged/: the hf-llava decoder merged the way Hugging Face Optimum merges decoders.

What      tests/fixtures/hf-llava/model-optimum-merged/ = model/'s json files, vision_encoder.onnx and
          embed_tokens.onnx (copied), and onnx/decoder_model_merged.onnx built as Optimum's ONNX exporter builds
          a legacy (`--legacy`) decoder-only export: a decoder without past (`decoder_model.onnx`: no past inputs,
          `present.*` outputs) and a decoder with past (`decoder_with_past_model.onnx`), merged by Optimum's own
          `optimum.onnx.graph_transformations.merge_decoders` (what `TextDecoderOnnxConfig.post_process_exported_models`
          calls, with its default arguments) into one graph with a top-level `If` on the bool input
          `use_cache_branch` (then = with past, else = without), initializers shared by both deduplicated.
Model     the same LlavaForConditionalGeneration as tools/hf-fixtures/build_llava.py (its `build_model()`: same
          config, seed and weights), the same `Decoder` wrapper (LlamaForCausalLM.forward with a DynamicCache),
          TorchScript `torch.onnx.export`, opset 17, constant folding, the same input/output names. The dummy
          shapes and dynamic-axis names are Optimum's (DEFAULT_DUMMY_SHAPES batch 2, sequence 16; with past: one new
          token after a past of 16, attention_mask padded to 17; axes as TextDecoderOnnxConfig / OnnxConfigWithPast
          name them, which merge_decoders requires: attention_mask axis 1 of the no-past decoder must be
          `sequence_length`).
Optimum   source of huggingface/optimum v1.27.0 (the last release that carries optimum/onnx; 2.x moved it to
          optimum-onnx), only optimum/onnx/{graph_transformations,transformations_utils}.py and the stdlib-only
          optimum/utils/{logging,modeling_utils}.py, extracted to OPTIMUM_SRC (default /work/.cache-hf/optimum):
              git -C <optimum mirror> archive v1.27.0 optimum/onnx optimum/utils/logging.py \\
                  optimum/utils/modeling_utils.py optimum/version.py LICENSE | tar -x -C /work/.cache-hf/optimum
          `optimum`, `optimum.onnx` (its __init__ is a transformers _LazyModule) and `optimum.utils` (whose real
          __init__ imports the whole exporter stack) are stand-in packages here; `optimum.utils.logging` and
          `recurse_getattr` are the real files. onnx 1.12 (Debian) has IR_VERSION 8 and its checker refuses the
          ir_version 9 that merge_decoders writes; check_model is wrapped to check such a model as IR 8 (IR 9 adds
          only float8 types, unused here). The saved file keeps ir_version 9, as Optimum writes it.
Determinism  merge_decoders names the shared initializers after `set.pop()` of (name, model) pairs, so the names
          depend on Python's string hashing: the script re-executes itself with PYTHONHASHSEED=0. Two runs give
          byte-identical files.

Run (from the repository root): /usr/bin/python3 tools/hf-fixtures/build_llava_merged.py
Then: node tools/hf-fixtures/check_llava_merged.mjs
"""
import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":  # before anything hashes a string; see "Determinism" above
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])

import collections  # noqa: E402
import hashlib  # noqa: E402
import importlib  # noqa: E402
import importlib.util  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import types  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import build_llava as bl  # noqa: E402  (puts HF_STUBS and HF_TRANSFORMERS_SRC on sys.path, imports transformers)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from fixture_io import dump  # noqa: E402

GENERATOR = "tools/hf-fixtures/build_llava_merged.py"
OPTIMUM_SRC = os.environ.get("OPTIMUM_SRC", "/work/.cache-hf/optimum")
OUT_DIR = os.path.join(bl.OUT, "model-optimum-merged")
COPIED_ONNX = ["vision_encoder.onnx", "embed_tokens.onnx"]

# optimum.utils.input_generators.DEFAULT_DUMMY_SHAPES (v1.27.0)
DUMMY_BATCH, DUMMY_SEQ = 2, 16
DUMMY_PAST = 16  # MistralDummyPastKeyValuesGenerator (LlamaOnnxConfig) uses the same sequence_length
# legacy text-generation with past: "Use a sequence length of 1 when the KV cache is already populated"
DUMMY_SEQ_WITH_PAST = 1


# ----------------------------------------------------------------------------- Optimum from source


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _package(name, path):
    mod = types.ModuleType(name)
    mod.__path__ = [path]
    sys.modules[name] = mod
    return mod


def import_optimum(src):
    """optimum.onnx.graph_transformations from the extracted source, with stand-in parent packages."""
    root = os.path.join(src, "optimum")
    if not os.path.isfile(os.path.join(root, "onnx", "graph_transformations.py")):
        raise FileNotFoundError(f"no optimum/onnx/graph_transformations.py under {src} (see this file's docstring)")
    _package("optimum", root)
    utils = _package("optimum.utils", os.path.join(root, "utils"))
    utils.logging = _load("optimum.utils.logging", os.path.join(root, "utils", "logging.py"))
    utils.recurse_getattr = _load("optimum.utils.modeling_utils",
                                  os.path.join(root, "utils", "modeling_utils.py")).recurse_getattr
    _package("optimum.onnx", os.path.join(root, "onnx"))
    gt = importlib.import_module("optimum.onnx.graph_transformations")

    # onnx 1.12's checker refuses ir_version > 8 ("Your model ir_version is higher than the checker's"), and
    # merge_decoders writes 9: check such a model as IR 8 (the IR 9 additions, float8 types, are not used).
    original = onnx.checker.check_model

    def check_model(model, full_check=False):
        if isinstance(model, (str, bytes, os.PathLike)):
            model = onnx.load(model)
        if model.ir_version > onnx.IR_VERSION:
            model = onnx.ModelProto.FromString(model.SerializeToString())
            model.ir_version = onnx.IR_VERSION
        return original(model, full_check)

    onnx.checker.check_model = check_model
    version = re.search(r'__version__ = "([^"]+)"', open(os.path.join(root, "version.py")).read()).group(1)
    commit_file = os.path.join(src, "COMMIT")
    commit = open(commit_file).read().strip() if os.path.exists(commit_file) else None
    return gt, {"source": src, "version": version, "commit": commit,
                "files": ["optimum/onnx/graph_transformations.py", "optimum/onnx/transformations_utils.py",
                          "optimum/utils/logging.py", "optimum/utils/modeling_utils.py"]}


# ----------------------------------------------------------------------------- the two decoders


def export_decoder(model, path, with_past, gen):
    """build_llava's Decoder wrapper, traced as Optimum's legacy export traces decoder_model.onnx (with_past=False:
    no past inputs) and decoder_with_past_model.onnx (with_past=True)."""
    past_names, present_names = bl.kv_names()
    b = DUMMY_BATCH
    s = DUMMY_SEQ_WITH_PAST if with_past else DUMMY_SEQ
    p = DUMMY_PAST if with_past else 0
    # TextDecoderOnnxConfig.inputs / OnnxConfigWithPast.outputs (+ position_ids of TextDecoderWithPositionIds...)
    axes = {"inputs_embeds": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size",
                               1: "past_sequence_length + sequence_length" if with_past else "sequence_length"},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"}}
    for n in present_names:
        axes[n] = {0: "batch_size", 2: "past_sequence_length + 1"}
    inputs = ["inputs_embeds", "attention_mask", "position_ids"]
    args = [torch.randn(b, s, bl.T_HIDDEN, generator=gen), torch.ones(b, p + s, dtype=torch.long),
            torch.arange(p, p + s)[None].expand(b, s).contiguous()]
    if with_past:
        for n in past_names:
            axes[n] = {0: "batch_size", 2: "past_sequence_length"}
            args.append(torch.randn(b, bl.T_KV, p, bl.T_HEAD_DIM, generator=gen))
        inputs += past_names
    torch.onnx.export(bl.Decoder(model), tuple(args), path, opset_version=bl.OPSET, do_constant_folding=True,
                      input_names=inputs, output_names=["logits", *present_names], dynamic_axes=axes)
    onnx.checker.check_model(onnx.load(path))
    return {"inputs": inputs, "dummy_shapes": {"batch_size": b, "sequence_length": s, "past_sequence_length": p},
            "dynamic_axes": {k: {str(a): v for a, v in d.items()} for k, d in axes.items()},
            "nodes": len(onnx.load(path).graph.node)}


# ----------------------------------------------------------------------------- description


def value_info(v):
    t = v.type.tensor_type
    return {"name": v.name, "type": onnx.TensorProto.DataType.Name(t.elem_type),
            "shape": [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]}


def op_counts(nodes):
    return dict(sorted(collections.Counter(
        (n.domain + "::" if n.domain not in ("", "ai.onnx") else "") + n.op_type for n in nodes).items()))


def describe(merged_path):
    m = onnx.load(merged_path)
    g = m.graph
    (if_node,) = g.node
    branches = {a.name: a.g for a in if_node.attribute if a.type == onnx.AttributeProto.GRAPH}
    desc = {
        "ir_version": m.ir_version,
        "producer_name": m.producer_name,
        "opset_import": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        "graph_name": g.name,
        "inputs": [value_info(v) for v in g.input],
        "outputs": [value_info(v) for v in g.output],
        "top_level_nodes": [{"name": if_node.name, "op_type": if_node.op_type, "inputs": list(if_node.input),
                             "outputs": list(if_node.output)}],
        "top_level_initializers": len(g.initializer),
        "top_level_initializer_bytes": sum(numpy_helper.to_array(t).nbytes for t in g.initializer),
        "branches": {},
    }
    for attr, sub in sorted(branches.items()):
        desc["branches"][attr] = {
            "graph_name": sub.name, "nodes": len(sub.node), "initializers": len(sub.initializer),
            "initializer_note": "scalars and 1-D int32/int64 tensors stay in the branch (merge_decoders)",
            "op_counts": op_counts(sub.node),
        }
    return desc


def check_weights_equal(merged_path, reference_path):
    """Every float weight of the merged graph (>= 1-D) is byte-equal to one of model/'s decoder: same model."""
    ref = {hashlib.sha256(numpy_helper.to_array(t).tobytes()).hexdigest()
           for t in onnx.load(reference_path).graph.initializer if t.data_type == onnx.TensorProto.FLOAT and t.dims}
    m = onnx.load(merged_path)
    weights = [t for t in m.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) >= 2]
    missing = [t.name for t in weights
               if hashlib.sha256(numpy_helper.to_array(t).tobytes()).hexdigest() not in ref]
    assert not missing, f"weights not in model/onnx/decoder_model_merged.onnx: {missing}"
    return len(weights)


# ----------------------------------------------------------------------------- main


def main():
    torch.manual_seed(bl.SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print(f"transformers {transformers.__version__} from {transformers.__file__}")
    print(f"torch {torch.__version__}, onnx {onnx.__version__}, PYTHONHASHSEED {os.environ['PYTHONHASHSEED']}")
    gt, optimum_info = import_optimum(OPTIMUM_SRC)
    print(f"optimum {optimum_info['version']} ({optimum_info['commit']}) merge_decoders from {gt.__file__}")

    for f in ["config.json", *(os.path.join("onnx", n) for n in COPIED_ONNX)]:
        if not os.path.isfile(os.path.join(bl.MODEL_DIR, f)):
            raise FileNotFoundError(f"{bl.MODEL_DIR}/{f}: run tools/hf-fixtures/build_llava.py first")
    if os.path.isdir(OUT_DIR):
        shutil.rmtree(OUT_DIR)
    os.makedirs(os.path.join(OUT_DIR, "onnx"))
    copied = []
    for f in sorted(os.listdir(bl.MODEL_DIR)):
        if f.endswith(".json"):
            shutil.copyfile(os.path.join(bl.MODEL_DIR, f), os.path.join(OUT_DIR, f))
            copied.append(f)
    for f in COPIED_ONNX:
        shutil.copyfile(os.path.join(bl.MODEL_DIR, "onnx", f), os.path.join(OUT_DIR, "onnx", f))
        copied.append(f"onnx/{f}")

    model = bl.build_model()
    gen = torch.Generator().manual_seed(bl.SEED + 5)
    merged_path = os.path.join(OUT_DIR, "onnx", "decoder_model_merged.onnx")
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        decoder_path = os.path.join(tmp, "decoder_model.onnx")
        with_past_path = os.path.join(tmp, "decoder_with_past_model.onnx")
        exports = {"decoder_model.onnx": export_decoder(model, decoder_path, False, gen),
                   "decoder_with_past_model.onnx": export_decoder(model, with_past_path, True, gen)}
        # as TextDecoderOnnxConfig.post_process_exported_models calls it (defaults: graph_name "merged",
        # producer_name "optimum-onnx", strict=True); merge_decoders saves through check_and_save_model
        gt.merge_decoders(decoder=decoder_path, decoder_with_past=with_past_path, save_path=merged_path)
    n_weights = check_weights_equal(merged_path, os.path.join(bl.MODEL_DIR, "onnx", "decoder_model_merged.onnx"))
    desc = describe(merged_path)
    print(f"merged: inputs {[v['name'] for v in desc['inputs']]}")
    print(f"        If branches: " + ", ".join(f"{k} = {v['graph_name']} ({v['nodes']} nodes, {v['initializers']} "
                                                f"initializers)" for k, v in desc["branches"].items())
          + f"; {desc['top_level_initializers']} shared initializers; {n_weights} weights equal model/'s")

    record = {
        "generator": GENERATOR,
        "what": ("hf-llava's model with onnx/decoder_model_merged.onnx merged by Hugging Face Optimum's "
                 "merge_decoders from a decoder without past and a decoder with past (Optimum's legacy "
                 "decoder-only export layout); vision_encoder.onnx, embed_tokens.onnx and the json files are "
                 "model/'s, copied"),
        "copied_from_model": copied,
        "model": "tools/hf-fixtures/build_llava.py build_model() (same config, seed and weights as model/)",
        "weights_check": f"all {n_weights} float weights (>= 2-D) of the merged graph are byte-equal to weights of "
                         "model/onnx/decoder_model_merged.onnx",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "export": {
            "tool": "torch.onnx.export (TorchScript)",
            "settings": f"opset_version={bl.OPSET}, do_constant_folding=True; wrapper build_llava.Decoder "
                        "(LlamaForCausalLM.forward with a DynamicCache), eager attention",
            "decoder_model.onnx": exports["decoder_model.onnx"],
            "decoder_with_past_model.onnx": exports["decoder_with_past_model.onnx"],
            "note": ("Optimum v1.27.0 exports these two graphs only with legacy=True (optimum-cli export onnx "
                     "--legacy; otherwise a single decoder with past) and then merges them in "
                     "TextDecoderOnnxConfig.post_process_exported_models. Here the graphs are traced with "
                     "build_llava's wrapper and input names (inputs_embeds, not input_ids; position_ids kept) and "
                     "Optimum's dummy shapes and axis names; Optimum's model patcher is not used"),
        },
        "merge": {
            "tool": "optimum.onnx.graph_transformations.merge_decoders",
            "settings": ("decoder=decoder_model.onnx, decoder_with_past=decoder_with_past_model.onnx, "
                         "graph_name='merged', producer_name='optimum-onnx', strict=True (defaults, as "
                         "post_process_exported_models calls it)"),
            "optimum": optimum_info,
            "onnx_compat": ("onnx 1.12 checker wrapped to check ir_version 9 models as IR 8; PYTHONHASHSEED=0 "
                            "(merge_decoders names shared initializers after set.pop())"),
        },
        "first_step_convention": {
            "optimum_runtime": ("optimum.onnxruntime ORTModelForCausalLM (v1.14-v1.27): use_cache_branch=[False] "
                                "and zero-length past [batch, num_key_value_heads, 0, head_dim] on the first step, "
                                "use_cache_branch=[True] with the presents afterwards"),
            "optimum_export_validation": ("generate_dummy_inputs_for_validation feeds use_cache_branch=[False] with "
                                          "a dummy past of sequence length 1 (ignored by the no-past branch)"),
            "transformers_js_4_3_1": ("decoder_forward: use_cache_branch = past_key_values non-empty; "
                                      "addPastKeyValues makes the first-step past from the session's input "
                                      "metadata with every symbolic dim but batch_size set to 0: "
                                      "[batch, 2, 0, 16]"),
        },
        "graph": desc,
    }
    dump(os.path.join(OUT_DIR, "loupe-fixture.json"), record)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT_DIR) for f in fs)
    print(f"wrote {OUT_DIR} ({total / 1e6:.2f} MB; decoder_model_merged.onnx {os.path.getsize(merged_path)} B)")


if __name__ == "__main__":
    main()
