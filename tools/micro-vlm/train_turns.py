"""Joint training of micro-llava on multi-turn chats (turns.py) — steps 2 and 3 of the shipped
recipe (tools/micro-vlm/README.md, "Recipe"; build.sh runs it), from a tower pretrained by
pretrain_vision.py.

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/micro-vlm/train_turns.py --init T.safetensors --out W.safetensors

How it differs from train.py, the first recipe (tools/micro-vlm/README.md, "Experiments"):
- vision_hidden 128 (was 64): the 64-wide tower learns the dense objective ~4x slower per step and
  barely encodes shape at the marker patch, the patch the LLM reads the answer from (layer 0 has a
  head whose attention from the answer position puts 0.84-0.95 of its mass on that patch);
- marker weight: the marker patch is 1 of 64 in the dense loss yet carries every point answer;
- multi-turn chats: a single-question sequence spends 64 image tokens on one answer word.
Deterministic for a seed (fixed shuffles, one process, fixed thread count).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checkpoint  # noqa: E402
from config import MicroConfig  # noqa: E402
from corpus import load_task, vocabulary  # noqa: E402
from evaluate import choice_accuracy  # noqa: E402
from model import MicroLlava  # noqa: E402
from tokenizer import WordTokenizer  # noqa: E402
from train import HELD_OUT_TASKS, TRAINED_TASKS, lr_at  # noqa: E402
from data import COLOURS, SHAPES, centre_names, object_centres  # noqa: E402
from dense import dense_heads, dense_loss  # noqa: E402
from tower_stage import train_tower  # noqa: E402
from turns import collate_grounds, collate_hop_grounds, collate_hops, collate_modifier_grounds, collate_named, collate_turns, curriculum_batch, make_turns_example, missed_mass, parse_corpus_stages, parse_relation_stages, uneven_spread  # noqa: E402

AUX_WEIGHT = 0.5


def rms_normed(h: torch.Tensor) -> torch.Tensor:
    """What the first-hop heads (--name-aux, --refer-aux, --count-aux) read: a trained LLM's
    residual stream is far from unit scale, so they see it RMS-normalised."""
    return h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-5)


def per_patch(batch, targets) -> torch.Tensor:
    """[images × 64, ...] per-patch targets `targets(mask, objects)` of every image of a batch, in
    collate_turns' order (each chat's images in turn), so they line up with the flattened features."""
    return torch.from_numpy(np.concatenate([targets(np.asarray(mask), e.item.meta.get("objects", [])) for e in batch for mask in e.item.masks]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=".cache/world-train")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vision-hidden", type=int, default=128)
    ap.add_argument("--vision-steps", type=int, default=600)
    ap.add_argument("--vision-batch", type=int, default=128)
    ap.add_argument("--vision-lr", type=float, default=2e-3)
    ap.add_argument("--marker-weight", type=float, default=5.0)
    ap.add_argument("--colour-word", action="store_true",
                    help="count colour questions at their colour word, not at \"objects\" (the count and hop targets; turns.count_position)")
    ap.add_argument("--shape-weight", type=float, default=0.0,
                    help="the dense shape term of object patches weighs this + 1 times a background patch's (dense.py; count by shape is limited by the tower's shape)")
    ap.add_argument("--letter-weight", type=float, default=0.0, help="weight of marker-letter patches in the dense marker term (dense.py)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--max-turns", type=int, default=4)
    ap.add_argument("--train-per-task", type=int, default=8000)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--balanced-counts", action="store_true", help="thin the extra count turns so the answers one..five are even (turns.COUNT_KEEP)")
    ap.add_argument("--grounded", action="store_true", help="relation / referring chats ask every relation and marker question the scene settles (turns.py)")
    ap.add_argument("--lookups", action="store_true", help="relation / referring chats also ask one-hop lookups; grounded relation chats ask each pair once (turns.py)")
    ap.add_argument("--position-target", action="store_true", help="the dense heads also regress each patch's grid position (dense.py)")
    ap.add_argument("--attend-layer", type=int, default=-1,
                    help="supervise the attention of this LLM layer's heads 0/1 at relation, marker and count answers (turns.turn_grounding); -1: off")
    ap.add_argument("--attend-weight", type=float, default=0.5)
    ap.add_argument("--relation-stages", default="", metavar="STEP=REL,...;...",
                    help="relation curriculum over joint steps, e.g. \"400=left of;900=left of,right of\", then all (needs --grounded; README \"Session 13\")")
    ap.add_argument("--referring-stages", default="", metavar="DIR@STEP;...",
                    help="referring chats come from DIR's referring items until STEP (e.g. build-world.ts --referring-letters 2 corpora), then from --corpus")
    ap.add_argument("--name-aux", type=float, default=0.0,
                    help="weight of regressing each relation question's named objects' centres after LLM layer 1, at their shape words")
    ap.add_argument("--object-letter", type=float, default=0.0,
                    help="dense target: every patch classifies the letter on its object; a lettered object's patches weigh 1 + this (0: off)")
    ap.add_argument("--refer-aux", type=float, default=0.0,
                    help="weight of classifying each marker question's answer letter after LLM layer 1, at the expression's last word")
    ap.add_argument("--count-aux", type=float, default=0.0,
                    help="weight of classifying each count question's answer after LLM layer 1, at the counted word")
    ap.add_argument("--hop-attend", type=float, default=0.0,
                    help="weight of telling LLM layer --hop-layer where to look at each marker question's expression end and count question's counted word (turns.HOP_HEADS)")
    ap.add_argument("--hop-layer", type=int, default=1, help="the LLM layer --hop-attend supervises (the --refer-aux / --count-aux heads read its output)")
    ap.add_argument("--count-heads", default="2", help="hop-layer heads --hop-attend tells to spread over a count's centres and <s> (comma-separated)")
    ap.add_argument("--modifier-attend", type=float, default=0.0,
                    help="weight of telling LLM layer --hop-layer - 1 (heads turns.MODIFIER_HEADS) to read each marker question's modifier words from the expression's end")
    ap.add_argument("--feature-centre", type=float, default=0.0,
                    help="weight of regressing each object patch's object centre from the projector output (what the LLM reads; data.object_centres)")
    ap.add_argument("--centre-names", type=float, default=0.0,
                    help="weight of classifying, at each object's centre patch, that object's colour and shape from the projector output (data.centre_names)")
    ap.add_argument("--tasks", default=",".join(TRAINED_TASKS), help="train and monitor on these trained tasks only (experiments)")
    ap.add_argument("--freeze-vision", action="store_true", help="keep the tower fixed in the joint stage (no dense loss; experiments)")
    ap.add_argument("--count-attend", type=float, default=1.0,
                    help="with --hop-attend: the count rows' weight relative to the referring rows' (the counting head fits its targets no better on "
                         "train scenes than on test ones, so it is short of signal rather than of data)")
    ap.add_argument("--soft-centres", action="store_true",
                    help="with --hop-attend: a count question's head-2 target is <s> and each counted object's own patches, Gaussian-weighted "
                         "by their distance to its centre (turns.centre_weights), instead of the one patch holding its centre")
    ap.add_argument("--more", default="", metavar="TASK=DIR,...",
                    help="also TASK's train items from corpus folder DIR (more scenes of one task; --train-per-task limits each folder)")
    ap.add_argument("--oversample", default="", help="task=k,...: k chats per item of these tasks (each with its own turns)")
    ap.add_argument("--stop-after", type=int, default=0, help="save and stop after this many joint steps (the schedule still spans --steps)")
    ap.add_argument("--budget-minutes", type=float, default=0,
                    help="set --steps from the speed of joint steps 20-80 so stage 2 takes about this long (the chosen count is logged)")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cuda (the GPU recipe, tools/micro-vlm/README.md)")
    ap.add_argument("--text-layers", type=int, default=4, help="LLM layers of a model built from scratch (no --init)")
    ap.add_argument("--deadline-minutes", type=float, default=0, help="save and stop once the joint stage has run this long (a safety net for lent machines)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 lets two experiments share the 2-core machine)")
    ap.add_argument("--init", help="start from this checkpoint (its config wins; use --vision-steps 0 to keep its tower)")
    a = ap.parse_args()
    assert not ((a.hop_attend or a.modifier_attend) and a.attend_layer >= 0), "--hop-attend / --modifier-attend and --attend-layer are not combined"
    assert not a.soft_centres or a.hop_attend, "--soft-centres shapes --hop-attend's count targets: give --hop-attend"
    assert not a.modifier_attend or a.hop_layer >= 1, "--modifier-attend supervises layer --hop-layer - 1: --hop-layer must be >= 1"
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    tok = WordTokenizer(vocabulary(a.corpus))
    init_info = {}
    if a.init:
        m, _, init_info = checkpoint.load(a.init)
        c = m.c
    else:
        c = MicroConfig(vocab_size=len(tok), vision_hidden=a.vision_hidden, vision_intermediate=4 * a.vision_hidden, text_layers=a.text_layers)
        m = MicroLlava(c)
    heads = dense_heads(c.vision_hidden, a.position_target, a.object_letter > 0)  # fresh: checkpoints hold the model only
    # --name-aux: (x, y) of a named object, read after LLM layer 1 (made only when asked: it draws from torch's RNG)
    name_head = torch.nn.Linear(c.text_hidden, 2).to(a.device) if a.name_aux else None
    # --refer-aux: the referred object's letter, read at the same layer where a referring expression ends
    refer_head = torch.nn.Linear(c.text_hidden, 4).to(a.device) if a.refer_aux else None
    count_head = torch.nn.Linear(c.text_hidden, 5).to(a.device) if a.count_aux else None  # --count-aux: the same for count
    # --feature-centre: the projector drops most of the tower's position precision (v4, linear
    # readout of an object patch's object centre x: 2.3 px mean error from the tower's feature
    # layer, 4.3 px from image_features; "leftmost" needs 6 px), so the target sits on its output
    centre_head = torch.nn.Linear(c.text_hidden, 2).to(a.device) if a.feature_centre else None
    names_head = torch.nn.Linear(c.text_hidden, len(COLOURS) + 1 + len(SHAPES) + 1).to(a.device) if a.centre_names else None
    target_options = {"object_letters": a.object_letter > 0, "refer_letters": a.refer_aux > 0, "count_words": a.count_aux > 0,
                      "hop_grounds": a.hop_attend > 0, "modifier_grounds": a.modifier_attend > 0,
                      "count_heads": tuple(int(h) for h in a.count_heads.split(",")), "soft_centres": a.soft_centres,
                      "colour_word": a.colour_word}
    dev = torch.device(a.device)
    m.to(dev)
    heads.to(dev)
    t0 = time.time()
    train, monitor, staged = [], [], []
    stages = parse_relation_stages(a.relation_stages)
    ref_stages = parse_corpus_stages(a.referring_stages)
    ref_staged = [[make_turns_example(it, tok, rng, a.max_turns, balanced_counts=a.balanced_counts, grounded=a.grounded, lookups=a.lookups, **target_options)
                   for it in load_task(folder, "referring") if it.split == "train"][: a.train_per_task] for _, folder in ref_stages]
    copies = {k: int(v) for k, v in (kv.split("=") for kv in a.oversample.split(",") if kv)}
    more = dict(kv.split("=", 1) for kv in a.more.split(",") if kv)
    assert set(more) <= set(a.tasks.split(",")), f"--more names a task not trained here: {a.more!r}"
    for task in a.tasks.split(","):
        assert task in TRAINED_TASKS, f"{task} is not a trained task"
        items = load_task(a.corpus, task)
        pool = [it for it in items if it.split == "train"][: a.train_per_task]
        pool += [it for it in load_task(more[task], task) if it.split == "train"][: a.train_per_task] if task in more else []
        for _ in range(copies.get(task, 1)):
            train += [make_turns_example(it, tok, rng, a.max_turns, balanced_counts=a.balanced_counts, grounded=a.grounded, lookups=a.lookups,
                                         supervise_attention=a.attend_layer >= 0, name_positions=a.name_aux > 0, **target_options)
                      for it in pool]
        if task == "relation" and stages:
            assert a.grounded, "--relation-stages needs --grounded"
            staged = [[e for e in (make_turns_example(it, tok, rng, a.max_turns, grounded=True, lookups=a.lookups, relations=rels, name_positions=a.name_aux > 0, **target_options)
                                   for it in items if it.split == "train") if e is not None][: a.train_per_task] for _, rels in stages]
        monitor += [it for it in items if it.split == "test"][:64]
    turns = sum(len(e.targets) for e in train) // 2
    print(f"{len(train)} chats, {turns} answers, from {TRAINED_TASKS} in {time.time() - t0:.0f}s", flush=True)
    log = []

    def save(tag=""):
        info = {"recipe": "train_turns.py", "seed": a.seed, "vision_hidden": c.vision_hidden, "vision_steps": a.vision_steps,
                "vision_batch": a.vision_batch, "vision_lr": a.vision_lr, "marker_weight": a.marker_weight, "letter_weight": a.letter_weight, "steps": a.steps,
                "batch": a.batch, "lr": a.lr, "max_turns": a.max_turns, "balanced_counts": a.balanced_counts, "grounded": a.grounded, "lookups": a.lookups,
                "position_target": a.position_target, "oversample": a.oversample, "more": a.more, "attend_layer": a.attend_layer, "attend_weight": a.attend_weight, "stop_after": a.stop_after, "train_per_task": a.train_per_task, "aux_weight": AUX_WEIGHT,
                "relation_stages": a.relation_stages, "referring_stages": a.referring_stages, "name_aux": a.name_aux, "object_letter": a.object_letter, "refer_aux": a.refer_aux, "count_aux": a.count_aux, "hop_attend": a.hop_attend, "hop_layer": a.hop_layer, "modifier_attend": a.modifier_attend, "count_heads": a.count_heads, "feature_centre": a.feature_centre, "centre_names": a.centre_names, "soft_centres": a.soft_centres, "count_attend": a.count_attend, "shape_weight": a.shape_weight, "colour_word": a.colour_word, "trained_tasks": a.tasks.split(","), "freeze_vision": a.freeze_vision, "held_out_tasks": HELD_OUT_TASKS, "init": a.init, "init_info": init_info,
                "device": a.device, "train_seconds": round(time.time() - t0), "log": log}
        checkpoint.save(a.out + tag, m.eval(), tok, info)

    # Stage 1: the vision tower alone on the dense objective (a stand-in for CLIP pretraining).
    t0 = time.time()
    train_tower(m, heads, train, a.vision_steps, a.vision_batch, a.vision_lr, rng, a.marker_weight, a.letter_weight, log, a.object_letter, a.shape_weight)

    # Stage 2: everything jointly; answer loss on every turn + the dense objective.
    t1 = time.time()
    if a.freeze_vision:
        m.vision_tower.requires_grad_(False)
    params = [p for p in list(m.parameters()) + list(heads.parameters()) if p.requires_grad]
    if a.name_aux:
        params += list(name_head.parameters())
    for head in (refer_head, count_head, centre_head, names_head):
        params += list(head.parameters()) if head is not None else []
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.05},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.98))
    order = np.concatenate([rng.permutation(len(train)) for _ in range(20)])  # 20 epochs: more than any budget here
    step = 0
    while step < (a.stop_after or a.steps):
        if a.budget_minutes and step == 20:
            t20 = time.time()
        if a.budget_minutes and step == 80:  # speed from steps 20-80: the first steps warm caches / the GPU up
            a.steps = max(100, int((a.budget_minutes * 60 - (t20 - t1)) / ((time.time() - t20) / 60)) + 20)
            print(f"budget: {a.steps} joint steps", flush=True)
        if a.deadline_minutes and time.time() - t1 > a.deadline_minutes * 60:
            print(f"deadline: stopping at step {step} of {a.steps}", flush=True)
            break
        while (step + 1) * a.batch > len(order):  # long GPU schedules outrun the first 20 epochs
            order = np.concatenate([order, rng.permutation(len(train))])
        m.train()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.steps, a.lr, 60)
        batch = [train[i] for i in order[step * a.batch : (step + 1) * a.batch]]
        # The curricula: relation chats asking only this stage's relations; referring scenes with fewer letters.
        batch = curriculum_batch(batch, "relation", stages, staged, step, rng)
        batch = curriculum_batch(batch, "referring", ref_stages, ref_staged, step, rng)
        ids, px, tpos, tids, aux_t = (t.to(dev) for t in collate_turns(batch, c.pad_token_id))
        with torch.set_grad_enabled(not a.freeze_vision):
            vstates, _ = m.vision_states(px)
        feats = m.multi_modal_projector(vstates[m.feature_layer_index()][:, 1:])
        al = torch.zeros((), device=dev) if a.freeze_vision else dense_loss(heads, [vstates[m.feature_layer_index()], vstates[-1]], aux_t, a.marker_weight, a.letter_weight, a.object_letter, a.shape_weight)
        if a.attend_layer >= 0:
            logits, probs = m.logits_at(ids, feats, tpos, want_probs=True)
            gi, gmask = (t.to(dev) for t in collate_grounds(batch, ids.shape[1]))
            rows = probs[a.attend_layer][gi[:, 0], gi[:, 2], gi[:, 1]]  # [n, seq]
            attend = missed_mass(rows, gmask).mean() if len(gi) else logits.new_zeros(())
        elif a.hop_attend or a.modifier_attend:
            logits, probs, states = m.logits_at(ids, feats, tpos, want_probs=True, want_states=True)
            attend = 0.0
        elif a.name_aux or a.refer_aux or a.count_aux:
            logits, states = m.logits_at(ids, feats, tpos, want_states=True)
            attend = 0.0
        else:
            logits, attend = m.logits_at(ids, feats, tpos), 0.0
        named = torch.zeros((), device=dev)
        where = collate_named(batch, dev) if a.name_aux else None
        if where is not None:
            at, centres = where
            named = F.mse_loss(name_head(rms_normed(states[2][at[:, 0], at[:, 1]])), centres)
        hop = {}
        for kind, head in (("refers", refer_head), ("counts", count_head)):
            asked = collate_hops(batch, kind, dev) if head is not None else None
            if asked is not None:
                at, target = asked
                hop[kind] = F.cross_entropy(head(rms_normed(states[2][at[:, 0], at[:, 1]])), target)
        placed = torch.zeros((), device=dev)
        if a.feature_centre:
            where_at = per_patch(batch, object_centres).to(dev)
            known = ~torch.isnan(where_at[:, 0])
            placed = F.mse_loss(centre_head(rms_normed(feats.reshape(-1, feats.shape[-1])[known])), where_at[known])
        named_centres = torch.zeros((), device=dev)
        if a.centre_names:
            names = per_patch(batch, lambda mask, objects: centre_names(objects)).to(dev)
            out = names_head(rms_normed(feats.reshape(-1, feats.shape[-1])))
            nc = len(COLOURS) + 1
            w = 1 + 9 * (names[:, 0] > 0).float()  # ~4 centre patches of 64 would otherwise barely register
            ce = F.cross_entropy(out[:, :nc], names[:, 0], reduction="none") + F.cross_entropy(out[:, nc:], names[:, 1], reduction="none")
            named_centres = (ce * w).sum() / w.sum()
        looked = torch.zeros((), device=dev)
        if a.hop_attend:
            gi, gmask, even = (t.to(dev) for t in collate_hop_grounds(batch, ids.shape[1]))
            if len(gi):
                rows = probs[a.hop_layer][gi[:, 0], gi[:, 2], gi[:, 1]]  # [n, seq]
                anyhow = missed_mass(rows, gmask)  # mass on the positions, however spread
                evenly = uneven_spread(rows, gmask)  # cross-entropy to uniform over them (to their weights: --soft-centres)
                looked = torch.where(even, a.count_attend * evenly, anyhow).mean()
        modified = torch.zeros((), device=dev)
        if a.modifier_attend:
            gi, gmask = (t.to(dev) for t in collate_modifier_grounds(batch, ids.shape[1]))
            if len(gi):
                rows = probs[a.hop_layer - 1][gi[:, 0], gi[:, 2], gi[:, 1]]
                modified = missed_mass(rows, gmask).mean()
        refer, counted = hop.get("refers", torch.zeros((), device=dev)), hop.get("counts", torch.zeros((), device=dev))
        qa = F.cross_entropy(logits, tids)
        loss = qa + AUX_WEIGHT * al + a.attend_weight * attend + a.name_aux * named + a.refer_aux * refer + a.count_aux * counted + a.hop_attend * looked + a.modifier_attend * modified + a.feature_centre * placed + a.centre_names * named_centres
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 25 == 0:
            print(f"step {step} qa {qa.item():.3f} aux {al.item():.3f} attend {float(attend):.3f}" + (f" named {named.item():.3f}" if a.name_aux else "") + (f" refer {refer.item():.3f}" if a.refer_aux else "") + (f" count {counted.item():.3f}" if a.count_aux else "") + (f" look {looked.item():.3f}" if a.hop_attend else "") + (f" modifier {modified.item():.3f}" if a.modifier_attend else "") + (f" placed {placed.item():.4f}" if a.feature_centre else "") + (f" names {named_centres.item():.3f}" if a.centre_names else "") + f" lr {opt.param_groups[0]['lr']:.2e} {time.time() - t1:.0f}s", flush=True)
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            acc = choice_accuracy(m.eval(), tok, monitor)
            log.append({"stage": "joint", "step": step + 1, "seconds": round(time.time() - t1), "qa_loss": round(qa.item(), 4),
                        "aux_loss": round(al.item(), 4), "monitor": acc})
            print("monitor", json.dumps(acc), flush=True)
            save(".partial")
        step += 1
    save()
    print(f"saved {a.out} after {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
