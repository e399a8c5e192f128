# SPDX-License-Identifier: Apache-2.0
"""Small builders shared by tests: a tiny, consistent model spec and randomly-initialised checkpoints."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import DEFAULT_CLASS_TABLE
from audio_vision.core.features.config import FeatureConfig
from audio_vision.core.model.atnet import ATNetConfig
from audio_vision.core.model.checkpoint import ArrayGeometry, ModalityModel, ModalitySpec, save_checkpoint
from audio_vision.core.model.encoding import make_encoding
from audio_vision.core.model.vqvae import VQVAEConfig


def load_script(name: str):
    """scripts/<name>.py imported as a module (the scripts are not a package), for tests of their functions."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / 'scripts' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'{name}_script', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_spec(modality: str, num_mics: int = 4, image: int = 32, latent: int = 8,
              features: FeatureConfig | None = None, mic_positions: np.ndarray | None = None) -> ModalitySpec:
    """``mic_positions`` (num_mics, 3): the array's geometry; default random within ~0.1 m."""
    fc = features or FeatureConfig(window_s=0.25, n_fft=256, n_mels=32)
    encoding = make_encoding(modality, len(DEFAULT_CLASS_TABLE))
    rng = np.random.default_rng(1)
    return ModalitySpec(
        modality=modality, features=fc,
        vqvae=VQVAEConfig(in_channels=encoding.in_channels, out_channels=encoding.out_channels, image_size=image,
                          latent_size=latent, hidden=32, res_hidden=16, res_blocks=1, codebook_size=16,
                          code_dim=8),
        atnet=ATNetConfig(in_channels=fc.num_feature_channels(num_mics), encoder_width=8, mlp_hidden=32,
                          start_size=4, start_channels=32, latent_size=latent, code_dim=8, **fc.map_layout(),
                          **fc.prior_layout()),
        camera=PinholeCamera(image, image, 90.0),
        array=ArrayGeometry(fc.sample_rate, rng.normal(scale=0.1, size=(num_mics, 3)) if mic_positions is None
                            else np.asarray(mic_positions, dtype=np.float64)))


def write_tiny_models(model_dir: Path, seed: int = 0, **kwargs) -> dict[str, ModalityModel]:
    torch.manual_seed(seed)
    models = {}
    for modality in ('depth', 'segmentation'):
        models[modality] = ModalityModel(tiny_spec(modality, **kwargs)).eval()
        save_checkpoint(Path(model_dir) / f'{modality}.pt', models[modality])
    return models
