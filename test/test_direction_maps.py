# SPDX-License-Identifier: Apache-2.0
"""Direction-map features (SRP-PHAT and chirp echo maps registered to the camera) and the networks'
map branch: a source or a reflector must appear in the cell of the grid where the camera sees it."""
import numpy as np
import pytest
import torch

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.features.chirp import chirp_pulse
from audio_vision.core.features.config import FeatureConfig
from audio_vision.core.features.direction_maps import direction_grid
from audio_vision.core.features.packing import unpack_maps
from audio_vision.core.features.stack import FeatureStack
from audio_vision.core.model.atnet import ATNet, ATNetConfig
from audio_vision.core.model.baselines import EndToEnd, EndToEndConfig
from audio_vision.simulation.config import SimConfig
from audio_vision.simulation.geometry import mic_positions

FS, C, N = 16000, 343.0, 16000
MICS = mic_positions(SimConfig().array)
CFG = FeatureConfig(direction_maps=True)


def delayed(x: np.ndarray, delay_s: float) -> np.ndarray:
    """The signal x delayed by a fractional number of samples (FFT phase shift, zero-padded: no wrap)."""
    X = np.fft.rfft(x, 2 * N)
    f = np.fft.rfftfreq(2 * N, 1.0 / FS)
    return np.fft.irfft(X * np.exp(-2j * np.pi * f * delay_s), 2 * N)[:N]


@pytest.fixture(scope='module')
def extractor():
    return FeatureStack(CFG, MICS)


