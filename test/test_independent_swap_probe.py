# SPDX-License-Identifier: Apache-2.0
"""scripts/independent_swap_probe.py's channel bookkeeping: each group and each SRP-PHAT band is the block of the
feature stack it names."""
from helpers import load_script

from audio_vision.core.features.config import FeatureConfig


def test_the_srp_bands_tile_the_srp_group_band_by_band():
    probe = load_script('independent_swap_probe')
    features = FeatureConfig(spatial='ipd', echo=True, direction_maps=True, map_size=16, layout_prior='layout')
    groups = probe.channel_groups(features, 8)
    lo, hi, a, b = groups['SRP-PHAT maps']
    assert groups['chirp echo maps'][:3] == (lo, hi, b)          # the echo maps follow the SRP maps in one block
    bands = probe.srp_band_groups(groups['SRP-PHAT maps'], features)
    edges = features.srp_band_edges_hz
    assert list(bands) == [f'SRP-PHAT {x:g}-{y:g} Hz' for x, y in zip(edges[:-1], edges[1:])]
    starts = [v[2] for v in bands.values()]
    stops = [v[3] for v in bands.values()]
    assert starts[0] == a and stops[-1] == b and starts[1:] == stops[:-1]      # contiguous, in band order
    assert {v[3] - v[2] for v in bands.values()} == {features.map_grid ** 2}   # one map of the grid each
    assert all(v[:2] == (lo, hi) for v in bands.values())
