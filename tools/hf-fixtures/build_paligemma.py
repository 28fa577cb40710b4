#!/usr/bin/python3
"""hf-paligemma: a tiny PaliGemma built from the real Hugging Face modeling code, exported like onnx-community.

Model      `PaliGemmaForConditionalGeneration` of transformers v4.46.1 (SigLIP vision tower + one linear projector +
           Gemma decoder), built from a config with random weights (fixed seed), attn_implementation="eager".
           Nothing is re-implemented: the ONNX graphs are traces of HF's own modules, and the references are HF's own
           forward passes (`PaliGemmaForConditionalGeneration.forward`, `.generate`, `get_image_features`,
           `SiglipImageProcessor`, `PaliGemmaProcessor`).
Export     TorchScript `torch.onnx.export`, opset 17, into the transformers.js layout that transformers.js 4.3.1's
           `PaliGemmaForConditionalGeneration` (= its LlavaForConditionalGeneration) runs:
             vision_encoder.onnx        pixel_values [b, 3, 32, 32] -> image_features [b, 64, 64]
                                        (HF's `get_image_features`: SigLIP last_hidden_state after post_layernorm,
                                        `multi_modal_projector`, then / sqrt(hidden_size) as HF divides);
             embed_tokens.onnx          input_ids -> inputs_embeds (the raw embedding table; Gemma's sqrt(hidden)
                                        normalizer is inside the decoder, as in HF's GemmaModel);
             decoder_model_merged.onnx  inputs_embeds, attention_mask [b, total] (2-D), position_ids [b, seq]
                                        (**1-indexed**, as HF and transformers.js make them),
                                        past_key_values.{0,1}.{key,value} [b, 1, past, 16] -> logits, present.*.
           The decoder is `PaliGemmaForConditionalGeneration.forward(inputs_embeds=..., attention_mask=2-D, ...)`:
           HF's own `_update_causal_mask` is traced into the graph, so the prefix attention is built in-graph from the
           2-D attention_mask and the past length (see PREFIX_ATTENTION below); no token_type_ids input.
           One exporter change, checked against the unmodified module: SigLIP's patch Conv2d padding="valid" ->
           (0, 0) (same maths; "valid" traces to aten::_convolution_mode, which torch 1.13 cannot export).
References reference.json + reference.safetensors (`<case>/<tensor>`), wide.png, tall.png, shapes/<w>x<h>.png.

Run (from the repository root, Debian's python3: torch 1.13 CPU, onnx, numpy, PIL):
    /usr/bin/python3 tools/hf-fixtures/build_paligemma.py
Environment: HF_TRANSFORMERS_SRC (default /work/.cache-hf/v4.46.1/src), HF_STUBS (default
/work/shared/hf-modeling/stubs), PALIGEMMA_SEED. Deterministic: fixed seed, one thread,
torch.use_deterministic_algorithms.
"""
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
    PaliGemmaConfig,
    PaliGemmaForConditionalGeneration,
    PaliGemmaProcessor,
    PreTrainedTokenizer,
    SiglipImageProcessor,
)
from transformers.cache_utils import DynamicCache  # noqa: E402
from transformers.models.paligemma import processing_paligemma  # noqa: E402
from transformers import tokenization_utils_base  # noqa: E402

# Without the `tokenizers` package transformers falls back to its own AddedToken, a dataclass(eq=True) and so
# unhashable, which v4.46.1's slow-tokenizer __init__ puts in a dict lookup. Hash it by content, as tokenizers does.
if tokenization_utils_base.AddedToken.__hash__ is None:
    tokenization_utils_base.AddedToken.__hash__ = lambda self: hash(self.content)
# PaliGemmaProcessor.__init__ adds <image> as an AddedToken object, and the slow tokenizer's _add_tokens then calls
# token.__setstate__ (a method of the `tokenizers` class), which the fallback lacks.
if not hasattr(tokenization_utils_base.AddedToken, "__setstate__"):
    tokenization_utils_base.AddedToken.__setstate__ = lambda self, state: self.__dict__.update(state)

