#!/usr/bin/env bash
# Runs CI (`bash .ci/run`) on fresh clones of this checkout's HEAD, RUNS times in a row, while one
# busy-loop process holds one of the cores at normal priority (the suite must not depend on having
# the machine to itself). Each run's exit status, wall-clock seconds and pytest summary line go to
# $OUT (JSON). Stops at the first failing run.
#   bash scripts/ci_under_load.sh            # RUNS=3 OUT=docs/ci_under_load.json
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
OUT=${OUT:-docs/ci_under_load.json}
REPO=$(pwd)
WORK=$(mktemp -d)
COMMIT=$(git rev-parse --short HEAD)
# the clones live elsewhere: point test_package_xml at the rosdep reference data beside this checkout
if [ -d "$REPO/../shared/reference/rosdep" ]; then
  export AUDIO_VISION_ROSDEP_REFERENCE=${AUDIO_VISION_ROSDEP_REFERENCE:-$(cd "$REPO/../shared/reference/rosdep" && pwd)}
fi
python3 -c 'while True: pass' &
HOG=$!
trap 'kill $HOG 2>/dev/null; rm -rf "$WORK"' EXIT
results=()
for i in $(seq 1 "$RUNS"); do
  git clone -q "$REPO" "$WORK/run$i" && git -C "$WORK/run$i" checkout -q "$COMMIT"
  t0=$(date +%s)
  (cd "$WORK/run$i" && bash .ci/run) > "$WORK/run$i.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  summary=$(grep -E '^[0-9]+ (passed|failed)|passed|failed' "$WORK/run$i.log" | tail -n 1 | tr -d '"')
  echo "[ci_under_load] run $i: exit $rc, ${secs} s, ${summary}"
  results+=("{\"run\": $i, \"exit\": $rc, \"seconds\": $secs, \"summary\": \"$summary\"}")
  if [ "$rc" -ne 0 ]; then tail -n 60 "$WORK/run$i.log"; break; fi
  rm -rf "$WORK/run$i"
done
joined=$(IFS=,; echo "${results[*]}")
cat > "$OUT" <<JSON
{"command": "bash scripts/ci_under_load.sh", "commit": "$COMMIT", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "machine": "$(uname -m), $(nproc) cores, one held by a busy loop", "runs": [$joined]}
JSON
python3 -m json.tool "$OUT" > /dev/null
