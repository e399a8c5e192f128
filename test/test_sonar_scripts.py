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
