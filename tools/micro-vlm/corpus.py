"""Reads the world training corpus (tools/world/README.md, "Training corpus").

    DIR/vocabulary.json, DIR/corpus.json, DIR/<task>/{items.jsonl, images.u8, masks.u8}

Images and masks are memory-mapped: the 64x64 rows are addressed by each item's `rows`.
"""
import json
import os
from dataclasses import dataclass, field
from typing import List

import numpy as np

SIZE = 64


@dataclass
class Item:
    id: str
    task: str
    split: str
    prompt: str
    choices: List[str]
    answer: str
    answer_index: int
    images: np.ndarray  # uint8 [n, 64, 64, 3]
    masks: np.ndarray  # uint8 [n, 64, 64] instance ids
    labels: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def corpus_info(corpus: str) -> dict:
    return json.load(open(os.path.join(corpus, "corpus.json")))


def vocabulary(corpus: str) -> List[str]:
    return json.load(open(os.path.join(corpus, "vocabulary.json")))["words"]


def load_task(corpus: str, task: str) -> List[Item]:
    d = os.path.join(corpus, task)
    images = np.memmap(os.path.join(d, "images.u8"), np.uint8, "r").reshape(-1, SIZE, SIZE, 3)
    masks = np.memmap(os.path.join(d, "masks.u8"), np.uint8, "r").reshape(-1, SIZE, SIZE)
    items = []
    with open(os.path.join(d, "items.jsonl")) as f:
        for line in f:
            j = json.loads(line)
            rows = j["rows"]
            items.append(Item(j["id"], task, j["split"], j["prompt"], j["choices"], j["answer"], j["answer_index"],
                              images[rows[0] : rows[-1] + 1], masks[rows[0] : rows[-1] + 1], j["labels"], j["meta"]))
    return items


def marker_points(item: Item) -> dict:
    """name -> (image index, x, y) for the item's `point` labels (markers `point`, `a`..`d`)."""
    out = {}
    for lab in item.labels:
        if lab["kind"] == "point" and "name" in lab:
            out[(lab["image"], lab["name"])] = (lab["image"], int(lab["at"][0]), int(lab["at"][1]))
    return out


def load_probe_set(dataset_dir: str) -> List[Item]:
    """A shipped probe set (resources/datasets/<task>/dataset.json + PNGs) as Items."""
    from png import read_png

    d = json.load(open(os.path.join(dataset_dir, "dataset.json")))
    items = []
    for j in d["items"]:
        imgs = np.stack([read_png(os.path.join(dataset_dir, p)) for p in j["images"]])
        mask_files = {lab["image"]: lab["file"] for lab in j["labels"] if lab["kind"] == "mask"}
        masks = np.stack([read_png(os.path.join(dataset_dir, mask_files[k])) if k in mask_files else np.zeros((SIZE, SIZE), np.uint8)
                          for k in range(len(imgs))])
        choices = j.get("choices") or []
        items.append(Item(j["id"], d["task"], j.get("split", "test"), j["prompt"], choices, j["answer"],
                          choices.index(j["answer"]), imgs, masks, j["labels"], j.get("meta", {})))
    return items
