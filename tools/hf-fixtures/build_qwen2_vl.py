#!/usr/bin/python3
"""hf-qwen2-vl / hf-qwen2_5-vl: tiny Qwen2-VL and Qwen2.5-VL built from the real Hugging Face modeling code.

Model      `Qwen2VLForConditionalGeneration` of transformers v4.46.1 (--version 2) or
           `Qwen2_5_VLForConditionalGeneration` of transformers v4.49.0 (--version 2.5), built from a config with
           random weights (fixed seed), attn_implementation="eager". Nothing is re-implemented: the ONNX graphs are
           traces of HF's own modules, and the references are HF's own code (`Qwen2VLImageProcessor`,
           `Qwen2VLProcessor` / `Qwen2_5_VLProcessor` with the published chat template, `get_rope_index`, `.visual`,
           `.forward`, `.generate`).
Export     TorchScript `torch.onnx.export`, opset 17, into the transformers.js / onnx-community layout:
           model/onnx/{vision_encoder,embed_tokens,decoder_model_merged}.onnx. Vision inputs are named as
           transformers.js 4.3.1 feeds them (qwen2_vl/modeling_qwen2_vl.js `image_grid_thw_name`): Qwen2-VL
           `pixel_values` + `grid_thw`, Qwen2.5-VL `pixel_values` + `image_grid_thw`. The decoder takes
           inputs_embeds, attention_mask, position_ids [3, batch, seq] (M-RoPE), past_key_values.* and returns
           logits, present.*.
References reference.json + reference.safetensors (`<case>/<tensor>`), image.png, shapes/<w>x<h>.png.

What torch 1.13's TorchScript exporter needs here (/work/shared/hf-modeling/README.md):
  * `aten::bitwise_or` (Qwen2 4-D mask builder, taken whenever config.sliding_window is set): custom symbolic `Or`.
  * `torch.repeat_interleave(x, repeats_tensor)` (vision cu_seqlens): replaced during the export only by the
    equivalent cat(expand) (one image per graph, so one term).
  * v4.46 Qwen2-VL's cu_seqlens is int32: Slice nodes get mixed int32/int64 bounds, which ONNX Runtime rejects;
    a Cast(to=INT64) is inserted after export in front of every int32 Slice bound.
  * Per-image Python loops are unrolled: the vision graph is specialised to one image; Qwen2.5-VL's window index
    (`get_window_index`, `.tolist()`) is a constant of the exported grid. reference.json says which grids the
    vision graph reproduces (checked by tools/hf-fixtures/check_qwen2_vl.mjs against shapes/<w>x<h>/image_features).

Run (from the repository root, Debian's python3: torch 1.13 CPU, onnx, numpy, PIL, jinja2):
    /usr/bin/python3 tools/hf-fixtures/build_qwen2_vl.py --version 2
    /usr/bin/python3 tools/hf-fixtures/build_qwen2_vl.py --version 2.5
Environment: HF_TRANSFORMERS_SRC (default /work/.cache-hf/v4.46.1/src for 2, /work/.cache-hf/v4.49.0/src for 2.5),
HF_STUBS (default /work/shared/hf-modeling/stubs). Deterministic: fixed seed, one thread, deterministic algorithms.
"""
import argparse
import os
import re
import shutil
import sys

_ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
_ap.add_argument("--version", choices=["2", "2.5"], required=True)
_ap.add_argument("--seed", type=int, default=None, help="override the fixed seed (for choosing one)")
_ap.add_argument("--out", default=None, help="output folder (default tests/fixtures/hf-qwen2-vl or hf-qwen2_5-vl)")
ARGS = _ap.parse_args()
V25 = ARGS.version == "2.5"

HF_SRC = os.environ.get("HF_TRANSFORMERS_SRC", "/work/.cache-hf/v4.49.0/src" if V25 else "/work/.cache-hf/v4.46.1/src")
HF_STUBS = os.environ.get("HF_STUBS", "/work/shared/hf-modeling/stubs")
sys.path[:0] = [HF_STUBS, HF_SRC]  # stubs first (huggingface_hub, safetensors, tokenizers), then transformers

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
from onnx import helper, shape_inference, TensorProto  # noqa: E402
from PIL import Image  # noqa: E402

import transformers  # noqa: E402
from transformers import GenerationConfig, PreTrainedTokenizer, Qwen2Tokenizer, Qwen2VLImageProcessor  # noqa: E402
from transformers import tokenization_utils_base  # noqa: E402
from transformers.cache_utils import DynamicCache  # noqa: E402
from transformers.tokenization_utils import AddedToken  # noqa: E402
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD  # noqa: E402

if V25:
    from transformers import Qwen2_5_VLConfig as VLConfig  # noqa: E402
    from transformers import Qwen2_5_VLForConditionalGeneration as VLModel  # noqa: E402
    from transformers import Qwen2_5_VLProcessor as VLProcessor  # noqa: E402
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as modeling  # noqa: E402
else:
    from transformers import Qwen2VLConfig as VLConfig  # noqa: E402
    from transformers import Qwen2VLForConditionalGeneration as VLModel  # noqa: E402
    from transformers import Qwen2VLProcessor as VLProcessor  # noqa: E402
    from transformers.models.qwen2_vl import modeling_qwen2_vl as modeling  # noqa: E402

# Without the `tokenizers` package transformers falls back to its own AddedToken, a dataclass(eq=True) and so
# unhashable, which the slow-tokenizer __init__ puts in a dict lookup. Hash it by content, as tokenizers does.
if tokenization_utils_base.AddedToken.__hash__ is None:
    tokenization_utils_base.AddedToken.__hash__ = lambda self: hash(self.content)

# generate() asks integrations.fsdp.is_fsdp_managed_module, which imports torch.distributed.fsdp; on Python 3.11
# torch 1.13's fsdp package fails to import (a dataclass with a mutable default). Nothing here is FSDP-managed.
import transformers.generation.utils as _gen_utils  # noqa: E402

_gen_utils.is_fsdp_managed_module = lambda module: False

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fixture_io import dump, write_png, write_safetensors  # noqa: E402

GENERATOR = "tools/hf-fixtures/build_qwen2_vl.py"
ROOT = os.path.dirname(os.path.dirname(HERE))
NAME = "hf-qwen2_5-vl" if V25 else "hf-qwen2-vl"
OUT = ARGS.out or os.path.join(ROOT, "tests", "fixtures", NAME)
MODEL_DIR = os.path.join(OUT, "model")

# Chosen by scanning seeds (--seed N, 1..24 for Qwen2-VL, 1..60 for Qwen2.5-VL): greedy tokens of both cases are
# plain vocabulary words (no special / added token, no <unk>) and every greedy step's top-2 logit margin is the largest
# minimum found (0.18 and 0.21), so ONNX Runtime's ~1e-6 differences cannot flip a token.
SEED = ARGS.seed if ARGS.seed is not None else (52 if V25 else 3)
OPSET = 17
MAX_NEW_TOKENS = 4
GAIN = 1.5  # Linear / Conv3d weights: normal(0, GAIN / sqrt(fan_in))
EMBED_STD = 1.0  # token embeddings
BIAS_STD = 0.05  # biases: normal(0, BIAS_STD)
NORM_STD = 0.1  # LayerNorm / RMSNorm weights: 1 + normal(0, NORM_STD); LayerNorm biases normal(0, BIAS_STD)

# vision tower (real structure: 3-D patch conv 2×14×14, 2-D vision RoPE, 2×2 patch merger)
PATCH, TEMPORAL, MERGE = 14, 2, 2
V_EMBED, V_HEADS = 32, 4
V_DEPTH = 4 if V25 else 2
FULLATT = [1, 3]  # Qwen2.5-VL: blocks 0 and 2 windowed, 1 and 3 full attention
WINDOW = 56  # pixels: 56 // MERGE // PATCH = a 2×2 window of merged tokens (real: 112 -> 4×4)
# text decoder (Qwen2 with M-RoPE)
T_HIDDEN, T_LAYERS, T_HEADS, T_KV, T_FFN = 64, 2, 4, 2, 128
T_HEAD_DIM = T_HIDDEN // T_HEADS
MROPE_SECTION = [2, 3, 3]  # sums to head_dim / 2 = 8 (real 2B/7B: [16, 24, 24] for head_dim 128)
VOCAB_SIZE = 160
MAX_POS = 512
# image processor: the real min_pixels (56·56); max_pixels 28·28·16 so that 140×140 is scaled down (real 28·28·1280)
MIN_PIXELS, MAX_PIXELS = 56 * 56, 28 * 28 * 16

# ----------------------------------------------------------------------------- tokenizer
# Qwen/Qwen2-VL-2B-Instruct (and Qwen2.5-VL) added tokens, in their real order from id 151643 on; here they are the
# last ids of a 160-token vocabulary. Qwen2.5-VL adds eight more (special: false there).
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
]
EXTRA_25 = ["<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
            "<|repo_name|>", "<|file_sep|>"]
ADDED = SPECIAL_TOKENS + (EXTRA_25 if V25 else [])
UNK = "<unk>"  # a WordLevel fallback only (Qwen has no unk token); asserted never to occur in a prompt
WORDS = (
    "system user assistant You are a helpful . , ? ! : What what is in the picture this that there here it of on to "
    "an colour color red green blue yellow black white grey orange purple pink brown square circle shape object "
    "left right top bottom middle big small one two three four many no yes not and or Name name Describe describe "
    "image photo noise random pattern dots pixels bright dark light How how much count do does see stripes "
    "gradient corner edge"
).split()
VOCAB = {t: i for i, t in enumerate([UNK] + WORDS)}
assert len(VOCAB) == 1 + len(WORDS), "duplicate words"
BASE = VOCAB_SIZE - len(ADDED)
assert len(VOCAB) <= BASE
for i in range(len(VOCAB), BASE):
    VOCAB[f"<extra_{i}>"] = i
for i, t in enumerate(ADDED):
    VOCAB[t] = BASE + i
TOK = {t: VOCAB[t] for t in ADDED}
ENDOFTEXT, IM_START, IM_END = TOK["<|endoftext|>"], TOK["<|im_start|>"], TOK["<|im_end|>"]
IMAGE_PAD, VIDEO_PAD = TOK["<|image_pad|>"], TOK["<|video_pad|>"]
VISION_START, VISION_END, VISION_PAD = TOK["<|vision_start|>"], TOK["<|vision_end|>"], TOK["<|vision_pad|>"]

# The chat template of Qwen/Qwen2-VL-2B-Instruct (tokenizer_config.json / chat_template.json), verbatim: the same
# text as src-main/engine/vlm/chat-templates.ts QWEN2_VL and as ml-explore/mlx-swift-examples' Qwen2VL processor;
# the Qwen2.5-VL-*-Instruct checkpoints publish the same template (quoted as "the current chat template" in
# huggingface.co/Qwen/Qwen2.5-VL-32B-Instruct/discussions/18).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] "
    "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content "
    "%}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}"
)

_WS_RE = re.compile(r"\w+|[^\w\s]+")  # the `tokenizers` Whitespace pre-tokenizer


