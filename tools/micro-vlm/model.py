"""micro-llava in plain PyTorch: CLIP-style ViT -> 2-layer GELU projector -> Llama decoder.

Written out by hand (no transformers) so it runs on Debian's torch 1.13, and so the ONNX
graph has the plain attention pattern our graph surgery targets:
    MatMul(Q, K^T) -> Mul(scale) -> Add(mask) -> Softmax -> MatMul(V)
in both towers (the vision tower adds an all-zero mask constant for that reason, the
decoder its causal/padding mask). Module names follow Hugging Face's LLaVA so exported
node names read `/language_model/layers.0/self_attn/Softmax` etc.

Every attention takes an optional additive bias (broadcastable to [batch, heads, q, k]),
added to the mask before the softmax. It is never exported; it exists so reference
fixtures for attention knockout can be written from PyTorch later.
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from config import MicroConfig

NEG = torch.finfo(torch.float32).min  # HF's "masked" value: finite, so no NaN on fully masked rows


def plain_attention(q, k, v, scale: float, mask, bias=None):
    """Eager attention exactly as HF's `eager_attention_forward` (scale after the matmul)."""
    scores = torch.matmul(q, k.transpose(2, 3)) * scale
    if bias is not None:
        mask = mask + bias
    scores = scores + mask
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, v), probs


# ----------------------------------------------------------------------------- vision


class VisionEmbeddings(nn.Module):
    def __init__(self, c: MicroConfig):
        super().__init__()
        self.class_embedding = nn.Parameter(torch.randn(c.vision_hidden) * 0.02)
        self.patch_embedding = nn.Conv2d(c.num_channels, c.vision_hidden, c.patch_size, c.patch_size, bias=False)
        self.num_positions = c.num_patches + 1
        self.position_embedding = nn.Embedding(self.num_positions, c.vision_hidden)
        self.register_buffer("position_ids", torch.arange(self.num_positions)[None], persistent=False)

    def forward(self, pixel_values):
        b = pixel_values.shape[0]
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)  # [b, 64, d]
        cls = self.class_embedding.expand(b, 1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embedding(self.position_ids)


class VisionAttention(nn.Module):
    def __init__(self, c: MicroConfig):
        super().__init__()
        self.heads = c.vision_heads
        self.head_dim = c.vision_hidden // c.vision_heads
        self.scale = self.head_dim ** -0.5
        self.q_proj = nn.Linear(c.vision_hidden, c.vision_hidden)
        self.k_proj = nn.Linear(c.vision_hidden, c.vision_hidden)
        self.v_proj = nn.Linear(c.vision_hidden, c.vision_hidden)
        self.out_proj = nn.Linear(c.vision_hidden, c.vision_hidden)

    def forward(self, x, mask, bias=None):
        b, s, d = x.shape
        split = lambda t: t.view(b, s, self.heads, self.head_dim).transpose(1, 2)
        out, probs = plain_attention(split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x)), self.scale, mask, bias)
        return self.out_proj(out.transpose(1, 2).reshape(b, s, d)), probs


