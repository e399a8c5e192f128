#!/usr/bin/env bash
# README command one: set up, then run the embedded default demo (simulator -> perception).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m audio_vision demo "$@"