class WordLevelQwen2Tokenizer(Qwen2Tokenizer):
    """A slow tokenizer with the semantics of the hand-written tokenizer.json: added tokens split first, then the
    Whitespace pre-tokenizer and a WordLevel lookup, nothing prepended. `tokenizers` is not installable here, and
    HF's Qwen2VLProcessor accepts only a Qwen2Tokenizer(Fast): this subclass skips Qwen2Tokenizer's BPE set-up
    (vocab.json / merges.txt) and initialises as a plain PreTrainedTokenizer."""

    def __init__(self, **kwargs):
        self.vocab = dict(VOCAB)
        self.ids_to_tokens = {i: t for t, i in VOCAB.items()}
        PreTrainedTokenizer.__init__(self, **kwargs)

    @property
    def vocab_size(self):
        return len(self.vocab)

    def get_vocab(self):
        return dict(self.vocab)

    def _tokenize(self, text, **kwargs):
        return _WS_RE.findall(text)

    def _convert_token_to_id(self, token):
        return self.vocab.get(token, VOCAB[UNK])

    def _convert_id_to_token(self, index):
        return self.ids_to_tokens.get(index, UNK)

    def convert_tokens_to_string(self, tokens):
        return " ".join(tokens)

    def build_inputs_with_special_tokens(self, ids0, ids1=None):
        return ids0 + ([] if ids1 is None else ids1)

    def save_vocabulary(self, save_directory, filename_prefix=None):
        return ()


def make_tokenizer():
    tok = WordLevelQwen2Tokenizer(bos_token=None, eos_token="<|im_end|>", unk_token=None, pad_token="<|endoftext|>",
                                  additional_special_tokens=SPECIAL_TOKENS[1:], chat_template=CHAT_TEMPLATE,
                                  padding_side="left", errors="replace", split_special_tokens=False,
                                  clean_up_tokenization_spaces=False)
    if V25:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in EXTRA_25])
    for t in ADDED:
        assert tok.convert_tokens_to_ids(t) == VOCAB[t], t
    return tok


def tokenizer_json():
    added = [{"id": VOCAB[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": t in SPECIAL_TOKENS} for t in ADDED]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordLevel", "vocab": VOCAB, "unk_token": UNK},
    }


def tokenizer_config_json():
    # The keys of Qwen/Qwen2-VL-2B-Instruct's (Qwen2.5-VL-3B-Instruct's) tokenizer_config.json.
    return {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(VOCAB[t]): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                                 "single_word": False, "special": t in SPECIAL_TOKENS}
                                 for t in ADDED},
        "additional_special_tokens": SPECIAL_TOKENS[1:],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": MAX_POS,
        "pad_token": "<|endoftext|>",
        "padding_side": "left",
        "processor_class": "Qwen2_5_VLProcessor" if V25 else "Qwen2VLProcessor",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


# ----------------------------------------------------------------------------- model


def make_config():
    common = dict(depth=V_DEPTH, num_heads=V_HEADS, in_channels=3, patch_size=PATCH, spatial_merge_size=MERGE,
                  temporal_patch_size=TEMPORAL)
    if V25:
        vision = dict(common, hidden_size=V_EMBED, intermediate_size=2 * V_EMBED, hidden_act="silu",
                      out_hidden_size=T_HIDDEN, window_size=WINDOW, fullatt_block_indexes=FULLATT,
                      tokens_per_second=2)
    else:
        vision = dict(common, embed_dim=V_EMBED, hidden_size=T_HIDDEN, mlp_ratio=4, hidden_act="quick_gelu")
    cfg = VLConfig(
        vocab_size=VOCAB_SIZE, hidden_size=T_HIDDEN, intermediate_size=T_FFN, num_hidden_layers=T_LAYERS,
        num_attention_heads=T_HEADS, num_key_value_heads=T_KV, hidden_act="silu", max_position_embeddings=MAX_POS,
        rms_norm_eps=1e-6, tie_word_embeddings=False, rope_theta=1000000.0, use_sliding_window=False,
        sliding_window=4096, max_window_layers=T_LAYERS, attention_dropout=0.0, vision_config=vision,
        rope_scaling={"type": "mrope", "mrope_section": MROPE_SECTION},
        bos_token_id=ENDOFTEXT, eos_token_id=IM_END, vision_start_token_id=VISION_START,
        vision_end_token_id=VISION_END, vision_token_id=VISION_PAD, image_token_id=IMAGE_PAD,
        video_token_id=VIDEO_PAD, architectures=[VLModel.__name__], torch_dtype="float32",
    )
    return cfg


def reinit_(model):
    """HF's `_init_weights` draws normal(0, 0.02) with zero biases and unit norms: at this size that gives
    near-uniform attention and logits. Re-draw everything, in named_modules order, from the seeded RNG."""
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for _, mod in model.named_modules():
            is_norm = "Norm" in type(mod).__name__
            for p_name, p in mod.named_parameters(recurse=False):
                if is_norm:
                    if p_name == "weight":
                        p.copy_(1.0 + NORM_STD * torch.randn(p.shape, generator=g))
                    else:
                        p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
                elif p_name == "bias":
                    p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
                elif isinstance(mod, torch.nn.Embedding):
                    p.copy_(EMBED_STD * torch.randn(p.shape, generator=g))
                else:  # Linear, Conv3d
                    fan_in = int(np.prod(p.shape[1:]))
                    p.copy_(GAIN / np.sqrt(fan_in) * torch.randn(p.shape, generator=g))


