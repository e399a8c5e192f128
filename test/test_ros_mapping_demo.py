# SPDX-License-Identifier: Apache-2.0
"""`python -m audio_vision demo --mapping`: the simulator drives one room, occupancy_node maps it over real DDS."""
import json
import os

import pytest
import yaml

pytest.importorskip('rclpy', reason='needs rclpy + DDS: pip install -r requirements-ros.txt')
pytest.importorskip('nav_msgs', reason='needs nav_msgs: pip install -r requirements-ros.txt')

from audio_vision.commands.demo import run_demo  # noqa: E402
from audio_vision.paths import config_dir  # noqa: E402

pytestmark = pytest.mark.ros
DOMAIN = 93   # one ROS domain per test module
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')


def test_demo_mapping_writes_the_map_and_fuses_the_predictions(tmp_path):
    out = tmp_path / 'out'
    cfg = yaml.safe_load((config_dir() / 'simulation.yaml').read_text())
    cfg['room']['length_range'] = [3.0, 3.2]          # a small room: one lap (simulated up front) is short
    cfg['room']['width_range'] = [3.0, 3.2]
    (tmp_path / 'small.yaml').write_text(yaml.safe_dump(cfg))
    # the shipped models: a random tiny model predicts (almost) no valid depth, so nothing would be mapped
    summary = run_demo(out, 15.0, 1, seed=77, domain_id=DOMAIN, log=lambda *a: None, mapping=True,
                       sim_config=str(tmp_path / 'small.yaml'))
    assert (out / 'map.png').stat().st_size > 1000 and (out / 'mosaic.png').is_file()
    m = summary['mapping']
    outputs = summary['messages']['depth/image']
    assert outputs >= 1
    # every prediction is fused or rejected with a reason; with odometry at every audio frame none is stale
    assert 1 <= m['fused_images'] <= outputs
    assert m['fused_images'] + sum(m['rejected_images'].values()) <= outputs
    assert m['rejected_images']['stale'] == 0 and m['rejected_images']['non_finite'] == 0
    assert 0.0 <= m['occupied_f1'] <= 1.0 and 0.0 <= m['free_iou'] <= 1.0 and m['observed_fraction_of_room'] > 0
    assert json.loads((out / 'summary.json').read_text())['mapping']['fused_images'] == m['fused_images']
    # the plane map of the sonar's walls, from the layouts the perception node measured on the same drive
    p = m['planes']
    assert 1 <= p['windows'] <= summary['messages']['layout/depth']
    assert p['occupied_f1'] > 0.6 and p['free_iou'] > 0.6, p
    sc = summary['scenes'][0]
    assert sc['seed'] == 77 and sc['windows'] >= 1 and 'abs_rel' in sc['depth']
