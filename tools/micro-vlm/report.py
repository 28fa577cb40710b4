"""Evaluates a checkpoint and writes the model card resources/models/micro-llava/README.md.

    /usr/bin/python3 tools/micro-vlm/report.py --checkpoint W --corpus .cache/world-train \
        --heldout .cache/world-heldout [--parity parity.json]

Measures, per task: answer accuracy on the corpus test split (500 items) and on the shipped
probe set (resources/datasets, 96 items), the blind (all-black image) accuracy, and chance;
readouts of the vision features for the held-out tasks. Results also go to
tools/micro-vlm/results.json (the card is rendered from it).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checkpoint  # noqa: E402
from corpus import corpus_info, load_probe_set, load_task  # noqa: E402
from evaluate import choice_accuracy, correspondence_readout, depth_readout  # noqa: E402
from train import HELD_OUT_TASKS, TRAINED_TASKS  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))


def evaluate_all(m, tok, corpus, heldout):
    res = {"tasks": {}, "readouts": {}}
    for task in TRAINED_TASKS + HELD_OUT_TASKS:
        src = corpus if task in TRAINED_TASKS else heldout
        items = load_task(src, task)
        test = [it for it in items if it.split == "test"]
        probe = load_probe_set(os.path.join(ROOT, "resources", "datasets", task))
        r = {
            "held_out": task in HELD_OUT_TASKS,
            "chance": round(1 / len(test[0].choices), 4),
            "test_items": len(test),
            "accuracy": choice_accuracy(m, tok, test)[task],
            "blind": choice_accuracy(m, tok, test, blind=True)[task],
            "probe_items": len(probe),
            "probe_accuracy": choice_accuracy(m, tok, probe)[task],
        }
        res["tasks"][task] = r
        print(task, json.dumps(r), flush=True)
        if task == "relative-depth":
            train = [it for it in items if it.split == "train"]
            res["readouts"][task] = {"logistic_regression_on_marker_patch_features": round(depth_readout(m, train, test), 4),
                                     "train_items": len(train), "chance": 0.5}
        elif task in ("correspondence", "temporal-correspondence"):
            train = [it for it in items if it.split == "train"]
            ro = correspondence_readout(m, test, train)
            res["readouts"][task] = {k: round(v, 4) for k, v in ro.items()} | {"chance": 0.25}
        if task in res["readouts"]:
            print("readout", task, json.dumps(res["readouts"][task]), flush=True)
    return res


def pct(x):
    return f"{100 * x:.1f}%"


def turns_stage(step: dict) -> str:
    """One `train_turns.py` stage of the card's training bullets."""
    joint = step.get("stop_after") or step["steps"]
    # A stage may start from a `.partial` checkpoint (saved at each monitor): its log says how far it ran.
    logged = [e["step"] for e in step.get("log", []) if e.get("stage") == "joint"]
    joint = min(joint, max(logged)) if logged else joint
    part = f" (the first {joint} of a {step['steps']}-step cosine schedule)" if joint < step["steps"] else " (cosine)"
    return (f"`train_turns.py --seed {step['seed']}`: {step['vision_steps']} tower-only steps with fresh auxiliary heads (their first, "
            f"large gradients would otherwise swamp the joint ones), then everything jointly for {joint} steps × batch {step['batch']} "
            f"chats{part}, peak lr {step['lr']}, answer loss + auxiliary loss; extra count turns "
            f"{'balanced over the answers' if step.get('balanced_counts') else 'unbalanced'}"
            + (f"; up to {step['max_turns']} turns per chat" if step.get("max_turns", 4) != 4 else "")
            + ("; grounded relation / marker chats" if step.get("grounded") else "")
            + (f"; chats per item {step['oversample']}" if step.get("oversample") else "")
            + ("; dense heads also regress patch positions" if step.get("position_target") else "")
            + (f"; the dense shape term of object patches weighted {1 + step['shape_weight']:g}×" if step.get("shape_weight") else "")
            + ("; colour count questions counted at their colour word" if step.get("colour_word") else "")
            + (f"; only the {', '.join(step['trained_tasks'])} task{'s' if len(step['trained_tasks']) > 1 else ''}"
               if set(step.get("trained_tasks", TRAINED_TASKS)) != set(TRAINED_TASKS) else "")
            + (f"; relation curriculum `{step['relation_stages']}` (until step N only these relations, then all)"
               if step.get("relation_stages") else "")
            + (f"; referring curriculum `{step['referring_stages']}` (fewer lettered objects early)" if step.get("referring_stages") else "")
            + (f"; a linear head regresses each named object's centre from LLM layer 2's input at its shape word (weight {step['name_aux']})"
               if step.get("name_aux") else "")
            + (f"; marker-letter patches weighted {step['letter_weight']}× in the marker term" if step.get("letter_weight") else "")
            + (f"; every patch also classifies the letter on its object (lettered objects' patches weighted {1 + step['object_letter']}×)"
               if step.get("object_letter") else "")
            + (f"; a linear head classifies each marker question's letter from LLM layer 2's input at the expression's last word (weight {step['refer_aux']})"
               if step.get("refer_aux") else "")
            + (f"; a linear head classifies each count question's answer from LLM layer 2's input at the counted word (weight {step['count_aux']})"
               if step.get("count_aux") else "")
            + (f"; LLM layer {step.get('hop_layer', 1)}'s heads 0-1 told to look at the referred object from the expression's last word, "
               f"head 2 evenly at the counted centres and <s> from the counted word (weight {step['hop_attend']})" if step.get("hop_attend") else "")
            + (f"; a linear head regresses each object patch's object centre from the projector output (weight {step['feature_centre']})"
               if step.get("feature_centre") else "")
            + (f"; a linear head classifies each centre patch's object colour and shape from the projector output (weight {step['centre_names']})"
               if step.get("centre_names") else "")
            + (f"; attention of LLM layer {step['attend_layer']} heads 0-1 supervised (weight {step['attend_weight']})"
               if step.get("attend_layer", -1) >= 0 else ""))


def training_stages(info: dict) -> list:
    """The card's training bullets, oldest stage first, from the checkpoint's chain of `init_info`s."""
    chain = []
    while info:
        chain.append(info)
        info = info.get("init_info") or {}
    lines, total = [], 0
    for k, step in enumerate(reversed(chain), 1):
        total += step.get("train_seconds", 0) + sum(t.get("train_seconds", 0) for t in step.get("members", []))
        if step.get("recipe") == "average.py":
            tails = "; ".join(f"({chr(97 + j)}) {turns_stage(t)}" for j, t in enumerate(step["members"]))
            lines.append(f"  {k}. `average.py`: the element-wise mean of the weights of stage {k - 1} and of {len(step['members'])} "
                         f"tails trained from it: {tails};")
            continue
        if step.get("recipe") == "pretrain_vision.py":
            lines.append(f"  {k}. `pretrain_vision.py`: the vision tower alone on the auxiliary objective below, {step['vision_steps']} steps × "
                         f"batch {step['vision_batch']}, AdamW (peak lr {step['vision_lr']}, cosine), tower width {step['vision_hidden']};")
            continue
        lines.append(f"  {k}. {turns_stage(step)};")
    lines[-1] = lines[-1][:-1] + "."
    head = f"* {len(chain)} stages, {total // 60} min on 2 CPU cores in all:"
    turns = (f"* **Multi-turn chats** (`turns.py`): each training sequence asks up to {chain[0].get('max_turns')} questions about its image in the chat "
             f"template's turn format — for a marked object its colour, shape and pattern; for a count scene colour / shape / "
             f"all-objects counts between one and five (unbalanced, \"one\" is 57% of them: `--balanced-counts` thins them to even answers); "
             + ("relation items every clear relation between two objects the scene names uniquely, referring items every "
                f"\"which marker is on ...\" an expression settles (stages with grounded chats; `turn_grounding` also gives the "
                f"objects each answer must look at, for the attention supervision). "
                if any(s.get("grounded") for s in chain) else "relation and referring items keep their one question. ")
             + f"The item's own question is always among them (first in a random "
             f"share of sequences), so the single-question prompts of the evaluation stay in distribution.")
    return [head] + lines + [turns]


