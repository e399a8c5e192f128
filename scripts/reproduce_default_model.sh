#!/usr/bin/env bash
# Reproduces the shipped default model from scratch on a CPU machine: dataset generation,
# two-stage training with baselines, the latent-size ablation, evaluation, fp16 export.
# Wall-clock time of every step is written to $RUN/timings.txt.
#   bash scripts/reproduce_default_model.sh            # -> data/default, runs/default, models/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
N=${N:-10000}
DATA=${DATA:-data/default}
RUN=${RUN:-runs/default}
MODELS=${MODELS:-models}
mkdir -p "$RUN"
: > "$RUN/timings.txt"
step() {  # step NAME CMD...: run and log its wall-clock seconds
  local name=$1; shift
  local t0=$SECONDS
  "$@"
  echo "$name $((SECONDS - t0))" | tee -a "$RUN/timings.txt"
}
[ -f "$DATA/card.json" ] || step dataset $PY -m audio_vision dataset --out "$DATA" --n "$N" --seed 0 --workers 2
step train $PY -m audio_vision train --data "$DATA" --run-dir "$RUN" --export "$MODELS" --no-progress
# Latent-size ablation (depth): all three sizes on the same reduced budget (3000 samples per
# split, half the epochs), so the rows compare with each other, not with the full model.
for L in 8 16 32; do
  step "ablation_latent$L" $PY -m audio_vision train --data "$DATA" --run-dir "$RUN-latent$L" \
    --config config/train_ablation.yaml --latent-size "$L" --modalities depth --stages vqvae atnet \
    --limit 3000 --epochs-scale 0.5 --no-progress
done
step evaluate $PY -m audio_vision evaluate --data "$DATA" --models "$MODELS" --no-progress \
  --ablation "$RUN-latent8/models" "$RUN-latent16/models" "$RUN-latent32/models" \
  --json docs/results.json --markdown docs/results_table.md --mosaic docs/figures/results_mosaic.png
cp "$RUN/curves.png" docs/figures/training_curves.png
echo "total $(awk '{s += $2} END {print s}' "$RUN/timings.txt")" | tee -a "$RUN/timings.txt"