def build_model():
    model = VLModel._from_config(make_config(), attn_implementation="eager")
    model.eval()
    reinit_(model)
    model.generation_config = GenerationConfig(bos_token_id=ENDOFTEXT, pad_token_id=ENDOFTEXT,
                                               eos_token_id=[IM_END, ENDOFTEXT])
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr(), "lm_head must not be tied"
    attn = {type(model.visual.blocks[0].attn).__name__, type(model.model.layers[0].self_attn).__name__}
    expect = {"Qwen2_5_VLVisionAttention", "Qwen2_5_VLAttention"} if V25 else {"VisionAttention", "Qwen2VLAttention"}
    assert attn == expect, attn  # the eager classes
    return model


# ----------------------------------------------------------------------------- export wrappers

GRID_INPUT = "image_grid_thw" if V25 else "grid_thw"  # transformers.js 4.3.1 image_grid_thw_name


class VisionEncoder(torch.nn.Module):
    """pixel_values [patches, 3·2·14·14], grid_thw [1, 3] -> image_features [tokens, hidden]: HF's `model.visual`
    (what Qwen2VLForConditionalGeneration.forward calls for pixel_values)."""

    def __init__(self, model):
        super().__init__()
        self.visual = model.visual

    def forward(self, pixel_values, grid_thw):
        return self.visual(pixel_values, grid_thw=grid_thw)


