"""Turns corpus items into training tensors: prompts, answers and per-patch auxiliary targets.

Sequence (LLaVA-1.5 chat format, `<image>` expanded to 64 tokens per image):
    <s> USER : <image>x64 ... {question} ASSISTANT : {answer} </s>
The loss covers the answer word and `</s>` only.

Auxiliary targets (one per 8x8 patch, from the instance masks and `meta.objects`): the
patch's majority instance decides colour/shape/style class (0 = background), its depth z,
and the patch centre's offset from the object centre in object radii; markers drawn in the
patch (`point`, `a`..`d`) give a marker class. They are a stand-in for a pretrained vision
tower (a from-scratch ViT trained only through a 2-token answer learns slowly and keeps
little beyond what the trained questions need); train.py weights them.
"""
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch

from corpus import Item
from processor import preprocess
from tokenizer import WordTokenizer, render_prompt

COLOURS = ["red", "orange", "yellow", "green", "blue", "purple", "white"]
SHAPES = ["circle", "square", "triangle", "diamond"]
STYLES = ["solid", "striped", "dotted", "checkered"]
MARKERS = ["point", "a", "b", "c", "d"]
P = 8  # patch size
G = 8  # patches per side


@dataclass
class Example:
    prompt_ids: List[int]
    answer_id: int
    item: Item
    aux: np.ndarray  # float32 [n_images, 64, 7]: colour, shape, style, marker, z, dx, dy (class ids as floats)


def pixels_by_patch(mask: np.ndarray) -> np.ndarray:
    """[64, 64] a 64x64 map's pixels grouped by patch: row k holds patch k's (raster order) 8x8 pixels."""
    return mask.reshape(G, P, G, P).transpose(0, 2, 1, 3).reshape(G * G, P * P)


def majority_instances(mask: np.ndarray) -> np.ndarray:
    """[64] each patch's majority instance id in a [64, 64] instance mask (0 = background)."""
    return np.stack([np.bincount(row, minlength=32)[:32] for row in pixels_by_patch(mask)]).argmax(1)


