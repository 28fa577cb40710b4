"""Writes the JSON files of a hub-layout LLaVA folder (everything except onnx/).

Layout and keys follow llava-hf / onnx-community repos so transformers.js's
AutoProcessor / AutoTokenizer / LlavaForConditionalGeneration load the folder as is.
"""
import json
import os

from config import MicroConfig, hf_config
from processor import preprocessor_config
from tokenizer import WordTokenizer


def dump(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_hub_files(out_dir: str, c: MicroConfig, tok: WordTokenizer) -> None:
    os.makedirs(out_dir, exist_ok=True)
    cfg = hf_config(c)
    cfg["transformers.js_config"] = {"dtype": "fp32"}  # only fp32 files are shipped
    dump(os.path.join(out_dir, "config.json"), cfg)
    dump(os.path.join(out_dir, "generation_config.json"), {
        "bos_token_id": c.bos_token_id,
        "eos_token_id": c.eos_token_id,
        "pad_token_id": c.pad_token_id,
        "do_sample": False,
        "max_new_tokens": 8,
        "transformers_version": "4.46.0",
    })
    dump(os.path.join(out_dir, "preprocessor_config.json"), preprocessor_config(c.image_size))
    # transformers.js computes floor(H/p)*floor(W/p) + num_additional_image_tokens image tokens
    # and, unlike HF Python, never subtracts the dropped CLS token. The vision encoder returns
    # 64 rows, so num_additional_image_tokens = 0; `vision_feature_select_strategy` is left out
    # on purpose (HF Python subtracts 1 when it reads "default" here), so both count 64.
    dump(os.path.join(out_dir, "processor_config.json"), {
        "image_token": "<image>",
        "num_additional_image_tokens": 0,
        "patch_size": c.patch_size,
        "processor_class": "LlavaProcessor",
    })
    dump(os.path.join(out_dir, "tokenizer.json"), tok.tokenizer_json())
    dump(os.path.join(out_dir, "tokenizer_config.json"), tok.tokenizer_config_json())
    dump(os.path.join(out_dir, "special_tokens_map.json"), {
        "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>", "image_token": "<image>",
    })
