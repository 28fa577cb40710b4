#!/usr/bin/python3
"""hf-idefics3: a tiny Idefics3 (SmolVLM family) built from the real Hugging Face modeling code, exported like
onnx-community's SmolVLM.

Model      `Idefics3ForConditionalGeneration` of transformers v4.46.1 (SigLIP-like vision tower with NaViT
           position ids, pixel-shuffle connector, Llama decoder), built from a config with random weights (fixed
           seed), attn_implementation="eager". The references are HF's own forward passes
           (`Idefics3ForConditionalGeneration.forward` / `.generate`, `Idefics3ImageProcessor`, `Idefics3Processor`,
           `apply_chat_template`).
Export     TorchScript `torch.onnx.export`, opset 17, into the transformers.js layout:
           model/onnx/{vision_encoder,embed_tokens,decoder_model_merged}.onnx.
           vision_encoder: pixel_values [batch, num_images, 3, 32, 32] float + pixel_attention_mask
           [batch, num_images, 32, 32] bool -> image_features [real images, 16, 64] (as SmolVLM ships: all-zero padding
           images dropped in-graph, then the vision tower on each tile, pixel shuffle, projection).
           The vision graph is HF's code with four changes the TorchScript exporter of torch 1.13 needs, each checked
           against the unmodified module below (`check_export_patches`):
             1. the patch Conv2d's padding="valid" -> (0, 0) (same maths; "valid" traces to aten::_convolution_mode);
             2. the patch mask: `unfold` on the pixel mask -> reshape + sum (unfold on a dynamic size cannot export);
             3. `Idefics3VisionEmbeddings` position ids: HF loops over the images in Python (a traced graph would be
                specialised to the exported image count) and calls `torch.bucketize` (no ONNX symbolic). The export
                computes the same ids for all images at once, bucketize as compare-and-sum. Equal to HF's loop for
                the masks HF's processor makes (each image's valid patches a top-left rectangle), which is every
                case the fixture stores and any image count;
             4. traced with a partly masked image, so the graph always applies HF's 4-D vision attention mask
                (`_prepare_4d_attention_mask`; all zeros when nothing is masked, as HF's own `None` shortcut).
References reference.json + reference.safetensors (`<case>/<tensor>`), split.png, single.png, shapes/<w>x<h>.png.

Run (from the repository root, Debian's python3: torch 1.13 CPU, onnx, numpy, PIL, jinja2):
    /usr/bin/python3 tools/hf-fixtures/build_idefics3.py
Environment: HF_TRANSFORMERS_SRC (default /work/.cache-hf/v4.46.1/src), HF_STUBS (default
/work/shared/hf-modeling/stubs). Deterministic: fixed seed, one thread, torch.use_deterministic_algorithms.
"""
import copy
import os
import re
import shutil
import sys

HF_SRC = os.environ.get("HF_TRANSFORMERS_SRC", "/work/.cache-hf/v4.46.1/src")
HF_STUBS = os.environ.get("HF_STUBS", "/work/shared/hf-modeling/stubs")
sys.path[:0] = [HF_STUBS, HF_SRC]  # stubs first (huggingface_hub, safetensors, tokenizers), then transformers

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import transformers  # noqa: E402
from transformers import (  # noqa: E402
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3ImageProcessor,
    Idefics3Processor,
    PreTrainedTokenizer,
)
from transformers.cache_utils import DynamicCache  # noqa: E402
from transformers.models.idefics3 import modeling_idefics3  # noqa: E402
from transformers import tokenization_utils_base  # noqa: E402

# Without the `tokenizers` package transformers falls back to its own AddedToken, a dataclass(eq=True) and so
# unhashable, which v4.46.1's slow-tokenizer __init__ puts in a dict lookup. Hash it by content, as tokenizers does.
if tokenization_utils_base.AddedToken.__hash__ is None:
    tokenization_utils_base.AddedToken.__hash__ = lambda self: hash(self.content)
# Idefics3Processor.__init__ adds its special tokens as AddedToken objects, and the slow tokenizer's _add_tokens then
# calls token.__setstate__ (a method of the `tokenizers` class), which the fallback lacks.
if not hasattr(tokenization_utils_base.AddedToken, "__setstate__"):
    tokenization_utils_base.AddedToken.__setstate__ = lambda self, state: self.__dict__.update(state)

# generate() asks integrations.fsdp.is_fsdp_managed_module, which imports torch.distributed.fsdp; on Python 3.11
# torch 1.13's fsdp package fails to import (a dataclass with a mutable default). Nothing here is FSDP-managed.
import transformers.generation.utils as _gen_utils  # noqa: E402

_gen_utils.is_fsdp_managed_module = lambda module: False

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fixture_io import dump, write_png, write_safetensors  # noqa: E402