# generate() asks integrations.fsdp.is_fsdp_managed_module, which imports torch.distributed.fsdp; on Python 3.11
# torch 1.13's fsdp package fails to import (a dataclass with a mutable default). Nothing here is FSDP-managed.
import transformers.generation.utils as _gen_utils  # noqa: E402

_gen_utils.is_fsdp_managed_module = lambda module: False

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fixture_io import dump, write_png, write_safetensors  # noqa: E402

GENERATOR = "tools/hf-fixtures/build_paligemma.py"
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "hf-paligemma")
MODEL_DIR = os.path.join(OUT, "model")

SEED = int(os.environ.get("PALIGEMMA_SEED", "17"))  # chosen among seeds 1-36: greedy tokens avoid special ids, top-2 margins >= 0.27
OPSET = 17
MAX_NEW_TOKENS = 4
WEIGHT_STD = 0.3  # Linear / Conv2d / Embedding weights: normal(0, WEIGHT_STD)
BIAS_STD = 0.05  # Linear / Conv2d / LayerNorm biases: normal(0, BIAS_STD)
NORM_STD = 0.1  # LayerNorm weights 1 + normal(0, NORM_STD); GemmaRMSNorm weights normal(0, NORM_STD) (it scales by 1 + w)

IMAGE, PATCH = 32, 4
N_IMAGE_TOKENS = (IMAGE // PATCH) ** 2  # 64: SigLIP has no CLS token
V_HIDDEN, V_LAYERS, V_HEADS, V_FFN = 32, 2, 4, 64
T_HIDDEN, T_LAYERS, T_HEADS, T_KV, T_FFN, T_HEAD_DIM = 64, 2, 4, 1, 128, 16  # 1 KV head: PaliGemma-3B's MQA
VOCAB_SIZE = 160
MAX_POS = 512

PREFIX_ATTENTION = (
    "HF v4.46.1 PaliGemmaForConditionalGeneration._update_causal_mask (inference: is_training = token_type_ids and "
    "labels given, so False) builds a [seq, total] mask of finfo.min, sets the first `sequence_length` columns to 0 "
    "whenever sequence_length != 1 (the whole prefill - image tokens, <bos>, prompt and the '\\n' - attends "
    "bidirectionally: at inference everything is prefix), keeps columns <= cache_position, then masks padding from "
    "the 2-D attention_mask. token_type_ids only matter in training (prefix vs suffix); generation never passes them. "
    "The decoder graph is a trace of that forward, so the mask is computed in-graph from the 2-D attention_mask "
    "and the past length; no token_type_ids or 4-D mask input (transformers.js 4.3.1 feeds inputs_embeds, "
    "attention_mask, 1-indexed position_ids and the past). The trace takes the `sequence_length != 1` branch; for a "
    "one-token step with a past that branch gives the same mask as HF's `== 1` branch (column 0 <= cache_position "
    "always), which the decode-step reference (HF's eager `== 1` branch) checks."
)

# ----------------------------------------------------------------------------- tokenizer
# google/paligemma-3b-*: Gemma's SentencePiece vocabulary, <pad> 0, <eos> 1, <bos> 2, <unk> 3, '\n' a plain piece
# (108), then <loc0000>..<loc1023>, <seg000>..<seg127> and <image> 257152 added after it. Here: <pad> 0, <eos> 1,
# <bos> 2, <unk> 3, words, '\n', fillers, <image> the last id. The <loc>/<seg> tokens that PaliGemmaProcessor adds
# (tokenizer.add_tokens(EXTRA_TOKENS)) get ids past the tiny vocabulary in Python and are not in tokenizer.json;
# no prompt here uses them.
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]
WORDS = (
    "answer caption describe detect segment en What what is in the picture image photo ? . , ! a an of on to it this "
    "that there here colour color red green blue yellow black white grey orange purple pink brown square circle shape "
    "object left right top bottom middle big small one two three four many no yes not and or Name name noise random "
    "pattern dots pixels bright dark light How how much count are do does see stripes gradient tall wide same images "
    "Which which side both"
).split()
NEWLINE = "\n"
IMAGE_TOKEN = "<image>"
VOCAB = {t: i for i, t in enumerate(SPECIALS + WORDS + [NEWLINE])}
assert len(VOCAB) == len(SPECIALS) + len(WORDS) + 1, "duplicate words"
assert len(VOCAB) <= VOCAB_SIZE - 1
for i in range(len(VOCAB), VOCAB_SIZE - 1):
    VOCAB[f"<unused{i}>"] = i
