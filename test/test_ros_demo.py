# SPDX-License-Identifier: Apache-2.0
"""`python -m audio_vision demo`: the composed graph end to end (short run, tiny model)."""
import json
import os

import pytest

pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')

from audio_vision.cli import main  # noqa: E402
from helpers import write_tiny_models  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 64   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')


def test_demo_writes_summary_and_mosaic(tmp_path, capsys):
    write_tiny_models(tmp_path / 'model', num_mics=8)
    out = tmp_path / 'out'
    rc = main(['demo', '--duration', '5', '--scenes', '2', '--model-dir', str(tmp_path / 'model'),
               '--out', str(out), '--domain-id', str(DOMAIN), '--seed', '77'])
    assert rc == 0
    s = json.loads((out / 'summary.json').read_text())
    for key in ('duration_s', 'messages', 'output_rate_hz', 'latency_ms', 'scenes', 'dropped_windows',
                'invalid_frames'):
        assert key in s
    assert s['duration_s'] == 5.0
    # counts and accounting, not rates: how much a busy machine gets through in 5 s wall time varies
    outputs = s['messages']['depth/image']
    assert 1 <= outputs <= s['windows'] - s['dropped_windows'], s
    assert abs(s['messages']['depth/camera_info'] - outputs) <= 1     # published together
    assert s['windows'] <= s['messages']['audio/frames'] * 1024 // 4000   # hop 0.25 s = 4000 samples
    assert s['messages']['ground_truth/depth/image'] >= len(s['scenes']) >= 1
    assert s['output_rate_hz'] > 0 or outputs == 1
    assert 0 < s['latency_ms']['p50'] <= s['latency_ms']['p95']
    assert s['invalid_frames'] == 0
    assert [sc['seed'] for sc in s['scenes']] == [77, 78][:len(s['scenes'])]
    scored = [sc for sc in s['scenes'] if sc['windows']]
    assert scored and all(0.0 <= sc['segmentation']['miou'] <= 1.0 for sc in scored)
    assert all(set(sc['depth']) >= {'abs_rel', 'delta1'} for sc in scored)
    # the sonar layout beside the prediction: its depth on its pixels, its floor against the room (mm-level)
    laid = [sc['layout'] for sc in s['scenes'] if 'layout' in sc]
    assert laid and all(0.0 < lay['prior_fraction'] <= 1.0 and lay['windows'] >= 1 for lay in laid)
    assert s['messages']['layout/depth'] >= sum(lay['windows'] for lay in laid)
    assert all(lay['floor_m'] is None or lay['floor_m'] < 0.05 for lay in laid)
    assert (out / 'mosaic.png').stat().st_size > 1000
    printed = capsys.readouterr().out
    assert 'mIoU' in printed and 'output rate' in printed and 'layout:' in printed


def test_demo_without_a_model_is_one_clear_error(tmp_path, capsys):
    rc = main(['demo', '--duration', '1', '--model-dir', str(tmp_path / 'none'), '--out', str(tmp_path / 'o'),
               '--domain-id', str(DOMAIN)])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('audio_vision demo: error:') and 'does not exist' in err[0]


def test_summary_says_when_the_nearest_wall_was_not_heard(capsys):
    """A scene whose nearest wall the sonar never measured (an absorber) gets a line that says so; the room's
    other walls measured do not count for it."""
    import numpy as np
    from audio_vision.commands.demo import nearest_wall, print_table
    from audio_vision.sonar import RoomLayout, layout_errors, true_layout
    pose = np.eye(4)
    pose[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]          # optical -> room: looking along +x, level
    pose[:3, 3] = [1.0, 2.0, 0.5]                                # 1 m from the wall x = 0
    truth = true_layout(pose, (5.0, 4.0, 3.0))
    far_walls = RoomLayout(tuple(p for p in truth.planes if not (p.label == 'wall' and abs(p.offset - 1.0) < 1e-9)))
    missed = nearest_wall([layout_errors(far_walls, truth)] * 3)
    assert missed == {'nearest_wall_m': 1.0, 'nearest_wall_measured': 0.0}
    assert nearest_wall([layout_errors(truth, truth)])['nearest_wall_measured'] == 1.0
    scene = {'seed': 1, 'windows': 3, 'depth': {}, 'segmentation': {}}
    summary = {'scenes': [{**scene, 'layout': missed}, {**scene, 'layout': {'nearest_wall_m': 2.0,
                                                                            'nearest_wall_measured': 1.0}}],
               'latency_ms': {'p50': 1.0, 'p95': 2.0}, 'output_rate_hz': 4.0, 'inference_ms': {'p50': 1.0},
               'dropped_windows': 0, 'invalid_frames': 0}
    print_table(summary)
    printed = capsys.readouterr().out
    assert 'scene 0: the nearest wall (1.00 m) was heard in 0% of the windows' in printed
    assert 'scene 1:' not in printed