class EmbedTokens(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.embed = model.get_input_embeddings()

    def forward(self, input_ids):
        return self.embed(input_ids)


class Decoder(torch.nn.Module):
    """inputs_embeds, attention_mask, position_ids [3, B, S], past... -> logits, presents... through the model's
    own forward (inputs_embeds given: no vision) with a DynamicCache, the cache class HF's generate uses."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        cache = DynamicCache.from_legacy_cache(tuple((past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)))
        out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=cache, use_cache=True, return_dict=True)
        presents = []
        for k, v in zip(out.past_key_values.key_cache, out.past_key_values.value_cache):
            presents += [k, v]
        return (out.logits, *presents)


def kv_names():
    past, present = [], []
    for i in range(T_LAYERS):
        for kv in ("key", "value"):
            past.append(f"past_key_values.{i}.{kv}")
            present.append(f"present.{i}.{kv}")
    return past, present


def _bitwise_or(g, a, b):
    return g.op("Or", a, b)


class _ExportPatches:
    """During the export only: torch.repeat_interleave with a tensor `repeats` (vision cu_seqlens) as the equivalent
    cat(expand(...)), one term per image (the exported graph holds one image)."""

    def __enter__(self):
        self.orig = torch.repeat_interleave
        orig = self.orig

        def repeat_interleave(input, repeats=None, dim=None, **kw):
            if isinstance(repeats, torch.Tensor) and repeats.dim() == 1 and input.dim() == 1 and dim is None:
                return torch.cat([input[i:i + 1].expand(repeats[i]) for i in range(input.shape[0])])
            return orig(input, repeats, dim, **kw)

        torch.repeat_interleave = repeat_interleave
        torch.onnx.register_custom_op_symbolic("aten::bitwise_or", _bitwise_or, OPSET)
        return self

    def __exit__(self, *exc):
        torch.repeat_interleave = self.orig
        torch.onnx.unregister_custom_op_symbolic("aten::bitwise_or", OPSET)


def cast_int32_slice_bounds(path):
    """Slice nodes whose starts/ends/axes/steps are int32 (v4.46 cu_seqlens) next to int64 ones: ONNX Runtime
    requires one type. Insert Cast(to=INT64) in front of each int32 bound. Returns how many were cast."""
    m = onnx.load(path)
    inferred = shape_inference.infer_shapes(m)
    types = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        types[vi.name] = vi.type.tensor_type.elem_type
    for init in m.graph.initializer:
        types[init.name] = init.data_type
    for node in m.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    types[node.output[0]] = a.t.data_type
    nodes, n_cast = [], 0
    for node in m.graph.node:
        if node.op_type == "Slice":
            for j in range(1, len(node.input)):
                name = node.input[j]
                if name and types.get(name) == TensorProto.INT32:
                    cast_out = f"{name}_int64_for_{node.name or 'slice'}_{j}"
                    nodes.append(helper.make_node("Cast", [name], [cast_out], to=TensorProto.INT64,
                                                  name=f"{node.name}_cast_{j}"))
                    node.input[j] = cast_out
                    n_cast += 1
        nodes.append(node)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return n_cast


def export_onnx(model, onnx_dir, pixel_values, grid_thw):
    os.makedirs(onnx_dir, exist_ok=True)
    notes = {}
    with _ExportPatches():
        vpath = os.path.join(onnx_dir, "vision_encoder.onnx")
        torch.onnx.export(
            VisionEncoder(model), (pixel_values, grid_thw), vpath, opset_version=OPSET, do_constant_folding=True,
            input_names=["pixel_values", GRID_INPUT], output_names=["image_features"],
            dynamic_axes={"pixel_values": {0: "num_patches"}, "image_features": {0: "num_image_tokens"}},
        )
        notes["vision_int32_slice_casts"] = cast_int32_slice_bounds(vpath)
        torch.onnx.export(
            EmbedTokens(model), (torch.randint(0, VOCAB_SIZE, (2, 7)),), os.path.join(onnx_dir, "embed_tokens.onnx"),
            opset_version=OPSET, do_constant_folding=True, input_names=["input_ids"], output_names=["inputs_embeds"],
            dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"},
                          "inputs_embeds": {0: "batch_size", 1: "sequence_length"}},
        )
        b, s, p = 2, 3, 5  # a non-empty dummy past; prefill (past 0) and decode must both work at run time
        past_names, present_names = kv_names()
        axes = {"inputs_embeds": {0: "batch_size", 1: "sequence_length"},
                "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
                "position_ids": {1: "batch_size", 2: "sequence_length"},
                "logits": {0: "batch_size", 1: "sequence_length"}}
        for n in past_names:
            axes[n] = {0: "batch_size", 2: "past_sequence_length"}
        for n in present_names:
            axes[n] = {0: "batch_size", 2: "total_sequence_length"}
        past = [torch.randn(b, T_KV, p, T_HEAD_DIM) for _ in past_names]
        pos = torch.stack([torch.arange(p, p + s)[None].expand(b, s) + k for k in (0, 1, 2)]).contiguous()
        args = (torch.randn(b, s, T_HIDDEN), torch.ones(b, p + s, dtype=torch.long), pos, *past)
        dpath = os.path.join(onnx_dir, "decoder_model_merged.onnx")
        torch.onnx.export(
            Decoder(model), args, dpath, opset_version=OPSET, do_constant_folding=True,
            input_names=["inputs_embeds", "attention_mask", "position_ids", *past_names],
            output_names=["logits", *present_names], dynamic_axes=axes,
        )
        notes["decoder_int32_slice_casts"] = cast_int32_slice_bounds(dpath)
    for f in sorted(os.listdir(onnx_dir)):
        m = onnx.load(os.path.join(onnx_dir, f))
        onnx.checker.check_model(m)
        notes[f] = {"inputs": [i.name for i in m.graph.input], "outputs": [o.name for o in m.graph.output],
                    "bytes": os.path.getsize(os.path.join(onnx_dir, f))}
    return notes


# ----------------------------------------------------------------------------- hub files


def image_processor():
    return Qwen2VLImageProcessor(do_resize=True, resample=3, do_rescale=True, rescale_factor=1 / 255,
                                 do_normalize=True, image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD,
                                 do_convert_rgb=True, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS,
                                 patch_size=PATCH, temporal_patch_size=TEMPORAL, merge_size=MERGE)


def write_hub_files(model, processor, d):
    cfg = model.config.to_dict()
    cfg["transformers.js_config"] = {"dtype": "fp32"}
    dump(os.path.join(d, "config.json"), cfg)
    model.generation_config.to_json_file(os.path.join(d, "generation_config.json"), use_diff=True)
    ip = processor.image_processor.to_dict()
    ip["processor_class"] = type(processor).__name__  # as save_pretrained through the processor writes it
    dump(os.path.join(d, "preprocessor_config.json"), ip)
    dump(os.path.join(d, "chat_template.json"), {"chat_template": CHAT_TEMPLATE})
    dump(os.path.join(d, "tokenizer.json"), tokenizer_json())
    dump(os.path.join(d, "tokenizer_config.json"), tokenizer_config_json())
    dump(os.path.join(d, "special_tokens_map.json"), {
        "additional_special_tokens": SPECIAL_TOKENS[1:], "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
    })


# ----------------------------------------------------------------------------- images


def pattern_image(w, h, seed):
    """Smooth gradients, a few hard edges and noise: resampling differences show up, colours are not flat."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 127.5 + 127.5 * np.sin(2 * np.pi * (x / 7.0 + y / 11.0))
    img = np.stack([r, g, b], -1)
    img[(x // 5 + y // 5) % 2 == 0] *= 0.6  # checkerboard of 5-px cells
    img += rng.normal(0, 12, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


# Which single-image grids the traced vision graph reproduces (ONNX Runtime vs PyTorch on shapes/, checked by
# tools/hf-fixtures/check_qwen2_vl.mjs, which fails when a grid listed here is not reproduced). Qwen2-VL: the grid
# reaches every op through grid_thw values (Range/Reshape/Slice/ScatterND), so every shape's grid works. Qwen2.5-VL:
# the window permutation is computed in-graph (NonZero/GatherND, TopK for argsort) but the window boundaries
# (cu_window_seqlens, `.tolist()`) are constants [0, 16, 24] of the exported grid: only grids whose windows split
# the same way work ([1,4,6] itself and [1,4,4], a single 2x2-merged window); other grids give wrong features.
VISION_GRIDS_REPRODUCED = ([[1, 4, 6], [1, 4, 4]] if V25 else
                           [[1, 4, 6], [1, 4, 4], [1, 2, 8], [1, 8, 2], [1, 8, 8]])
IMAGE_W, IMAGE_H = 84, 56  # -> resized 84×56, grid_thw [1, 4, 6], 6 image tokens (merged 2×3)
SHAPES = [(56, 56), (84, 56), (100, 37), (37, 100), (140, 140), (70, 42)]


# ----------------------------------------------------------------------------- references


def rope_index(model, input_ids, image_grid_thw, attention_mask):
    return model.get_rope_index(input_ids, image_grid_thw=image_grid_thw, video_grid_thw=None,
                                attention_mask=attention_mask)


def vision_hidden_states(model, pixel_values, grid_thw):
    """The tower's residual stream and attention probabilities in HF's own order: hidden_states.0 = the input of
    block 0 (patch_embed output; Qwen2.5-VL: already window-permuted), hidden_states.k+1 = output of block k,
    attentions.k = block k's softmax(QK^T/sqrt(d) + mask) [heads, seq, seq] (VisionAttention returns none, so the
    softmax calls are recorded), plus patch_embed and merger outputs. Qwen2.5-VL permutes back only after the merger."""
    got, probs = [], []
    hooks = [model.visual.patch_embed.register_forward_hook(lambda m, i, o: got.append(("patch_embed", o))),
             model.visual.blocks[0].register_forward_pre_hook(lambda m, i: got.append(("hidden_states.0", i[0])))]
    for k, blk in enumerate(model.visual.blocks):
        hooks.append(blk.register_forward_hook(lambda m, i, o, k=k: got.append((f"hidden_states.{k + 1}", o))))
    hooks.append(model.visual.merger.register_forward_hook(lambda m, i, o: got.append(("merger", o))))
    softmax = torch.nn.functional.softmax

    def recording_softmax(*a, **kw):
        y = softmax(*a, **kw)
        probs.append(y)
        return y

    torch.nn.functional.softmax = recording_softmax
    try:
        feats = model.visual(pixel_values, grid_thw=grid_thw)
    finally:
        torch.nn.functional.softmax = softmax
        for h in hooks:
            h.remove()
    assert len(probs) == len(model.visual.blocks), len(probs)
    got += [(f"attentions.{k}", p) for k, p in enumerate(probs)]
    return feats, got


def greedy_with_cache(decoder, embed, x, position_ids, rope_delta, n):
    """Greedy decoding through the exported wrappers' maths with their own cache. Decode-step positions as HF
    generate computes them: cache_position + rope_deltas on all three axes."""
    seq = x.shape[1]
    empty = [torch.zeros(1, T_KV, 0, T_HEAD_DIM) for _ in range(2 * T_LAYERS)]
    res = decoder(x, torch.ones(1, seq, dtype=torch.long), position_ids, *empty)
    last, past, total, tokens, step_logits, step_pos = res[0][0, -1], list(res[1:]), seq, [], [], []
    for step in range(n):
        nxt = int(torch.argmax(last))
        tokens.append(nxt)
        if nxt in (IM_END, ENDOFTEXT) or step == n - 1:
            break
        e = embed(torch.tensor([[nxt]]))
        pos = torch.full((3, 1, 1), total + rope_delta, dtype=torch.long)
        total += 1
        res = decoder(e, torch.ones(1, total, dtype=torch.long), pos, *past)
        last, past = res[0][0, -1], list(res[1:])
        step_logits.append(res[0])
        step_pos.append([int(v) for v in pos.flatten()])
    return tokens, step_logits, step_pos


class PositionRecorder:
    """Records the position_ids the inner model receives on each call during generate (prefill, then each step)."""

    def __init__(self, inner):
        self.inner, self.calls, self.orig = inner, [], inner.forward

    def __enter__(self):
        orig = self.orig

        def forward(*a, **kw):
            self.calls.append(kw.get("position_ids"))
            return orig(*a, **kw)

        self.inner.forward = forward
        return self

    def __exit__(self, *exc):
        del self.inner.forward


def run_case(model, processor, name, question, image):
    content = ([{"type": "image"}] if image is not None else []) + [{"type": "text", "text": question}]
    prompt = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    pil = None if image is None else Image.fromarray(image, "RGB")
    enc = processor(text=[prompt], images=None if pil is None else [pil], return_tensors="pt")
    input_ids, attn = enc["input_ids"], enc["attention_mask"]
    ids = input_ids[0].tolist()
    assert VOCAB[UNK] not in ids, f"{name}: out-of-vocabulary words in {prompt!r}"
    grid = enc.get("image_grid_thw")
    position_ids, rope_deltas = rope_index(model, input_ids, grid, attn)
    rope_delta = int(rope_deltas.flatten()[0])
    out = {"input_ids": input_ids.numpy(), "position_ids": position_ids.numpy().astype(np.int64)}
    kw = {}
    n_vis = 0
    if image is not None:
        pixel_values = enc["pixel_values"]
        out["pixel_values"] = pixel_values.numpy().astype(np.float32)
        out["image_grid_thw"] = grid.numpy().astype(np.int64)
        feats, hs = vision_hidden_states(model, pixel_values, grid)
        out["image_features"] = feats.numpy()
        for k, h in hs:
            out[f"vision.{k}"] = h.numpy()
        n_vis = len(model.visual.blocks) + 1
        if V25:
            window_index, cu_window = model.visual.get_window_index(grid)
            out["vision.window_index"] = window_index.numpy().astype(np.int64)
        kw = {"pixel_values": pixel_values, "image_grid_thw": grid}
    # An empty DynamicCache, as generate passes one (v4.46's Qwen2VLModel makes none when given None).
    res = model(input_ids=input_ids, attention_mask=attn, position_ids=position_ids, past_key_values=DynamicCache(),
                use_cache=True, output_hidden_states=True, output_attentions=True, return_dict=True, **kw)
    out["logits"] = res.logits.numpy()
    for i, h in enumerate(res.hidden_states):
        out[f"text.hidden_states.{i}"] = h.numpy()
    for i, a in enumerate(res.attentions):
        out[f"text.attentions.{i}"] = a.numpy()
    for i, (k, v) in enumerate(zip(res.past_key_values.key_cache, res.past_key_values.value_cache)):
        out[f"present.{i}.key"] = k.numpy()
        out[f"present.{i}.value"] = v.numpy()

    # HF generate (greedy), recording the position ids it gives the inner model at each step.
    if V25:
        model.rope_deltas = None  # v4.49 keeps rope_deltas on the module between calls
    with PositionRecorder(model.model) as rec:
        gen = model.generate(input_ids=input_ids, attention_mask=attn, max_new_tokens=MAX_NEW_TOKENS,
                             do_sample=False, **kw)
    tokens = gen[0, len(ids):].tolist()
    hf_positions = [None if p is None else p.numpy().astype(np.int64) for p in rec.calls]
    assert hf_positions[0] is not None and np.array_equal(hf_positions[0], out["position_ids"]), \
        f"{name}: generate's prefill position ids differ from get_rope_index"
    decode_positions = [[int(v) for v in p.flatten()] for p in hf_positions[1:]]

    # The exported wrappers' maths, with their own cache and the decode positions above, must give the same tokens;
    # keep the logits of the first cached decode step as a KV-cache reference.
    inputs_embeds = res.hidden_states[0]
    dec, emb = Decoder(model), EmbedTokens(model)
    mine, step_logits, step_pos = greedy_with_cache(dec, emb, inputs_embeds, position_ids, rope_delta, MAX_NEW_TOKENS)
    assert mine == tokens, f"{name}: generate {tokens} vs cached wrapper {mine}"
    assert step_pos == decode_positions, f"{name}: decode positions {step_pos} vs generate's {decode_positions}"
    out["decode.logits"] = step_logits[0].numpy()
    out["decode.position_ids"] = np.array(step_pos[0], dtype=np.int64).reshape(3, 1, 1)
    margins = []
    full = torch.cat([inputs_embeds, emb(torch.tensor([tokens[:-1]]))], dim=1)
    full_pos = torch.cat([position_ids] + [torch.tensor(p, dtype=torch.long).reshape(3, 1, 1) for p in step_pos],
                         dim=2)
    all_logits = dec(full, torch.ones(1, full.shape[1], dtype=torch.long), full_pos,
                     *[torch.zeros(1, T_KV, 0, T_HEAD_DIM) for _ in range(2 * T_LAYERS)])[0][0]
    for step in range(len(tokens)):
        top2 = torch.topk(all_logits[len(ids) - 1 + step], 2).values
        margins.append(round(float(top2[0] - top2[1]), 5))
    attn_max = [round(float(a.max(-1).values.mean()), 4) for a in res.attentions]
    case = {
        "name": name, "question": question, "prompt": prompt,
        "num_images": 0 if image is None else 1, "sequence_length": len(ids), "input_ids": ids,
        "image_token_positions": [i for i, t in enumerate(ids) if t == IMAGE_PAD],
        "image_grid_thw": None if grid is None else grid.tolist(),
        "position_ids": out["position_ids"][:, 0, :].tolist(),
        "rope_delta": rope_delta,
        "greedy_tokens": tokens, "greedy_top2_margins": margins,
        "decode_position_ids": decode_positions,
        "decode_step": {"token": tokens[0], "position_ids": step_pos[0], "past_sequence_length": len(ids),
                        "tensor": "decode.logits", "position_tensor": "decode.position_ids"},
        "num_vision_hidden_states": n_vis, "num_vision_attentions": n_vis - 1 if n_vis else 0,
        "num_text_hidden_states": len(res.hidden_states),
        "num_text_attentions": len(res.attentions), "text_attention_mean_row_max": attn_max,
        "tensors": sorted(out),
    }
    print(f"  {name}: seq {len(ids)}, rope_delta {rope_delta}, greedy {tokens}, margins {margins}, "
          f"decode positions {decode_positions}, attention mean row max {attn_max}")
    return case, out


# ----------------------------------------------------------------------------- main


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print(f"transformers {transformers.__version__} from {transformers.__file__}")
    print(f"torch {torch.__version__}, onnx {onnx.__version__}; {NAME}, seed {SEED}")

    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "shapes"))
    os.makedirs(os.path.join(MODEL_DIR, "onnx"))

    model = build_model()
    processor = VLProcessor(image_processor=image_processor(), tokenizer=make_tokenizer(), chat_template=CHAT_TEMPLATE)
    write_hub_files(model, processor, MODEL_DIR)

    image = pattern_image(IMAGE_W, IMAGE_H, SEED + 2)
    write_png(os.path.join(OUT, "image.png"), image)
    px = processor.image_processor(images=[Image.fromarray(image, "RGB")], return_tensors="pt")
    with torch.no_grad():
        export_notes = export_onnx(model, os.path.join(MODEL_DIR, "onnx"), px["pixel_values"], px["image_grid_thw"])
    export_grid = px["image_grid_thw"][0].tolist()

    cases_spec = [
        ("image", "What is in the picture?", image, "image.png"),
        ("text-only", "Name a colour that is not red.", None, None),
    ]
    tensors, cases = {}, []
    print("references:")
    with torch.no_grad():
        for name, question, img, png in cases_spec:
            case, out = run_case(model, processor, name, question, img)
            case["image"] = png
            case["image_size"] = None if img is None else {"width": img.shape[1], "height": img.shape[0]}
            cases.append(case)
            for k, v in out.items():
                tensors[f"{name}/{k}"] = v
        shapes = []
        for i, (w, h) in enumerate(SHAPES):
            img = pattern_image(w, h, SEED + 10 + i)
            rel = f"shapes/{w}x{h}.png"
            write_png(os.path.join(OUT, rel), img)
            enc = processor.image_processor(images=[Image.fromarray(img, "RGB")], return_tensors="pt")
            pv, grid = enc["pixel_values"], enc["image_grid_thw"]
            tensors[f"shapes/{w}x{h}/pixel_values"] = pv.numpy().astype(np.float32)
            tensors[f"shapes/{w}x{h}/image_grid_thw"] = grid.numpy().astype(np.int64)
            tensors[f"shapes/{w}x{h}/image_features"] = model.visual(pv, grid_thw=grid).numpy()
            shapes.append({"image": rel, "width": w, "height": h, "tensor": f"shapes/{w}x{h}/pixel_values",
                           "image_grid_thw": grid[0].tolist(), "pixel_values_shape": list(pv.shape),
                           "resized": {"height": grid[0, 1].item() * PATCH, "width": grid[0, 2].item() * PATCH},
                           "image_features_tensor": f"shapes/{w}x{h}/image_features"})
            print(f"  shapes/{w}x{h}: grid {grid[0].tolist()}")
    write_safetensors(os.path.join(OUT, "reference.safetensors"), tensors, GENERATOR)
    vision_note = (
        "vision.hidden_states.0 = input of block 0 (the Conv3d patch embedding, [patches, embed]), "
        "vision.hidden_states.k+1 = output of block k, vision.attentions.k = block k's attention probabilities "
        "[heads, patches, patches], vision.patch_embed / vision.merger = those modules' outputs; image_features = "
        "model.visual(...) (what forward scatters into the <|image_pad|> rows). ")
    if V25:
        vision_note += ("Qwen2.5-VL: blocks run on the window-permuted sequence (groups of merge_size^2 patches in "
                        "the order vision.window_index), so vision.hidden_states.*, vision.attentions.* and "
                        "vision.merger rows are in window order (vision.patch_embed is not); image_features = merger rows permuted back by argsort(window_index). Blocks "
                        f"{FULLATT} attend over the whole image, the others within windows of "
                        f"{WINDOW // MERGE // PATCH}x{WINDOW // MERGE // PATCH} merged tokens.")
    else:
        vision_note += "Qwen2-VL: every block attends over the whole image (block-diagonal over images)."
    index = {
        "generator": GENERATOR,
        "family": "qwen2_5_vl" if V25 else "qwen2_vl",
        "hf_class": VLModel.__name__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "opset": OPSET,
        "seed": SEED,
        "init": {"linear_conv_weights": f"normal(0, {GAIN}/sqrt(fan_in))", "embeddings": f"normal(0, {EMBED_STD})",
                 "bias_std": BIAS_STD, "norm_weight": f"1 + normal(0, {NORM_STD})",
                 "note": "HF's _init_weights (std 0.02, zero biases, unit norms) then every parameter re-drawn"},
        "max_new_tokens": MAX_NEW_TOKENS,
        "text_layers": T_LAYERS,
        "vision_blocks": V_DEPTH,
        "vision_fullatt_block_indexes": FULLATT if V25 else list(range(V_DEPTH)),
        "vision_window_merged_tokens": (WINDOW // MERGE // PATCH) if V25 else None,
        "mrope_section": MROPE_SECTION,
        "spatial_merge_size": MERGE,
        "image_token_id": IMAGE_PAD,
        "vision_start_token_id": VISION_START,
        "vision_end_token_id": VISION_END,
        "eos_token_id": IM_END,
        "generation_eos_token_ids": [IM_END, ENDOFTEXT],
        "vision_input_names": ["pixel_values", GRID_INPUT],
        "vision_graph_exported_for": {"image_grid_thw": export_grid, "num_images": 1,
                                      "image": f"image.png ({IMAGE_W}x{IMAGE_H})"},
        "vision_graph_grids_reproduced": VISION_GRIDS_REPRODUCED,
        "vision_graph_note": (
            "TorchScript tracing unrolls the per-image loops: the vision graph takes exactly one image. " + (
                "Qwen2.5-VL's window index and window cu_seqlens (get_window_index, .tolist()) are constants of the "
                "exported grid (the window permutation itself is computed in-graph: NonZero/GatherND, TopK), so "
                "only grids with the same window split are reproduced (vision_graph_grids_reproduced); others give "
                "wrong image features without an error." if V25 else
                "Qwen2-VL's grid enters every op through grid_thw values (Range/Reshape/Slice/ScatterND), so the "
                "graph reproduces any single-image grid (verified on every shapes/ grid).") +
            " Verified by tools/hf-fixtures/check_qwen2_vl.mjs (ONNX Runtime vs shapes/<w>x<h>/image_features)."),
        "export": export_notes,
        "chat_template_source": ("Qwen/Qwen2-VL-2B-Instruct tokenizer_config.json / chat_template.json (same text "
                                 "published for Qwen2.5-VL-*-Instruct)"),
        "tensor_naming": ("<case name>/<tensor> in reference.safetensors; shapes/<w>x<h>/{pixel_values,"
                          "image_grid_thw,image_features}"),
        "position_ids_note": ("position_ids [3, 1, seq] from get_rope_index (HF v4.46 forward does not compute "
                              "them; v4.49 would, the same); decode steps: all three axes = cache_position + "
                              "rope_delta, as HF generate computes them (decode_position_ids, recorded from "
                              "generate's calls)"),
        "hidden_states_note": ("text.hidden_states.0 = inputs_embeds (image rows replaced), .1 = after layer 0, "
                               ".2 = after the final RMSNorm (HF replaces the last layer's output by norm(x)). "
                               + vision_note),
        "cases": cases,
        "shapes": shapes,
        "shapes_note": ("pixel_values / image_grid_thw from HF's Qwen2VLImageProcessor (PIL bicubic, smart_resize "
                        f"with factor {PATCH * MERGE}, min_pixels {MIN_PIXELS}, max_pixels {MAX_PIXELS}); 70x42 "
                        "has a side of 2.5 factors: Python's round() gives 2 (banker's rounding), JavaScript's "
                        "Math.round 3; image_features = model.visual on them (PyTorch)"),
    }
    dump(os.path.join(OUT, "reference.json"), index)
    print(f"wrote {OUT}")
    return index


if __name__ == "__main__":
    main()
