"""Multi-turn training sequences: several questions about one image in one LLaVA chat.

A single-question sequence spends a forward pass over 64 image tokens on one answer word. The
chat template already allows several user/assistant turns, so for the tasks whose ground truth
covers more than the item's own question we ask the extra questions too:

- colour-at-point / shape-at-point / style: the colour, shape and pattern of the marked object
  (`meta.targetId`), in random order;
- count: "how many {colour} objects / {shape}s / objects" for every query whose true count is
  1..5 (count scenes keep every object >= 70% visible, so the scene's objects are the counts).

- relation and referring (`grounded=True`, the session-11 recipe; otherwise they keep their one
  question): every relation between two objects the scene names uniquely by colour + shape whose
  centres are clear of the generator's 8 px margin (yes and no come in equal numbers, since "left of"
  and "right of" swap), and "which marker is on ..." for every object an expression picks out by
  the rules of src-shared/world/refer.ts (colour + shape; small / large; leftmost / rightmost).
The item's own question is always one of the turns, and is the first turn in a share of the
sequences, so the single-turn prompt the evaluation uses stays in distribution.

    <s> USER : <image>x64 q1 ASSISTANT : a1 </s> USER : q2 ASSISTANT : a2 </s> ...
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from corpus import Item
from data import COLOURS, SHAPES, G, P, majority_instances, make_example, object_letters, patch_at, pixels_by_patch
from processor import preprocess
from tokenizer import WordTokenizer, render_prompt

PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "diamond": "diamonds"}
NUMBERS = ["one", "two", "three", "four", "five"]
POINT_QUESTIONS = {
    "colour": "what colour is the object at the marker ?",
    "shape": "what shape is the object at the marker ?",
    "style": "what pattern is the object at the marker ?",
}


RELATIONS = ["left of", "right of", "above", "below"]
RELATION_MARGIN = 8.0  # src-shared/world/tasks/relation.ts
SIZE_RATIO, POSITION_GAP = 1.3, 6.0  # src-shared/world/refer.ts
SLACK = 0.01  # meta centres and radii are rounded to 1e-3: stay clear of the generator's ties


def by_name(objects: list) -> Dict[Tuple[str, str], list]:
    """(colour, shape) -> the scene's objects of that name, in scene order."""
    groups: Dict[Tuple[str, str], list] = {}
    for o in objects:
        groups.setdefault((o["colour"], o["shape"]), []).append(o)
    return groups


def relation_turns(objects: list, with_ids: bool = False, relations=RELATIONS) -> list:
    """Every clear relation between two uniquely named objects (centres, the generator's margin);
    with_ids: (question, (subject id, object id)) instead of (question, answer); relations: the
    relations asked (a curriculum stage may ask only "left of": see `make_turns_example`)."""
    groups = by_name(objects)
    unique = [o for o in objects if len(groups[(o["colour"], o["shape"])]) == 1]
    out = []
    for a in unique:
        for b in unique:
            if a is b:
                continue
            (ax, ay), (bx, by) = a["centre"], b["centre"]
            for rel, d in zip(RELATIONS, [bx - ax, ax - bx, by - ay, ay - by]):
                if rel in relations and abs(d) >= RELATION_MARGIN + SLACK:
                    answer = (a["id"], b["id"]) if with_ids else "yes" if d > 0 else "no"
                    out.append((f"is the {a['colour']} {a['shape']} {rel} the {b['colour']} {b['shape']} ?", answer))
    return out


