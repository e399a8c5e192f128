# SPDX-License-Identifier: Apache-2.0
"""Start-up failures of perception_node from the command line: every broken model directory, checkpoint,
parameter, device or backend gives ONE clear error line on stderr and a non-zero exit, never a traceback.

One case per kind of failure runs ``python -m audio_vision node perception --ros-args ...`` as a
subprocess (a few concurrently, to keep the module short); the exhaustive list of broken checkpoints and
parameters runs the same command line in-process (``audio_vision.cli.main``, stderr captured at the file
descriptor), which exercises the same code path in a fraction of the time.
"""
import os
import signal
import subprocess
import threading
import time
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')

from audio_vision.core.model.baselines import EndToEnd, EndToEndConfig, save_end_to_end  # noqa: E402
from helpers import tiny_spec, write_tiny_models  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.timeout(300)]
DOMAIN = 67   # one ROS domain per test module
ROOT = Path(__file__).resolve().parents[1]
MARKER = Path('/tmp/audio_vision_pwned_by_checkpoint')


class RunsCode:
    """Unpickling this runs a shell command: weights_only=True must refuse it."""

    def __reduce__(self):
        return (os.system, (f'touch {MARKER}',))


def mutate(src: Path, dst: Path, fn) -> None:
    payload = torch.load(src, weights_only=True)
    fn(payload)
    torch.save(payload, dst)


