"""Word-level tokenizer, written as Hugging Face `tokenizer.json` + `tokenizer_config.json`.

The world's prompts are lowercase words and `?` separated by spaces, so a WordLevel model
with the `Whitespace` pre-tokenizer (regex `\\w+|[^\\w\\s]+`) is exact: no subwords, one token
per answer word, which makes first-token answer scoring exact too. This module also
encodes in Python (same rules as the `tokenizers` library) so training never needs the
library: special tokens are split out first, then the pre-tokenizer, then vocabulary lookup,
then the TemplateProcessing post-processor prepends `<s>` (as Llama's tokenizer does).
"""
import json
import re
from typing import Dict, List

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<image>"]  # ids 0..4, matching config.py
TEMPLATE_WORDS = ["USER", "ASSISTANT", ":"]  # what the chat template adds around the question
PRE_TOKENIZER = re.compile(r"\w+|[^\w\s]+")
SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(s) for s in SPECIALS) + ")")

# LLaVA-1.5's template (llava-hf), minus the HF-only {% generation %} tag: images first (one
# `<image>\n` per image part, in order), then the text parts, then "ASSISTANT:".
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' ' }}{% endfor %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def render_prompt(question: str, num_images: int) -> str:
    """What CHAT_TEMPLATE renders for one user turn with `num_images` images + generation prompt."""
    return "USER: " + "<image>\n" * num_images + question + " " + "ASSISTANT:"


class WordTokenizer:
    def __init__(self, words: List[str]):
        vocab = list(SPECIALS) + list(TEMPLATE_WORDS)
        for w in words:
            for piece in PRE_TOKENIZER.findall(w):
                if piece not in vocab:
                    vocab.append(piece)
        self.vocab: Dict[str, int] = {w: i for i, w in enumerate(vocab)}
        self.inv = vocab

    def __len__(self):
        return len(self.inv)

    def encode(self, text: str, add_bos: bool = True) -> List[int]:
        ids = [self.vocab["<s>"]] if add_bos else []
        for part in SPECIAL_SPLIT.split(text):
            if part in SPECIALS:
                ids.append(self.vocab[part])
            else:
                ids.extend(self.vocab.get(p, self.vocab["<unk>"]) for p in PRE_TOKENIZER.findall(part))
        return ids

    def expand_images(self, text: str, tokens_per_image: int) -> str:
        """LlavaProcessor's prompt expansion: each `<image>` becomes `tokens_per_image` of them."""
        return text.replace("<image>", "<image>" * tokens_per_image)

    def decode(self, ids: List[int]) -> str:
        return " ".join(self.inv[i] for i in ids)

    # ------------------------------------------------------------------ hub files

    def tokenizer_json(self) -> dict:
        added = [
            {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for i, s in enumerate(SPECIALS)
        ]
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
                "pair": [
                    {"SpecialToken": {"id": "<s>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "<s>", "type_id": 1}},
                    {"Sequence": {"id": "B", "type_id": 1}},
                ],
                "special_tokens": {"<s>": {"id": "<s>", "ids": [self.vocab["<s>"]], "tokens": ["<s>"]}},
            },
            # Word-level: decoding joins tokens with spaces (WordPiece decoder, no "##" pieces exist).
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
            "model": {"type": "WordLevel", "vocab": self.vocab, "unk_token": "<unk>"},
        }

    def tokenizer_config_json(self) -> dict:
        return {
            "added_tokens_decoder": {
                str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True}
                for i, s in enumerate(SPECIALS)
            },
            "add_bos_token": True,
            "add_eos_token": False,
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "image_token": "<image>",
            "extra_special_tokens": {"image_token": "<image>"},
            "chat_template": CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": False,
            "model_max_length": 512,
            "padding_side": "left",
            "processor_class": "LlavaProcessor",
            "tokenizer_class": "PreTrainedTokenizerFast",
        }

    @staticmethod
    def from_tokenizer_json(path: str) -> "WordTokenizer":
        vocab = json.load(open(path))["model"]["vocab"]
        t = WordTokenizer([])
        t.inv = sorted(vocab, key=vocab.get)
        t.vocab = {w: i for i, w in enumerate(t.inv)}
        return t
