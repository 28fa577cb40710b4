"""Hyperparameters of micro-llava, and the Hugging Face `config.json` they map to.

One dataclass is the single source of truth: the PyTorch model is built from it, and
`hf_config()` writes it out with the key names `LlavaConfig` / `CLIPVisionConfig` /
`LlamaConfig` use on the hub, so tools that read hub configs see a normal LLaVA.
"""
from dataclasses import dataclass, asdict


@dataclass
class MicroConfig:
    # Vision tower (CLIP-style ViT): 64x64 images, 8x8 patches -> 64 patches + CLS.
    image_size: int = 64
    patch_size: int = 8
    num_channels: int = 3
    vision_hidden: int = 64
    vision_layers: int = 4
    vision_heads: int = 4
    vision_intermediate: int = 256
    vision_ln_eps: float = 1e-5
    # LLaVA reads the penultimate layer (-2); the last layer only feeds the auxiliary
    # "pretraining" heads (see train.py) and is dropped from the ONNX export as dead code,
    # exactly as with llava-1.5's CLIP tower.
    vision_feature_layer: int = -2
    vision_feature_select_strategy: str = "default"  # drop CLS -> 64 image tokens
    # Language model (Llama-style).
    vocab_size: int = 256  # replaced by the tokenizer's size at build time
    text_hidden: int = 128
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 2  # grouped-query attention
    text_intermediate: int = 352
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    max_position_embeddings: int = 512
    tie_word_embeddings: bool = False
    # Token ids (fixed by tokenizer.py: specials come first).
    pad_token_id: int = 0
    bos_token_id: int = 1
    eos_token_id: int = 2
    unk_token_id: int = 3
    image_token_index: int = 4

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def text_head_dim(self) -> int:
        return self.text_hidden // self.text_heads

    def to_dict(self) -> dict:
        return asdict(self)


def hf_config(c: MicroConfig) -> dict:
    """config.json as `LlavaForConditionalGeneration.save_pretrained` would write it."""
    return {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "ignore_index": -100,
        "image_token_index": c.image_token_index,
        "image_seq_length": c.num_patches,
        "multimodal_projector_bias": True,
        "projector_hidden_act": "gelu",
        "vision_feature_layer": c.vision_feature_layer,
        "vision_feature_select_strategy": c.vision_feature_select_strategy,
        "pad_token_id": c.pad_token_id,
        "tie_word_embeddings": c.tie_word_embeddings,
        "torch_dtype": "float32",
        "transformers_version": "4.46.0",
        "vision_config": {
            "model_type": "clip_vision_model",
            "hidden_size": c.vision_hidden,
            "intermediate_size": c.vision_intermediate,
            "num_hidden_layers": c.vision_layers,
            "num_attention_heads": c.vision_heads,
            "num_channels": c.num_channels,
            "image_size": c.image_size,
            "patch_size": c.patch_size,
            "hidden_act": "gelu",
            "layer_norm_eps": c.vision_ln_eps,
            "attention_dropout": 0.0,
            "projection_dim": c.text_hidden,
        },
        "text_config": {
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "vocab_size": c.vocab_size,
            "hidden_size": c.text_hidden,
            "intermediate_size": c.text_intermediate,
            "num_hidden_layers": c.text_layers,
            "num_attention_heads": c.text_heads,
            "num_key_value_heads": c.text_kv_heads,
            "head_dim": c.text_head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": c.max_position_embeddings,
            "rms_norm_eps": c.rms_norm_eps,
            "rope_theta": c.rope_theta,
            "rope_scaling": None,
            "attention_bias": False,
            "attention_dropout": 0.0,
            "mlp_bias": False,
            "tie_word_embeddings": c.tie_word_embeddings,
            "pad_token_id": c.pad_token_id,
            "bos_token_id": c.bos_token_id,
            "eos_token_id": c.eos_token_id,
            "torch_dtype": "float32",
        },
    }
