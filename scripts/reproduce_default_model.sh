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
# Where and when the times below were taken, so that docs can quote them with their machine and date.
$PY - "$TIMINGS" "$N" "$SEED" <<'EOF'
import json, os, platform, subprocess, sys, time
cpu = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name')), '')
commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
json.dump({'run': {'started_utc': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'cpus': os.cpu_count(),
                   'cpu_model': cpu, 'python': platform.python_version(), 'commit': commit,
                   'command': f'N={sys.argv[2]} SEED={sys.argv[3]} bash scripts/reproduce_default_model.sh'}},
          open(sys.argv[1], 'w'), indent=2)
EOF
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
caches() { ls "$DATA"/features_cache/*.npy 2> /dev/null || true; }
caches_before=$(caches)
step features $PY -m audio_vision train --data "$DATA" --run-dir "$RUN" --config "$CONFIG" --cache-features --no-progress
# The trainer writes a split's cache when it computes its features (training/data.py), so no new cache file means
# every split was read from one made before: the docs then say that this total holds no feature computation.
if [ "$(caches)" = "$caches_before" ]; then
  echo "[reproduce] $DATA/features_cache existed: the features were read, not computed"
  $PY - "$TIMINGS" <<'EOF'
import json, sys
data = json.load(open(sys.argv[1]))
data['run']['features_cache_existed'] = True
json.dump(data, open(sys.argv[1], 'w'), indent=2)
EOF
fi
t0=$SECONDS
pids=()
# Four single-threaded processes, two per modality: its VQ-VAE + AT-net, and its end-to-end baseline
# (which needs no VQ-VAE), so that neither core idles while the longest chain runs. The two processes of a
# modality share its run directory (the trainer merges their timings and curves).
train() {  # train LOG MODALITY STAGES...
  local log=$1 m=$2; shift 2
  $PY -m audio_vision train --data "$DATA" --run-dir "$RUN-$m" --config "$CONFIG" --modalities "$m" \
    --stages "$@" --threads 1 --export "$MODELS" --no-progress > "$RUN/$log" 2>&1 &
  pids+=($!)
}
train train-segmentation.log segmentation vqvae atnet
train train-segmentation-end_to_end.log segmentation end_to_end
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
