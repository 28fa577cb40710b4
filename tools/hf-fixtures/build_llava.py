#!/usr/bin/python3
"""hf-llava: a tiny LLaVA-1.5 built from the real Hugging Face modeling code, exported like onnx-community.

Model      `LlavaForConditionalGeneration` of transformers v4.46.1 (CLIP vision tower + Llama), built from a
           config with random weights (fixed seed), attn_implementation="eager". Nothing is re-implemented:
           the ONNX graphs are traces of HF's own modules, and the references are HF's own forward passes
           (`LlavaForConditionalGeneration.forward`, `.generate`, `get_image_features`, `CLIPImageProcessor`,
           `LlavaProcessor`, `apply_chat_template`).
Export     TorchScript `torch.onnx.export`, opset 17, into the transformers.js layout:
           model/onnx/{vision_encoder,embed_tokens,decoder_model_merged}.onnx (+ *_quantized.onnx int8 dynamic,
           decoder_model_merged_q4.onnx MatMulNBits) and model-ort-fused/ (ONNX Runtime's transformer optimizer).
References reference.json + reference.safetensors (`<case>/<tensor>`), noise.png, wide.png, shapes/<w>x<h>.png.

Run (from the repository root, Debian's python3: torch 1.13 CPU, onnx, numpy, PIL, jinja2):
    /usr/bin/python3 tools/hf-fixtures/build_llava.py
Environment: HF_TRANSFORMERS_SRC (default /work/.cache-hf/v4.46.1/src), HF_STUBS (default
/work/shared/hf-modeling/stubs), ORT_TOOLS (default /work/.cache-hf/ort-tools: a source checkout holding
onnxruntime/python/tools; without it the quantized variants and model-ort-fused/ are skipped, with a message).
Deterministic: fixed seed, one thread, torch.use_deterministic_algorithms.
"""
import collections
import json
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
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizer,
)
from transformers.cache_utils import DynamicCache  # noqa: E402
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD  # noqa: E402
from transformers import tokenization_utils_base  # noqa: E402

# Without the `tokenizers` package transformers falls back to its own AddedToken, a dataclass(eq=True) and so
# unhashable, which v4.46.1's slow-tokenizer __init__ puts in a dict lookup. Hash it by content, as tokenizers does.
if tokenization_utils_base.AddedToken.__hash__ is None:
    tokenization_utils_base.AddedToken.__hash__ = lambda self: hash(self.content)

# generate() asks integrations.fsdp.is_fsdp_managed_module, which imports torch.distributed.fsdp; on Python 3.11
# torch 1.13's fsdp package fails to import (a dataclass with a mutable default). Nothing here is FSDP-managed.
import transformers.generation.utils as _gen_utils  # noqa: E402

_gen_utils.is_fsdp_managed_module = lambda module: False

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fixture_io import dump, write_png, write_safetensors  # noqa: E402

GENERATOR = "tools/hf-fixtures/build_llava.py"
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "hf-llava")
MODEL_DIR = os.path.join(OUT, "model")
FUSED_DIR = os.path.join(OUT, "model-ort-fused")
ORT_TOOLS = os.environ.get("ORT_TOOLS", "/work/.cache-hf/ort-tools")
ONNX_FILES = ["vision_encoder", "embed_tokens", "decoder_model_merged"]

SEED = 20241114  # chosen among 24 seeds: greedy tokens avoid special ids, top-2 margins >= 0.26
OPSET = 17
MAX_NEW_TOKENS = 4
WEIGHT_STD = 0.3  # Linear / Conv2d / Embedding weights, CLS embedding: normal(0, WEIGHT_STD)
BIAS_STD = 0.05  # Linear / Conv2d / LayerNorm biases: normal(0, BIAS_STD)
NORM_STD = 0.1  # LayerNorm / RMSNorm weights: 1 + normal(0, NORM_STD)

