# SPDX-License-Identifier: Apache-2.0
"""The perception node's configuration (pure: no ROS): its parameters checked, the stream it assembles
derived from them and the model, and the images one prediction publishes.

    modalities = check_parameters(params)                   # before the model is loaded (seconds)
    config = PerceptionConfig.from_parameters(params, model)
    assembler = config.assembler()

A parameter the node cannot start with raises :class:`ConfigError` (one line saying what to set); the ROS
node reports it as its start-up error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio_vision.core.inference.confidence import KINDS as CONFIDENCE_KINDS
from audio_vision.core.inference.confidence import mask_low_confidence
from audio_vision.core.stream.windowing import NS_PER_S, FrameSpec, WindowAssembler

#: the modalities a perception node can publish, in publishing order
MODALITIES = ('depth', 'segmentation')
#: per modality: the dtype and the Image encoding of its published image
IMAGE_FORMATS = {'depth': (np.float32, '32FC1'), 'segmentation': (np.uint8, 'mono8')}


class ConfigError(ValueError):
    """A parameter value the node cannot start with; the message names the parameter and what to set."""


def check_parameters(params: dict) -> tuple[str, ...]:
    """What can be checked before the model is loaded (the parameters' ranges are the descriptors'); returns
    the requested modalities."""
    modalities = tuple(params['modalities'])
    if not modalities or set(modalities) - set(MODALITIES) or len(set(modalities)) != len(modalities):
        raise ConfigError(f"parameter 'modalities': {list(modalities)} must be a non-empty subset of "
                          f'{list(MODALITIES)}')
    if params['min_chunk_samples'] > params['max_chunk_samples']:
        raise ConfigError(f"parameter 'min_chunk_samples' ({params['min_chunk_samples']}) exceeds "
                          f"'max_chunk_samples' ({params['max_chunk_samples']})")
    if params['confidence_kind'] not in CONFIDENCE_KINDS:
        raise ConfigError(f"parameter 'confidence_kind': {params['confidence_kind']!r} is not one of "
                          f'{list(CONFIDENCE_KINDS)}')
    return modalities


def wants_confidence(params: dict) -> bool:
    """Whether confidence may be computed at all: to publish it, or to mask depth with ``min_confidence``."""
    return bool(params['publish_confidence'] or params['min_confidence'] > 0)


@dataclass(frozen=True)
class PerceptionConfig:
    """The stream a perception node assembles and what it publishes, from its parameters and its model."""

    modalities: tuple[str, ...]      # published, in MODALITIES order
    device: str
    spec: FrameSpec                  # what a valid audio frame is (channels, rate, chunk sizes)
    window: int                      # analysis window, samples
    hop: int                         # samples between window starts
    tolerance_ns: int                # stamp tolerance
    frame_id: str | None             # frame_id the audio frames must carry; None = any
    align: str                       # window_alignment

    @classmethod
    def from_parameters(cls, params: dict, model) -> PerceptionConfig:
        """``model`` is the loaded model (an :class:`AudioToVision` or anything with its attributes);
        :class:`ConfigError` when ``window_s`` or ``hop_s`` do not fit it."""
        fs, window = int(model.sample_rate), int(model.window_samples)
        if params['window_s'] and round(params['window_s'] * fs) != window:
            raise ConfigError(f"parameter 'window_s' ({params['window_s']} s) differs from the model's window "
                              f'({window} samples = {window / fs:g} s); set 0 to use the model\'s')
        hop_s = params['hop_s'] or model.feature_config.hop_s
        hop = round(hop_s * fs)
        if hop < 1:
            raise ConfigError(f"parameter 'hop_s' ({hop_s} s) is shorter than one sample at {fs} Hz")
        return cls(modalities=tuple(m for m in MODALITIES if m in model.modalities), device=str(model.device),
                   spec=FrameSpec(model.num_channels, fs, params['min_chunk_samples'], params['max_chunk_samples']),
                   window=window, hop=hop, tolerance_ns=round(params['stamp_tolerance_s'] * NS_PER_S),
                   frame_id=None if params['accept_any_frame_id'] else params['array_frame_id'],
                   align=params['window_alignment'])

    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate

    @property
    def rate_hz(self) -> float:
        """Windows per second: the outputs' target rate."""
        return self.sample_rate / self.hop

    def assembler(self) -> WindowAssembler:
        """A new ring buffer that assembles this stream's analysis windows."""
        return WindowAssembler(self.spec.num_channels, self.sample_rate, self.window, self.hop,
                               self.spec.max_samples, tolerance_ns=self.tolerance_ns, frame_id=self.frame_id,
                               align=self.align)

    def chunk_note(self, samples: int) -> str | None:
        """The note logged once for a frame size that makes windows wait (it does not divide the hop and windows
        end on the hop grid); None when it does not."""
        if not self.hop % samples or self.align != 'hop':
            return None
        return (f'audio frames of {samples} samples do not divide the hop ({self.hop} samples): a window waits up '
                f'to {1e3 * samples / self.sample_rate:.0f} ms for the rest of the frame holding its last sample; '
                f'a chunk size that divides {self.hop} (or window_alignment: frame) avoids it')

    def describe(self, model_id: str) -> str:
        """The start-up log line."""
        fs = self.sample_rate
        return (f'model {model_id} on {self.device}: {self.spec.num_channels} ch @ {fs} Hz, '
                f'window {self.window / fs:g} s, hop {self.hop / fs:g} s, outputs {list(self.modalities)}')


def output_images(prediction: dict, confidence: dict, modalities, min_confidence: float) -> dict[str, np.ndarray]:
    """The image each modality publishes (modality -> array): the prediction in its image dtype; depth pixels
    whose confidence is below ``min_confidence`` NaN (when ``confidence`` holds depth's)."""
    images = {}
    for m in modalities:
        image = np.asarray(prediction[m], IMAGE_FORMATS[m][0])
        if m == 'depth' and 'depth' in confidence:
            image = mask_low_confidence(image, confidence['depth'], min_confidence)
        images[m] = image
    return images
