# SPDX-License-Identifier: Apache-2.0
"""One chirp for the emitter and the matched filter: check_chirp_match refuses any difference."""
from pathlib import Path

import pytest

from audio_vision.core.features.chirp import ChirpMismatch, check_chirp_match, emitted_chirp, features_chirp
from audio_vision.core.features.config import FeatureConfig
from audio_vision.simulation.config import ChirpConfig, SimConfig
from audio_vision.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_configs_agree():
    """config/simulation.yaml emits the chirp config/train.yaml's features matched-filter."""
    features = TrainConfig.from_yaml(ROOT / 'config' / 'train.yaml').features
    assert features_chirp(features) is not None
    check_chirp_match(features, SimConfig.from_yaml(ROOT / 'config' / 'simulation.yaml').chirp, 'simulation.yaml')


@pytest.mark.parametrize('field, value', [('f_start', 600.0), ('f_end', 7000.0), ('duration_s', 0.02),
                                          ('period_s', 0.125), ('kind', 'exponential')])
def test_every_field_that_differs_is_refused_and_named(field, value):
    with pytest.raises(ChirpMismatch, match=f'{field} {value!r} \\(emitted\\) vs chirp_{field}'):
        check_chirp_match(FeatureConfig(), ChirpConfig(**{field: value}), 'the simulator')


def test_a_silent_emitter_is_refused_when_the_features_use_the_chirp():
    with pytest.raises(ChirpMismatch, match='emits none'):
        check_chirp_match(FeatureConfig(), ChirpConfig(enabled=False), 'the simulator')
    with pytest.raises(ChirpMismatch, match='emits none'):     # direction maps alone use it too
        check_chirp_match(FeatureConfig(echo=False, direction_maps=True), ChirpConfig(enabled=False), 'sim')


def test_features_without_a_chirp_match_any_emitter():
    features = FeatureConfig(echo=False, direction_maps=False)
    assert features_chirp(features) is None
    check_chirp_match(features, ChirpConfig(f_end=7000.0), 'the simulator')
    check_chirp_match(features, ChirpConfig(enabled=False), 'the simulator')


def test_a_dataset_cards_dict_and_the_logarithmic_alias():
    card_chirp = {'enabled': True, 'kind': 'linear', 'f_start': 500.0, 'f_end': 7500.0, 'duration_s': 0.01,
                  'period_s': 0.25, 'level_db_spl': 85.0}
    assert emitted_chirp(card_chirp) == features_chirp(FeatureConfig())
    check_chirp_match(FeatureConfig(), card_chirp, 'a card')
    with pytest.raises(ChirpMismatch, match='f_end'):
        check_chirp_match(FeatureConfig(), {**card_chirp, 'f_end': 7400.0}, 'a card')
    check_chirp_match(FeatureConfig(chirp_kind='exponential'), ChirpConfig(kind='logarithmic'), 'sim')