IMAGE, PATCH = 32, 4
N_IMAGE_TOKENS = (IMAGE // PATCH) ** 2  # 64: "default" drops CLS
V_HIDDEN, V_LAYERS, V_HEADS, V_FFN = 32, 3, 4, 64
T_HIDDEN, T_LAYERS, T_HEADS, T_KV, T_FFN = 64, 2, 4, 2, 128
T_HEAD_DIM = T_HIDDEN // T_HEADS
VOCAB_SIZE = 100
MAX_POS = 256

ATTENTION_DTYPE_NOTE = ("vision.attentions.* and text.attentions.* are stored as F16 (softmax probabilities in [0, 1]: "
                        "absolute rounding error <= 2.4e-4) to keep the fixture under 3 MB; every other float "
                        "tensor is F32")

# ----------------------------------------------------------------------------- tokenizer
# llava-hf/llava-1.5-*-hf: Llama's <unk> 0, <s> 1, </s> 2; <image> 32000 and <pad> 32001 added after the vocabulary.
# Here: <unk> 0, <s> 1, </s> 2, words, fillers, <pad> 98, <image> 99 (the image token is the last id).
SPECIALS = ["<unk>", "<s>", "</s>"]
WORDS = (
    "USER ASSISTANT : What what is in the picture ? . , ! a an of on to it this that there here colour color "
    "red green blue yellow black white grey orange purple pink brown square circle shape object left right top "
    "bottom middle big small one two three four many no yes not and or Name name Describe describe image photo "
    "noise random pattern dots pixels bright dark light How how much count are do does see"
).split()
IMAGE_TOKEN, PAD_TOKEN = "<image>", "<pad>"
VOCAB = {t: i for i, t in enumerate(SPECIALS + WORDS)}
assert len(VOCAB) == len(SPECIALS) + len(WORDS), "duplicate words"
assert len(VOCAB) <= VOCAB_SIZE - 2
for i in range(len(VOCAB), VOCAB_SIZE - 2):
    VOCAB[f"<extra_{i}>"] = i
VOCAB[PAD_TOKEN] = VOCAB_SIZE - 2
VOCAB[IMAGE_TOKEN] = VOCAB_SIZE - 1
UNK_ID, BOS_ID, EOS_ID = VOCAB["<unk>"], VOCAB["<s>"], VOCAB["</s>"]
PAD_ID, IMAGE_TOKEN_ID = VOCAB[PAD_TOKEN], VOCAB[IMAGE_TOKEN]
ADDED = ["<unk>", "<s>", "</s>", IMAGE_TOKEN, PAD_TOKEN]

# The chat template of llava-hf/llava-1.5-7b-hf (its chat_template.json / tokenizer_config.json), verbatim.
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}"
    "{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

_WS_RE = re.compile(r"\w+|[^\w\s]+")  # the `tokenizers` Whitespace pre-tokenizer


class WordLevelTokenizer(PreTrainedTokenizer):
    """A slow (pure Python) tokenizer with the semantics of the hand-written tokenizer.json: added tokens split
    first, then the Whitespace pre-tokenizer, WordLevel lookup, `<s>` prepended. `tokenizers` is not installable
    here, so HF's LlavaProcessor runs with this one."""

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, **kwargs):
        self.vocab = dict(VOCAB)
        self.ids_to_tokens = {i: t for t, i in VOCAB.items()}
        super().__init__(**kwargs)

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
        return [BOS_ID] + ids0 + ([] if ids1 is None else [BOS_ID] + ids1)


def make_tokenizer():
    return WordLevelTokenizer(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token=PAD_TOKEN,
                              additional_special_tokens=[IMAGE_TOKEN], chat_template=CHAT_TEMPLATE,
                              padding_side="left")


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
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [BOS_ID], "tokens": ["<s>"]}},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordLevel", "vocab": VOCAB, "unk_token": "<unk>"},
    }


def tokenizer_config_json():
    # The keys of llava-hf/llava-1.5-7b-hf's tokenizer_config.json (LlamaTokenizer there; PreTrainedTokenizerFast
    # here, since the vocabulary is a WordLevel model).
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {str(VOCAB[t]): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                                 "single_word": False, "special": True}
                                 for t in sorted(ADDED, key=VOCAB.get)},
        "additional_special_tokens": [IMAGE_TOKEN],
        "bos_token": "<s>",
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "model_max_length": MAX_POS,
        "pad_token": PAD_TOKEN,
        "padding_side": "left",
        "processor_class": "LlavaProcessor",
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": "<unk>",
    }


# ----------------------------------------------------------------------------- model