GENERATOR = "tools/hf-fixtures/build_idefics3.py"
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "hf-idefics3")
MODEL_DIR = os.path.join(OUT, "model")

SEED = int(os.environ.get("IDEFICS3_SEED", "20250301"))
OPSET = 17
MAX_NEW_TOKENS = 4
WEIGHT_STD = 0.3  # Linear / Conv2d / Embedding weights: normal(0, WEIGHT_STD)
BIAS_STD = 0.05  # Linear / Conv2d / LayerNorm biases: normal(0, BIAS_STD)
NORM_STD = 0.1  # LayerNorm / RMSNorm weights: 1 + normal(0, NORM_STD)

TILE, PATCH, SCALE = 32, 4, 2  # vision image_size, patch_size; connector scale_factor
IMAGE_SEQ_LEN = (TILE // PATCH) ** 2 // SCALE**2  # 64 patches -> 16 tokens per tile after pixel shuffle
RESIZE_LONGEST = 64  # Idefics3ImageProcessor size.longest_edge (SmolVLM: 4 * 384)
V_HIDDEN, V_LAYERS, V_HEADS, V_FFN = 32, 2, 4, 64
T_HIDDEN, T_LAYERS, T_HEADS, T_KV, T_FFN = 64, 2, 4, 2, 128
T_HEAD_DIM = T_HIDDEN // T_HEADS
VOCAB_SIZE = 160
MAX_POS = 512

# ----------------------------------------------------------------------------- tokenizer
# HuggingFaceTB/SmolVLM-Instruct (GPT-2 BPE, vocab 49152 + added): <|endoftext|> 0 (unk), <|im_start|> 1 (bos),
# <|im_end|> 2 (pad); added special tokens <fake_token_around_image>, <image>, <end_of_utterance> (eos),
# <global-img> and <row_1_col_1> ... <row_6_col_6>. Here the same tokens, a WordLevel vocabulary, the specials last.
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
WORDS = (
    "User Assistant : What what is in the picture image photo ? . , ! a an of on to it this that there here colour "
    "color red green blue yellow black white grey orange purple pink brown square circle shape object left right top "
    "bottom middle big small one two three four many no yes not and or Name name Describe describe noise random "
    "pattern dots pixels bright dark light How how much count are do does see stripes gradient tall wide"
).split()
FAKE_TOKEN, IMAGE_TOKEN, EOU_TOKEN, GLOBAL_TOKEN = "<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"
ROW_COL_TOKENS = [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
IMAGE_SPECIALS = [FAKE_TOKEN, IMAGE_TOKEN, EOU_TOKEN, GLOBAL_TOKEN, *ROW_COL_TOKENS]
VOCAB = {t: i for i, t in enumerate(SPECIALS + WORDS)}
assert len(VOCAB) == len(SPECIALS) + len(WORDS), "duplicate words"
FIRST_SPECIAL = VOCAB_SIZE - len(IMAGE_SPECIALS)
assert len(VOCAB) <= FIRST_SPECIAL
for i in range(len(VOCAB), FIRST_SPECIAL):
    VOCAB[f"<extra_{i}>"] = i
for i, t in enumerate(IMAGE_SPECIALS):
    VOCAB[t] = FIRST_SPECIAL + i
UNK_ID, BOS_ID, PAD_ID = VOCAB["<|endoftext|>"], VOCAB["<|im_start|>"], VOCAB["<|im_end|>"]
IMAGE_TOKEN_ID, EOS_ID, FAKE_ID, GLOBAL_ID = VOCAB[IMAGE_TOKEN], VOCAB[EOU_TOKEN], VOCAB[FAKE_TOKEN], VOCAB[GLOBAL_TOKEN]
ADDED = SPECIALS + IMAGE_SPECIALS
ADDITIONAL_SPECIAL = [FAKE_TOKEN, IMAGE_TOKEN, EOU_TOKEN]  # SmolVLM-Instruct's additional_special_tokens

# SmolVLM's image chat template, verbatim as the `chat_template` of `prepare_processor_dict` in huggingface/transformers
# tests/models/smolvlm/test_processing_smolvlm.py (the hub file could not be fetched here); identical to the text
# src-main/engine/vlm/chat-templates.ts carries as HuggingFaceTB/SmolVLM-Instruct's chat_template.json. SmolVLM2's
# video template adds only a `video` branch; Idefics3-8B-Llama3 publishes it with `<|begin_of_text|>` and
# `.capitalize()` instead of `<|im_start|>` and `| capitalize`.
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == "
    "'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if line['type'] == 'text' %}"
    "{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

_WS_RE = re.compile(r"\w+|[^\w\s]+")  # the `tokenizers` Whitespace pre-tokenizer


class WordLevelTokenizer(PreTrainedTokenizer):
    """A slow (pure Python) tokenizer with the semantics of the hand-written tokenizer.json: added tokens split
    first, then the Whitespace pre-tokenizer, WordLevel lookup, nothing prepended (SmolVLM adds no BOS: its chat
    template starts with <|im_start|>). `tokenizers` is not installable here, so HF's Idefics3Processor runs with
    this one."""

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, **kwargs):
        self.vocab = dict(VOCAB)
        self.ids_to_tokens = {i: t for t, i in VOCAB.items()}
        super().__init__(**kwargs)
        # <global-img> and <row_r_col_c> are added tokens of SmolVLM's tokenizer without being "additional special".
        self.add_tokens([t for t in IMAGE_SPECIALS if t not in ADDITIONAL_SPECIAL], special_tokens=True)

    @property
    def vocab_size(self):
        return len(self.vocab)

    def get_vocab(self):
        return dict(self.vocab)

    def _tokenize(self, text, **kwargs):
        return _WS_RE.findall(text)

    def _convert_token_to_id(self, token):
        return self.vocab.get(token, UNK_ID)

    def _convert_id_to_token(self, index):
        return self.ids_to_tokens.get(index, "<|endoftext|>")

    def convert_tokens_to_string(self, tokens):
        return " ".join(tokens)

    def build_inputs_with_special_tokens(self, ids0, ids1=None):
        return ids0 + ([] if ids1 is None else ids1)


def make_tokenizer():
    return WordLevelTokenizer(bos_token="<|im_start|>", eos_token=EOU_TOKEN, unk_token="<|endoftext|>",
                              pad_token="<|im_end|>", additional_special_tokens=list(ADDITIONAL_SPECIAL),
                              chat_template=CHAT_TEMPLATE, padding_side="left")


def tokenizer_json():
    added = [{"id": VOCAB[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in sorted(ADDED, key=VOCAB.get)]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordLevel", "vocab": VOCAB, "unk_token": "<|endoftext|>"},
    }


def tokenizer_config_json():
    # The keys of HuggingFaceTB/SmolVLM-Instruct's tokenizer_config.json (GPT2Tokenizer there;
    # PreTrainedTokenizerFast here, since the vocabulary is a WordLevel model).
    return {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(VOCAB[t]): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                                 "single_word": False, "special": True}
                                 for t in sorted(ADDED, key=VOCAB.get)},
        "additional_special_tokens": list(ADDITIONAL_SPECIAL),
        "bos_token": "<|im_start|>",
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": EOU_TOKEN,
        "legacy": False,
        "model_max_length": MAX_POS,
        "pad_token": "<|im_end|>",
        "processor_class": "Idefics3Processor",
        "tokenizer_class": "PreTrainedTokenizerFast",
        "truncation_side": "left",
        "unk_token": "<|endoftext|>",
        "vocab_size": VOCAB_SIZE,
    }