VOCAB[IMAGE_TOKEN] = VOCAB_SIZE - 1
PAD_ID, EOS_ID, BOS_ID, UNK_ID = (VOCAB[t] for t in SPECIALS)
NEWLINE_ID, IMAGE_TOKEN_ID = VOCAB[NEWLINE], VOCAB[IMAGE_TOKEN]
ADDED_SPECIAL = SPECIALS + [IMAGE_TOKEN]

_WS_RE = re.compile(r"\w+|[^\w\s]+")  # the `tokenizers` Whitespace pre-tokenizer


class WordLevelTokenizer(PreTrainedTokenizer):
    """A slow (pure Python) tokenizer with the semantics of the hand-written tokenizer.json: added tokens (the
    specials and '\\n') split first, then the Whitespace pre-tokenizer, WordLevel lookup; <bos> prepended while
    `add_bos_token` (GemmaTokenizer's flag, which PaliGemmaProcessor.__init__ turns off). `tokenizers` is not
    installable here, so HF's PaliGemmaProcessor runs with this one."""

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, add_bos_token=True, add_eos_token=False, **kwargs):
        self.vocab = dict(VOCAB)
        self.ids_to_tokens = {i: t for t, i in VOCAB.items()}
        self.add_bos_token = add_bos_token
        self.add_eos_token = add_eos_token
        super().__init__(add_bos_token=add_bos_token, add_eos_token=add_eos_token, **kwargs)
        # '\n' is a plain piece of Gemma's vocabulary; a Whitespace pre-tokenizer would drop it, so here (as in
        # tokenizer.json) it is an added, non-special token.
        self.add_tokens([NEWLINE])

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
        return self.ids_to_tokens.get(index, "<unk>")

    def convert_tokens_to_string(self, tokens):
        return " ".join(tokens)

    def build_inputs_with_special_tokens(self, ids0, ids1=None):
        bos = [BOS_ID] if self.add_bos_token else []
        eos = [EOS_ID] if self.add_eos_token else []
        return bos + ids0 + eos + ([] if ids1 is None else bos + ids1 + eos)


class WordLevelPaliGemmaProcessor(PaliGemmaProcessor):
    """HF's PaliGemmaProcessor, unchanged, except for the type check of ProcessorMixin.__init__: it accepts only a
    GemmaTokenizer(Fast), and both need packages not installable here (sentencepiece, tokenizers). "AutoTokenizer"
    (checked as PreTrainedTokenizerBase) lets the WordLevel tokenizer in; __init__ and __call__ are HF's."""

    tokenizer_class = "AutoTokenizer"


def make_tokenizer():
    return WordLevelTokenizer(bos_token="<bos>", eos_token="<eos>", unk_token="<unk>", pad_token="<pad>",
                              padding_side="left")


