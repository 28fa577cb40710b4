#!/usr/bin/env bash
# Rebuilds micro-llava from nothing: world corpus -> training -> ONNX export + hub files ->
# parity fixtures -> evaluation and model card. Installs nothing. About 11 h on 2 cores.
#
# Needs: Node 22 (npx node), Debian's python3-torch + python3-numpy for /usr/bin/python3,
# and an optimised BLAS (apt-get install libopenblas0-pthread): Debian's torch falls back to
# the reference BLAS otherwise, which makes training ~5x slower.
set -euo pipefail
cd "$(dirname "$0")/../.."
NODE=(npx --no-install node)
PY=/usr/bin/python3
TRAINED=colour-at-point,shape-at-point,style,count,relation,referring
HELD_OUT=relative-depth,correspondence,temporal-correspondence
WEIGHTS=tools/micro-vlm/weights/micro-llava.safetensors
# One BLAS thread: OpenBLAS's pthread pool busy-waits in sched_yield between the small
# matmuls here (half the CPU time went to the kernel); torch's own 2 threads do the rest.
# Results are bit-identical either way (checked), only 1.7x faster.
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1

# 1. Corpus (deterministic for the seed). Held-out tasks go to their own folder, so the trainer
#    cannot see them even by accident; their train split only fits the readout probes.
"${NODE[@]}" tools/world/build-world.ts --train-corpus .cache/world-train --seed 7 --train 8000 --test 500 --no-png --tasks "$TRAINED"
"${NODE[@]}" tools/world/build-world.ts --train-corpus .cache/world-heldout --seed 7 --train 1500 --test 500 --no-png --tasks "$HELD_OUT"
#    Referring scenes with only two of the four objects lettered: stage 6's curriculum.
"${NODE[@]}" tools/world/build-world.ts --train-corpus .cache/world-ref2 --seed 11 --train 8000 --test 500 --no-png --tasks referring --referring-letters 2

# 2. Train (tools/micro-vlm/README.md, "Recipe"): the vision tower alone on the dense objective
#    (stand-in for CLIP pretraining); then joint training on multi-turn chats — the first 1800
#    steps of a 6390-step schedule, then a fresh schedule (seed 1) with the extra count turns
#    balanced over their answers (recipe v2). Each train_turns.py run first fits fresh dense heads.
$PY tools/micro-vlm/pretrain_vision.py --corpus .cache/world-train --out .cache/micro-vlm-tower.safetensors --steps 800 --no-probe
$PY tools/micro-vlm/train_turns.py --corpus .cache/world-train --init .cache/micro-vlm-tower.safetensors \
  --vision-steps 300 --steps 6390 --stop-after 1800 --seed 0 --out .cache/micro-vlm-stage2.safetensors
$PY tools/micro-vlm/train_turns.py --corpus .cache/world-train --init .cache/micro-vlm-stage2.safetensors \
  --vision-steps 300 --balanced-counts --steps 3296 --seed 1 --out .cache/micro-vlm-stage3.safetensors
#    Recipe v3 (README "Session 14"): relation alone with its curriculum — only "left of" until joint
#    step 300, + "right of" until 800, + "above" until 1300, then all four — grounded chats, the dense
#    heads also regress patch positions (relations need the column), and a head that regresses each
#    named object's centre at its shape word; 2000 joint steps. Then every task again (the
#    relation-only stage had erased the others), relation and count chats doubled.
#    One torch thread each (how they ran: two experiments shared the 2 cores).
$PY tools/micro-vlm/train_turns.py --corpus .cache/world-train --init .cache/micro-vlm-stage3.safetensors --tasks relation \
  --grounded --position-target --name-aux 1 --relation-stages "300=left of;800=left of,right of;1300=left of,right of,above" \
  --vision-steps 150 --steps 2000 --seed 2 --threads 1 --out .cache/micro-vlm-stage4.safetensors
$PY tools/micro-vlm/train_turns.py --corpus .cache/world-train --init .cache/micro-vlm-stage4.safetensors \
  --grounded --balanced-counts --position-target --name-aux 1 --oversample relation=2,count=2 \
  --vision-steps 100 --steps 2679 --seed 6 --threads 1 --out .cache/micro-vlm-stage5.safetensors
#    Recipe v4 (README "Session 15"): referring alone — two lettered objects of four until joint step
#    700, then four — with every patch classifying the letter on its object and the referred letter
#    classified at the expression's last word after LLM layer 1; 2000 joint steps. Then every task
#    again with those targets and the same one for count at the counted word.
$PY tools/micro-vlm/train_turns.py --corpus .cache/world-train --init .cache/micro-vlm-stage5.safetensors --tasks referring \
  --grounded --position-target --object-letter 4 --refer-aux 1 --letter-weight 20 --referring-stages ".cache/world-ref2@700" \
  --vision-steps 0 --steps 2000 --seed 9 --threads 1 --out .cache/micro-vlm-stage6.safetensors
$PY tools/micro-vlm/train_turns.py --corpus .cache/world-train --init .cache/micro-vlm-stage6.safetensors \
  --grounded --balanced-counts --position-target --name-aux 1 --object-letter 4 --refer-aux 1 --count-aux 1 --letter-weight 20 \
  --oversample relation=2,count=3,referring=2 --vision-steps 100 --steps 2800 --seed 10 --threads 1 --out .cache/micro-vlm-stage7.safetensors
