# SPDX-License-Identifier: Apache-2.0
"""Clean shutdown: every node, run as its own process, ends with exit status 0 and no traceback on
SIGINT once (Ctrl-C in a terminal: the whole process group), SIGINT twice (``ros2 launch``: the
terminal's SIGINT to the group, then launch forwards its own to the child) and SIGTERM (launch's
escalation, systemd, docker stop)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = 85   # one ROS domain per test module
#: node -> (module, log line printed once the node is up and spinning, extra ROS arguments)
NODES = {
    'perception_node': ('audio_vision.ros.perception_node', 'outputs [', []),
    'simulator_node': ('audio_vision.ros.simulator_node', 'simulating',
                       ['-p', 'segment_s:=0.25', '-p', 'publish_tf:=false']),
    'audio_capture_node': ('audio_vision.ros.audio_capture_node', 'playing',
                           ['-p', 'source:=wav', '-p', 'channels:=0', '-p', 'sample_rate:=0', '-p', 'loop:=true']),
}
SIGNALS = {
    'sigint_group': [(signal.SIGINT, 'group')],
    'sigint_twice': [(signal.SIGINT, 'group'), (signal.SIGINT, 'pid')],
    'sigint_twice_late': [(signal.SIGINT, 'group'), ('sleep', 0.3), (signal.SIGINT, 'pid')],
    'sigterm': [(signal.SIGTERM, 'pid')],
}


@pytest.fixture(scope='module')
def wav_file(tmp_path_factory):
    soundfile = pytest.importorskip('soundfile', reason='needs soundfile: pip install -r requirements.txt')
    path = tmp_path_factory.mktemp('wav') / 'array.wav'
    soundfile.write(path, np.random.default_rng(0).uniform(-0.1, 0.1, (16000, 8)).astype(np.float32), 16000)
    return path


def start(node: str, extra: list[str]) -> subprocess.Popen:
    module, _, args = NODES[node]
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN), PYTHONUNBUFFERED='1', RCUTILS_COLORIZED_OUTPUT='0')
    return subprocess.Popen([sys.executable, '-m', module, '--ros-args', *args, *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)     # its own process group, like a terminal job


def wait_for_line(proc: subprocess.Popen, marker: str, timeout: float = 120.0) -> list[str]:
    lines, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    proc.kill()
    pytest.fail(f'node did not come up (no {marker!r}):\n' + ''.join(lines))


@pytest.mark.parametrize('pattern', sorted(SIGNALS))
@pytest.mark.parametrize('node', sorted(NODES))
def test_signal_ends_node_cleanly(node, pattern, wav_file):
    extra = ['-p', f'wav_path:={wav_file}'] if node == 'audio_capture_node' else []
    proc = start(node, extra)
    try:
        head = wait_for_line(proc, NODES[node][1])
        time.sleep(0.5)   # spinning, timers running
        for sig, target in SIGNALS[pattern]:
            if sig == 'sleep':
                time.sleep(target)
            elif target == 'group':
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = ''.join(head) + out
    assert proc.returncode == 0, f'exit status {proc.returncode}:\n{text}'
    assert 'Traceback' not in text and 'KeyboardInterrupt' not in text, text