def tokenizer_json():
    added = [{"id": VOCAB[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": t != NEWLINE}
             for t in sorted(ADDED_SPECIAL + [NEWLINE], key=VOCAB.get)]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        # What a PaliGemma tokenizer saved through the processor has: add_bos_token off, so no template adds <bos>
        # (the processor writes it into the text).
        "post_processor": None,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordLevel", "vocab": VOCAB, "unk_token": "<unk>"},
    }


def tokenizer_config_json():
    # The keys of google/paligemma-3b-pt-224's tokenizer_config.json (GemmaTokenizer there; PreTrainedTokenizerFast
    # here, since the vocabulary is a WordLevel model), with add_bos_token as PaliGemmaProcessor leaves it. No
    # chat_template: PaliGemma checkpoints publish none (the processor builds the prompt).
    return {
        "add_bos_token": False,
        "add_eos_token": False,
        "added_tokens_decoder": {str(VOCAB[t]): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                                 "single_word": False, "special": t != NEWLINE}
                                 for t in sorted(ADDED_SPECIAL + [NEWLINE], key=VOCAB.get)},
        "additional_special_tokens": [IMAGE_TOKEN],
        "bos_token": "<bos>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "<eos>",
        "model_max_length": MAX_POS,
        "pad_token": "<pad>",
        "padding_side": "left",
        "processor_class": "PaliGemmaProcessor",
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": "<unk>",
    }


# ----------------------------------------------------------------------------- model


def make_config():
    vision = dict(model_type="siglip_vision_model", image_size=IMAGE, patch_size=PATCH, hidden_size=V_HIDDEN,
                  num_hidden_layers=V_LAYERS, num_attention_heads=V_HEADS, intermediate_size=V_FFN,
                  hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, vision_use_head=False,
                  projection_dim=T_HIDDEN)
    text = dict(model_type="gemma", vocab_size=VOCAB_SIZE, hidden_size=T_HIDDEN, intermediate_size=T_FFN,
                num_hidden_layers=T_LAYERS, num_attention_heads=T_HEADS, num_key_value_heads=T_KV,
                head_dim=T_HEAD_DIM, hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh",
                max_position_embeddings=MAX_POS, rms_norm_eps=1e-6, rope_theta=10000.0, bos_token_id=BOS_ID,
                eos_token_id=EOS_ID, pad_token_id=PAD_ID, torch_dtype="float32")
    return PaliGemmaConfig(vision_config=vision, text_config=text, image_token_index=IMAGE_TOKEN_ID,
                           vocab_size=VOCAB_SIZE, projection_dim=T_HIDDEN, hidden_size=T_HIDDEN, pad_token_id=PAD_ID,
                           bos_token_id=BOS_ID, eos_token_id=EOS_ID,
                           architectures=["PaliGemmaForConditionalGeneration"], torch_dtype="float32")


def reinit_(model):
    """HF's PaliGemma `_init_weights` draws normal(0, 0.02) with zero biases (Gemma's RMSNorm weights stay 0, i.e.
    scale 1): at this size that gives near-uniform attention and logits. Re-draw everything, in named_modules order,
    from the seeded RNG."""
    g = torch.Generator().manual_seed(SEED + 1)
    rms = type(model.language_model.model.norm)
    with torch.no_grad():
        for _, mod in model.named_modules():
            for p_name, p in mod.named_parameters(recurse=False):
                if isinstance(mod, rms):
                    p.copy_(NORM_STD * torch.randn(p.shape, generator=g))  # GemmaRMSNorm scales by (1 + weight)
                elif isinstance(mod, torch.nn.LayerNorm):
                    if p_name == "weight":
                        p.copy_(1.0 + NORM_STD * torch.randn(p.shape, generator=g))
                    else:
                        p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
                elif p_name == "bias":
                    p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
                else:  # Linear, Conv2d, Embedding weights (the lm_head is tied to embed_tokens, drawn once)
                    p.copy_(WEIGHT_STD * torch.randn(p.shape, generator=g))


def build_model():
    cfg = make_config()
    model = PaliGemmaForConditionalGeneration._from_config(cfg, attn_implementation="eager")
    model.eval()
    reinit_(model)
    lm = model.language_model
    assert lm.lm_head.weight.data_ptr() == lm.model.embed_tokens.weight.data_ptr(), "Gemma ties lm_head"
    attn = {type(model.vision_tower.vision_model.encoder.layers[0].self_attn).__name__,
            type(lm.model.layers[0].self_attn).__name__}
    assert attn == {"SiglipAttention", "GemmaAttention"}, attn  # the eager classes
    assert model.config.text_config.num_image_tokens == N_IMAGE_TOKENS
    return model