#    Recipe v5 (README "Session 16"): LLM layer 1 told where to look at each hop word (heads 0/1 on
#    the referred object at a marker expression's end; head 2 evenly on the counted centres and
#    <s> at a count question's counted word); then also layer 0's heads 2/3 told to read the
#    expression's modifiers ("leftmost", "large", colours) and each centre patch's object colour
#    and shape classified from the projector output; then a count-heavy tail with the hop weight 3.
$PY tools/micro-vlm/train_turns.py --corpus .cache/world-train --init .cache/micro-vlm-stage7.safetensors \
  --grounded --balanced-counts --position-target --name-aux 1 --object-letter 4 --refer-aux 1 --count-aux 1 --letter-weight 20 \
  --hop-attend 1 --oversample relation=2,count=3,referring=2 --vision-steps 100 --steps 1500 --lr 8e-4 --seed 21 --threads 1 \
  --out .cache/micro-vlm-stage8.safetensors
$PY tools/micro-vlm/train_turns.py --corpus .cache/world-train --init .cache/micro-vlm-stage8.safetensors \
  --grounded --balanced-counts --position-target --name-aux 1 --object-letter 4 --refer-aux 1 --count-aux 1 --letter-weight 20 \
  --hop-attend 1 --modifier-attend 1 --centre-names 1 --oversample relation=2,count=4,referring=3 --vision-steps 100 --steps 1500 \
  --lr 8e-4 --seed 33 --threads 1 --out .cache/micro-vlm-stage9.safetensors
$PY tools/micro-vlm/train_turns.py --corpus .cache/world-train --init .cache/micro-vlm-stage9.safetensors \
  --grounded --balanced-counts --position-target --name-aux 1 --object-letter 4 --refer-aux 1 --count-aux 1 --letter-weight 20 \
  --hop-attend 3 --modifier-attend 1 --centre-names 1 --oversample relation=2,count=6,referring=3 --vision-steps 100 --steps 1000 \
  --lr 5e-4 --seed 35 --threads 1 --out .cache/micro-vlm-stage10.safetensors
#    Recipe v6 (README "Session 18"): the tower's shape was the limit of shape counts, so the dense
#    shape term of object patches weighs 5x (9x) in a tail from v5; then four tails from that one
#    (two seeds each of two shape weights), and the element-wise mean of the five (a model soup).
STAGE10=(--grounded --balanced-counts --position-target --name-aux 1 --object-letter 4 --refer-aux 1 --count-aux 1 --letter-weight 20
  --hop-attend 3 --modifier-attend 1 --centre-names 1 --oversample relation=2,count=6,referring=3 --lr 5e-4 --threads 1)
# tail_of INIT OUT FLAGS...: a train_turns.py stage from INIT with stage 10's flags, then FLAGS (a flag
# given again replaces STAGE10's: argparse keeps the last), written to OUT.
tail_of() {
  local init=$1 out=$2
  shift 2
  $PY tools/micro-vlm/train_turns.py --corpus .cache/world-train --init "$init" "${STAGE10[@]}" "$@" --out "$out"
}
tail_of .cache/micro-vlm-stage10.safetensors .cache/micro-vlm-stage11.safetensors \
  --shape-weight 4 --vision-steps 400 --steps 1500 --seed 50
for tail in "a 4 400 1500 53" "b 8 600 1500 54" "c 4 400 1000 55" "d 8 600 1000 56"; do
  read -r name weight vision steps seed <<< "$tail"
  tail_of .cache/micro-vlm-stage11.safetensors ".cache/micro-vlm-stage12$name.safetensors" \
    --shape-weight "$weight" --vision-steps "$vision" --steps "$steps" --seed "$seed"
done
$PY tools/micro-vlm/average.py .cache/micro-vlm-stage11.safetensors .cache/micro-vlm-stage12{a,b,c,d}.safetensors \
  --out .cache/micro-vlm-stage13.safetensors
#    Recipe v7 (README "Session 19"): five tails from that soup (shape weight, tower-only steps, seed,
#    count chats per item, joint peak lr), then the mean of the soup and the five.
for tail in "a 4 400 60 6 5e-4" "b 8 600 61 6 5e-4" "c 8 600 63 6 5e-4" "d 4 400 64 12 5e-4" "e 8 600 66 6 2e-4"; do
  read -r name weight vision seed count lr <<< "$tail"
  tail_of .cache/micro-vlm-stage13.safetensors ".cache/micro-vlm-stage14$name.safetensors" \
    --oversample "relation=2,count=$count,referring=3" --lr "$lr" --shape-weight "$weight" --vision-steps "$vision" --steps 1000 \
    --seed "$seed"
done
$PY tools/micro-vlm/average.py .cache/micro-vlm-stage13.safetensors .cache/micro-vlm-stage14{a,b,c,d,e}.safetensors --out "$WEIGHTS"

# 3. Export to resources/models/micro-llava and write tests/fixtures/micro-llava.
$PY tools/micro-vlm/publish.py --checkpoint "$WEIGHTS"
$PY tools/micro-vlm/ablation_fixtures.py --checkpoint "$WEIGHTS"

# 4. ONNX-vs-PyTorch numbers, evaluation, model card.
"${NODE[@]}" tools/micro-vlm/parity.ts > .cache/micro-vlm-parity.json
$PY tools/micro-vlm/report.py --checkpoint "$WEIGHTS" --corpus .cache/world-train --heldout .cache/world-heldout \
  --parity .cache/micro-vlm-parity.json

# 5. The parity test.
npx --no-install vitest run --project integration tests/integration/micro-vlm-parity.test.ts
