#!/usr/bin/env bash
# Creates (or reuses) .venv and installs everything audio_vision needs on a fresh
# Debian 12 / Ubuntu machine with Python >= 3.11. Idempotent: re-running only installs
# what changed. With a sourced ROS 2 install (rclpy importable), the venv sees the system
# site-packages and the ROS wheels from the package index are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${AUDIO_VISION_VENV:-.venv}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
apt_install() {
  command -v apt-get >/dev/null || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 ||
    { as_root apt-get update >/dev/null 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null; }
}

"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "audio_vision needs Python >= 3.11 (found $("$PY" --version))" >&2; exit 1; }

# PortAudio is the C library under sounddevice (live microphone capture): Debian/Ubuntu package libportaudio2.
if ! ldconfig -p 2>/dev/null | grep -q libportaudio; then
  apt_install libportaudio2 || echo "warning: could not install libportaudio2; live capture (sounddevice) is unavailable" >&2
fi

ros_system=0
if "$PY" -c 'import rclpy' >/dev/null 2>&1; then ros_system=1; fi

if [ ! -x "$VENV/bin/python" ]; then
  venv_args=()
  [ "$ros_system" = 1 ] && venv_args+=(--system-site-packages)
  "$PY" -m venv "${venv_args[@]}" "$VENV" 2>/dev/null || {
    apt_install python3-venv || true
    rm -rf "$VENV"; "$PY" -m venv "${venv_args[@]}" "$VENV"
  }
fi

reqs=(requirements.txt requirements-test.txt)
[ "$ros_system" = 1 ] || reqs+=(requirements-ros.txt)
stamp="$VENV/.audio_vision-installed"
want=$(cat "${reqs[@]}" setup.py | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing dependencies into $VENV (first run takes a few minutes)" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  req_args=(); for r in "${reqs[@]}"; do req_args+=(-r "$r"); done
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${req_args[@]}"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi
