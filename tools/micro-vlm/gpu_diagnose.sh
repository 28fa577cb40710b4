#!/usr/bin/env bash
# Per-task learnability on the lent GPU machine (tools/micro-vlm/README.md, "Session 12"): for relation,
# referring and count, (1) a fresh LLM on perfect patch features (oracle_llm.py) and (2) the shipped
# LLM on the shipped, frozen vision features, each trained on that task alone, side by side.
#   run(command="bash tools/micro-vlm/gpu_diagnose.sh 3.3", carry=[".cache/world-train.tar.xz"])
set -uo pipefail
MIN=${1:-3.3}
OUT=${OUT:-/tmp/gpu-diagnose}
PY=${PY:-python3}
DEV=${DEV:-cuda}
mkdir -p .cache/world-train "$OUT"
[ -f .cache/world-train/corpus.json ] || tar xJf .cache/world-train.tar.xz -C .cache/world-train
SHIPPED=tools/micro-vlm/weights/micro-llava.safetensors
for task in relation referring count; do
  "$PY" tools/micro-vlm/oracle_llm.py --task "$task" --minutes "$MIN" --device "$DEV" > "$OUT/oracle-$task.log" 2>&1 &
  "$PY" tools/micro-vlm/train_turns.py --corpus .cache/world-train --device "$DEV" --init "$SHIPPED" --vision-steps 0 --freeze-vision \
    --tasks "$task" --balanced-counts --grounded --batch 64 --lr 1.5e-3 --steps 100000 --budget-minutes "$MIN" \
    --deadline-minutes "$("$PY" -c "print($MIN + 0.4)")" --eval-every 1000 --out "$OUT/frozen-$task.safetensors" ${EXTRA:-} > "$OUT/frozen-$task.log" 2>&1 &
done
wait
rm -f "$OUT"/*.partial
for f in "$OUT"/*.log; do echo "== $f"; grep -E "^step|monitor|Error" "$f" | tail -3; done