# ----------------------------------------------------------------------------- model


def make_config():
    vision = dict(image_size=TILE, patch_size=PATCH, hidden_size=V_HIDDEN, num_hidden_layers=V_LAYERS,
                  num_attention_heads=V_HEADS, intermediate_size=V_FFN, hidden_act="gelu_pytorch_tanh",
                  layer_norm_eps=1e-6, model_type="idefics3")
    text = dict(model_type="llama", vocab_size=VOCAB_SIZE, hidden_size=T_HIDDEN, intermediate_size=T_FFN,
                num_hidden_layers=T_LAYERS, num_attention_heads=T_HEADS, num_key_value_heads=T_KV,
                max_position_embeddings=MAX_POS, rms_norm_eps=1e-5, bos_token_id=BOS_ID, eos_token_id=EOS_ID,
                pad_token_id=PAD_ID, tie_word_embeddings=False, architectures=["VLlama3ForCausalLM"],
                rope_theta=100000.0)
    cfg = Idefics3Config(vision_config=vision, text_config=text, image_token_id=IMAGE_TOKEN_ID, scale_factor=SCALE,
                         tie_word_embeddings=False, pad_token_id=PAD_ID, use_cache=True,
                         architectures=["Idefics3ForConditionalGeneration"], torch_dtype="float32")
    return cfg


def reinit_(model):
    """HF's Idefics3 `_init_weights` draws normal(0, 0.02) with zero biases and leaves norms at 1/0: at this size
    that gives near-uniform attention and logits. Re-draw everything, in named_modules order, from the seeded RNG."""
    g = torch.Generator().manual_seed(SEED + 1)
    norms = (torch.nn.LayerNorm, type(model.model.text_model.norm))
    with torch.no_grad():
        for _, mod in model.named_modules():
            for p_name, p in mod.named_parameters(recurse=False):
                if isinstance(mod, norms):
                    if p_name == "weight":
                        p.copy_(1.0 + NORM_STD * torch.randn(p.shape, generator=g))
                    else:
                        p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
                elif p_name == "bias":
                    p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
                else:  # Linear, Conv2d, Embedding weights
                    p.copy_(WEIGHT_STD * torch.randn(p.shape, generator=g))