class VisionMLP(nn.Module):
    def __init__(self, c: MicroConfig):
        super().__init__()
        self.fc1 = nn.Linear(c.vision_hidden, c.vision_intermediate)
        self.fc2 = nn.Linear(c.vision_intermediate, c.vision_hidden)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class VisionLayer(nn.Module):
    """Pre-LN transformer block (CLIPEncoderLayer)."""

    def __init__(self, c: MicroConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(c.vision_hidden, eps=c.vision_ln_eps)
        self.self_attn = VisionAttention(c)
        self.layer_norm2 = nn.LayerNorm(c.vision_hidden, eps=c.vision_ln_eps)
        self.mlp = VisionMLP(c)

    def forward(self, x, mask, bias=None):
        a, probs = self.self_attn(self.layer_norm1(x), mask, bias)
        x = x + a
        return x + self.mlp(self.layer_norm2(x)), probs


class VisionTower(nn.Module):
    """CLIPVisionTransformer: embeddings -> pre_layrnorm -> layers (-> post_layernorm, unused by LLaVA)."""

    def __init__(self, c: MicroConfig):
        super().__init__()
        self.embeddings = VisionEmbeddings(c)
        self.pre_layrnorm = nn.LayerNorm(c.vision_hidden, eps=c.vision_ln_eps)
        self.layers = nn.ModuleList([VisionLayer(c) for _ in range(c.vision_layers)])
        n = c.num_patches + 1
        # All-zero additive mask: a ViT attends everywhere, but a real `Add(mask)` node
        # keeps the vision attention pattern identical to the decoder's for graph surgery.
        self.register_buffer("attention_mask", torch.zeros(1, 1, n, n), persistent=False)

    def forward(self, pixel_values, num_layers: Optional[int] = None, attn_bias: Optional[List] = None, want_probs=False):
        """Returns hidden_states[0..num_layers] (index 0 = after pre_layrnorm, as HF) and attention probs."""
        h = self.pre_layrnorm(self.embeddings(pixel_values))
        states, probs = [h], []
        for i, layer in enumerate(self.layers[: num_layers if num_layers is not None else len(self.layers)]):
            h, p = layer(h, self.attention_mask, attn_bias[i] if attn_bias else None)
            states.append(h)
            if want_probs:
                probs.append(p)
        return states, probs


class Projector(nn.Module):
    """LlavaMultiModalProjector: linear_1 -> GELU -> linear_2."""

    def __init__(self, c: MicroConfig):
        super().__init__()
        self.linear_1 = nn.Linear(c.vision_hidden, c.text_hidden)
        self.linear_2 = nn.Linear(c.text_hidden, c.text_hidden)

    def forward(self, x):
        return self.linear_2(F.gelu(self.linear_1(x)))


# ----------------------------------------------------------------------------- language model


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Rotary(nn.Module):
    """Llama RoPE (rotate_half convention), cos/sin computed from position_ids in-graph."""

    def __init__(self, c: MicroConfig):
        super().__init__()
        d = c.text_head_dim
        self.register_buffer("inv_freq", 1.0 / (c.rope_theta ** (torch.arange(0, d, 2).float() / d)), persistent=False)

    def forward(self, position_ids):
        freqs = position_ids[:, :, None].float() * self.inv_freq[None, None, :]
        emb = torch.cat([freqs, freqs], dim=-1)[:, None]  # [b, 1, s, hd]
        return emb.cos(), emb.sin()


class TextAttention(nn.Module):
    def __init__(self, c: MicroConfig):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = c.text_heads, c.text_kv_heads, c.text_head_dim
        self.groups = self.heads // self.kv_heads
        self.scale = self.head_dim ** -0.5
        self.q_proj = nn.Linear(c.text_hidden, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(c.text_hidden, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(c.text_hidden, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, c.text_hidden, bias=False)

    def forward(self, x, cos, sin, mask, past_k, past_v, bias=None):
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # The cache holds rotated keys (as HF's DynamicCache): present = past ++ new.
        k = torch.cat([past_k, k], dim=2)
        v = torch.cat([past_v, v], dim=2)
        # repeat_kv: each KV head serves `groups` query heads.
        t = k.shape[2]
        kr = k[:, :, None].expand(b, self.kv_heads, self.groups, t, self.head_dim).reshape(b, self.heads, t, self.head_dim)
        vr = v[:, :, None].expand(b, self.kv_heads, self.groups, t, self.head_dim).reshape(b, self.heads, t, self.head_dim)
        out, probs = plain_attention(q, kr, vr, self.scale, mask, bias)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, self.heads * self.head_dim)), k, v, probs


class TextMLP(nn.Module):
    def __init__(self, c: MicroConfig):
        super().__init__()
        self.gate_proj = nn.Linear(c.text_hidden, c.text_intermediate, bias=False)
        self.up_proj = nn.Linear(c.text_hidden, c.text_intermediate, bias=False)
        self.down_proj = nn.Linear(c.text_intermediate, c.text_hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class TextLayer(nn.Module):
    def __init__(self, c: MicroConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(c.text_hidden, c.rms_norm_eps)
        self.self_attn = TextAttention(c)
        self.post_attention_layernorm = RMSNorm(c.text_hidden, c.rms_norm_eps)
        self.mlp = TextMLP(c)

    def forward(self, x, cos, sin, mask, past_k, past_v, bias=None):
        a, k, v, probs = self.self_attn(self.input_layernorm(x), cos, sin, mask, past_k, past_v, bias)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), k, v, probs


def causal_mask(attention_mask, q_len: int):
    """Additive mask [b, 1, q, total]: key j visible to query i iff j <= past+i and attention_mask[j] == 1."""
    total = attention_mask.shape[1]
    past = total - q_len
    kpos = torch.arange(total, device=attention_mask.device)
    qpos = torch.arange(q_len, device=attention_mask.device) + past
    allowed = (kpos[None, :] <= qpos[:, None])[None, None] & (attention_mask[:, None, None, :] > 0)
    return (1.0 - allowed.float()) * NEG


class LanguageModel(nn.Module):
    """LlamaModel + lm_head (kept beside, as LlavaForConditionalGeneration does)."""

    def __init__(self, c: MicroConfig):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c.vocab_size, c.text_hidden)
        self.layers = nn.ModuleList([TextLayer(c) for _ in range(c.text_layers)])
        self.norm = RMSNorm(c.text_hidden, c.rms_norm_eps)
        self.rotary_emb = Rotary(c)

    def forward(self, inputs_embeds, attention_mask, position_ids, past: Optional[List[Tuple]] = None,
                attn_bias: Optional[List] = None, want_probs=False):
        """Returns (final normed hidden, hidden_states list [embeds, after each layer], presents, probs)."""
        b, s, _ = inputs_embeds.shape
        if past is None:
            z = inputs_embeds.new_zeros(b, self.c.text_kv_heads, 0, self.c.text_head_dim)
            past = [(z, z)] * len(self.layers)
        mask = causal_mask(attention_mask, s)
        cos, sin = self.rotary_emb(position_ids)
        h, states, presents, probs = inputs_embeds, [inputs_embeds], [], []
        for i, layer in enumerate(self.layers):
            h, k, v, p = layer(h, cos, sin, mask, past[i][0], past[i][1], attn_bias[i] if attn_bias else None)
            states.append(h)
            presents.append((k, v))
            if want_probs:
                probs.append(p)
        return self.norm(h), states, presents, probs


class MicroLlava(nn.Module):
    def __init__(self, c: MicroConfig):
        super().__init__()
        self.c = c
        self.vision_tower = VisionTower(c)
        self.multi_modal_projector = Projector(c)
        self.language_model = LanguageModel(c)
        self.lm_head = nn.Linear(c.text_hidden, c.vocab_size, bias=False)
        self.apply(self._init)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.language_model.embed_tokens.weight

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    # Layers the export needs: hidden_states[L + 1 + feature_layer] when negative.
    def feature_layer_index(self) -> int:
        f = self.c.vision_feature_layer
        return f if f >= 0 else self.c.vision_layers + 1 + f

    def vision_states(self, pixel_values, attn_bias=None, want_probs=False, all_layers=True):
        n = None if all_layers else self.feature_layer_index()
        return self.vision_tower(pixel_values, num_layers=n, attn_bias=attn_bias, want_probs=want_probs)

    def image_features(self, pixel_values, vision_attn_bias=None):
        """get_image_features: select layer, drop CLS ("default"), project -> [b, 64, text_hidden]."""
        states, _ = self.vision_states(pixel_values, vision_attn_bias, all_layers=False)
        return self.multi_modal_projector(states[self.feature_layer_index()][:, 1:])

    def embed(self, input_ids):
        return self.language_model.embed_tokens(input_ids)

    def merge(self, input_ids, embeds, image_features):
        """Masked scatter of image features into image-token rows, batch-major (as transformers.js)."""
        pos = input_ids == self.c.image_token_index
        out = embeds.clone()
        out[pos] = image_features.reshape(-1, image_features.shape[-1]).to(out.dtype)
        return out

    def logits_at(self, input_ids, image_features, positions, want_probs=False, want_states=False):
        """Training forward: logits at `positions` ([n, 2] batch/sequence pairs) of right-padded
        prompts whose image rows hold `image_features` (causal attention keeps padding inert).
        want_probs: also every LLM layer's attention probabilities; want_states: also the hidden
        states (embeddings, then after each layer) — both after the logits, in that order."""
        embeds = self.merge(input_ids, self.embed(input_ids), image_features)
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)[None].expand_as(input_ids)
        hidden, states, _, probs = self.language_model(embeds, torch.ones_like(input_ids), pos, want_probs=want_probs)
        logits = self.lm_head(hidden[positions[:, 0], positions[:, 1]])
        extra = ([probs] if want_probs else []) + ([states] if want_states else [])
        return (logits, *extra) if extra else logits

    def forward(self, input_ids, pixel_values=None, attention_mask=None, position_ids=None,
                vision_attn_bias=None, text_attn_bias=None, want_probs=False):
        """Full prefill. pixel_values: [num_images_total, 3, H, W] in order of appearance."""
        b, s = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if position_ids is None:
            position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        embeds = self.embed(input_ids)
        if pixel_values is not None:
            embeds = self.merge(input_ids, embeds, self.image_features(pixel_values, vision_attn_bias))
        hidden, states, presents, probs = self.language_model(embeds, attention_mask, position_ids,
                                                              attn_bias=text_attn_bias, want_probs=want_probs)
        return self.lm_head(hidden), hidden, states, presents, probs