def referring_turns(item: Item, with_objects: bool = False) -> list:
    """"which marker is on E ?" for every expression E that picks out one lettered object."""
    objects = item.meta.get("objects", [])
    letter = object_letters(item, 0)
    out = []

    def extreme(group, key, gap_ok):
        if len(group) < 2:
            return None
        ranked = sorted(group, key=key, reverse=True)
        return ranked[0] if gap_ok(key(ranked[0]), key(ranked[1])) else None

    groups = by_name(objects)
    for o in objects:
        if len(groups[(o["colour"], o["shape"])]) == 1:
            out.append((f"the {o['colour']} {o['shape']}", o))
    for (c, s), same in sorted(groups.items(), key=lambda g: g[0]):
        big = extreme(same, lambda p: p["radius"], lambda best, other: best >= SIZE_RATIO * other + SLACK)
        small = extreme(same, lambda p: -p["radius"], lambda best, other: -other >= SIZE_RATIO * -best + SLACK)
        out += [(f"the large {c} {s}", big)] if big else []
        out += [(f"the small {c} {s}", small)] if small else []
    for s in sorted({o["shape"] for o in objects}):
        same = [p for p in objects if p["shape"] == s]
        right = extreme(same, lambda p: p["centre"][0], lambda best, other: best - other >= POSITION_GAP + SLACK)
        left = extreme(same, lambda p: -p["centre"][0], lambda best, other: best - other >= POSITION_GAP + SLACK)
        out += [(f"the rightmost {s}", right)] if right else []
        out += [(f"the leftmost {s}", left)] if left else []
    return [(f"which marker is on {text} ?", o if with_objects else letter[o["id"]]) for text, o in out if o["id"] in letter]


def lookup_turns(objects: list) -> List[Tuple[str, str]]:
    """One-hop questions, the lookup relation and referring are built on: "what colour is the
    {shape} ?" for each shape the scene has once, "what shape is the {colour} object ?" for each
    colour it has once (a curriculum aid, session 12; every word is in the corpus vocabulary)."""
    shapes, colours = {}, {}
    for o in objects:
        shapes.setdefault(o["shape"], []).append(o)
        colours.setdefault(o["colour"], []).append(o)
    out = [(f"what colour is the {s} ?", os[0]["colour"]) for s, os in sorted(shapes.items()) if len(os) == 1]
    return out + [(f"what shape is the {c} object ?", os[0]["shape"]) for c, os in sorted(colours.items()) if len(os) == 1]


def parse_relation_stages(spec: str) -> List[Tuple[int, Tuple[str, ...]]]:
    """A relation curriculum: "400=left of;900=left of,right of" -> relation chats ask only "left of"
    until step 400, "left of" and "right of" until step 900, then every relation. Steps increase."""
    stages = []
    for part in filter(None, spec.split(";")):
        until, rels = part.split("=")
        rels = tuple(r.strip() for r in rels.split(","))
        assert all(r in RELATIONS for r in rels), f"unknown relation in {part!r}: use {RELATIONS}"
        assert not stages or int(until) > stages[-1][0], f"stage ends must increase: {spec!r}"
        stages.append((int(until), rels))
    return stages


def parse_corpus_stages(spec: str) -> List[Tuple[int, str]]:
    """A data curriculum: ".cache/ref2@800;.cache/ref3@1500" -> until step 800 a task's chats come
    from the first corpus folder, until 1500 from the second, then from the main corpus. Steps increase."""
    stages = []
    for part in filter(None, spec.split(";")):
        folder, until = part.rsplit("@", 1)
        assert not stages or int(until) > stages[-1][0], f"stage ends must increase: {spec!r}"
        stages.append((int(until), folder))
    return stages


def stage_at(stages: List[Tuple[int, object]], step: int) -> Optional[int]:
    """Index of the curriculum stage in force at `step`; None once every stage has ended."""
    return next((k for k, (until, _) in enumerate(stages) if step < until), None)


def curriculum_batch(batch: list, task: str, stages: List[Tuple[int, object]], pools: List[list], step: int, rng) -> list:
    """`batch` with its `task` chats swapped for random ones from `pools[k]`, k the stage in force at
    `step` (parse_relation_stages / parse_corpus_stages); unchanged, drawing nothing, after the last."""
    k = stage_at(stages, step)
    if k is None:
        return batch
    return [pools[k][rng.integers(len(pools[k]))] if e.item.task == task else e for e in batch]