def build_model():
    cfg = make_config()
    model = Idefics3ForConditionalGeneration._from_config(cfg, attn_implementation="eager")
    model.eval()
    reinit_(model)
    assert model.lm_head.weight.data_ptr() != model.model.text_model.embed_tokens.weight.data_ptr()
    attn = {type(model.model.vision_model.encoder.layers[0].self_attn).__name__,
            type(model.model.text_model.layers[0].self_attn).__name__}
    assert attn == {"Idefics3VisionAttention", "LlamaAttention"}, attn  # the eager classes
    assert model.model.image_seq_len == IMAGE_SEQ_LEN
    return model


# ----------------------------------------------------------------------------- export wrappers


def export_embeddings_forward(self, pixel_values, patch_attention_mask):
    """`Idefics3VisionEmbeddings.forward` for the exporter: the same position ids for every image at once.

    HF: per image, nb_h = mask[:, 0].sum(), nb_w = mask[0].sum(); coords arange(0, 1 - 1e-6, 1 / nb) (values
    k * float32(1 / nb) in double, stored float32); bucketize(coords, arange(1/side, 1, 1/side), right=True) = the
    number of boundaries <= coord; ids (bucket_h * side + bucket_w) written row-major where the mask is true. With the
    valid patches a top-left nb_h x nb_w rectangle (what the processors' padding makes), patch (r, c) gets
    bucket_h[r] * side + bucket_w[c] and masked patches 0."""
    batch_size, _, max_im_h, max_im_w = pixel_values.shape
    patch_embeds = self.patch_embedding(pixel_values)
    embeddings = patch_embeds.flatten(2).transpose(1, 2)

    side = self.num_patches_per_side
    max_h, max_w = max_im_h // self.patch_size, max_im_w // self.patch_size
    boundaries = torch.arange(1 / side, 1.0, 1 / side)
    nb_h = patch_attention_mask[:, :, 0].sum(dim=1)  # [images]
    nb_w = patch_attention_mask[:, 0, :].sum(dim=1)

    def buckets(nb, n):
        step = (1 / nb).to(torch.float64)  # float32 1/nb, then double as arange computes
        coords = (torch.arange(n, dtype=torch.float64)[None, :] * step[:, None]).to(torch.float32)
        return (coords[..., None] >= boundaries).to(torch.int64).sum(dim=-1)  # bucketize(right=True)

    bh, bw = buckets(nb_h, max_h), buckets(nb_w, max_w)
    ids = bh[:, :, None] * side + bw[:, None, :]
    position_ids = torch.where(patch_attention_mask, ids, torch.zeros_like(ids)).reshape(batch_size, -1)
    return embeddings + self.position_embedding(position_ids)


