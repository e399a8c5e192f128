# SPDX-License-Identifier: Apache-2.0
"""scripts/sonar_thresholds.py --set: the thresholds read for a front-end other than the shipped one."""
import argparse

import pytest
from helpers import load_script

from audio_vision.sonar import SonarConfig


@pytest.fixture(scope='module')
def thresholds():
    return load_script('sonar_thresholds')


def test_set_parses_sonar_config_fields(thresholds):
    given = ('gate_fraction=0.25', 'wall_range_m=[0.3, 8.0]', 'wall_candidates=3', 'box_walls=false')
    pairs = dict(thresholds.sonar_override(t) for t in given)
    assert pairs == {'gate_fraction': 0.25, 'wall_range_m': (0.3, 8.0), 'wall_candidates': 3, 'box_walls': False}
    SonarConfig(**pairs)                     # a valid front-end as given
    for bad in ('gate_fraction', 'no_such_field=1'):
        with pytest.raises(argparse.ArgumentTypeError):
            thresholds.sonar_override(bad)


def test_own_error_is_the_share_of_a_windows_abs_rel_off_the_exact_shell(thresholds):
    """Four pixels with a prior (one without): the window's AbsRel is their mean relative error; the pixels more
    than 10 % off the shell carry theirs, split into drawn farther and nearer than the shell."""
    import numpy as np
    gt = np.array([2.0, 2.0, 4.0, 1.0, 3.0])
    shell = np.array([2.0, 2.0, 2.0, 1.0, 3.0])         # the third pixel: a body the shell does not have (gt 4)
    layout = np.array([2.1, 4.0, 2.0, 0.5, np.nan])     # 5 % off (not own), farther, as the shell, nearer, no prior
    all_, farther, nearer = thresholds.own_error(layout, shell, gt)
    assert farther == pytest.approx((2.0 / 2.0) / 4)
    assert nearer == pytest.approx((0.5 / 1.0) / 4)
    assert all_ == pytest.approx(farther + nearer)
    window_abs_rel = np.mean([0.1 / 2, 2.0 / 2, 2.0 / 4, 0.5 / 1])
    assert all_ < window_abs_rel


def test_the_wall_threshold_probe_counts_what_a_lower_threshold_admits_and_joins_only_uncalibrated_sets():
    probe = load_script('wall_threshold_probe')
    assert probe.range_bin(0.2) == '0-1.5 m' and probe.range_bin(3.0) == '2.5-4 m' and probe.range_bin(9.0) == '4-inf m'
    assert probe.turn(359.0, 1.0) == 2.0
    empty = {'true_walls': 0, 'on_wall': [], 'on_no_wall': []}
    candidates = {b: dict(empty) for b in ('0-1.5 m', '1.5-2.5 m', '4-inf m')}
    candidates['2.5-4 m'] = {'true_walls': 3, 'on_wall': [4.6, 5.9, 7.0], 'on_no_wall': [4.4, 5.0]}

    def row(abs_rel, own):
        return {'prior_pixels': 0.8, 'layout_abs_rel': own, 'walls_not_measured': 0.5,
                'joined': {'abs_rel': abs_rel, 'delta1': 0.8, 'miou': 0.5}}
    joined = {'networks': {'abs_rel': 0.2, 'delta1': 0.8, 'miou': 0.5}, 'shipped': row(0.18, 0.12),
              'variant': row(0.17, 0.13)}
    result = {'measured': {'date': 'd', 'machine': 'm'}, 'commit': 'c', 'command': 'cmd', 'split': 'val', 'limit': 3,
              'variant': {'wall_cfar_far': 4.5},
              'datasets': {'a': {'candidates': candidates, 'joined': joined},
                           'b': {'candidates': candidates, 'joined': None}}}
    text = probe.markdown(result)
    assert '- at 2.5-4 m: a threshold of 4.5 instead of 6 admits 4 candidates on a wall and 2 on no wall' in text
    assert '| a | 2.5-4 m | 3 | 3 | 3 / 2 | 3 / 1 | 2 / 1 | 2 / 0 | 1 / 0 |' in text
    assert 'lowers the full image\'s AbsRel on 1 of 1 datasets (a)' in text and 'Not joined: b' in text


@pytest.mark.parametrize('argv, says', [
    (['--data', 'default', '--sonar', 'wall_cfar_far=4.5'], "--data takes NAME=PATH, got 'default'"),
    (['--data', 'd=data/default', '--sonar', 'wall_cfr=4.5'], "['wall_cfr'] are not SonarConfig fields"),
    (['--data', 'd=data/default', '--calibration', 'x=c.npz', '--sonar', 'wall_cfar_far=4.5'],
     "--calibration names no --data dataset: ['x']"),
])
def test_the_wall_threshold_probe_refuses_malformed_arguments_before_measuring(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        load_script('wall_threshold_probe').main(argv)
    assert exit_.value.code == 2 and says in capsys.readouterr().err


def test_layout_snap_takes_the_measured_depth_only_where_the_two_agree():
    """scripts/tune_layout_snap.py: within tau (log ratio) of a measured plane the layout's depth; a body in front of
    it (far off the plane) and a pixel with no plane measured (NaN) keep the method's."""
    import numpy as np
    snap = load_script('tune_layout_snap').snap
    method = np.array([[2.05, 1.0, 3.0, 2.5]], dtype=np.float32)
    layout = np.array([[2.0, 2.0, np.nan, 2.5]], dtype=np.float32)
    depth, agree = snap(method, layout, 0.05)
    np.testing.assert_array_equal(agree, [[True, False, False, True]])
    np.testing.assert_array_equal(depth, [[2.0, 1.0, 3.0, 2.5]])
    assert not snap(method, layout, 0.01)[1][0, 0]          # 2.5 % off: outside a 1 % tolerance
