# SPDX-License-Identifier: Apache-2.0
"""scripts/ceiling_material_probe.py's bookkeeping and the material absorption it reads (simulation.acoustics)."""
import pytest
from helpers import load_script

from audio_vision.simulation.acoustics import band_absorption


def test_band_absorption_averages_the_database_octaves_within_the_band():
    pytest.importorskip('pyroomacoustics')
    # ceiling_fibre_absorber: 0.48, 0.97, 1.0, 0.97, 1.0, 1.0, 1.0 at 125 .. 8000 Hz
    assert band_absorption('ceiling_fibre_absorber', 2000.0, 7500.0) == pytest.approx(1.0)     # 2 and 4 kHz
    assert band_absorption('ceiling_fibre_absorber', 100.0, 300.0) == pytest.approx((0.48 + 0.97) / 2)
    assert band_absorption('hard_surface', 500.0, 7500.0) < 0.1
    with pytest.raises(ValueError, match='no octave band'):
        band_absorption('hard_surface', 5000.0, 7000.0)


def test_the_absorbing_share_counts_windows_not_materials():
    probe = load_script('ceiling_material_probe')
    result = {'materials': {
        'black': {'windows': 10, 'not_measured': 0.9, 'elevation_band_absorption': 0.99},
        'grey': {'windows': 100, 'not_measured': 0.01, 'elevation_band_absorption': 0.5},
        'white': {'windows': 90, 'not_measured': 0.0, 'elevation_band_absorption': 0.04}}}
    share = probe.absorbing_share(result, 0.9)
    assert share['materials'] == ['black']
    assert share['share_of_misses'] == pytest.approx(9 / 10)          # 9 of the 10 windows missed
    assert share['not_measured_absorbing'] == pytest.approx(0.9)
    assert share['not_measured_other'] == pytest.approx(1 / 190)