def build_model_dirs(root: Path) -> dict[str, Path]:
    """One directory per broken-model case (each holding depth.pt and segmentation.pt unless noted)."""
    good = root / 'good'
    write_tiny_models(good)
    dirs = {'good': good}

    def make(name, depth=None, seg=True):
        d = root / name
        d.mkdir()
        if seg:
            (d / 'segmentation.pt').write_bytes((good / 'segmentation.pt').read_bytes())
        if depth is not None:
            depth(d / 'depth.pt')
        dirs[name] = d
        return d

    data = (good / 'depth.pt').read_bytes()
    make('missing_depth')
    make('truncated', lambda p: p.write_bytes(data[:len(data) // 3]))
    make('empty', lambda p: p.write_bytes(b''))
    make('not_a_checkpoint', lambda p: p.write_text('this is not a model\n'))
    make('directory', lambda p: p.mkdir())
    make('pickled_code', lambda p: torch.save({'format': 'audio_vision.modality', 'x': RunsCode()}, p))
    make('wrong_modality', lambda p: p.write_bytes((good / 'segmentation.pt').read_bytes()))
    make('future_version', lambda p: mutate(good / 'depth.pt', p, lambda d: d.update(version=99)))
    make('weights_mismatch', lambda p: mutate(good / 'depth.pt', p, lambda d: d['config']['vqvae'].update(hidden=48)))
    make('inconsistent_config', lambda p: mutate(good / 'depth.pt', p,
                                                 lambda d: d['config']['atnet'].update(in_channels=5)))
    make('unknown_config_key', lambda p: mutate(good / 'depth.pt', p,
                                                lambda d: d['config']['features'].update(colour='blue')))
    spec = tiny_spec('depth')
    make('baseline_as_model', lambda p: save_end_to_end(p, EndToEnd(EndToEndConfig(
        in_channels=spec.atnet.in_channels, image_size=32, encoder_width=8, mlp_hidden=16)), spec))
    other = root / 'six_mics'
    write_tiny_models(other, num_mics=6)
    make('other_array', lambda p: p.write_bytes((other / 'depth.pt').read_bytes()))
    return dirs


# (case id, model dir key or an absolute path, extra -p params, words the line must contain)
# the cases named in SUBPROCESS run as real subprocesses, the others in-process
SUBPROCESS = {'missing_dir', 'truncated', 'pickled_code', 'wrong_modality', 'mismatched_arrays', 'hop_out_of_range',
              'hop_wrong_type', 'unknown_device', 'unknown_backend'}
CASES = [
    ('missing_dir', '/nonexistent/models', {}, ['does not exist']),
    ('missing_depth', 'missing_depth', {}, ['depth.pt', 'not found']),
    ('truncated', 'truncated', {}, ['depth.pt', 'not a loadable']),
    ('empty', 'empty', {}, ['depth.pt']),
    ('not_a_checkpoint', 'not_a_checkpoint', {}, ['depth.pt']),
    ('directory_as_file', 'directory', {}, ['depth.pt']),
    ('pickled_code', 'pickled_code', {}, ['depth.pt', 'contains code']),
    ('wrong_modality', 'wrong_modality', {}, ['depth.pt', "modality='segmentation'"]),
    ('future_version', 'future_version', {}, ['depth.pt', 'version 99']),
    ('weights_mismatch', 'weights_mismatch', {}, ['depth.pt', 'do not fit']),
    ('inconsistent_config', 'inconsistent_config', {}, ['depth', 'inconsistent']),
    ('unknown_config_key', 'unknown_config_key', {}, ['depth.pt', 'colour']),
    ('baseline_as_model', 'baseline_as_model', {}, ['depth.pt', 'not an audio_vision checkpoint']),
    ('mismatched_arrays', 'other_array', {}, ['disagree']),
    ('hop_out_of_range', 'good', {'hop_s': '-1.0'}, ["'hop_s'", 'range']),
    ('hop_wrong_type', 'good', {'hop_s': '1'}, ["'hop_s'", 'must be a float']),
    ('queue_zero', 'good', {'queue_size': '0'}, ["'queue_size'", 'range']),
    ('bool_wrong_type', 'good', {'publish_points': 'maybe'}, ["'publish_points'", 'bool']),
    ('window_mismatch', 'good', {'window_s': '0.5'}, ["'window_s'", "model's window"]),
    ('bad_modalities', 'good', {'modalities': '[depth, rgb]'}, ["'modalities'"]),
    ('chunk_bounds', 'good', {'min_chunk_samples': '1000', 'max_chunk_samples': '100'}, ["'min_chunk_samples'"]),
    ('unknown_device', 'good', {'device': 'tpu'}, ['device', 'tpu']),
    ('cuda_unavailable', 'good', {'device': 'cuda:3'}, ['cuda']) if not torch.cuda.is_available() else None,
    ('unknown_backend', 'good', {'backend': 'tensorrt'}, ['backend', 'tensorrt']),
    # the simulation YAML's chirp (f_end 7000 Hz) is not the one the model matched-filters (7500 Hz)
    ('chirp_mismatch', 'good', {'sim_config': 'other_chirp_yaml'}, ["'sim_config'", 'f_end', '7000']),
    ('sim_config_missing', 'good', {'sim_config': '/nonexistent/simulation.yaml'}, ["'sim_config'", 'not found']),
]
CASES = [c for c in CASES if c is not None]
# rcl itself refuses these before the node exists; run_node does not catch rclpy.init's RCLError yet
RCL_CASES = [
    ('missing_params_file', ['--params-file', '/nonexistent/params.yaml'], ['params.yaml']),
    ('malformed_params_file', ['--params-file', 'bad.yaml'], ['yaml']),
    ('malformed_override', ['-p', 'model_dir'], ['model_dir']),
]


ENV = {'ROS_DOMAIN_ID': str(DOMAIN), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
COMMAND = ['-m', 'audio_vision', 'node', 'perception', '--ros-args']


def run_node(ros_args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **ENV, 'PYTHONPATH': str(ROOT)}
    return subprocess.run([sys.executable, *COMMAND, *ros_args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=ROOT)


def args_for(case, where, params, dirs):
    model_dir = str(dirs[where]) if where in dirs else where
    args = ['-p', f'model_dir:={model_dir}', '-p', 'warmup:=false']
    for k, v in params.items():
        args += ['-p', f'{k}:={dirs.get(v, v)}']      # a file the fixture wrote, by its key
    return args


@pytest.fixture(scope='module')
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp('startup')
    dirs = build_model_dirs(root)
    (root / 'bad.yaml').write_text('perception_node: [\n')
    dirs['bad_yaml'] = root / 'bad.yaml'
    (root / 'other_chirp.yaml').write_text('chirp:\n  f_end: 7000.0\n')
    dirs['other_chirp_yaml'] = root / 'other_chirp.yaml'
    return dirs


@pytest.fixture(scope='module')
def results(model_dirs):
    """The subprocess cases, run 2 at a time."""
    MARKER.unlink(missing_ok=True)
    jobs = {case: args_for(case, where, params, model_dirs) for case, where, params, _ in CASES if case in SUBPROCESS}
    jobs['malformed_params_file'] = ['--params-file', str(model_dirs['bad_yaml'])]
    with ThreadPoolExecutor(2) as pool:
        futures = {case: pool.submit(run_node, args) for case, args in jobs.items()}
        return {case: f.result() for case, f in futures.items()}


def run_in_process(ros_args, capfd) -> subprocess.CompletedProcess:
    """The same command line through audio_vision.cli.main in this process; stderr captured at fd 2."""
    from audio_vision.cli import main
    old = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    capfd.readouterr()
    try:
        code = main(['node', 'perception', '--ros-args', *ros_args])
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(['audio_vision'], code, out, err)


def check_one_line(proc, words):
    assert proc.returncode != 0, proc
    assert 'Traceback' not in proc.stderr, proc.stderr
    # rcl logs its own '[rcl]' line for arguments it refuses, before rclpy raises: not ours to silence
    lines = [line for line in proc.stderr.splitlines() if line.strip() and '] [rcl]: ' not in line]
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith('perception_node: error: '), line
    for w in words:
        assert w in line, (w, line)
    assert len(line) < 1000, line


@pytest.mark.parametrize('case, where, params, words', [c for c in CASES if c[0] in SUBPROCESS],
                         ids=[c[0] for c in CASES if c[0] in SUBPROCESS])
def test_start_up_failure_is_one_clear_line(results, case, where, params, words):
    check_one_line(results[case], words)


@pytest.mark.parametrize('case, where, params, words', [c for c in CASES if c[0] not in SUBPROCESS],
                         ids=[c[0] for c in CASES if c[0] not in SUBPROCESS])
def test_start_up_failure_in_process_is_one_clear_line(model_dirs, capfd, case, where, params, words):
    check_one_line(run_in_process(args_for(case, where, params, model_dirs), capfd), words)


def test_pickled_code_was_not_run(results):
    assert results['pickled_code'].returncode != 0
    assert not MARKER.exists(), 'unpickling the checkpoint ran code'


def test_malformed_params_file_is_one_clear_line(results):
    check_one_line(results['malformed_params_file'], ['bad.yaml'])


@pytest.mark.parametrize('case, args, words', [c for c in RCL_CASES if c[0] != 'malformed_params_file'],
                         ids=[c[0] for c in RCL_CASES if c[0] != 'malformed_params_file'])
def test_malformed_ros_arguments_in_process_are_one_clear_line(capfd, case, args, words):
    check_one_line(run_in_process(args, capfd), words)


def start_and_stop(model_dir, sig) -> tuple[bool, int, str]:
    """Start the node with a valid model, wait for its start-up log line, send ``sig``; returns
    (was running, exit code, everything it printed)."""
    env = {**os.environ, **ENV, 'PYTHONPATH': str(ROOT)}
    proc = subprocess.Popen([sys.executable, *COMMAND, '-p', f'model_dir:={model_dir}'], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not any('outputs [' in x for x in lines):
        time.sleep(0.1)
    running = proc.poll() is None
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait(timeout=10)
    reader.join(timeout=5)
    return running, code, ''.join(lines)


def test_a_good_model_starts_and_stops_cleanly_on_sigint(tmp_path):
    write_tiny_models(tmp_path)
    running, code, output = start_and_stop(tmp_path, signal.SIGINT)
    assert running and 'outputs [' in output, output
    assert 'Traceback' not in output and 'error' not in output.lower(), output
    assert code == 0, output


def test_sigterm_stops_without_a_traceback(tmp_path):
    write_tiny_models(tmp_path)
    running, code, output = start_and_stop(tmp_path, signal.SIGTERM)
    assert running, output
    assert 'Traceback' not in output, output
