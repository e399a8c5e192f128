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