def relation_pair(question: str) -> frozenset:
    """The two object names of "is the C S REL the C2 S2 ?", unordered."""
    w = question.split()
    return frozenset([" ".join(w[2:4]), " ".join(w[-3:-1])])


def count_queries(objects: list) -> List[Tuple[str, List[int]]]:
    """Every count question about the scene (per colour, per shape, all objects) with the ids it counts."""
    out = [(f"how many {c} objects are there ?", [o["id"] for o in objects if o["colour"] == c]) for c in COLOURS]
    out += [(f"how many {PLURAL[s]} are there ?", [o["id"] for o in objects if o["shape"] == s]) for s in SHAPES]
    return out + [("how many objects are there ?", [o["id"] for o in objects])]


def extra_turns(item: Item, grounded: bool = False) -> List[Tuple[str, str]]:
    """Every (question, answer) the item's ground truth settles, the item's own question included."""
    objects = item.meta.get("objects", [])
    if grounded and item.task == "relation":
        return relation_turns(objects)
    if grounded and item.task == "referring":
        return referring_turns(item)
    if item.task in ("colour-at-point", "shape-at-point", "style"):
        target = next(o for o in objects if o["id"] == item.meta["targetId"])
        return [(q, target[k]) for k, q in POINT_QUESTIONS.items()]
    if item.task == "count":
        return [(q, NUMBERS[len(ids) - 1]) for q, ids in count_queries(objects) if 1 <= len(ids) <= 5]
    return [(item.prompt, item.answer)]


def turn_grounding(item: Item) -> Dict[str, List[Tuple[str, List[int]]]]:
    """question -> per supervised head, (kind, object ids) the answer has to look at: relation
    questions their subject (head 0) and object (head 1); marker questions the referred object;
    count questions the counted objects' centres ("centres": the attention may also rest on <s>,
    which is what lets a softmax average count)."""
    objects = item.meta.get("objects", [])
    out: Dict[str, List[Tuple[str, List[int]]]] = {}
    if item.task == "relation":
        for q, (a, b) in relation_turns(objects, with_ids=True):
            out[q] = [("object", [a]), ("object", [b])]
    elif item.task == "referring":
        for q, o in referring_turns(item, with_objects=True):
            out[q] = [("object", [o["id"]])]
    elif item.task == "count":
        out = {q: [("centres", ids)] for q, ids in count_queries(objects)}
    return out


def object_patches(mask: np.ndarray, object_id: int, min_pixels: int = 16) -> List[int]:
    """Patches (raster order) where the object covers >= min_pixels of 64, else its best patch."""
    cover = pixels_by_patch(mask == object_id).sum(1)
    hit = [int(k) for k in np.nonzero(cover >= min_pixels)[0]]
    return hit or ([int(cover.argmax())] if cover.max() > 0 else [])


SOFT_CENTRE_SIGMA = P / 2  # px: summed over the patch grid, Gaussians this wide vary by at most 6% (max/min) with the centre's offset


