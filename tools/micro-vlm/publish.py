"""Writes the shipped model folder and the parity fixtures from a checkpoint.

    /usr/bin/python3 tools/micro-vlm/publish.py --checkpoint tools/micro-vlm/weights/micro-llava.safetensors \

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

# Fixed fixture items from the shipped probe sets (resources/datasets, committed, seed 1):
# a one-image question and a two-image (correspondence) question = 3 images.
FIXTURE_ITEMS = [("colour-at-point", "colour-at-point", 0), ("correspondence", "correspondence", 0)]


def probe_cases():
    from corpus import load_probe_set

    cases = []
    for name, task, k in FIXTURE_ITEMS:
        it = load_probe_set(os.path.join(ROOT, "resources", "datasets", task))[k]
        cases.append({"name": name, "question": it.prompt, "images": list(it.images), "choices": it.choices,
                      "answer": it.answer, "source": f"resources/datasets/{task} item {it.id}"})
    return cases


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
    cases = probe_cases()
    cases += blind_cases(cases[0]["question"])
    write_fixtures(m, tok, cases, FIXTURE_DIR)
    sizes = {f: os.path.getsize(os.path.join(MODEL_DIR, "onnx", f)) for f in sorted(os.listdir(os.path.join(MODEL_DIR, "onnx")))}
    fx = sum(os.path.getsize(os.path.join(FIXTURE_DIR, f)) for f in os.listdir(FIXTURE_DIR))
    print(json.dumps({"onnx_bytes": sizes, "onnx_total": sum(sizes.values()), "fixtures_total": fx}, indent=1))


if __name__ == "__main__":
    main()
