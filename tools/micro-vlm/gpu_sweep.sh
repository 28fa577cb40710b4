#!/usr/bin/env bash
# Joint-training variants of micro-llava side by side on the lent GPU machine (tools/micro-vlm/README.md,
# "GPU recipe"). Run there from the repository root, with the training corpus packed beside it:
#   (cd .cache/world-train && tar cf - . | xz -T2 -6 > ../world-train.tar.xz)   # here, 21 MB
#   run(command="bash tools/micro-vlm/gpu_sweep.sh 6.5", carry=[".cache/world-train.tar.xz"])
# $1: minutes of joint training per variant. Checkpoints (+ .partial every 1000 steps) and logs land in $OUT.
set -uo pipefail
MIN=${1:-6.5}
OUT=${OUT:-/tmp/gpu-sweep}
PY=${PY:-python3}
mkdir -p .cache/world-train "$OUT"
[ -f .cache/world-train/corpus.json ] || tar xJf .cache/world-train.tar.xz -C .cache/world-train || python3 -c "import tarfile; tarfile.open('.cache/world-train.tar.xz').extractall('.cache/world-train')"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader || true
"$PY" -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"
SHIPPED=tools/micro-vlm/weights/micro-llava.safetensors
DEV=${DEV:-cuda}  # DEV=cpu EXTRA="--train-per-task 50 --vision-steps 2": a dry run anywhere
COMMON=(tools/micro-vlm/train_turns.py --corpus .cache/world-train --device "$DEV" --balanced-counts --batch 64 --lr 1.5e-3
        --steps 100000 --budget-minutes "$MIN" --deadline-minutes "$("$PY" -c "print($MIN + 0.7)")" --eval-every 1000)
run() {  # name, extra args
  local name=$1; shift
  OMP_NUM_THREADS=3 "$PY" "${COMMON[@]}" --out "$OUT/$name.safetensors" "$@" ${EXTRA:-} > "$OUT/$name.log" 2>&1 &
}
run cont       --init "$SHIPPED" --vision-steps 300 --seed 2
run cont-lw    --init "$SHIPPED" --vision-steps 300 --seed 2 --letter-weight 20
run cont-grnd  --init "$SHIPPED" --vision-steps 300 --seed 2 --letter-weight 20 --grounded --oversample count=2,relation=2,referring=2
run scratch    --vision-steps 800 --vision-batch 128 --seed 0 --letter-weight 20
run scratch-6l --vision-steps 800 --vision-batch 128 --seed 0 --letter-weight 20 --text-layers 6
sleep 60; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader || true
wait
for f in "$OUT"/*.log; do echo "== $f"; grep -E "budget|deadline|saved|Error|error" "$f" | tail -4; grep monitor "$f" | tail -2; done