def centre_weights(mask: np.ndarray, objects: list, ids: List[int]) -> Dict[int, float]:
    """patch -> weight: each counted object's weight 1 spread over its own patches (majority
    instance) by a Gaussian of their distance to its centre (`SOFT_CENTRE_SIGMA`); all on its
    centre patch when no patch shows it. train_turns.py --soft-centres: which single patch holds a
    centre flips at patch borders — counted objects centred within 1 px of one drew the counting
    head's mass onto a neighbour or off the object (14% vs 2% beyond 1 px, v5) — while these weights
    move smoothly with the centre, and a key can make them as −distance² from the patch offsets."""
    majority = majority_instances(mask)
    px = (np.arange(G * G) % G + 0.5) * P, (np.arange(G * G) // G + 0.5) * P
    by_id = {o["id"]: o for o in objects}
    out: Dict[int, float] = {}
    for i in ids:
        x, y = by_id[i]["centre"]
        own = np.flatnonzero(majority == i)
        if not len(own):
            k = patch_at(min(max(x, 0), G * P - 1), min(max(y, 0), G * P - 1))
            out[k] = out.get(k, 0.0) + 1.0
            continue
        w = np.exp(-((px[0][own] - x) ** 2 + (px[1][own] - y) ** 2) / (2 * SOFT_CENTRE_SIGMA ** 2))
        for k, v in zip(own, w / w.sum()):
            out[int(k)] = out.get(int(k), 0.0) + float(v)
    return out


def centre_patches(objects: list, ids: List[int]) -> List[int]:
    by_id = {o["id"]: o for o in objects}
    return sorted({patch_at(*by_id[i]["centre"]) for i in ids})


@dataclass
class TurnsExample:
    ids: List[int]
    targets: List[Tuple[int, int]]  # (position whose logits predict it, token id)
    item: Item
    aux: np.ndarray
    # (answer position, head, sequence positions its attention should fall on) — attention supervision
    grounds: List[Tuple[int, int, List[int]]] = field(default_factory=list)
    # (sequence position of a relation question's shape word, that object's centre x, y in [-1, 1]):
    # an intermediate target for the first hop of a relation (`name_positions`)
    named: List[Tuple[int, float, float]] = field(default_factory=list)
    # (sequence position of a referring expression's last word — its shape word —, the referred
    # object's letter 0..3): the first hop of referring read where the expression ends (`refer_letters`)
    refers: List[Tuple[int, int]] = field(default_factory=list)
    # (sequence position of a count question's counted word — "objects" / "circles" … —, count - 1):
    # the count made where the question names what to count (`count_words`)
    counts: List[Tuple[int, int]] = field(default_factory=list)
    # (sequence position of a hop word — a marker question's expression end, a count question's
    # counted word —, head, positions, uniform): where that head of the hop layer should look there
    # (`hop_grounds`); uniform: spread evenly over the positions (a count), else any way over them
    hops: List[Tuple[int, int, List[int], bool]] = field(default_factory=list)
    # (sequence position of a marker question's expression end, head, positions of the words before
    # it that narrow the expression — "leftmost", "large", a colour): what the layer before the hop
    # layer should carry to the expression's end (`modifier_grounds`)
    modifiers: List[Tuple[int, int, List[int]]] = field(default_factory=list)


# Heads of the hop layer told where to look at a hop word (`hop_grounds`). Referring: heads 0 and 1
# (one key/value group), because in recipe v4 they already do this for most expressions — at
# the expression's end, LLM layer 1's heads 0 / 1 put 0.89 / 0.89 of their mass on the referred
# object for "the red circle", 0.77 / 0.81 for "the large red circle", but 0.34 / 0.35 for "the
# leftmost circle" (150 test items; session 16). Count: head 2 (the other key/value group), no
# head of which does it yet (at most 0.37 on the counted centres and <s>).
HOP_HEADS = {"object": (0, 1), "centres": (2,)}
# Heads of the layer before the hop layer told to read an expression's modifiers from its end
# (`modifier_grounds`): in v4 + --hop-attend, layer 0's heads 2 / 3 put 0.38 / 0.40 of their mass
# at "the large red circle"'s end on "large", but 0.005 on "leftmost" in "the leftmost circle" —
# so layer 1's query there cannot depend on "leftmost" vs "rightmost", and position expressions
# are answered at chance between the shape's objects (46% even with a 24+ px gap; session 16).
MODIFIER_HEADS = (2, 3)
MODIFIER_WORDS = set(COLOURS) | {"large", "small", "leftmost", "rightmost"}


# Share of the extra count turns kept per answer when balancing: every colour / shape present
# makes a turn, so "one" is 57% of them (10051 / 3703 / 1610 / 1159 / 1143 over the first 3000
# count items); keeping 1143 / n of each evens the answers out. Unbalanced, a model trained on
# them answers "one" to most count questions.
COUNT_KEEP = {"one": 1143 / 10051, "two": 1143 / 3703, "three": 1143 / 1610, "four": 1143 / 1159, "five": 1.0}


def count_position(question: str, end: int, colour_word: bool = False) -> int:
    """The sequence position a count question is counted at, for a turn whose tokens end at `end`
    ("... are there ? ASSISTANT :"): the word before "are there" — "objects", "circles" … — or, with
    colour_word, a colour question's colour. At "objects" the colour reaches layer 1's counting
    head only through layer 0's mixing of the word before; recipe v5 counts colour questions at
    86.3% although a linear probe of each object's colour at its centre patch would count them at
    97.3% (shape questions: 83.6% vs 82.6%, the tower's shape is their limit)."""
    word = end - 6
    if colour_word and question.split()[2] in COLOURS:
        word -= 1
    return word


def make_turns_example(item: Item, tok: WordTokenizer, rng: np.random.Generator, max_turns: int = 4,
                       tokens_per_image: int = 64, with_centre: bool = True, balanced_counts: bool = False,
                       grounded: bool = False, supervise_attention: bool = False, lookups: bool = False,
                       relations=None, name_positions: bool = False, object_letters: bool = False,
                       refer_letters: bool = False, count_words: bool = False, hop_grounds: bool = False,
                       modifier_grounds: bool = False, count_heads: Tuple[int, ...] = HOP_HEADS["centres"],
                       soft_centres: bool = False, colour_word: bool = False) -> Optional[TurnsExample]:
    """lookups: relation and referring chats also get `lookup_turns`; grounded relation chats then
    ask about each pair of objects once (with the pair's "left of" and "right of" in one chat, the
    second answer follows from the first without looking at the image).
    relations (grounded relation chats only): ask only these relations, the item's own question
    included only if it is one of them (None when the scene has no such turn) — a curriculum
    stage: with one relation the answer is a plain comparison of two positions; with "left of" and
    "right of" mixed it is that comparison flipped by a word, which no single input correlates
    with (recall_toy.py, README "Session 13").
    name_positions: record where each relation question names its objects (`TurnsExample.named`).
    object_letters: the aux targets get the 9th column (each patch's object's letter, data.py).
    refer_letters: record each marker question's expression end and answer (`TurnsExample.refers`).
    count_words: record each count question's counted word and answer (`TurnsExample.counts`).
    hop_grounds: record where the hop layer should look at each marker question's expression end
    (the referred object's patches) and count question's counted word (the counted centres and
    <s>, evenly: a softmax spread over n centres and a sink gives the sink 1 / (n + 1)) —
    `TurnsExample.hops`.
    modifier_grounds: record, at each marker question's expression end, the positions of its
    modifier words (`MODIFIER_WORDS`) — `TurnsExample.modifiers`.
    soft_centres: a count hop's target is <s> (weight 1) and `centre_weights` instead of the
    centre patches.
    colour_word: a colour count question ("how many red objects ...") is counted at its colour
    word, not at "objects" (`count_position`)."""
    own = (item.prompt, item.answer)
    curriculum = relations is not None and grounded and item.task == "relation"
    if curriculum:
        pool = relation_turns(item.meta.get("objects", []), relations=tuple(relations))
        if not pool:
            return None  # the scene has no clear pair for these relations: the caller skips it
        own = next((t for t in pool if t[0] == item.prompt), pool[0])
        others = [t for t in pool if t[0] != own[0]]
    else:
        others = [t for t in extra_turns(item, grounded) if t[0] != item.prompt]
    if balanced_counts and item.task == "count":
        others = [t for t in others if rng.random() < COUNT_KEEP[t[1]]]
    rng.shuffle(others)
    if lookups and item.task in ("relation", "referring"):
        if item.task == "relation":
            seen, kept = {relation_pair(own[0])}, []
            for q, a in others:
                pair = relation_pair(q)
                if pair not in seen:
                    seen.add(pair)
                    kept.append((q, a))
            others = kept
        helpers = lookup_turns(item.meta.get("objects", []))
        others = [t for pair in zip(helpers, others) for t in pair] + helpers[len(others):] + others[len(helpers):]
    turns = [own] + others[: max_turns - 1]
    rng.shuffle(turns)
    assert curriculum or any(q == item.prompt and a == item.answer for q, a in turns), f"{item.id}: own question lost"
    centres = {f"{o['colour']} {o['shape']}": o["centre"] for o in item.meta.get("objects", [])} if name_positions else {}
    base = make_example(item, tok, tokens_per_image, with_centre=with_centre, with_letters=object_letters)
    eos = tok.vocab["</s>"]
    ids: List[int] = []
    targets: List[Tuple[int, int]] = []
    grounds: List[Tuple[int, int, List[int]]] = []
    named: List[Tuple[int, float, float]] = []
    refers: List[Tuple[int, int]] = []
    counts: List[Tuple[int, int]] = []
    where = turn_grounding(item) if supervise_attention or hop_grounds else {}
    hops: List[Tuple[int, int, List[int], bool]] = []
    modifiers: List[Tuple[int, int, List[int]]] = []
    for k, (q, a) in enumerate(turns):
        text = tok.expand_images(render_prompt(q, 1), tokens_per_image) if k == 0 else "USER: " + q + " ASSISTANT:"
        piece = tok.encode(text)
        if k > 0 and piece[0] == tok.vocab["<s>"]:
            piece = piece[1:]  # one <s> per sequence
        ids += piece
        # Where this turn's first hop is made: a marker question's expression ends at the word before
        # "? ASSISTANT :"; a count question is counted at `count_position`.
        expression_end = len(ids) - 4
        counted_at = count_position(q, len(ids), colour_word) if q.startswith("how many ") else None
        if name_positions and q.startswith("is the "):  # relation questions, not the lookups beside them
            words = q.split()  # "is the C S REL the C2 S2 ?"; the piece ends "... ? ASSISTANT :"
            mark = len(ids) - 3  # the "?"
            for at, name in ((mark - (len(words) - 4), " ".join(words[2:4])), (mark - 1, " ".join(words[-3:-1]))):
                x, y = centres[name]
                named.append((at, x / 32 - 1, y / 32 - 1))
        if refer_letters and q.startswith("which marker is on "):
            refers.append((expression_end, "abcd".index(a)))
        if modifier_grounds and q.startswith("which marker is on "):
            expression = q.split()[4:-1]  # "which marker is on the leftmost circle ?" -> the leftmost circle
            at = [expression_end - (len(expression) - 1 - k) for k, w in enumerate(expression) if w in MODIFIER_WORDS]
            assert all(ids[p] == tok.vocab[expression[len(expression) - 1 - (expression_end - p)]] for p in at)
            modifiers += [(expression_end, h, at) for h in MODIFIER_HEADS] if at else []
        if count_words and q.startswith("how many "):
            counts.append((counted_at, NUMBERS.index(a)))
        answer = tok.vocab[a]
        targets += [(len(ids) - 1, answer), (len(ids), eos)]
        image_at = ids.index(tok.vocab["<image>"])  # the image is in turn 0
        for head, (kind, object_ids) in enumerate(where.get(q, [])):
            if kind == "object":
                seq = [image_at + p for i in object_ids for p in object_patches(np.asarray(item.masks[0]), i)]
            else:
                seq = ({0: 1.0, **{image_at + k: w for k, w in centre_weights(np.asarray(item.masks[0]), item.meta["objects"], object_ids).items()}}
                       if soft_centres else [0] + [image_at + p for p in centre_patches(item.meta["objects"], object_ids)])
            if supervise_attention:
                grounds.append((len(ids) - 1, head, seq))
            if hop_grounds and item.task in ("referring", "count"):
                word = expression_end if kind == "object" else counted_at
                hops += [(word, h, seq, kind == "centres") for h in (count_heads if kind == "centres" else HOP_HEADS[kind])]
        ids += [answer, eos]
    return TurnsExample(ids, targets, item, base.aux, grounds, named, refers, counts, hops, modifiers)


def collate_turns(batch: List[TurnsExample], pad_id: int, with_pixels: bool = True):
    s = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), s), pad_id, dtype=torch.long)
    pos, tgt = [], []
    for b, e in enumerate(batch):
        ids[b, : len(e.ids)] = torch.tensor(e.ids)
        pos += [(b, p) for p, _ in e.targets]
        tgt += [t for _, t in e.targets]
    px = torch.from_numpy(preprocess(np.concatenate([np.asarray(e.item.images) for e in batch]))) if with_pixels else None
    aux = torch.from_numpy(np.concatenate([e.aux for e in batch]))
    return ids, px, torch.tensor(pos), torch.tensor(tgt), aux