def patch_at(x: float, y: float) -> int:
    """The raster index of the patch holding pixel (x, y)."""
    return int(y // P) * G + int(x // P)


def patch_targets(mask: np.ndarray, objects: list, points: list, with_centre: bool = False, letters: Optional[dict] = None) -> np.ndarray:
    """[64, 7] targets for one image: majority instance per patch -> attributes; markers by centre.
    with_centre appends an 8th column: 1 on the patch holding each visible object's centre
    (train_two_stage.py; counting and relations need object centres).
    letters (object id -> letter name, `object_letters`; with with_centre) appends a 9th: on every patch of a lettered
    object, its letter (train_turns.py --object-letter: the letter spread over the whole object,
    so a referring answer can read it wherever the expression's attention lands on the object)."""
    ids = majority_instances(mask)
    by_id = {o["id"]: o for o in objects}
    out = np.zeros((G * G, 7), np.float32)
    out[:, 4:] = np.nan  # regression targets only on object patches
    for k, i in enumerate(ids):
        o = by_id.get(int(i))
        if o is None:
            continue
        out[k, 0] = 1 + COLOURS.index(o["colour"])
        out[k, 1] = 1 + SHAPES.index(o["shape"])
        out[k, 2] = 1 + STYLES.index(o["style"])
        cx, cy = (k % G) * P + P / 2, (k // G) * P + P / 2
        r = max(o["radius"], 1.0)
        out[k, 4] = o["z"]
        out[k, 5] = np.clip((cx - o["centre"][0]) / r, -2, 2)
        out[k, 6] = np.clip((cy - o["centre"][1]) / r, -2, 2)
    for name, x, y in points:
        out[patch_at(x, y), 3] = 1 + MARKERS.index(name)
    if not with_centre:
        return out
    centre = np.zeros((G * G, 1), np.float32)
    visible = set(int(i) for i in ids)
    for o in objects:
        x, y = o["centre"]
        if o["id"] in visible and 0 <= x < G * P and 0 <= y < G * P:
            centre[patch_at(x, y), 0] = 1
    if letters is None:
        return np.concatenate([out, centre], 1)
    lettered = np.array([MARKERS.index(letters[int(i)]) if int(i) in letters else 0 for i in ids], np.float32)[:, None]
    return np.concatenate([out, centre, lettered], 1)


def object_centres(mask: np.ndarray, objects: list) -> np.ndarray:
    """[64, 2] each patch's object's centre (x, y), scaled to [-1, 1]; NaN on background patches
    (majority instance per patch, as `patch_targets`). train_turns.py --feature-centre: a position
    the whole object shares, so attention can rank objects — not patches — by where they are."""
    ids = majority_instances(mask)
    by_id = {o["id"]: o for o in objects}
    out = np.full((G * G, 2), np.nan, np.float32)
    for k, i in enumerate(ids):
        if int(i) in by_id:
            out[k] = np.asarray(by_id[int(i)]["centre"], np.float32) / (G * P / 2) - 1
    return out


def centre_names(objects: list) -> np.ndarray:
    """[64, 2] at the patch holding each object's centre, that object's colour and shape class
    (1-based; 0 elsewhere; of two centres in one patch, the later in scene order).
    train_turns.py --centre-names: a count question selects centres by colour or shape, but the
    patch's own colour is its majority object's — another object's or the background's for 12%
    of count-scene objects (239 of 2049, first 500 test scenes)."""
    out = np.zeros((G * G, 2), np.int64)
    for o in objects:
        x, y = o["centre"]
        if 0 <= x < G * P and 0 <= y < G * P:
            out[patch_at(x, y)] = (1 + COLOURS.index(o["colour"]), 1 + SHAPES.index(o["shape"]))
    return out


def object_letters(item: Item, image: int) -> dict:
    """object id -> the letter marker ("a".."d") drawn on it, in one image."""
    mask = np.asarray(item.masks[image])
    return {int(mask[int(lab["at"][1]), int(lab["at"][0])]): lab["name"]
            for lab in item.labels if lab["kind"] == "point" and lab["image"] == image and lab.get("name") in MARKERS[1:]}


def make_example(item: Item, tok: WordTokenizer, tokens_per_image: int, with_aux: bool = True, with_centre: bool = False,
                 with_letters: bool = False) -> Example:
    n = len(item.images)
    text = tok.expand_images(render_prompt(item.prompt, n), tokens_per_image)
    aux = None
    if with_aux:
        objects = item.meta.get("objects", [])
        pts = [[] for _ in range(n)]
        for lab in item.labels:
            if lab["kind"] == "point" and lab.get("name") in MARKERS:
                pts[lab["image"]].append((lab["name"], int(lab["at"][0]), int(lab["at"][1])))
        aux = np.stack([patch_targets(np.asarray(item.masks[k]), objects, pts[k], with_centre, object_letters(item, k) if with_letters else None)
                        for k in range(n)])
    return Example(tok.encode(text), tok.vocab[item.answer], item, aux)


def collate(batch: List[Example], eos_id: int, pad_id: int, with_pixels: bool = True):
    """Right-padded batch. Causal attention means padding after a sequence never affects it."""
    lens = [len(e.prompt_ids) + 2 for e in batch]
    s = max(lens)
    ids = torch.full((len(batch), s), pad_id, dtype=torch.long)
    tgt_pos, tgt_ids = [], []
    for b, e in enumerate(batch):
        seq = e.prompt_ids + [e.answer_id, eos_id]
        ids[b, : len(seq)] = torch.tensor(seq)
        n = len(e.prompt_ids)
        tgt_pos += [(b, n - 1), (b, n)]  # position predicting answer, position predicting </s>
        tgt_ids += [e.answer_id, eos_id]
    px = torch.from_numpy(preprocess(np.concatenate([np.asarray(e.item.images) for e in batch]))) if with_pixels else None
    aux = torch.from_numpy(np.concatenate([e.aux for e in batch])) if batch[0].aux is not None else None
    return ids, px, torch.tensor(tgt_pos), torch.tensor(tgt_ids), aux
