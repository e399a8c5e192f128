# SPDX-License-Identifier: Apache-2.0
import numpy as np
import pytest
import torch

from audio_vision.core.inference.pipeline import AudioToVision, resolve_device
from audio_vision.core.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from helpers import write_tiny_models


def test_round_trip_gives_identical_outputs(tmp_path, rng):
    models = write_tiny_models(tmp_path)
    pipe = AudioToVision.load(tmp_path)
    audio = rng.normal(size=(pipe.num_channels, pipe.window_samples)).astype(np.float32)
    out = pipe.predict(audio)
    in_memory = AudioToVision(models)
    ref = in_memory.predict(audio)
    np.testing.assert_array_equal(out['segmentation'], ref['segmentation'])
    np.testing.assert_array_equal(out['depth'], ref['depth'])
    assert out['depth'].dtype == np.float32 and out['depth'].shape == (32, 32)
    assert out['segmentation'].dtype == np.uint8


def test_a_prediction_is_the_decoder_of_the_nearest_codewords(tmp_path, rng):
    """The method's inference path, recomputed by hand: features -> AT-net z -> for every latent vector the
    L2-nearest codeword (brute force) -> frozen VQ-VAE decoder -> the encoding. The pipeline must give exactly that."""
    from audio_vision.core.features.stack import compute_features
    models = write_tiny_models(tmp_path)
    spec = models['depth'].spec
    audio = rng.normal(size=(spec.array.num_channels, spec.features.window_samples)).astype(np.float32)
    features = compute_features(audio[None], spec.features, spec.array.mic_positions)
    for model in models.values():     # codewords among this window's latents (a random codebook is far away)
        with torch.no_grad():
            z = model.atnet(features).permute(0, 2, 3, 1).reshape(-1, model.spec.vqvae.code_dim)
            picks = torch.randperm(len(z), generator=torch.Generator().manual_seed(0))
            model.vqvae.quantizer.codebook.copy_(z[picks[:model.spec.vqvae.codebook_size]])
    pipe = AudioToVision(models, backend='eager')
    out = pipe.predict(audio)
    for modality, model in models.items():
        spec = model.spec
        with torch.no_grad():
            z = model.atnet(features)
            flat = z.permute(0, 2, 3, 1).reshape(-1, spec.vqvae.code_dim)
            codebook = model.vqvae.quantizer.codebook
            nearest = torch.cdist(flat, codebook).argmin(dim=1)
            snapped = codebook[nearest].reshape(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
            expected = model.encoding.decode(model.vqvae.decoder(snapped))[0].numpy()
            unquantized = model.encoding.decode(model.vqvae.decoder(z))[0].numpy()
        assert nearest.unique().numel() > 1
        if modality == 'depth':
            np.testing.assert_allclose(out['depth'], expected, rtol=1e-5, atol=1e-5)
            assert not np.allclose(out['depth'], unquantized, rtol=1e-5, atol=1e-5)   # the snap matters
        else:
            assert np.mean(out['segmentation'] == expected) >= 0.999


def test_half_precision_storage_round_trips(tmp_path):
    models = write_tiny_models(tmp_path)
    save_checkpoint(tmp_path / 'half.pt', models['depth'], half=True)
    loaded = load_checkpoint(tmp_path / 'half.pt')
    for (k, a), b in zip(models['depth'].state_dict().items(), loaded.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(b, a, rtol=1e-2, atol=1e-3, msg=k)


def test_a_file_without_the_vqvae_encoder_predicts_the_same_and_refuses_reconstruction(tmp_path, rng):
    """The shipped files leave the VQ-VAE's encoder out: inference is unchanged, the file is smaller, and what needs
    the encoder (the upper bound's reconstruction) says where to find it instead of running a random encoder."""
    models = write_tiny_models(tmp_path / 'full')
    ship = tmp_path / 'ship'
    for name, model in models.items():
        save_checkpoint(ship / f'{name}.pt', model, vqvae_encoder=False)
        assert (ship / f'{name}.pt').stat().st_size < (tmp_path / 'full' / f'{name}.pt').stat().st_size
    audio = rng.normal(size=(2, models['depth'].spec.array.num_channels,
                             models['depth'].spec.features.window_samples)).astype(np.float32)
    full = AudioToVision.load(tmp_path / 'full').predict_batch(audio)
    shipped = AudioToVision.load(ship).predict_batch(audio)
    for name in models:
        np.testing.assert_array_equal(shipped[name], full[name])
    loaded = load_checkpoint(ship / 'depth.pt')
    assert not loaded.has_vqvae_encoder and load_checkpoint(tmp_path / 'full' / 'depth.pt').has_vqvae_encoder
    images = torch.rand(1, loaded.spec.camera.height, loaded.spec.camera.width) + 1.0
    with pytest.raises(CheckpointError, match='no VQ-VAE encoder'):
        loaded.reconstruction(images, None)


def test_batched_equals_unbatched(tmp_path, rng):
    write_tiny_models(tmp_path)
    pipe = AudioToVision.load(tmp_path)
    audio = rng.normal(size=(3, pipe.num_channels, pipe.window_samples)).astype(np.float32)
    batch = pipe.predict_batch(audio)
    for i in range(3):
        single = pipe.predict(audio[i])
        np.testing.assert_allclose(batch['depth'][i], single['depth'], rtol=1e-4, atol=1e-4)
        assert (batch['segmentation'][i] == single['segmentation']).mean() > 0.99


def test_mismatched_checkpoint_names_both_values(tmp_path):
    write_tiny_models(tmp_path)
    with pytest.raises(CheckpointError, match=r'num_channels=4.*8 was requested'):
        load_checkpoint(tmp_path / 'depth.pt', expect={'num_channels': 8})
    with pytest.raises(CheckpointError, match=r"modality='depth'.*'segmentation' was requested"):
        load_checkpoint(tmp_path / 'depth.pt', expect={'modality': 'segmentation'})


def test_modalities_from_different_arrays_are_refused(tmp_path):
    write_tiny_models(tmp_path / 'a', num_mics=4)
    write_tiny_models(tmp_path / 'b', num_mics=6)
    (tmp_path / 'b' / 'depth.pt').replace(tmp_path / 'a' / 'depth.pt')
    with pytest.raises(CheckpointError, match='disagree on features|disagree on array') as err:
        AudioToVision.load(tmp_path / 'a')
    assert len(str(err.value)) < 400 and '\n' not in str(err.value), str(err.value)   # names the keys, shortened


def test_a_model_dir_that_is_a_file_is_named_as_such(tmp_path):
    (tmp_path / 'depth.pt').write_bytes(b'')
    with pytest.raises(CheckpointError, match='is a file, not a directory'):
        AudioToVision.load(tmp_path / 'depth.pt')


def test_missing_truncated_and_code_checkpoints_fail_clearly(tmp_path):
    with pytest.raises(CheckpointError, match='not found'):
        load_checkpoint(tmp_path / 'nope.pt')
    write_tiny_models(tmp_path)
    data = (tmp_path / 'depth.pt').read_bytes()
    (tmp_path / 'trunc.pt').write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match='not a loadable'):
        load_checkpoint(tmp_path / 'trunc.pt')
    # A pickle that would run code on load must be refused by weights_only=True.
    torch.save({'format': 'audio_vision.modality', 'evil': np.random.default_rng}, tmp_path / 'code.pt')
    with pytest.raises(CheckpointError, match='not a loadable'):
        load_checkpoint(tmp_path / 'code.pt')
    torch.save({'hello': 1}, tmp_path / 'other.pt')
    with pytest.raises(CheckpointError, match='format tag'):
        load_checkpoint(tmp_path / 'other.pt')


def test_wrong_audio_shape_is_refused(tmp_path):
    write_tiny_models(tmp_path)
    pipe = AudioToVision.load(tmp_path, modalities=['depth'])
    assert pipe.modalities == ('depth',)
    with pytest.raises(ValueError, match='audio must be'):
        pipe.predict(np.zeros((3, pipe.window_samples), np.float32))


def test_device_resolution():
    assert resolve_device('cpu').type == 'cpu'
    assert resolve_device('auto').type in ('cpu', 'cuda')
    with pytest.raises(ValueError):
        resolve_device('tpu')


def test_srp_normalisation_must_know_the_srp_maps(tmp_path):
    import dataclasses

    from audio_vision.core.features.config import FeatureConfig
    from helpers import tiny_spec
    fc = FeatureConfig(window_s=0.25, chirp_period_s=0.125, n_fft=256, n_mels=32, direction_maps=True, map_size=8,
                       map_margin=2, echo_range_max_m=6.3, echo_range_bins=4)
    spec = tiny_spec('depth', features=fc)
    assert spec.atnet.map_srp == fc.num_srp_maps
    # a checkpoint from before srp_norm records no map_srp (0): no normalisation reads it
    spec = dataclasses.replace(spec, atnet=dataclasses.replace(spec.atnet, map_srp=0))
    spec.check_consistent()
    off = dataclasses.replace(spec, atnet=dataclasses.replace(spec.atnet, srp_norm='center'))
    with pytest.raises(CheckpointError, match='map_srp'):
        off.check_consistent()
    dataclasses.replace(off, atnet=dataclasses.replace(off.atnet, map_srp=fc.num_srp_maps)).check_consistent()