def collate_named(batch: List[TurnsExample], device=None):
    """The `named` targets of a batch: (batch index, sequence position) [n, 2] and centres [n, 2];
    None when no chat of the batch names an object."""
    rows = [(b, p, x, y) for b, e in enumerate(batch) for p, x, y in e.named]
    if not rows:
        return None
    return (torch.tensor([r[:2] for r in rows], device=device),
            torch.tensor([r[2:] for r in rows], dtype=torch.float32, device=device))


def collate_hops(batch: List[TurnsExample], kind: str, device=None):
    """A batch's first-hop class targets of one kind ("refers" or "counts"): (batch index,
    sequence position) [n, 2] and classes [n]; None when no chat of the batch has one."""
    rows = [(b, p, k) for b, e in enumerate(batch) for p, k in getattr(e, kind)]
    if not rows:
        return None
    return (torch.tensor([r[:2] for r in rows], device=device), torch.tensor([r[2] for r in rows], device=device))


def attention_targets(rows: list, seq_len: int):
    """Rows (batch, position, head, positions to look at, ...) -> (batch, position, head) index
    tensor [n, 3] and a [n, seq_len] 0/1 mask of those positions: what every attention-supervision
    loss indexes the attention probabilities with. Positions given as {position: weight} (soft
    count targets, `centre_weights`) put their weights in the mask instead of 1."""
    mask = torch.zeros(len(rows), seq_len)
    for r, row in enumerate(rows):
        if isinstance(row[3], dict):
            mask[r, list(row[3])] = torch.tensor(list(row[3].values()), dtype=mask.dtype)
        else:
            mask[r, row[3]] = 1
    return torch.tensor([list(row[:3]) for row in rows], dtype=torch.long).reshape(-1, 3), mask


