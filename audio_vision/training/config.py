# SPDX-License-Identifier: Apache-2.0
"""Training configuration: one dataclass per stage, one for the run; YAML twin in config/train.yaml."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from audio_vision.core.features.config import FeatureConfig
from audio_vision.core.model.atnet import ATNetConfig
from audio_vision.core.model.baselines import EndToEndConfig
from audio_vision.core.model.configs import config_from_dict, config_to_dict
from audio_vision.core.model.encoding import MODALITIES, check_depth_target
from audio_vision.core.model.vqvae import VQVAEConfig
from audio_vision.training.objectives import ATNetObjectives

STAGES = ('vqvae', 'atnet', 'end_to_end', 'mean')
OPTIM_NAMES = ('vqvae_optim', 'atnet_optim', 'end_to_end_optim')


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_steps_per_epoch: int | None = None   # cap for smoke tests
    # Early stopping on the validation image metric (val_abs_rel for depth, val_miou for
    # segmentation): stop after `patience` epochs without improvement and keep the best
    # epoch's weights. None = run every epoch and keep the last.
    patience: int | None = None
    # Exponential moving average of the weights (Polyak averaging, per optimizer step): validation,
    # early stopping and the saved model use the averaged weights, which do not swing with the
    # high learning rate of the one-cycle schedule's middle. None = the raw weights.
    ema_decay: float | None = None

    def __post_init__(self):
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f'ema_decay must lie in (0, 1) or be null, got {self.ema_decay}')


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    modalities: tuple[str, ...] = ('depth', 'segmentation')
    stages: tuple[str, ...] = STAGES
    latent_size: int = 16
    features: FeatureConfig = field(default_factory=FeatureConfig)
    vqvae: VQVAEConfig = field(default_factory=VQVAEConfig)      # in/out channels set per modality
    atnet: ATNetConfig = field(default_factory=ATNetConfig)      # in_channels/latent set from the data
    atnet_objective: ATNetObjectives = field(default_factory=ATNetObjectives)   # per modality
    end_to_end: EndToEndConfig = field(default_factory=EndToEndConfig)
    vqvae_optim: OptimConfig = field(default_factory=lambda: OptimConfig(epochs=8, batch_size=32, lr=2e-3))
    atnet_optim: OptimConfig = field(default_factory=lambda: OptimConfig(epochs=20, batch_size=32, lr=1e-3))
    end_to_end_optim: OptimConfig = field(default_factory=lambda: OptimConfig(epochs=20, batch_size=32, lr=1e-3))
    # Per-modality changes to a stage's optimizer settings, e.g. {'depth': {'atnet_optim': {'epochs': 28}}}:
    # a modality whose networks keep improving may get a longer budget without retraining the other.
    optim_overrides: dict = field(default_factory=dict)
    # Per-modality changes to the AT-net's settings, e.g. {'depth': {'joined_convs': 2}}: a change measured to pay for
    # one modality's AT-net without retraining the other's.
    atnet_overrides: dict = field(default_factory=dict)
    # What the depth networks' images are (core/model/encoding.py DEPTH_TARGETS): absolute log-depth, or
    # 'layout_ratio', the departure from the layout prior's depth (the VQ-VAE's manifold is of that departure; the
    # end-to-end head adds the prior back). Needs features.layout_prior.
    depth_target: str = 'absolute'
    threads: int = 2

    def __post_init__(self):
        check_depth_target(self.depth_target, self.features.layout_prior)
        fields = {f.name for f in dataclasses.fields(OptimConfig)}
        for modality, stages in self.optim_overrides.items():
            bad = [s for s in stages if s not in OPTIM_NAMES]
            if bad:
                raise ValueError(f'optim_overrides.{modality}: unknown stage optimizer(s) {bad}; known: {OPTIM_NAMES}')
            for name, patch in stages.items():
                unknown = sorted(set(patch) - fields)
                if unknown:
                    raise ValueError(f'optim_overrides.{modality}.{name}: unknown setting(s) {unknown}')
                self.optim(name, modality)        # the overridden values checked as the stage's own are
        atnet_fields = {f.name for f in dataclasses.fields(ATNetConfig)}
        for modality, patch in self.atnet_overrides.items():
            if modality not in MODALITIES:
                raise ValueError(f'atnet_overrides: unknown modality {modality!r}; known: {MODALITIES}')
            unknown = sorted(set(patch) - atnet_fields)
            if unknown:
                raise ValueError(f'atnet_overrides.{modality}: unknown setting(s) {unknown}')
            self.atnet_of(modality)               # checked as the AT-net's own settings are

    def optim(self, name: str, modality: str) -> OptimConfig:
        """The optimizer settings of stage optimizer `name` ('atnet_optim', ...) for `modality`."""
        return dataclasses.replace(getattr(self, name), **self.optim_overrides.get(modality, {}).get(name, {}))

    def atnet_of(self, modality: str) -> ATNetConfig:
        """The AT-net settings of `modality` (atnet with its atnet_overrides)."""
        return dataclasses.replace(self.atnet, **self.atnet_overrides.get(modality, {}))

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> 'TrainConfig':
        d = dict(d)
        nested = {'features': FeatureConfig, 'vqvae': VQVAEConfig, 'atnet': ATNetConfig,
                  'end_to_end': EndToEndConfig, 'vqvae_optim': OptimConfig, 'atnet_optim': OptimConfig,
                  'end_to_end_optim': OptimConfig}
        for key, cls_ in nested.items():
            if key in d:
                d[key] = config_from_dict(cls_, d[key])
        if 'atnet_objective' in d:
            d['atnet_objective'] = ATNetObjectives.from_dict(d['atnet_objective'])
        cfg = config_from_dict(cls, d)
        bad = [s for s in cfg.stages if s not in STAGES]
        if bad:
            raise ValueError(f'unknown stage(s) {bad}; known: {STAGES}')
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> 'TrainConfig':
        with open(path) as f:
            return cls.from_dict(yaml.safe_load(f) or {})