def card(res, info, cfg, parity, corpus_cmds, sizes) -> str:
    rows = []
    for task, r in res["tasks"].items():
        rows.append(f"| `{task}` | {'held out' if r['held_out'] else 'trained'} | {pct(r['accuracy'])} | {pct(r['probe_accuracy'])} "
                    f"| {pct(r['blind'])} | {pct(r['chance'])} |")
    ro = res["readouts"]
    d = ro.get("relative-depth", {})
    c = ro.get("correspondence", {})
    t = ro.get("temporal-correspondence", {})
    par = ""
    if parity:
        par = (f"\nONNX (onnxruntime-node, CPU) vs PyTorch on the fixtures: logits max |a-b| / max |b| = "
               f"{parity['max_rel_logits']:.2e} (max abs {parity['max_abs_logits']:.2e}); greedy tokens identical: "
               f"{parity['greedy_identical']}. Checked by `tests/integration/micro-vlm-parity.test.ts`.\n")
    v, tx = cfg["vision_config"], cfg["text_config"]
    ok = [t for t, r in res["tasks"].items() if not r["held_out"] and r["accuracy"] >= 0.9]
    short = [f"`{t}` ({pct(r['accuracy'])})" for t, r in res["tasks"].items() if not r["held_out"] and r["accuracy"] < 0.9]
    blind_ok = all(abs(r["blind"] - r["chance"]) <= 0.1 for r in res["tasks"].values())
    status = (f"**Status against the targets** (trained tasks >= 90%, blind within 10 points of chance, held-out tasks "
              f"near chance while readouts are far above it): trained tasks at >= 90%: {', '.join(f'`{t}`' for t in ok) or 'none'}; "
              f"below target: {', '.join(short) or 'none'}. Blind within 10 points of chance on every task: {'yes' if blind_ok else 'no'}.")
    training = "\n".join(training_stages(info))
    trained = {t: r for t, r in res["tasks"].items() if not r["held_out"]}
    held_ok = all(abs(r["accuracy"] - r["chance"]) <= 0.1 for r in res["tasks"].values() if r["held_out"])
    readouts_ok = (d.get("logistic_regression_on_marker_patch_features", 0) >= 0.8 and c.get("cosine", 0) >= 0.55
                   and t.get("cosine", 0) >= 0.55)
    weak = [t for t, r in trained.items() if r["accuracy"] < 0.9]
    limitation = ("**Known limitation of this build**: " + (
        f"{', '.join(f'`{t}`' for t in weak)} {'stays' if len(weak) == 1 else 'stay'} below the 90% target; more joint steps alone did not move them (GPU sweep, "
        f"session 12). What was tried and what comes next: `tools/micro-vlm/README.md`, \"Experiments towards the accuracy target\" "
        f"(latest session last); after training, `publish.py` and `report.py`." if weak else "none against the targets above.")
        + f" Held-out tasks: answers within 10 points of chance on all three: {'yes' if held_ok else 'no'}; every readout "
        f"at least 30 points over chance: {'yes' if readouts_ok else 'no'}.")
    return f"""# micro-llava

A tiny **trained** vision-language model with LLaVA-1.5's architecture, exported the way
transformers.js / onnx-community ship VLMs. It exists so Loupe's tests and demos have a model
whose internals mean something: it answers questions about the synthetic world
(`src-shared/world/`), and its vision features carry information (depth, point identity) that
its answers never learned to use.

Everything here is generated by one command (about 11 h on 2 CPU cores):

```sh
bash tools/micro-vlm/build.sh
```

(It needs Debian's `python3-torch` and `python3-numpy` for `/usr/bin/python3`, and an optimised
BLAS such as `libopenblas0-pthread` to finish in that time; it installs nothing.)

## Files

| file | what |
|---|---|
| `onnx/vision_encoder.onnx` | `pixel_values` float32 [batch, 3, 64, 64] → `image_features` [batch, 64, {tx['hidden_size']}] (ViT up to `vision_feature_layer`, CLS dropped, projector) |
| `onnx/embed_tokens.onnx` | `input_ids` int64 [batch, seq] → `inputs_embeds` [batch, seq, {tx['hidden_size']}] |
| `onnx/decoder_model_merged.onnx` | `inputs_embeds`, `attention_mask` [batch, past+seq], `position_ids` [batch, seq], `past_key_values.{{0..{tx['num_hidden_layers'] - 1}}}.key/value` [batch, {tx['num_key_value_heads']}, past, {tx['head_dim']}] → `logits`, `present.{{i}}.key/value` (first step: zero-length past) |
| `config.json`, `generation_config.json` | `model_type: "llava"`, `image_token_index` {cfg['image_token_index']}, `vision_feature_layer` {cfg['vision_feature_layer']}, strategy `{cfg['vision_feature_select_strategy']}` |
| `preprocessor_config.json`, `processor_config.json` | CLIPImageProcessor (64×64, CLIP mean/std), LlavaProcessor (`<image>` → 64 tokens: `num_additional_image_tokens` 0, see below) |
| `tokenizer.json`, `tokenizer_config.json` | WordLevel, Whitespace pre-tokenizer, `<s>` prepended; LLaVA-1.5 chat template |

ONNX sizes (fp32): {', '.join(f'`{k}` {v / 1e6:.2f} MB' for k, v in sizes.items())}; total {sum(sizes.values()) / 1e6:.2f} MB.
Opset 17, TorchScript exporter, readable node names (`/language_model/layers.0/self_attn/Softmax`).

## Architecture

* **Vision tower** (CLIP-style ViT): 64×64 input, patch {v['patch_size']} → 64 patches + CLS, learned position
  embeddings, pre-LN, hidden {v['hidden_size']}, {v['num_hidden_layers']} layers, {v['num_attention_heads']} heads, GELU MLP {v['intermediate_size']}.
  `vision_feature_layer = {cfg['vision_feature_layer']}`: the LLM reads the output of layer {v['num_hidden_layers'] - 1}; the last layer only fed the
  auxiliary training heads and is **not in the ONNX file** (dead code, as in llava-1.5 exports).
* **Projector**: Linear {v['hidden_size']}→{tx['hidden_size']}, GELU, Linear {tx['hidden_size']}→{tx['hidden_size']}.
* **Language model** (Llama): hidden {tx['hidden_size']}, {tx['num_hidden_layers']} layers, {tx['num_attention_heads']} query / {tx['num_key_value_heads']} KV heads
  (GQA), head_dim {tx['head_dim']}, RoPE θ={tx['rope_theta']:g}, RMSNorm, SwiGLU MLP {tx['intermediate_size']}, untied `lm_head`, vocabulary {tx['vocab_size']} words.
* Attention in both towers is the plain `MatMul → Mul(scale) → Add(mask) → Softmax → MatMul` pattern (the vision
  tower adds an all-zero mask so both towers look alike to graph surgery). No fused attention ops.
* `processor_config.json` sets `num_additional_image_tokens: 0` because transformers.js does not subtract the
  dropped CLS token; the prompt therefore holds exactly 64 `<image>` tokens per image.
* Prompt format (chat template): `USER: <image>\\n{{question}} ASSISTANT:` (one `<image>\\n` per image);
  answers are one word followed by `</s>`.

## Data and training

* Corpus: the synthetic world, `{corpus_cmds[0]}` and `{corpus_cmds[1]}`{''.join(f"; curriculum corpus `{c}`" for c in corpus_cmds[2:])}.
* **Trained tasks**: {', '.join(f'`{t}`' for t in info['trained_tasks'])} ({info['train_per_task']} training items each).
* **Held-out tasks** (no questions and no images of them seen in training): {', '.join(f'`{t}`' for t in info['held_out_tasks'])}.
{training}
* Loss: cross-entropy on every answer word and its `</s>`, plus an **auxiliary per-patch objective** (weight {info.get('aux_weight')}) on
  the vision tower, standing in for CLIP pretraining: linear heads on the feature layer and on the last layer predict,
  for each 8×8 patch, the colour / shape / pattern of the object covering most of it (or background), which marker
  (`point`, a–d) is drawn there, whether the patch holds an object's centre, its depth z, and the patch's offset from the
  object centre (in radii); the attribute terms of the marker's patch weigh {info.get('marker_weight', 0) + 1:g}× a plain patch's.
  Targets come from the ground-truth instance masks and `meta.objects` of the **trained** tasks' images only. The heads
  are not shipped. This is why depth and point identity are present in the vision features although no trained
  question needs them.

## Results

Answer accuracy: the first-token logits at the end of the prompt, argmax over the task's choice words.
"Blind" = the same questions with all-black images. Corpus test split: 500 items per task; probe set: the shipped
`resources/datasets/<task>` (96 items, different seed).

| task | | accuracy (corpus test) | accuracy (probe set) | blind | chance |
|---|---|---|---|---|---|
{chr(10).join(rows)}

Readouts of the vision features (`image_features`, i.e. what the LLM receives) for the held-out tasks:

| task | readout | accuracy | chance |
|---|---|---|---|
| `relative-depth` | logistic regression on feat(a) − feat(b) at the two marker patches ({d.get('train_items', 0)} train items of the held-out task) | {pct(d.get('logistic_regression_on_marker_patch_features', 0))} | 50% |
| `correspondence` | cosine similarity, reference patch vs the 4 candidate patches | {pct(c.get('cosine', 0))} (after subtracting per-marker means: {pct(c.get('cosine_centred', 0))}) | 25% |
| `temporal-correspondence` | same, frame 0 vs frame 3 | {pct(t.get('cosine', 0))} (centred: {pct(t.get('cosine_centred', 0))}) | 25% |
{par}
{status}

{limitation}

## Reference fixtures

`tests/fixtures/micro-llava/` holds PyTorch internals (every vision and LLM layer's hidden states, K/V of every layer,
logits, greedy tokens) for fixed probe-set items and blind inputs; see `tests/fixtures/micro-llava/cases.json` and
`tools/micro-vlm/README.md`. The PyTorch weights are kept at `tools/micro-vlm/weights/micro-llava.safetensors`.
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=os.path.join(HERE, "weights", "micro-llava.safetensors"))
    ap.add_argument("--corpus", default=".cache/world-train")
    ap.add_argument("--heldout", default=".cache/world-heldout")
    ap.add_argument("--parity")
    ap.add_argument("--skip-eval", action="store_true", help="re-render the card from results.json")
    a = ap.parse_args()
    torch.set_num_threads(2)
    m, tok, info = checkpoint.load(a.checkpoint)
    results_path = os.path.join(HERE, "results.json")
    if a.skip_eval:
        res = json.load(open(results_path))
    else:
        res = evaluate_all(m, tok, a.corpus, a.heldout)
        res["training"] = checkpoint.without_logs(info)  # the final stage's log is kept as `training_log`
        res["training_log"] = info.get("log", [])
    parity = json.load(open(a.parity)) if a.parity else res.get("parity")
    if parity:
        res["parity"] = parity
    model_dir = os.path.join(ROOT, "resources", "models", "micro-llava")
    sizes = {f: os.path.getsize(os.path.join(model_dir, "onnx", f)) for f in sorted(os.listdir(os.path.join(model_dir, "onnx")))}
    res["onnx_bytes"] = sizes
    with open(results_path, "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    # The literal build.sh commands (corpus.json's own `command` field is rewritten on subset rebuilds).
    cmds = [f"node tools/world/build-world.ts --train-corpus {a.corpus} --seed 7 --train 8000 --test 500 --no-png --tasks <trained tasks>",
            f"node tools/world/build-world.ts --train-corpus {a.heldout} --seed 7 --train 1500 --test 500 --no-png --tasks <held-out tasks>"]
    # Curriculum corpora (--referring-stages DIR@STEP): their own recorded command (build-world.ts
    # writes the whole command line, letters included, into each corpus.json).
    stage, folders = info, []
    while stage:
        folders += [spec.rsplit("@", 1)[0] for spec in (stage.get("referring_stages") or "").split(";") if spec]
        stage = stage.get("init_info") or {}
    for folder in dict.fromkeys(folders):
        cmds.append(json.load(open(os.path.join(ROOT, folder, "corpus.json")))["command"])
    with open(os.path.join(model_dir, "README.md"), "w") as f:
        f.write(card(res, info, cfg, parity, cmds, sizes))


if __name__ == "__main__":
    main()
