# SPDX-License-Identifier: Apache-2.0
"""scripts/sonar_thresholds.py --set: the thresholds read for a front-end other than the shipped one."""
import argparse
import importlib.util
from pathlib import Path

import pytest

from audio_vision.sonar import SonarConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def thresholds():
    spec = importlib.util.spec_from_file_location('sonar_thresholds_script', ROOT / 'scripts' / 'sonar_thresholds.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_set_parses_sonar_config_fields(thresholds):
    given = ('gate_fraction=0.25', 'wall_range_m=[0.3, 8.0]', 'wall_candidates=3', 'box_walls=false')
    pairs = dict(thresholds.sonar_override(t) for t in given)
    assert pairs == {'gate_fraction': 0.25, 'wall_range_m': (0.3, 8.0), 'wall_candidates': 3, 'box_walls': False}
    SonarConfig(**pairs)                     # a valid front-end as given
    for bad in ('gate_fraction', 'no_such_field=1'):
        with pytest.raises(argparse.ArgumentTypeError):
            thresholds.sonar_override(bad)