# ----------------------------------------------------------------------------- export wrappers


class VisionEncoder(torch.nn.Module):
    """pixel_values -> image_features through HF's own `get_image_features` (SigLIP last_hidden_state, projector,
    / sqrt(hidden_size))."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.get_image_features(pixel_values)


class EmbedTokens(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.embed = model.get_input_embeddings()

    def forward(self, input_ids):
        return self.embed(input_ids)


class Decoder(torch.nn.Module):
    """inputs_embeds, attention_mask (2-D), position_ids (1-indexed), past... -> logits, presents...:
    `PaliGemmaForConditionalGeneration.forward` on inputs_embeds (its `_update_causal_mask`, then GemmaForCausalLM)
    with a DynamicCache (the cache class HF's generate uses)."""

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


class export_patches:
    """The exporter-only change (SigLIP's patch Conv2d padding "valid" -> (0, 0)), undone on exit."""

    def __init__(self, model):
        self.conv = model.vision_tower.vision_model.embeddings.patch_embedding

    def __enter__(self):
        self.saved = self.conv.padding
        self.conv.padding = (0, 0)

    def __exit__(self, *exc):
        self.conv.padding = self.saved


def check_export_patches(model):
    g = torch.Generator().manual_seed(SEED + 5)
    px = torch.randn(3, 3, IMAGE, IMAGE, generator=g)
    ref = model.get_image_features(px)
    with export_patches(model):
        mine = VisionEncoder(model)(px)
    err = float((mine - ref).abs().max() / ref.abs().max())
    assert err < 1e-6, err
    return err


def check_decoder_wrapper(model):
    """The Decoder wrapper on explicit 1-indexed position ids = HF's forward with its own defaults (prefill, and a
    one-token step on the returned cache)."""
    g = torch.Generator().manual_seed(SEED + 6)
    ids = torch.randint(4, VOCAB_SIZE - 1, (1, 9), generator=g)
    x = model.get_input_embeddings()(ids)
    ref = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, return_dict=True)
    empty = [torch.zeros(1, T_KV, 0, T_HEAD_DIM) for _ in range(2 * T_LAYERS)]
    mine = Decoder(model)(x, torch.ones_like(ids), torch.arange(1, 10)[None], *empty)
    err = float((mine[0] - ref.logits).abs().max() / ref.logits.abs().max())
    nxt = torch.tensor([[7]])
    ref2 = model(input_ids=nxt, attention_mask=torch.ones(1, 10, dtype=torch.long), past_key_values=DynamicCache.from_legacy_cache(ref.past_key_values),
                 use_cache=True, return_dict=True)
    mine2 = Decoder(model)(model.get_input_embeddings()(nxt), torch.ones(1, 10, dtype=torch.long),
                           torch.tensor([[10]]), *mine[1:])
    err = max(err, float((mine2[0] - ref2.logits).abs().max() / ref2.logits.abs().max()))
    assert err < 1e-6, err
    return err


def export_onnx(model, onnx_dir):
    os.makedirs(onnx_dir, exist_ok=True)
    with export_patches(model):
        torch.onnx.export(
            VisionEncoder(model), (torch.randn(2, 3, IMAGE, IMAGE),), os.path.join(onnx_dir, "vision_encoder.onnx"),
            opset_version=OPSET, do_constant_folding=True, input_names=["pixel_values"],
            output_names=["image_features"],
            dynamic_axes={"pixel_values": {0: "batch_size"}, "image_features": {0: "batch_size"}},
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
            torch.arange(p + 1, p + s + 1)[None].expand(b, s).contiguous(), *past)
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
    # google/paligemma-3b-pt-224's preprocessor_config.json, scaled down: size 224 x 224 -> 32 x 32, BICUBIC
    # (resample 3), rescale 1/255, mean/std 0.5, image_seq_length 256 -> 64. No crop: the whole image is resized.
    return SiglipImageProcessor(do_resize=True, size={"height": IMAGE, "width": IMAGE}, resample=3, do_rescale=True,
                                rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5, 0.5, 0.5],
                                image_std=[0.5, 0.5, 0.5], do_convert_rgb=None, image_seq_length=N_IMAGE_TOKENS)