def make_config():
    vision = CLIPVisionConfig(image_size=IMAGE, patch_size=PATCH, hidden_size=V_HIDDEN, num_hidden_layers=V_LAYERS,
                              num_attention_heads=V_HEADS, intermediate_size=V_FFN)  # hidden_act quick_gelu (default)
    text = LlamaConfig(vocab_size=VOCAB_SIZE, hidden_size=T_HIDDEN, intermediate_size=T_FFN,
                       num_hidden_layers=T_LAYERS, num_attention_heads=T_HEADS, num_key_value_heads=T_KV,
                       max_position_embeddings=MAX_POS, rms_norm_eps=1e-6, bos_token_id=BOS_ID,
                       eos_token_id=EOS_ID, pad_token_id=PAD_ID, tie_word_embeddings=False,
                       architectures=["LlamaForCausalLM"])
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=IMAGE_TOKEN_ID,
                      projector_hidden_act="gelu", vision_feature_select_strategy="default",
                      vision_feature_layer=-2, image_seq_length=N_IMAGE_TOKENS, tie_word_embeddings=False,
                      pad_token_id=PAD_ID, architectures=["LlavaForConditionalGeneration"], torch_dtype="float32")
    return cfg


def reinit_(model):
    """HF's Llava `_init_weights` draws normal(0, 0.02) and zero biases, and leaves norms at 1/0: at this size that
    gives near-uniform attention and logits. Re-draw everything, in named_parameters order, from the seeded RNG."""
    g = torch.Generator().manual_seed(SEED + 1)
    norms = (torch.nn.LayerNorm, type(model.language_model.model.norm))
    with torch.no_grad():
        for mod_name, mod in model.named_modules():
            for p_name, p in mod.named_parameters(recurse=False):
                if isinstance(mod, norms):
                    if p_name == "weight":
                        p.copy_(1.0 + NORM_STD * torch.randn(p.shape, generator=g))
                    else:
                        p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
                elif p_name == "bias":
                    p.copy_(BIAS_STD * torch.randn(p.shape, generator=g))
                else:  # Linear, Conv2d, Embedding weights, class_embedding
                    p.copy_(WEIGHT_STD * torch.randn(p.shape, generator=g))


def build_model():
    cfg = make_config()
    model = LlavaForConditionalGeneration._from_config(cfg, attn_implementation="eager")
    model.eval()
    reinit_(model)
    lm = model.language_model
    assert lm.lm_head.weight.data_ptr() != lm.model.embed_tokens.weight.data_ptr(), "lm_head must not be tied"
    attn = {type(model.vision_tower.vision_model.encoder.layers[0].self_attn).__name__,
            type(lm.model.layers[0].self_attn).__name__}
    assert attn == {"CLIPAttention", "LlamaAttention"}, attn  # the eager classes
    return model


# ----------------------------------------------------------------------------- export wrappers


class VisionEncoder(torch.nn.Module):
    """pixel_values -> image_features through HF's own `get_image_features` (tower hidden_states[-2], CLS dropped,
    multi_modal_projector)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        c = self.model.config
        return self.model.get_image_features(pixel_values=pixel_values, vision_feature_layer=c.vision_feature_layer,
                                             vision_feature_select_strategy=c.vision_feature_select_strategy)


class EmbedTokens(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.embed = model.get_input_embeddings()

    def forward(self, input_ids):
        return self.embed(input_ids)


class Decoder(torch.nn.Module):
    """inputs_embeds, attention_mask, position_ids, past... -> logits, presents... through LlamaForCausalLM.forward
    with a DynamicCache (the cache class HF's generate uses)."""

    def __init__(self, model):
        super().__init__()
        self.lm = model.language_model

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        cache = DynamicCache.from_legacy_cache(tuple((past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)))
        out = self.lm(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
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


def export_onnx(model, onnx_dir):
    os.makedirs(onnx_dir, exist_ok=True)
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
    return CLIPImageProcessor(do_resize=True, size={"shortest_edge": IMAGE}, resample=3, do_center_crop=True,
                              crop_size={"height": IMAGE, "width": IMAGE}, do_rescale=True, rescale_factor=1 / 255,
                              do_normalize=True, image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD,
                              do_convert_rgb=True)


def write_hub_files(model, processor, d):
    cfg = model.config.to_dict()
    cfg["transformers.js_config"] = {"dtype": "fp32"}
    dump(os.path.join(d, "config.json"), cfg)
    model.generation_config.to_json_file(os.path.join(d, "generation_config.json"), use_diff=True)
    # what LlavaProcessor.save_pretrained writes: the processor class is recorded, then to_json_file
    processor.image_processor._set_processor_class("LlavaProcessor")
    processor.image_processor.to_json_file(os.path.join(d, "preprocessor_config.json"))
    # v4.46.1's LlavaProcessor knows patch_size / vision_feature_select_strategy / image_token; the hub file (and
    # transformers >= 4.47, transformers.js) also carries num_additional_image_tokens (1 = the CLS token).
    dump(os.path.join(d, "processor_config.json"), {
        "image_token": processor.image_token, "num_additional_image_tokens": 1, "patch_size": processor.patch_size,
        "processor_class": "LlavaProcessor",
        "vision_feature_select_strategy": processor.vision_feature_select_strategy,
    })
    dump(os.path.join(d, "chat_template.json"), {"chat_template": CHAT_TEMPLATE})
    dump(os.path.join(d, "tokenizer.json"), tokenizer_json())
    dump(os.path.join(d, "tokenizer_config.json"), tokenizer_config_json())
    dump(os.path.join(d, "special_tokens_map.json"), {
        "additional_special_tokens": [IMAGE_TOKEN], "bos_token": "<s>", "eos_token": "</s>",
        "pad_token": PAD_TOKEN, "unk_token": "<unk>",
    })


# ----------------------------------------------------------------------------- images


def noise_image():
    return np.random.RandomState(SEED).randint(0, 256, size=(IMAGE, IMAGE, 3)).astype(np.uint8)


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


def run_case(model, processor, name, question, image):
    content = ([{"type": "image"}] if image is not None else []) + [{"type": "text", "text": question}]
    prompt = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    pil = None if image is None else Image.fromarray(image, "RGB")
    enc = processor(images=pil, text=prompt, return_tensors="pt")
    input_ids = enc["input_ids"]
    ids = input_ids[0].tolist()
    assert UNK_ID not in ids, f"{name}: out-of-vocabulary words in {prompt!r}"
    out = {"input_ids": input_ids.numpy()}
    attn = torch.ones_like(input_ids)
    if image is not None:
        pixel_values = enc["pixel_values"]
        out["pixel_values"] = pixel_values.numpy().astype(np.float32)
        feats = model.get_image_features(pixel_values, model.config.vision_feature_layer,
                                         model.config.vision_feature_select_strategy)
        out["image_features"] = feats.numpy()
        vis = model.vision_tower(pixel_values, output_hidden_states=True, output_attentions=True, return_dict=True)
        for i, h in enumerate(vis.hidden_states):
            out[f"vision.hidden_states.{i}"] = h.numpy()
        for i, a in enumerate(vis.attentions):
            out[f"vision.attentions.{i}"] = a.numpy().astype(np.float16)  # F16: see ATTENTION_DTYPE_NOTE
        n_vis_h, n_vis_a = len(vis.hidden_states), len(vis.attentions)
        res = model(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attn, use_cache=True,
                    output_hidden_states=True, output_attentions=True, return_dict=True)
        assert torch.equal(res.image_hidden_states, feats)
        gen = model.generate(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attn,
                             max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
    else:
        n_vis_h = n_vis_a = 0
        # v4.46.1: LlavaForConditionalGeneration.forward(input_ids=...) with no <image> token takes the legacy
        # merge path (0 < image_seq_length) and fails on image_features=None; pass inputs_embeds instead, and
        # generate with the language model alone (the same LlamaForCausalLM).
        res = model(inputs_embeds=model.get_input_embeddings()(input_ids), attention_mask=attn, use_cache=True,
                    output_hidden_states=True, output_attentions=True, return_dict=True)
        gen = model.language_model.generate(input_ids=input_ids, attention_mask=attn, max_new_tokens=MAX_NEW_TOKENS,
                                            do_sample=False)
    out["logits"] = res.logits.numpy()
    for i, h in enumerate(res.hidden_states):
        out[f"text.hidden_states.{i}"] = h.numpy()
    for i, a in enumerate(res.attentions):
        out[f"text.attentions.{i}"] = a.numpy().astype(np.float16)
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
    out["decode.logits"] = step_logits[0].numpy()
    margins = []
    full = torch.cat([inputs_embeds, emb(torch.tensor([tokens[:-1]]))], dim=1)
    all_logits = model.language_model(inputs_embeds=full, attention_mask=torch.ones(1, full.shape[1],
                                                                                      dtype=torch.long)).logits[0]
    for step in range(MAX_NEW_TOKENS):
        top2 = torch.topk(all_logits[len(ids) - 1 + step], 2).values
        margins.append(round(float(top2[0] - top2[1]), 5))
    case = {
        "name": name, "question": question, "prompt": prompt,
        "num_images": 0 if image is None else 1, "sequence_length": len(ids), "input_ids": ids,
        "image_token_positions": [i for i, t in enumerate(ids) if t == IMAGE_TOKEN_ID],
        "greedy_tokens": tokens, "greedy_top2_margins": margins,
        "decode_step": {"token": tokens[0], "position_id": len(ids), "past_sequence_length": len(ids),
                        "tensor": "decode.logits"},
        "num_vision_hidden_states": n_vis_h, "num_vision_attentions": n_vis_a,
        "num_text_hidden_states": len(res.hidden_states), "num_text_attentions": len(res.attentions),
        "tensors": sorted(out),
    }
    print(f"  {name}: seq {len(ids)}, greedy {tokens}, top-2 margins {margins}")
    return case, out


# ----------------------------------------------------------------------------- ONNX Runtime tools


def op_counts(path):
    m = onnx.load(path)
    return dict(sorted(collections.Counter(
        (n.domain + "::" if n.domain not in ("", "ai.onnx") else "") + n.op_type for n in m.graph.node).items()))


def ort_tools_info():
    commit_file = os.path.join(ORT_TOOLS, "COMMIT")
    return {"source": ORT_TOOLS, "commit": open(commit_file).read().strip() if os.path.exists(commit_file) else None}


def make_variants(onnx_dir):
    """int8 dynamic quantization (*_quantized.onnx) and 4-bit MatMulNBits (decoder_model_merged_q4.onnx) with ONNX
    Runtime's own Python quantization tools."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    info = {}
    for name in ONNX_FILES:
        src, dst = os.path.join(onnx_dir, f"{name}.onnx"), os.path.join(onnx_dir, f"{name}_quantized.onnx")
        quantize_dynamic(src, dst, weight_type=QuantType.QUInt8, per_channel=False, reduce_range=False,
                         extra_options={"EnableSubgraph": True, "MatMulConstBOnly": True})
        onnx.checker.check_model(onnx.load(dst))
        info[os.path.basename(dst)] = {
            "tool": "onnxruntime.quantization.quantize_dynamic",
            "settings": "weight_type=QUInt8, per_channel=False, reduce_range=False, "
                        "extra_options={EnableSubgraph: True, MatMulConstBOnly: True}, default op types"}
    src, dst = os.path.join(onnx_dir, "decoder_model_merged.onnx"), os.path.join(onnx_dir, "decoder_model_merged_q4.onnx")
    q = MatMulNBitsQuantizer(onnx.load(src), block_size=32, is_symmetric=True, accuracy_level=None,
                             op_types_to_quantize=("MatMul",))
    q.process()
    q.model.save_model_to_file(dst, False)
    onnx.checker.check_model(onnx.load(dst))
    info["decoder_model_merged_q4.onnx"] = {
        "tool": "onnxruntime.quantization.matmul_nbits_quantizer.MatMulNBitsQuantizer",
        "settings": "bits=4, block_size=32, is_symmetric=True, accuracy_level=None, QOperator (com.microsoft::"
                    "MatMulNBits); quantize_matmul_4bits = numpy port of MLAS (tools/hf-fixtures/ort_shim.py)"}
    return info


FUSED_SETTINGS = {"vision_encoder": ("clip", V_HEADS, V_HIDDEN), "decoder_model_merged": ("gpt2", T_HEADS, T_HIDDEN),
                  "embed_tokens": ("gpt2", T_HEADS, T_HIDDEN)}


def make_fused(model_dir, fused_dir, settings=None):
    """model-ort-fused/: the fp32 graphs after ONNX Runtime's transformer optimizer (python fusions only).
    settings: {graph name: (model_type, num_heads, hidden_size)}, in order; default hf-llava's FUSED_SETTINGS for
    ONNX_FILES (build_idefics3_fused.py passes its own)."""
    from onnxruntime.transformers.optimizer import optimize_model

    if settings is None:
        settings = {name: FUSED_SETTINGS[name] for name in ONNX_FILES}
    os.makedirs(os.path.join(fused_dir, "onnx"))
    for f in sorted(os.listdir(model_dir)):
        if f.endswith(".json"):
            shutil.copyfile(os.path.join(model_dir, f), os.path.join(fused_dir, f))
    info = {}
    for name, (model_type, heads, hidden) in settings.items():
        m = optimize_model(os.path.join(model_dir, "onnx", f"{name}.onnx"), model_type=model_type, num_heads=heads,
                           hidden_size=hidden, opt_level=0, only_onnxruntime=False, use_gpu=False)
        dst = os.path.join(fused_dir, "onnx", f"{name}.onnx")
        m.save_model_to_file(dst)
        # (no onnx.checker here: ORT registers SimplifiedLayerNormalization in the default ONNX domain, which the
        # checker rejects as an unknown op at opset 17)
        info[f"{name}.onnx"] = {
            "tool": "onnxruntime.transformers.optimizer.optimize_model",
            "settings": f"model_type={model_type!r}, num_heads={heads}, hidden_size={hidden}, opt_level=0, "
                        "only_onnxruntime=False, use_gpu=False",
            "fused_operator_statistics": {k: v for k, v in m.get_fused_operator_statistics().items() if v}}
    return info


# ----------------------------------------------------------------------------- main


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print(f"transformers {transformers.__version__} from {transformers.__file__}")
    print(f"torch {torch.__version__}, onnx {onnx.__version__}")

    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "shapes"))
    os.makedirs(os.path.join(MODEL_DIR, "onnx"))

    model = build_model()
    processor = LlavaProcessor(image_processor=image_processor(), tokenizer=make_tokenizer(), patch_size=PATCH,
                               vision_feature_select_strategy="default", chat_template=CHAT_TEMPLATE,
                               image_token=IMAGE_TOKEN)
    write_hub_files(model, processor, MODEL_DIR)
    with torch.no_grad():
        export_onnx(model, os.path.join(MODEL_DIR, "onnx"))

    noise = noise_image()
    wide = pattern_image(48, 32, SEED + 2)
    write_png(os.path.join(OUT, "noise.png"), noise)
    write_png(os.path.join(OUT, "wide.png"), wide)
    cases_spec = [
        ("image-noise", "What is in the picture?", noise, "noise.png"),
        ("image-wide", "Describe the colour and shape of the object.", wide, "wide.png"),
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
    for i, (w, h) in enumerate([(32, 32), (64, 64), (48, 32), (20, 50), (100, 37)]):
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
        "init": {"weights_std": WEIGHT_STD, "bias_std": BIAS_STD, "norm_weight": f"1 + normal(0, {NORM_STD})",
                 "note": "HF's _init_weights (std 0.02, zero biases, unit norms) then every parameter re-drawn"},
        "max_new_tokens": MAX_NEW_TOKENS,
        "text_layers": T_LAYERS,
        "vision_layers": V_LAYERS,
        "vision_feature_layer": model.config.vision_feature_layer,
        "image_token_index": IMAGE_TOKEN_ID,
        "image_seq_length": N_IMAGE_TOKENS,
        "eos_token_id": EOS_ID,
        "bos_token_id": BOS_ID,
        "pad_token_id": PAD_ID,
        "tensor_naming": "<case name>/<tensor> in reference.safetensors; shapes/<w>x<h>/pixel_values",
        "attentions_dtype_note": ATTENTION_DTYPE_NOTE,
        "hidden_states_note": ("text.hidden_states.0 = inputs_embeds (image rows replaced), .1 = after layer 0, "
                               ".2 = after the final RMSNorm (HF replaces the last layer's output by norm(x)); "
                               "vision.hidden_states.0 = pre_layrnorm(embeddings), .i = after encoder layer i "
                               "(no post_layernorm); image_features use vision.hidden_states.2 (layer -2)"),
        "cases": cases,
        "shapes": shapes,
    }
    onnx_dir = os.path.join(MODEL_DIR, "onnx")
    try:
        import ort_shim

        ort_version = ort_shim.install(ORT_TOOLS)
    except FileNotFoundError as e:
        print(f"ONNX Runtime python tools not found ({e}): no quantized variants, no model-ort-fused/")
        ort_version = None
    if ort_version:
        import logging

        logging.disable(logging.INFO)
        print(f"onnxruntime python tools {ort_version} ({ORT_TOOLS})")
        index["onnxruntime_tools"] = dict(ort_tools_info(), version=ort_version)
        index["variants"] = make_variants(onnx_dir)
        index["fused"] = make_fused(MODEL_DIR, FUSED_DIR)
    index["op_counts"] = {}
    for d in (MODEL_DIR, FUSED_DIR):
        if os.path.isdir(os.path.join(d, "onnx")):
            for f in sorted(os.listdir(os.path.join(d, "onnx"))):
                rel = os.path.relpath(os.path.join(d, "onnx", f), OUT)
                index["op_counts"][rel] = op_counts(os.path.join(d, "onnx", f))
    dump(os.path.join(OUT, "reference.json"), index)
    total = 0
    for dp, _, fs in os.walk(OUT):
        for f in sorted(fs):
            total += os.path.getsize(os.path.join(dp, f))
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")
    return index


if __name__ == "__main__":
    main()
