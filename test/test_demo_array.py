# SPDX-License-Identifier: Apache-2.0
"""`demo` refuses a simulator whose array has another channel count than the model's, naming both, before any
node starts."""
import pytest

from audio_vision.cli import UserError
from audio_vision.commands.demo import check_model_array


def test_shipped_model_and_default_simulator_agree():
    check_model_array(None, None)


def test_planar_simulator_against_the_shipped_model_is_refused(tmp_path):
    yaml = tmp_path / 'planar.yaml'
    yaml.write_text('array:\n  positions: [[0.05, 0.0, 0.0], [0.0, 0.05, 0.0], [-0.05, 0.0, 0.0], '
                    '[0.0, -0.05, 0.0], [0.035, 0.035, 0.0], [-0.035, -0.035, 0.0]]\n')
    with pytest.raises(UserError, match=r'8-mic array.*6-mic array.*--sim-config'):
        check_model_array(None, str(yaml))


def test_same_count_other_positions_is_a_warning(tmp_path, capsys):
    yaml = tmp_path / 'wide.yaml'
    yaml.write_text('array:\n  ring_radius: 0.2\n')
    check_model_array(None, str(yaml))
    assert 'places its 8 mics elsewhere' in capsys.readouterr().err