def write_hub_files(model, processor, d):
    cfg = model.config.to_dict()
    cfg["transformers.js_config"] = {"dtype": "fp32"}
    dump(os.path.join(d, "config.json"), cfg)
    model.generation_config.to_json_file(os.path.join(d, "generation_config.json"), use_diff=True)
    # what PaliGemmaProcessor.save_pretrained writes: the processor class is recorded, then to_json_file
    processor.image_processor._set_processor_class("PaliGemmaProcessor")
    processor.image_processor.to_json_file(os.path.join(d, "preprocessor_config.json"))
    dump(os.path.join(d, "tokenizer.json"), tokenizer_json())
    dump(os.path.join(d, "tokenizer_config.json"), tokenizer_config_json())
    dump(os.path.join(d, "special_tokens_map.json"), {
        "additional_special_tokens": [IMAGE_TOKEN], "bos_token": "<bos>", "eos_token": "<eos>",
        "pad_token": "<pad>", "unk_token": "<unk>",
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
    """Greedy decoding through the exported Decoder wrapper (the graph's maths) with the cache it returns; position
    ids 1-indexed as HF's PaliGemma makes them."""
    seq = x.shape[1]
    empty = [torch.zeros(1, T_KV, 0, T_HEAD_DIM) for _ in range(2 * T_LAYERS)]
    res = decoder(x, torch.ones(1, seq, dtype=torch.long), torch.arange(1, seq + 1)[None], *empty)
    last, past, total, tokens = res[0][0, -1], list(res[1:]), seq, []
    step_logits = []
    for step in range(tokens_needed):
        nxt = int(torch.argmax(last))
        tokens.append(nxt)
        if nxt == EOS_ID or step == tokens_needed - 1:
            break
        e = embed(torch.tensor([[nxt]]))
        total += 1
        res = decoder(e, torch.ones(1, total, dtype=torch.long), torch.tensor([[total]]), *past)
        last, past = res[0][0, -1], list(res[1:])
        step_logits.append(res[0])
    return tokens, step_logits


def process(processor, question, images):
    """HF's PaliGemmaProcessor on a question with no <image> placeholder: it builds `<image> * 64 * n + <bos> +
    question + '\\n'` (build_string_from_input) and tokenizes it with add_bos_token off. v4.46.1's processor
    raises without images; for text-only the string build_string_from_input gives for 0 images is tokenized as the
    processor would."""
    if not images:
        text = processing_paligemma.build_string_from_input(question, processor.tokenizer.bos_token,
                                                            processor.image_seq_length, IMAGE_TOKEN, 0)
        return text, dict(processor.tokenizer([text], return_tensors="pt"))
    pils = [Image.fromarray(im, "RGB") for im in images]
    enc = processor(images=[pils], text=[question], return_tensors="pt")
    text = processing_paligemma.build_string_from_input(question, processor.tokenizer.bos_token,
                                                        processor.image_seq_length, IMAGE_TOKEN, len(images))
    assert enc["input_ids"][0].tolist() == processor.tokenizer(text)["input_ids"], "processor string"
    return text, dict(enc)


def run_case(model, processor, name, question, images):
    prompt, enc = process(processor, question, images)
    input_ids = enc["input_ids"]
    ids = input_ids[0].tolist()
    assert UNK_ID not in ids, f"{name}: out-of-vocabulary words in {prompt!r}"
    out = {"input_ids": input_ids.numpy()}
    attn = torch.ones_like(input_ids)
    out["inputs_embeds"] = model.get_input_embeddings()(input_ids).numpy()  # before the image merge and normalizer
    if images:
        pixel_values = enc["pixel_values"].to(torch.float32)
        out["pixel_values"] = pixel_values.numpy()
        feats = model.get_image_features(pixel_values)
        out["image_features"] = feats.numpy()
        vis = model.vision_tower(pixel_values, output_hidden_states=True, output_attentions=True, return_dict=True)
        for i, h in enumerate(vis.hidden_states):
            out[f"vision.hidden_states.{i}"] = h.numpy()
        for i, a in enumerate(vis.attentions):
            out[f"vision.attentions.{i}"] = a.numpy()
        out["vision.last_hidden_state"] = vis.last_hidden_state.numpy()  # after post_layernorm
        n_vis_h, n_vis_a = len(vis.hidden_states), len(vis.attentions)
        res = model(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attn, use_cache=True,
                    output_hidden_states=True, output_attentions=True, return_dict=True)
        assert torch.equal(res.image_hidden_states, feats)
        gen = model.generate(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attn,
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
    # The prefix is bidirectional: the first prompt position attends to the last one.
    assert float(res.attentions[0][0, :, 0, len(ids) - 1].abs().sum()) > 0, "prefix attention is causal?"

    # The exported wrapper's maths, with its own cache, must give the same greedy tokens; keep the logits of
    # the first cached decode step (one new token, past = this case's presents) as a KV-cache reference.
    merged = torch.from_numpy(out["inputs_embeds"]).clone()
    if images:
        merged[input_ids == IMAGE_TOKEN_ID] = feats.reshape(-1, T_HIDDEN)
    dec, emb = Decoder(model), EmbedTokens(model)
    mine, step_logits = greedy_with_cache(dec, emb, merged, MAX_NEW_TOKENS)
    assert mine == tokens, f"{name}: generate {tokens} vs cached wrapper {mine}"
    if step_logits:
        out["decode.logits"] = step_logits[0].numpy()
    # top-2 margins of each greedy step: the prompt's logits, then each cached step's
    margins, logits_rows = [], [res.logits[0, -1]] + [s[0, -1] for s in step_logits]
    for row in logits_rows:
        top2 = torch.topk(row, 2).values
        margins.append(round(float(top2[0] - top2[1]), 5))
    positions = [i for i, t in enumerate(ids) if t == IMAGE_TOKEN_ID]
    assert len(positions) == len(images) * N_IMAGE_TOKENS
    case = {
        "name": name, "question": question, "prompt": prompt, "num_images": len(images),
        "sequence_length": len(ids), "input_ids": ids, "image_token_positions": positions,
        "position_ids": list(range(1, len(ids) + 1)),
        "greedy_tokens": tokens, "greedy_top2_margins": margins,
        "decode_step": ({"token": tokens[0], "position_id": len(ids) + 1, "past_sequence_length": len(ids),
                         "tensor": "decode.logits"} if step_logits else None),
        "num_vision_hidden_states": n_vis_h, "num_vision_attentions": n_vis_a,
        "num_text_hidden_states": len(res.hidden_states), "num_text_attentions": len(res.attentions),
        "tensors": sorted(out),
    }
    print(f"  {name}: seq {len(ids)}, greedy {tokens}, top-2 margins {margins}")
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
    processor = WordLevelPaliGemmaProcessor(image_processor=image_processor(), tokenizer=make_tokenizer())
    for t in SPECIALS + [IMAGE_TOKEN, NEWLINE]:  # the processor's add_special_tokens must not have moved any id
        assert processor.tokenizer.convert_tokens_to_ids(t) == VOCAB[t], t
    assert processor.tokenizer.add_bos_token is False
    write_hub_files(model, processor, MODEL_DIR)
    with torch.no_grad():
        patch_err = check_export_patches(model)
        dec_err = check_decoder_wrapper(model)
        print(f"export patch vs HF's get_image_features: {patch_err:.2e}; decoder wrapper vs HF forward: {dec_err:.2e}")
        export_onnx(model, os.path.join(MODEL_DIR, "onnx"))

    wide = pattern_image(48, 32, SEED + 2)
    tall = pattern_image(30, 44, SEED + 4)
    write_png(os.path.join(OUT, "wide.png"), wide)
    write_png(os.path.join(OUT, "tall.png"), tall)
    cases_spec = [
        ("image-wide", "answer en What colour is the square?", [wide], ["wide.png"]),
        ("image-pair", "answer en Which side is the same in both images?", [tall, wide], ["tall.png", "wide.png"]),
        ("text-only", "answer en Name a colour that is not red.", [], []),
    ]
    tensors, cases = {}, []
    print("references:")
    with torch.no_grad():
        for name, question, imgs, pngs in cases_spec:
            case, out = run_case(model, processor, name, question, imgs)
            case["images"] = pngs
            case["image"] = pngs[0] if pngs else None
            case["image_sizes"] = [{"width": im.shape[1], "height": im.shape[0]} for im in imgs]
            cases.append(case)
            for k, v in out.items():
                tensors[f"{name}/{k}"] = v
    shapes = []
    for i, (w, h) in enumerate([(32, 32), (48, 32), (20, 50), (100, 37), (37, 100), (64, 64)]):
        img = pattern_image(w, h, SEED + 10 + i)
        rel = f"shapes/{w}x{h}.png"
        write_png(os.path.join(OUT, rel), img)
        px = processor.image_processor(Image.fromarray(img, "RGB"), return_tensors="pt")["pixel_values"]
        tensors[f"shapes/{w}x{h}/pixel_values"] = px.numpy().astype(np.float32)
        shapes.append({"image": rel, "width": w, "height": h, "tensor": f"shapes/{w}x{h}/pixel_values",
                       "shape": list(px.shape)})
    write_safetensors(os.path.join(OUT, "reference.safetensors"), tensors, GENERATOR)
    index = {
        "generator": GENERATOR,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "opset": OPSET,
        "seed": SEED,
        "init": {"weights_std": WEIGHT_STD, "bias_std": BIAS_STD,
                 "norm_weight": f"LayerNorm 1 + normal(0, {NORM_STD}); GemmaRMSNorm normal(0, {NORM_STD}) (scale 1 + w)",
                 "note": "HF's _init_weights (std 0.02, zero biases) then every parameter re-drawn; lm_head tied"},
        "max_new_tokens": MAX_NEW_TOKENS,
        "text_layers": T_LAYERS,
        "vision_layers": V_LAYERS,
        "image_token_index": IMAGE_TOKEN_ID,
        "image_seq_length": N_IMAGE_TOKENS,
        "eos_token_id": EOS_ID,
        "bos_token_id": BOS_ID,
        "pad_token_id": PAD_ID,
        "newline_token_id": NEWLINE_ID,
        "position_ids_start": 1,
        "prefix_attention": PREFIX_ATTENTION,
        "export_patch_max_rel_diff": patch_err,
        "decoder_wrapper_max_rel_diff": dec_err,
        "tensor_naming": "<case name>/<tensor> in reference.safetensors; shapes/<w>x<h>/pixel_values",
        "hidden_states_note": ("inputs_embeds = embed_tokens(input_ids) (the <image> rows still the token's "
                               "embedding); text.hidden_states.0 = the merged embeddings times sqrt(hidden_size) "
                               "(GemmaModel's normalizer), .1 = after layer 0, .2 = after the final RMSNorm (HF "
                               "replaces the last layer's output by norm(x)); vision.hidden_states.0 = embeddings "
                               "(patches + position), .i = after encoder layer i; vision.last_hidden_state = "
                               "post_layernorm(last layer); image_features = projector(last_hidden_state) / "
                               "sqrt(hidden_size)"),
        "cases": cases,
        "shapes": shapes,
    }
    dump(os.path.join(OUT, "reference.json"), index)
    total = 0
    for dp, _, fs in os.walk(OUT):
        for f in sorted(fs):
            total += os.path.getsize(os.path.join(dp, f))
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")
    return index


if __name__ == "__main__":
    main()
