# SPDX-License-Identifier: Apache-2.0
"""SimConfig: YAML twin of the dataclass defaults, strict keys, validation."""
from pathlib import Path

import pyroomacoustics as pra
import pytest

from audio_vision.simulation.config import SimConfig

YAML = Path(__file__).resolve().parents[1] / 'config' / 'simulation.yaml'


def test_yaml_defaults_equal_dataclass_defaults():
    assert SimConfig.from_yaml(YAML) == SimConfig()
    assert SimConfig.from_yaml(YAML).to_dict() == SimConfig().to_dict()


def test_round_trip_through_dict():
    cfg = SimConfig.from_dict({'room': {'length_range': [4, 5]}, 'chirp': {'enabled': False},
                               'sources': {'classes': {'person': {
                                   'shape': 'cylinder', 'size': [0.3, 1.8], 'emitter_height': 1.6,
                                   'level_db_spl': [60, 62]}}}})
    assert SimConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.room.length_range == (4, 5) and not cfg.chirp.enabled
    assert list(cfg.sources.classes) == ['person']


@pytest.mark.parametrize('data, match', [
    ({'rooms': {}}, 'unknown key'),
    ({'room': {'lenght_range': [3, 4]}}, r'simulation\.room: unknown key'),
    ({'sources': {'classes': {'dog': {'shape': 'box', 'size': [1, 1, 1], 'emitter_height': 0.5,
                                      'level_db_spl': [50, 60]}}}}, 'unknown class'),
    ({'chirp': {'kind': 'square'}}, 'chirp.kind'),
    ({'chirp': {'f_end': 9000}}, 'chirp band'),
    ({'room': {'height_range': [3, 2]}}, 'height_range'),
    ({'dataset': {'split_fractions': {'train': 0.5, 'val': 0.1}}}, 'sum to 1'),
])
def test_bad_config_is_refused_with_a_clear_message(data, match):
    with pytest.raises(ValueError, match=match):
        SimConfig.from_dict(data)


def test_unknown_yaml_key_is_refused(tmp_path):
    path = tmp_path / 'sim.yaml'
    path.write_text('recording:\n  sample_rte: 16000\n')
    with pytest.raises(ValueError, match='sample_rte'):
        SimConfig.from_yaml(path)


def test_material_pools_exist_in_the_pyroomacoustics_database():
    room = SimConfig().room
    for name in room.wall_materials + room.floor_materials + room.ceiling_materials:
        pra.Material(name)  # raises for unknown names