def test_grid_centre_rays_follow_the_camera():
    grid = direction_grid(CFG)                                   # (G, G, 3), array frame
    g, m = CFG.map_grid, CFG.map_margin
    assert grid.shape == (g, g, 3)
    np.testing.assert_allclose(np.linalg.norm(grid, axis=-1), 1.0)
    # The image's centre lies between the four central cells, on the optical axis (array x).
    centre = grid[g // 2 - 1:g // 2 + 1, g // 2 - 1:g // 2 + 1].mean(axis=(0, 1))
    np.testing.assert_allclose(centre / np.linalg.norm(centre), [1, 0, 0], atol=1e-9)
    # Column 0 of the image (left) looks left (+y), row 0 (top) looks up (+z).
    assert grid[m, m, 1] > 0 and grid[m, m, 2] > 0
    # The image's edge cell centres are half a cell inside the field of view.
    camera = PinholeCamera(64, 64, CFG.map_hfov_deg)
    edge_pixel = (m * 0 + 0.5) * camera.width / CFG.map_size - 0.5
    ray = np.array([1.0, -(edge_pixel - camera.cx) / camera.fx, 0.0])
    cell = grid[(g - 1) // 2, m]
    assert np.degrees(np.arctan2(cell[1], cell[0])) == pytest.approx(np.degrees(np.arctan2(ray[1], ray[0])), abs=0.5)


@pytest.mark.parametrize('cell', [(6, 13), (12, 4), (2, 2)])
def test_srp_peaks_in_the_cell_of_a_plane_wave(extractor, cell):
    u = direction_grid(CFG)[cell]
    src = np.random.default_rng(0).standard_normal(N)
    audio = np.stack([delayed(src, 0.01 - (p @ u) / C) for p in MICS]).astype(np.float32)
    maps = extractor.direction_maps(torch.from_numpy(audio)[None])[0].numpy()
    n_bands = len(CFG.srp_band_edges_hz) - 1
    for band in range(1, n_bands):        # the lowest band's beam is wider than a cell
        assert np.unravel_index(maps[band].argmax(), maps[band].shape) == cell
        assert maps[band][cell] > 0.9     # every pair in phase


def chirp_scene(cell, range_m: float, echo_amp: float) -> np.ndarray:
    """The chirp train from the array centre (direct path) plus one echo from `cell` at `range_m`."""
    pulse = chirp_pulse(FS, CFG.chirp_f_start, CFG.chirp_f_end, CFG.chirp_duration_s, CFG.chirp_kind)
    period = int(CFG.chirp_period_s * FS)
    train = np.zeros(N)
    for t0 in range(123, N, period):
        train[t0:t0 + len(pulse)] += pulse[:N - t0]
    u = direction_grid(CFG)[cell]
    direct = [delayed(train, np.linalg.norm(p) / C) / np.linalg.norm(p) for p in MICS]
    echo = [echo_amp * delayed(train, (range_m + np.linalg.norm(range_m * u - p)) / C) for p in MICS]
    noise = 1e-4 * np.random.default_rng(1).standard_normal((len(MICS), N))
    return (np.stack(direct) + np.stack(echo) + noise).astype(np.float32)


@pytest.mark.parametrize('cell,range_m', [((6, 13), 2.4), ((10, 8), 4.1)])
def test_echo_map_peaks_at_the_reflectors_direction_and_range(extractor, cell, range_m):
    # A person-sized body a few metres away echoes about 40 dB below the direct path.
    audio = chirp_scene(cell, range_m, echo_amp=0.07 * 2.4 / range_m)
    n_bands = len(CFG.srp_band_edges_hz) - 1
    echo = extractor.direction_maps(torch.from_numpy(audio)[None])[0, n_bands:].numpy()
    bin_width = (CFG.echo_range_max_m - CFG.echo_range_min_m) / CFG.echo_range_bins
    expected_bin = int((range_m - CFG.echo_range_min_m) // bin_width)
    r, i, j = np.unravel_index(echo.argmax(), echo.shape)
    assert r == expected_bin
    assert abs(i - cell[0]) <= 1 and abs(j - cell[1]) <= 1      # echo beams are steered on 2x2 blocks
    silent = extractor.direction_maps(torch.from_numpy(chirp_scene(cell, range_m, 0.0))[None])[0, n_bands:]
    assert echo[expected_bin].max() > silent[expected_bin].max().item() + 0.5      # > 3 nats (13 dB)


def test_maps_are_packed_into_trailing_channels_and_unpack_exactly(extractor):
    audio = torch.from_numpy(chirp_scene((6, 13), 2.4, 0.07))[None].repeat(2, 1, 1)
    with torch.inference_mode():
        feats = extractor(audio)
        maps = extractor.direction_maps(audio)
    assert feats.shape[1] == CFG.num_feature_channels(len(MICS)) == CFG.num_spectral_channels(len(MICS)) + 1
    spectral, unpacked = unpack_maps(feats, CFG.num_direction_maps, CFG.map_grid, CFG.map_planes)
    assert spectral.shape[1] == CFG.num_spectral_channels(len(MICS))
    torch.testing.assert_close(unpacked, maps)
    # Spectral channels are unchanged by adding the maps.
    plain = FeatureStack(FeatureConfig(), MICS)
    with torch.inference_mode():
        torch.testing.assert_close(spectral, plain(audio))


def test_map_settings_are_validated():
    with pytest.raises(ValueError, match='map_size'):
        FeatureConfig(direction_maps=True, map_size=15)
    with pytest.raises(ValueError, match='srp_band_edges_hz'):
        FeatureConfig(direction_maps=True, srp_band_edges_hz=(1000.0, 500.0))
    with pytest.raises(ValueError, match='echo ranges'):
        FeatureConfig(direction_maps=True, echo_range_max_m=20.0)
    assert FeatureConfig().num_feature_channels(8) == FeatureConfig().num_spectral_channels(8)


def small_features() -> FeatureConfig:
    return FeatureConfig(window_s=0.25, chirp_period_s=0.125, n_fft=256, n_mels=32, direction_maps=True,
                         map_size=8, map_margin=2, echo_range_max_m=6.3, echo_range_bins=4)


@pytest.mark.parametrize('net', ['atnet', 'end_to_end'])
def test_networks_read_the_map_where_it_is(net):
    fc = small_features()
    torch.manual_seed(0)
    if net == 'atnet':
        model = ATNet(ATNetConfig(in_channels=fc.num_feature_channels(8), encoder_width=8, mlp_hidden=32,
                                  start_channels=32, latent_size=8, code_dim=8, map_features=8, **fc.map_layout()))
        out_size = 8
    else:
        model = EndToEnd(EndToEndConfig(in_channels=fc.num_feature_channels(8), out_channels=2, image_size=32,
                                        encoder_width=8, mlp_hidden=32, start_channels=32, min_channels=8,
                                        map_features=8, **fc.map_layout()))
        out_size = 32
    model.eval()
    feats = torch.randn(1, fc.num_feature_channels(8), fc.num_bins, fc.num_frames)
    with torch.no_grad():
        base = model(feats)
        assert base.shape[-1] == out_size
        # Change the maps only in the top-left corner cells: the output changes there, not at the far corner.
        _, maps = unpack_maps(feats, fc.num_direction_maps, fc.map_grid, fc.map_planes)
        bumped_maps = maps.clone()
        bumped_maps[..., :fc.map_margin + 1, :fc.map_margin + 1] += 5.0
        flat = feats[:, -fc.map_planes:].reshape(1, -1).clone()
        flat[:, :bumped_maps.numel()] = bumped_maps.flatten()
        bumped = torch.cat([feats[:, :-fc.map_planes],
                            flat.reshape(1, fc.map_planes, fc.num_bins, fc.num_frames)], dim=1)
        diff = (model(bumped) - base).abs().sum(dim=1)[0]
    scale = out_size // 8
    assert diff[:scale, :scale].max() > 1e-3
    assert diff[-scale:, -scale:].max() < 1e-6


def with_maps(feats: torch.Tensor, fc: FeatureConfig, maps: torch.Tensor) -> torch.Tensor:
    """``feats`` with its packed direction maps replaced by ``maps`` (B, maps, G, G)."""
    flat = feats[:, -fc.map_planes:].reshape(len(feats), -1).clone()
    flat[:, :maps[0].numel()] = maps.flatten(1)
    packed = flat.reshape(len(feats), fc.map_planes, fc.num_bins, fc.num_frames)
    return torch.cat([feats[:, :-fc.map_planes], packed], dim=1)


@pytest.mark.parametrize('norm', ['none', 'center', 'standardize', 'drop'])
@pytest.mark.parametrize('net', ['atnet', 'end_to_end'])
def test_a_normalised_srp_branch_reads_the_maps_shape_not_their_level(net, norm):
    fc = small_features()
    torch.manual_seed(0)
    common = dict(in_channels=fc.num_feature_channels(8), encoder_width=8, mlp_hidden=32, start_channels=32,
                  map_features=8, srp_norm=norm, **fc.map_layout())
    model = (ATNet(ATNetConfig(latent_size=8, code_dim=8, **common)) if net == 'atnet' else
             EndToEnd(EndToEndConfig(out_channels=2, image_size=32, min_channels=8, **common))).eval()
    feats = torch.randn(2, fc.num_feature_channels(8), fc.num_bins, fc.num_frames)
    _, maps = unpack_maps(feats, fc.num_direction_maps, fc.map_grid, fc.map_planes)
    srp = fc.num_srp_maps
    louder, sharper, echo = maps.clone(), maps.clone(), maps.clone()
    louder[:, :srp] += 0.3                   # an SRP map's level (what another room's acoustics changed)
    sharper[:, :srp] *= 2.0                  # ... and its contrast
    echo[:, srp:] += 0.3                     # the chirp's echo maps are read as they are
    with torch.no_grad():
        base = model(feats)
        moved = {name: (model(with_maps(feats, fc, m)) - base).abs().max().item()
                 for name, m in (('level', louder), ('contrast', sharper), ('echo', echo))}
    assert moved['echo'] > 1e-4
    assert (moved['level'] < 1e-4) == (norm != 'none')
    assert (moved['contrast'] < 1e-4) == (norm in ('standardize', 'drop'))     # 'drop': not read at all


def test_srp_norm_is_checked():
    fc = small_features()
    with pytest.raises(ValueError, match='srp_norm'):
        ATNet(ATNetConfig(in_channels=fc.num_feature_channels(8), latent_size=8, code_dim=8, srp_norm='whiten',
                          **fc.map_layout()))
    with pytest.raises(ValueError, match='srp_maps'):
        ATNet(ATNetConfig(in_channels=fc.num_feature_channels(8), latent_size=8, code_dim=8, srp_norm='center',
                          **{**fc.map_layout(), 'map_srp': fc.num_direction_maps + 1}))


def test_srp_maps_equal_the_complex_phat_formula(extractor):
    """The SRP-PHAT maps (computed in real arithmetic for speed) against the textbook formula written directly in
    complex numpy, double precision: per band, the mean over its STFT bins and every other frame of
    Re sum_pairs X_i X_j* / (|X_i X_j*| + eps) exp(-j 2 pi f tau_ij(u)), over the pairs."""
    rng = np.random.default_rng(3)
    audio = rng.standard_normal((1, len(MICS), N)).astype(np.float32)
    dm = extractor.direction_maps
    with torch.inference_mode():
        got = dm(torch.from_numpy(audio))[0, :len(CFG.srp_band_edges_hz) - 1].numpy()   # (bands, G, G)
        spec = dm.stft(torch.from_numpy(audio))[0].numpy().astype(np.complex128)          # (C, K, T)
    freqs = np.fft.rfftfreq(CFG.n_fft, 1.0 / FS)
    edges = np.asarray(CFG.srp_band_edges_hz)
    look = direction_grid(CFG).reshape(-1, 3)
    i, j = np.triu_indices(len(MICS), k=1)
    x = spec[:, :, ::round(1.0 / (1.0 - CFG.overlap))]
    cross = x[i] * np.conj(x[j])
    cross = (cross / (np.abs(cross) + CFG.eps)).mean(axis=-1)                             # (P, K)
    tau = (MICS[i] - MICS[j]) @ look.T / C                                                 # (P, D)
    expected = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        k = np.flatnonzero((freqs >= lo) & (freqs < hi))
        steer = np.exp(-2j * np.pi * freqs[k][None, :, None] * tau[:, None, :])           # (P, K, D)
        expected.append(np.real(np.einsum('pk,pkd->d', cross[:, k], steer)) / (len(k) * len(i)))
    expected = np.stack(expected).reshape(got.shape)
    np.testing.assert_allclose(got, expected, atol=1e-5 * np.abs(expected).max())


def test_modulus_and_power_are_abs_in_real_arithmetic():
    from audio_vision.core.features.spectrogram import modulus, power
    x = torch.complex(torch.randn(3, 257), torch.randn(3, 257))
    torch.testing.assert_close(modulus(x), x.abs())
    torch.testing.assert_close(power(x), x.abs().square())