class VisionEncoder(torch.nn.Module):
    """pixel_values [B, N, 3, H, W], pixel_attention_mask [B, N, H, W] -> image_features: the visual branch of
    `Idefics3Model.forward` (padding images dropped, patch mask, vision tower, connector), with the patch mask's
    `unfold` written as reshape + sum."""

    def __init__(self, model):
        super().__init__()
        self.model = model.model

    def forward(self, pixel_values, pixel_attention_mask):
        m = self.model
        batch_size, num_images, num_channels, height, width = pixel_values.shape
        pixel_values = pixel_values.view(batch_size * num_images, *pixel_values.shape[2:])
        nb_values_per_image = pixel_values.shape[1:].numel()
        real_images_inds = (pixel_values == 0.0).sum(dim=(-1, -2, -3)) != nb_values_per_image
        pixel_values = pixel_values[real_images_inds].contiguous()
        pixel_attention_mask = pixel_attention_mask.view(batch_size * num_images, *pixel_attention_mask.shape[2:])
        pixel_attention_mask = pixel_attention_mask[real_images_inds].contiguous()
        p = m.config.vision_config.patch_size
        sub = pixel_attention_mask.reshape(-1, height // p, p, width // p, p).to(torch.int64)
        patch_attention_mask = sub.sum(dim=(2, 4)) > 0
        image_hidden_states = m.vision_model(pixel_values=pixel_values,
                                             patch_attention_mask=patch_attention_mask).last_hidden_state
        return m.connector(image_hidden_states)


class EmbedTokens(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.embed = model.get_input_embeddings()

    def forward(self, input_ids):
        return self.embed(input_ids)


class Decoder(torch.nn.Module):
    """inputs_embeds, attention_mask, position_ids, past... -> logits, presents...: Idefics3's text model (LlamaModel)
    and lm_head, with a DynamicCache (the cache class HF's generate uses)."""

    def __init__(self, model):
        super().__init__()
        self.text_model = model.model.text_model
        self.lm_head = model.lm_head

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        cache = DynamicCache.from_legacy_cache(tuple((past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)))
        out = self.text_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                              past_key_values=cache, use_cache=True, return_dict=True)
        presents = []
        for k, v in zip(out.past_key_values.key_cache, out.past_key_values.value_cache):
            presents += [k, v]
        return (self.lm_head(out.last_hidden_state), *presents)


def kv_names():
    past, present = [], []
    for i in range(T_LAYERS):
        for kv in ("key", "value"):
            past.append(f"past_key_values.{i}.{kv}")
            present.append(f"present.{i}.{kv}")
    return past, present


class export_patches:
    """The exporter-only changes 1 and 3 (see the module docstring), undone on exit."""

    def __init__(self, model):
        self.conv = model.model.vision_model.embeddings.patch_embedding

    def __enter__(self):
        self.saved = (self.conv.padding, modeling_idefics3.Idefics3VisionEmbeddings.forward)
        self.conv.padding = (0, 0)
        modeling_idefics3.Idefics3VisionEmbeddings.forward = export_embeddings_forward

    def __exit__(self, *exc):
        self.conv.padding, modeling_idefics3.Idefics3VisionEmbeddings.forward = self.saved


def hf_visual_branch(model, pixel_values, pixel_attention_mask):
    """HF's own visual branch (Idefics3Model.forward, unmodified code incl. unfold and the per-image loop)."""
    b, n = pixel_values.shape[:2]
    pv = pixel_values.view(b * n, *pixel_values.shape[2:])
    real = (pv == 0.0).sum(dim=(-1, -2, -3)) != pv.shape[1:].numel()
    pv = pv[real].contiguous()
    mask = pixel_attention_mask.view(b * n, *pixel_attention_mask.shape[2:])[real].contiguous()
    sub = mask.unfold(dimension=1, size=PATCH, step=PATCH).unfold(dimension=2, size=PATCH, step=PATCH)
    patch_mask = (sub.sum(dim=(-1, -2)) > 0).bool()
    return pv, patch_mask


def export_dummy(seed):
    """3 images: a full one, one whose valid region is 24 x 20 (top-left, rest zero), and an all-zero padding
    image: the traced graph keeps the padding-image filter and the vision attention mask."""
    g = torch.Generator().manual_seed(seed)
    px = torch.randn(1, 3, 3, TILE, TILE, generator=g)
    mask = torch.ones(1, 3, TILE, TILE, dtype=torch.bool)
    mask[0, 1, 24:, :] = False
    mask[0, 1, :, 20:] = False
    px[0, 1][:, ~mask[0, 1]] = 0.0
    px[0, 2] = 0.0
    mask[0, 2] = False
    return px, mask


def check_export_patches(model):
    """The export wrapper under the patches equals HF's unmodified visual branch (several image counts, a partial
    mask, a padding image)."""
    worst = 0.0
    for seed, (px, mask) in enumerate([export_dummy(SEED + 5), export_dummy(SEED + 6)]):
        for sel in ([0], [0, 1], [0, 1, 2], [1, 0, 2, 0]):
            p, m = px[:, sel], mask[:, sel]
            pv, pm = hf_visual_branch(model, p, m)
            ref = model.model.connector(model.model.vision_model(pixel_values=pv, patch_attention_mask=pm)
                                        .last_hidden_state)
            with export_patches(model):
                mine = VisionEncoder(model)(p, m)
            worst = max(worst, float((mine - ref).abs().max() / ref.abs().max()))
    assert worst < 1e-6, worst
    return worst


def export_onnx(model, onnx_dir):
    os.makedirs(onnx_dir, exist_ok=True)
    px, mask = export_dummy(SEED + 3)
    with export_patches(model):
        torch.onnx.export(
            VisionEncoder(model), (px, mask), os.path.join(onnx_dir, "vision_encoder.onnx"),
            opset_version=OPSET, do_constant_folding=True, input_names=["pixel_values", "pixel_attention_mask"],
            output_names=["image_features"],
            dynamic_axes={"pixel_values": {0: "batch_size", 1: "num_images"},
                          "pixel_attention_mask": {0: "batch_size", 1: "num_images"},
                          "image_features": {0: "num_real_images"}},
        )
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
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"}}
    for n in past_names:
        axes[n] = {0: "batch_size", 2: "past_sequence_length"}
    for n in present_names:
        axes[n] = {0: "batch_size", 2: "total_sequence_length"}
    past = [torch.randn(b, T_KV, p, T_HEAD_DIM) for _ in past_names]
    args = (torch.randn(b, s, T_HIDDEN), torch.ones(b, p + s, dtype=torch.long),
            torch.arange(p, p + s)[None].expand(b, s).contiguous(), *past)
    torch.onnx.export(
        Decoder(model), args, os.path.join(onnx_dir, "decoder_model_merged.onnx"),
        opset_version=OPSET, do_constant_folding=True,
        input_names=["inputs_embeds", "attention_mask", "position_ids", *past_names],
        output_names=["logits", *present_names], dynamic_axes=axes,
    )
    for f in sorted(os.listdir(onnx_dir)):
        onnx.checker.check_model(onnx.load(os.path.join(onnx_dir, f)))


# ----------------------------------------------------------------------------- hub files


def image_processor():
    # SmolVLM-Instruct's preprocessor_config.json values, scaled down: size.longest_edge 4 * 384 -> 64,
    # max_image_size.longest_edge 384 -> 32 (the vision tower's image_size), LANCZOS (resample 1), mean/std 0.5.
    return Idefics3ImageProcessor(do_convert_rgb=True, do_resize=True, size={"longest_edge": RESIZE_LONGEST},
                                  resample=Image.Resampling.LANCZOS, do_image_splitting=True,
                                  max_image_size={"longest_edge": TILE}, do_rescale=True, rescale_factor=1 / 255,
                                  do_normalize=True, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
                                  do_pad=True)


def write_hub_files(model, processor, d):
    cfg = model.config.to_dict()
    cfg["transformers.js_config"] = {"dtype": "fp32"}
    dump(os.path.join(d, "config.json"), cfg)
    model.generation_config.to_json_file(os.path.join(d, "generation_config.json"), use_diff=True)
    ip = processor.image_processor.to_dict()
    ip["processor_class"] = "Idefics3Processor"  # as save_pretrained through the processor writes it
    dump(os.path.join(d, "preprocessor_config.json"), ip)
    dump(os.path.join(d, "processor_config.json"), {"image_seq_len": processor.image_seq_len,
                                                    "processor_class": "Idefics3Processor"})
    dump(os.path.join(d, "chat_template.json"), {"chat_template": CHAT_TEMPLATE})
    dump(os.path.join(d, "tokenizer.json"), tokenizer_json())
    dump(os.path.join(d, "tokenizer_config.json"), tokenizer_config_json())
    dump(os.path.join(d, "special_tokens_map.json"), {
        "additional_special_tokens": list(ADDITIONAL_SPECIAL), "bos_token": "<|im_start|>", "eos_token": EOU_TOKEN,
        "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>",
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


# ----------------------------------------------------------------------------- references


def greedy_with_cache(decoder, embed, x, tokens_needed):
    """Greedy decoding through the exported Decoder wrapper (the graph's maths) with the cache it returns."""
    seq = x.shape[1]
    empty = [torch.zeros(1, T_KV, 0, T_HEAD_DIM) for _ in range(2 * T_LAYERS)]
    res = decoder(x, torch.ones(1, seq, dtype=torch.long), torch.arange(seq)[None], *empty)
    last, past, total, tokens = res[0][0, -1], list(res[1:]), seq, []
    step_logits = []
    for step in range(tokens_needed):
        nxt = int(torch.argmax(last))
        tokens.append(nxt)
        if nxt == EOS_ID or step == tokens_needed - 1:
            break
        e = embed(torch.tensor([[nxt]]))
        total += 1
        res = decoder(e, torch.ones(1, total, dtype=torch.long), torch.tensor([[total - 1]]), *past)
        last, past = res[0][0, -1], list(res[1:])
        step_logits.append(res[0])
    return tokens, step_logits


def process(processor, prompt, pil, split=True):
    """HF's Idefics3Processor on one prompt (and image). v4.46.1's processor raises on a prompt without images
    (its image-count check compares [] with [0]); for text-only the tokenizer call it would make is used."""
    if pil is None:
        return dict(processor.tokenizer(text=[prompt], return_tensors="pt")), 0, 0
    saved = processor.image_processor.do_image_splitting
    processor.image_processor.do_image_splitting = split
    try:
        rc = processor.image_processor(pil, return_row_col_info=True)
        enc = processor(images=pil, text=prompt, return_tensors="pt")
    finally:
        processor.image_processor.do_image_splitting = saved
    return dict(enc), rc["rows"][0][0], rc["cols"][0][0]


def run_case(model, processor, name, question, image, split=True):
    content = ([{"type": "image"}] if image is not None else []) + [{"type": "text", "text": question}]
    prompt = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    pil = None if image is None else Image.fromarray(image, "RGB")
    enc, rows, cols = process(processor, prompt, pil, split)
    input_ids = enc["input_ids"]
    ids = input_ids[0].tolist()
    assert UNK_ID not in ids, f"{name}: out-of-vocabulary words in {prompt!r}"
    out = {"input_ids": input_ids.numpy()}
    attn = torch.ones_like(input_ids)
    n_tiles = 0
    if image is not None:
        pixel_values = enc["pixel_values"].to(torch.float32)
        pixel_attention_mask = enc["pixel_attention_mask"]
        n_tiles = pixel_values.shape[1]
        assert n_tiles == (rows * cols + 1), (rows, cols, pixel_values.shape)
        out["pixel_values"] = pixel_values.numpy()
        out["pixel_attention_mask"] = pixel_attention_mask.numpy().astype(np.int64)
        pv, pm = hf_visual_branch(model, pixel_values, pixel_attention_mask)
        vis = model.model.vision_model(pixel_values=pv, patch_attention_mask=pm, output_hidden_states=True,
                                       output_attentions=True, return_dict=True)
        for i, h in enumerate(vis.hidden_states):
            out[f"vision.hidden_states.{i}"] = h.numpy()
        for i, a in enumerate(vis.attentions):
            out[f"vision.attentions.{i}"] = a.numpy()
        out["vision.last_hidden_state"] = vis.last_hidden_state.numpy()  # after post_layernorm
        n_vis_h, n_vis_a = len(vis.hidden_states), len(vis.attentions)
        res = model(input_ids=input_ids, pixel_values=pixel_values, pixel_attention_mask=pixel_attention_mask,
                    attention_mask=attn, use_cache=True, output_hidden_states=True, output_attentions=True,
                    return_dict=True)
        feats = res.image_hidden_states
        assert torch.equal(feats, model.model.connector(vis.last_hidden_state))
        out["image_features"] = feats.numpy()
        gen = model.generate(input_ids=input_ids, pixel_values=pixel_values,
                             pixel_attention_mask=pixel_attention_mask, attention_mask=attn,
                             max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
    else:
        n_vis_h = n_vis_a = 0
        res = model(input_ids=input_ids, attention_mask=attn, use_cache=True, output_hidden_states=True,
                    output_attentions=True, return_dict=True)
        gen = model.generate(input_ids=input_ids, attention_mask=attn, max_new_tokens=MAX_NEW_TOKENS,
                             do_sample=False)
    out["logits"] = res.logits.numpy()
    for i, h in enumerate(res.hidden_states):
        out[f"text.hidden_states.{i}"] = h.numpy()
    for i, a in enumerate(res.attentions):
        out[f"text.attentions.{i}"] = a.numpy()
    for i, (k, v) in enumerate(res.past_key_values):
        out[f"present.{i}.key"] = k.numpy()
        out[f"present.{i}.value"] = v.numpy()
    tokens = gen[0, len(ids):].tolist()

    # The exported wrapper's maths, with its own cache, must give the same greedy tokens; keep the logits of
    # the first cached decode step (one new token, past = this case's presents) as a KV-cache reference.
    inputs_embeds = res.hidden_states[0]
    dec, emb = Decoder(model), EmbedTokens(model)
    mine, step_logits = greedy_with_cache(dec, emb, inputs_embeds, MAX_NEW_TOKENS)
    assert mine == tokens, f"{name}: generate {tokens} vs cached wrapper {mine}"
    if step_logits:
        out["decode.logits"] = step_logits[0].numpy()
    margins = []
    full = torch.cat([inputs_embeds, emb(torch.tensor([tokens[:-1]]))], dim=1)
    all_logits = model.lm_head(model.model.text_model(inputs_embeds=full).last_hidden_state)[0]
    for step in range(len(tokens)):
        top2 = torch.topk(all_logits[len(ids) - 1 + step], 2).values
        margins.append(round(float(top2[0] - top2[1]), 5))
    positions = [i for i, t in enumerate(ids) if t == IMAGE_TOKEN_ID]
    assert len(positions) == n_tiles * IMAGE_SEQ_LEN
    case = {
        "name": name, "question": question, "prompt": prompt,
        "num_images": 0 if image is None else 1, "do_image_splitting": split if image is not None else None,
        "rows": rows, "cols": cols, "num_tiles": n_tiles,
        "sequence_length": len(ids), "input_ids": ids, "image_token_positions": positions,
        "greedy_tokens": tokens, "greedy_top2_margins": margins,
        "decode_step": ({"token": tokens[0], "position_id": len(ids), "past_sequence_length": len(ids),
                         "tensor": "decode.logits"} if step_logits else None),
        "num_vision_hidden_states": n_vis_h, "num_vision_attentions": n_vis_a,
        "num_text_hidden_states": len(res.hidden_states), "num_text_attentions": len(res.attentions),
        "tensors": sorted(out),
    }
    print(f"  {name}: seq {len(ids)}, tiles {n_tiles} ({rows}x{cols} + global), greedy {tokens}, "
          f"top-2 margins {margins}")
    return case, out


# ----------------------------------------------------------------------------- main


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print(f"transformers {transformers.__version__} from {transformers.__file__}")
    print(f"torch {torch.__version__}, onnx {onnx.__version__}, seed {SEED}")

    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "shapes"))
    os.makedirs(os.path.join(MODEL_DIR, "onnx"))

    model = build_model()
    processor = Idefics3Processor(image_processor=image_processor(), tokenizer=make_tokenizer(),
                                  image_seq_len=IMAGE_SEQ_LEN, chat_template=CHAT_TEMPLATE)
    for t in IMAGE_SPECIALS + SPECIALS:  # the processor's add_special_tokens must not have moved any id
        assert processor.tokenizer.convert_tokens_to_ids(t) == VOCAB[t], t
    write_hub_files(model, processor, MODEL_DIR)
    with torch.no_grad():
        patch_err = check_export_patches(model)
        print(f"export patches vs HF's visual branch: max rel diff {patch_err:.2e}")
        export_onnx(model, os.path.join(MODEL_DIR, "onnx"))

    split_img = pattern_image(64, 40, SEED + 2)
    single_img = pattern_image(40, 30, SEED + 4)
    write_png(os.path.join(OUT, "split.png"), split_img)
    write_png(os.path.join(OUT, "single.png"), single_img)
    cases_spec = [
        ("image-split", "What colour is the square?", split_img, "split.png", True),
        ("image-single", "Describe the picture.", single_img, "single.png", False),
        ("text-only", "Name a colour that is not red.", None, None, True),
    ]
    tensors, cases = {}, []
    print("references:")
    with torch.no_grad():
        for name, question, img, png, split in cases_spec:
            case, out = run_case(model, processor, name, question, img, split)
            case["image"] = png
            case["image_size"] = None if img is None else {"width": img.shape[1], "height": img.shape[0]}
            cases.append(case)
            for k, v in out.items():
                tensors[f"{name}/{k}"] = v
    shapes = []
    for i, (w, h) in enumerate([(32, 32), (64, 40), (40, 64), (100, 37), (20, 50)]):
        img = pattern_image(w, h, SEED + 10 + i)
        rel = f"shapes/{w}x{h}.png"
        write_png(os.path.join(OUT, rel), img)
        enc = processor.image_processor(Image.fromarray(img, "RGB"), return_tensors="pt", return_row_col_info=True)
        px, pm = enc["pixel_values"].to(torch.float32), enc["pixel_attention_mask"]
        tensors[f"shapes/{w}x{h}/pixel_values"] = px.numpy()
        tensors[f"shapes/{w}x{h}/pixel_attention_mask"] = pm.numpy().astype(np.int64)
        shapes.append({"image": rel, "width": w, "height": h, "rows": enc["rows"][0][0], "cols": enc["cols"][0][0],
                       "pixel_values": f"shapes/{w}x{h}/pixel_values", "shape": list(px.shape),
                       "pixel_attention_mask": f"shapes/{w}x{h}/pixel_attention_mask"})
        print(f"  shape {w}x{h}: pixel_values {list(px.shape)}, rows {enc['rows'][0][0]}, cols {enc['cols'][0][0]}")
    write_safetensors(os.path.join(OUT, "reference.safetensors"), tensors, GENERATOR)
    index = {
        "generator": GENERATOR,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "opset": OPSET,
        "seed": SEED,
        "init": {"weights_std": WEIGHT_STD, "bias_std": BIAS_STD, "norm_weight": f"1 + normal(0, {NORM_STD})",
                 "note": "HF's _init_weights (std 0.02, zero biases, unit norms) then every parameter re-drawn"},
        "max_new_tokens": MAX_NEW_TOKENS,
        "text_layers": T_LAYERS,
        "vision_layers": V_LAYERS,
        "image_token_id": IMAGE_TOKEN_ID,
        "fake_token_around_image_id": FAKE_ID,
        "global_img_token_id": GLOBAL_ID,
        "image_seq_len": IMAGE_SEQ_LEN,
        "tile_size": TILE,
        "eos_token_id": EOS_ID,
        "bos_token_id": BOS_ID,
        "pad_token_id": PAD_ID,
        "export_patch_max_rel_diff": patch_err,
        "tensor_naming": ("<case name>/<tensor> in reference.safetensors; shapes/<w>x<h>/pixel_values and "
                          "/pixel_attention_mask (the mask is stored I64, as HF's processor returns it; the ONNX "
                          "input is bool)"),
        "hidden_states_note": ("text.hidden_states.0 = inputs_embeds (image rows replaced), .1 = after layer 0, "
                               ".2 = after the final RMSNorm (HF replaces the last layer's output by norm(x)); "
                               "vision.hidden_states.0 = embeddings (patches + position), .i = after encoder layer "
                               "i (no post_layernorm); vision.last_hidden_state = post_layernorm(last layer), the "
                               "connector's input; image_features = connector(pixel shuffle + proj), [tiles, 16, 64]"),
        "cases": cases,
        "shapes": shapes,
    }
    dump(os.path.join(OUT, "reference.json"), index)
    return index


if __name__ == "__main__":
    main()
