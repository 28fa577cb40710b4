"""ONNX export in the transformers.js / onnx-community VLM layout (TorchScript exporter, opset 17).

    onnx/vision_encoder.onnx        pixel_values [b,3,64,64] -> image_features [b,64,text_hidden]
    onnx/embed_tokens.onnx          input_ids [b,s] -> inputs_embeds [b,s,text_hidden]
    onnx/decoder_model_merged.onnx  inputs_embeds, attention_mask [b,past+s], position_ids [b,s],
                                    past_key_values.{i}.key/value [b,kv,past,hd]
                                    -> logits [b,s,vocab], present.{i}.key/value [b,kv,past+s,hd]

The wrappers hold the model's submodules under their HF names, so node names read
`/language_model/layers.0/self_attn/Softmax`, `/vision_tower/layers.1/self_attn/MatMul`.
The vision wrapper runs only the layers up to `vision_feature_layer`, so (as in llava-1.5's
export) the unused last block is not in the file. The decoder is traced with a non-empty
past so nothing specialises on it; it runs with zero-length past on the first step.
"""
import os

import torch
from torch import nn

from model import MicroLlava

OPSET = 17


class VisionEncoder(nn.Module):
    def __init__(self, m: MicroLlava):
        super().__init__()
        self.vision_tower = m.vision_tower
        self.multi_modal_projector = m.multi_modal_projector
        self.n = m.feature_layer_index()
        self.tokens, self.hidden = m.c.num_patches, m.c.text_hidden

    def forward(self, pixel_values):
        states, _ = self.vision_tower(pixel_values, num_layers=self.n)
        feats = self.multi_modal_projector(states[self.n][:, 1:])
        # Constant-shape reshape so the graph declares [batch_size, 64, hidden], not a symbolic dim.
        return feats.reshape(-1, self.tokens, self.hidden)


class EmbedTokens(nn.Module):
    def __init__(self, m: MicroLlava):
        super().__init__()
        self.embed_tokens = m.language_model.embed_tokens

    def forward(self, input_ids):
        return self.embed_tokens(input_ids)


class Decoder(nn.Module):
    def __init__(self, m: MicroLlava):
        super().__init__()
        self.language_model = m.language_model
        self.lm_head = m.lm_head
        self.n = m.c.text_layers

    def forward(self, inputs_embeds, attention_mask, position_ids, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(self.n)]
        hidden, _, presents, _ = self.language_model(inputs_embeds, attention_mask, position_ids, past)
        out = [self.lm_head(hidden)]
        for k, v in presents:
            out += [k, v]
        return tuple(out)


def export_all(m: MicroLlava, out_dir: str) -> None:
    m.eval()
    c = m.c
    onnx_dir = os.path.join(out_dir, "onnx")
    os.makedirs(onnx_dir, exist_ok=True)
    b = 2
    with torch.no_grad():
        torch.onnx.export(
            VisionEncoder(m), (torch.randn(b, 3, c.image_size, c.image_size),),
            os.path.join(onnx_dir, "vision_encoder.onnx"), opset_version=OPSET, do_constant_folding=True,
            input_names=["pixel_values"], output_names=["image_features"],
            dynamic_axes={"pixel_values": {0: "batch_size"}, "image_features": {0: "batch_size"}},
        )
        torch.onnx.export(
            EmbedTokens(m), (torch.randint(0, c.vocab_size, (b, 5)),),
            os.path.join(onnx_dir, "embed_tokens.onnx"), opset_version=OPSET, do_constant_folding=True,
            input_names=["input_ids"], output_names=["inputs_embeds"],
            dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"},
                          "inputs_embeds": {0: "batch_size", 1: "sequence_length"}},
        )
        s, p = 5, 3
        past_names, present_names, past = [], [], []
        axes = {
            "inputs_embeds": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"},
        }
        for i in range(c.text_layers):
            for kv in ("key", "value"):
                past_names.append(f"past_key_values.{i}.{kv}")
                present_names.append(f"present.{i}.{kv}")
                axes[past_names[-1]] = {0: "batch_size", 2: "past_sequence_length"}
                axes[present_names[-1]] = {0: "batch_size", 2: "total_sequence_length"}
                past.append(torch.randn(b, c.text_kv_heads, p, c.text_head_dim))
        args = (torch.randn(b, s, c.text_hidden), torch.ones(b, p + s, dtype=torch.long),
                torch.arange(p, p + s).expand(b, s).contiguous(), *past)
        torch.onnx.export(
            Decoder(m), args, os.path.join(onnx_dir, "decoder_model_merged.onnx"),
            opset_version=OPSET, do_constant_folding=True,
            input_names=["inputs_embeds", "attention_mask", "position_ids", *past_names],
            output_names=["logits", *present_names], dynamic_axes=axes,
        )