def missed_mass(rows: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """[n] −log of the attention mass each row [n, seq] puts on its target positions (`where`, 0/1):
    the attention-supervision loss, indifferent to how the mass spreads over the targets."""
    return -torch.log((rows * where).sum(-1) + 1e-6)


def uneven_spread(rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[n] cross-entropy of each attention row [n, seq] to its target distribution (`weights`
    normalised: uniform over 0/1 positions, or the soft count weights)."""
    return -(weights * torch.log(rows + 1e-6)).sum(-1) / weights.sum(-1)


def collate_hop_grounds(batch: List[TurnsExample], seq_len: int):
    """The hop targets of a batch (`TurnsExample.hops`): `attention_targets`, and [n] whether each
    row should look evenly."""
    rows = [(b, p, h, seq, even) for b, e in enumerate(batch) for p, h, seq, even in e.hops]
    return (*attention_targets(rows, seq_len), torch.tensor([row[4] for row in rows], dtype=torch.bool))


def collate_modifier_grounds(batch: List[TurnsExample], seq_len: int):
    """The modifier targets of a batch (`TurnsExample.modifiers`), as `attention_targets`."""
    return attention_targets([(b, p, h, seq) for b, e in enumerate(batch) for p, h, seq in e.modifiers], seq_len)


def collate_grounds(batch: List[TurnsExample], seq_len: int):
    """Attention-supervision targets of a batch (`TurnsExample.grounds`), as `attention_targets`."""
    return attention_targets([(b, p, h, seq) for b, e in enumerate(batch) for p, h, seq in e.grounds], seq_len)
