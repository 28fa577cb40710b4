"""Writes the shipped model folder and the parity fixtures from a checkpoint.

    /usr/bin/python3 tools/micro-vlm/publish.py --checkpoint tools/micro-vlm/weights/micro-llava.safetensors \
        --corpus .cache/world-train
    /usr/bin/python3 tools/micro-vlm/publish.py --untrained --vocab .cache/world-train/vocabulary.json

Outputs resources/models/micro-llava/{config,generation_config,preprocessor_config,
processor_config,tokenizer,tokenizer_config,special_tokens_map}.json + onnx/*.onnx, and
tests/fixtures/micro-llava/{cases.json,*.safetensors}. The model card (README.md) is
written by report.py from the evaluation results.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checkpoint  # noqa: E402
from config import MicroConfig  # noqa: E402
from export import export_all  # noqa: E402
from fixtures import write_fixtures  # noqa: E402
from hub_files import write_hub_files  # noqa: E402
from model import MicroLlava  # noqa: E402
from processor import blank_image  # noqa: E402
from tokenizer import WordTokenizer  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_DIR = os.path.join(ROOT, "resources", "models", "micro-llava")
FIXTURE_DIR = os.path.join(ROOT, "tests", "fixtures", "micro-llava")

# Fixed fixture items: (case name, task, item id) from the corpus test split.
FIXTURE_ITEMS = [
    ("colour-at-point", "colour-at-point", 0),
    ("count", "count", 0),
    ("correspondence", "correspondence", 0),
]


def corpus_cases(corpus: str):
    from corpus import load_task

    cases = []
    for name, task, k in FIXTURE_ITEMS:
        items = [it for it in load_task(corpus, task) if it.split == "test"]
        it = items[k]
        cases.append({"name": name, "question": it.prompt, "images": list(it.images), "choices": it.choices,
                      "answer": it.answer, "source": f"corpus {os.path.basename(corpus)} task {task} item {it.id}"})
    return cases


def synthetic_cases():
    """Untrained model only: noise images, so the layout can be tested before the corpus exists."""
    rng = np.random.default_rng(0)
    img = lambda: rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # noqa: E731
    return [
        {"name": "colour-at-point", "question": "what colour is the object at the marker ?", "images": [img()], "source": "noise"},
        {"name": "correspondence", "question": "which point in the second image is the same as the point in the first image ?",
         "images": [img(), img()], "source": "noise"},
    ]


def blind_cases(question: str):
    return [
        {"name": "blind-blank-image", "question": question, "images": [blank_image()], "source": "all-black image"},
        {"name": "blind-text-only", "question": question, "images": None, "source": "no image"},
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint")
    ap.add_argument("--untrained", action="store_true")
    ap.add_argument("--vocab", help="vocabulary.json (untrained only)")
    ap.add_argument("--corpus", help="world corpus dir for fixture images")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.untrained:
        torch.manual_seed(a.seed)
        tok = WordTokenizer(json.load(open(a.vocab))["words"])
        m = MicroLlava(MicroConfig(vocab_size=len(tok))).eval()
    else:
        m, tok, _ = checkpoint.load(a.checkpoint)
    write_hub_files(MODEL_DIR, m.c, tok)
    export_all(m, MODEL_DIR)
    cases = corpus_cases(a.corpus) if a.corpus else synthetic_cases()
    cases += blind_cases(cases[0]["question"])
    write_fixtures(m, tok, cases, FIXTURE_DIR)
    sizes = {f: os.path.getsize(os.path.join(MODEL_DIR, "onnx", f)) for f in sorted(os.listdir(os.path.join(MODEL_DIR, "onnx")))}
    fx = sum(os.path.getsize(os.path.join(FIXTURE_DIR, f)) for f in os.listdir(FIXTURE_DIR))
    print(json.dumps({"onnx_bytes": sizes, "onnx_total": sum(sizes.values()), "fixtures_total": fx}, indent=1))


if __name__ == "__main__":
    main()
