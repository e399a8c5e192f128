#!/usr/bin/env bash
# Re-scores the models in $MODELS (default: the shipped models/) and regenerates every figure the docs
# quote from them: the test-split results and mosaic, the fresh-seed evaluation, the shifted rooms and the
# independent re-recording (where their datasets are here), the latent-mean and depth-error probes, the
# confidence curves, the golden bag's expected outputs, the occupancy maps (MAPPING=1; the slowest step) and
# docs/RESULTS.md + models/README.md. Run it after changing models/.
#   bash scripts/refresh_results.sh                 # everything but the mapping drive
#   MAPPING=1 bash scripts/refresh_results.sh       # also the 60 s drives of docs/mapping.json
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-data/default}
FRESH=${FRESH:-data/fresh_seed2711}
SHIFTED=${SHIFTED:-data/shifted}
# the first 800 windows of $DATA's test split re-recorded by the independent engine (scripts/rerecord_independent.py
# --limit 800 --workers 2; --reuse an earlier, shorter re-recording copies its windows instead of recording them)
INDEPENDENT=${INDEPENDENT:-data/independent_800}
INDEPENDENT_VAL=${INDEPENDENT_VAL:-data/independent_val}
MODELS=${MODELS:-models}
step() {  # step NAME CMD...: run one step and say how long it took
  local name=$1; shift
  local t0=$SECONDS
  "$@"
  echo "[refresh] $name: $((SECONDS - t0)) s"
}
step evaluate $PY -m audio_vision evaluate --data "$DATA" --models "$MODELS" --no-progress \
  --json docs/results.json --markdown docs/results_table.md --mosaic docs/figures/results_mosaic.png
if [ -f "$FRESH/card.json" ]; then
  step fresh $PY -m audio_vision evaluate --data "$FRESH" --split train --models "$MODELS" --no-progress \
    --json docs/results_fresh.json
else
  echo "[refresh] $FRESH missing: fresh-seed evaluation skipped (python -m audio_vision dataset --out $FRESH --seed 2711)"
fi
if [ -f "$SHIFTED/card.json" ]; then
  step shifted $PY -m audio_vision evaluate --data "$SHIFTED" --models "$MODELS" --no-progress \
    --json docs/results_shifted.json
  step shifted_depth_probe $PY scripts/depth_error_probe.py --data "$SHIFTED" --models "$MODELS" \
    --json docs/depth_error_probe_shifted.json
else
  echo "[refresh] $SHIFTED missing: shifted-rooms evaluation skipped (docs/SONAR.md, \"Results\", makes it)"
fi
if [ -f "$INDEPENDENT/card.json" ]; then     # scripts/rerecord_independent.py: the first windows of $DATA's test split
  n=$($PY -c "import json, sys; print(json.load(open(sys.argv[1]))['splits']['test']['count'])" "$INDEPENDENT/card.json")
  step independent $PY -m audio_vision evaluate --data "$INDEPENDENT" --models "$MODELS" --no-progress \
    --json docs/results_independent.json
  step independent_reference $PY -m audio_vision evaluate --data "$DATA" --models "$MODELS" --limit "$n" \
    --no-progress --json docs/results_independent_reference.json
  step independent_swap $PY scripts/independent_swap_probe.py --data "$INDEPENDENT" --reference "$DATA" --models "$MODELS"
else
  echo "[refresh] $INDEPENDENT missing: independent re-recording skipped (scripts/rerecord_independent.py --limit 800)"
fi
if [ -f "$INDEPENDENT_VAL/card.json" ]; then  # the first windows of $DATA's val split, re-recorded the same way
  n=$($PY -c "import json, sys; print(json.load(open(sys.argv[1]))['splits']['val']['count'])" "$INDEPENDENT_VAL/card.json")
  step independent_val $PY -m audio_vision evaluate --data "$INDEPENDENT_VAL" --split val --models "$MODELS" \
    --no-progress --json docs/results_independent_val.json
  step independent_val_reference $PY -m audio_vision evaluate --data "$DATA" --split val --models "$MODELS" \
    --limit "$n" --no-progress --json docs/results_independent_val_reference.json
else
  echo "[refresh] $INDEPENDENT_VAL missing: skipped (scripts/rerecord_independent.py --split val --limit 100)"
fi
step latent_mean_probe $PY scripts/latent_mean_probe.py --data "$DATA" --models "$MODELS"
step depth_error_probe $PY scripts/depth_error_probe.py --data "$DATA" --models "$MODELS" --limit 1600
step confidence $PY scripts/eval_confidence.py --data "$DATA" --models "$MODELS" --limit 400 \
  --json docs/confidence.json --png docs/confidence_sparsification.png
step golden_outputs $PY scripts/make_golden_bag.py --keep-bag
if [ "${MAPPING:-0}" = 1 ]; then
  step mapping $PY scripts/eval_mapping.py --models "$MODELS" --seeds 11 12 --duration 60 \
    --json docs/mapping.json --png docs/mapping.png
fi
step docs $PY scripts/write_results_docs.py
