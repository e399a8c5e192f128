#!/usr/bin/env bash
# Reproduces the shipped default model from scratch on a CPU machine: dataset generation, feature
# caches, the two-stage method and the end-to-end baseline per modality (parallel single-threaded
# processes: together they use the 2-core budget better than one 2-thread process), the mean
# baseline, fp16 export and the evaluation on the test split.
# Every stage's wall-clock seconds go to $RUN/timings.json, written by this script itself.
#   bash scripts/reproduce_default_model.sh            # -> data/default, runs/default-*, models/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
N=${N:-16000}
SEED=${SEED:-0}
DATA=${DATA:-data/default}
RUN=${RUN:-runs/default}
MODELS=${MODELS:-models}
CONFIG=${CONFIG:-config/train.yaml}
mkdir -p "$RUN"
TIMINGS="$RUN/timings.json"
echo '{}' > "$TIMINGS"
record() {  # record NAME SECONDS: add one stage to timings.json
  $PY - "$TIMINGS" "$1" "$2" <<'EOF'
import json, sys
path, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
data = json.load(open(path))
data[name] = seconds
data['total'] = sum(v for k, v in data.items() if k != 'total' and isinstance(v, (int, float)))
json.dump(data, open(path, 'w'), indent=2)
EOF
  echo "[reproduce] $1: $2 s"
}
step() {  # step NAME CMD...: run a command and record its wall-clock seconds
  local name=$1; shift
  local t0=$SECONDS
  "$@"
  record "$name" $((SECONDS - t0))
}
if [ -f "$DATA/card.json" ]; then
  echo "[reproduce] $DATA exists: dataset generation skipped (its time is not in $TIMINGS)"
else
  step dataset $PY -m audio_vision dataset --out "$DATA" --n "$N" --seed "$SEED" --workers 2 --no-progress
fi
step features $PY -m audio_vision train --data "$DATA" --run-dir "$RUN" --config "$CONFIG" --cache-features --no-progress
t0=$SECONDS
pids=()
# Three single-threaded processes: segmentation's three stages; depth's VQ-VAE + AT-net; depth's
# end-to-end baseline (depth trains twice as many epochs: config/train.yaml, optim_overrides), so that
# neither core idles while the longest chain runs. They share each modality's run directory.
train() {  # train LOG MODALITY STAGES...
  local log=$1 m=$2; shift 2
  $PY -m audio_vision train --data "$DATA" --run-dir "$RUN-$m" --config "$CONFIG" --modalities "$m" \
    --stages "$@" --threads 1 --export "$MODELS" --no-progress > "$RUN/$log" 2>&1 &
  pids+=($!)
}
train train-segmentation.log segmentation vqvae atnet end_to_end
train train-depth.log depth vqvae atnet
train train-depth-end_to_end.log depth end_to_end
for p in "${pids[@]}"; do wait "$p"; done
record train_parallel $((SECONDS - t0))
for m in depth segmentation; do
  $PY - "$RUN-$m/timings.json" "$TIMINGS" <<'EOF'
import json, sys
stages, path = json.load(open(sys.argv[1])), sys.argv[2]
data = json.load(open(path))
data.setdefault('stages_within_train_parallel', {}).update({k: round(v, 1) for k, v in stages.items()})
json.dump(data, open(path, 'w'), indent=2)
EOF
done
step mean $PY -m audio_vision train --data "$DATA" --run-dir "$RUN-mean" --config "$CONFIG" --stages mean \
  --export "$MODELS" --no-progress
step evaluate $PY -m audio_vision evaluate --data "$DATA" --models "$MODELS" --no-progress \
  --json docs/results.json --markdown docs/results_table.md --mosaic docs/figures/results_mosaic.png
for m in depth segmentation; do cp "$RUN-$m/curves.png" "docs/figures/training_curves_$m.png"; done
cp "$TIMINGS" docs/reproduce_timings.json
