# SPDX-License-Identifier: Apache-2.0
"""Pure simulation layer (numpy, scipy, pyroomacoustics): scenes, ground truth, recordings, simulated datasets.

Never imports rclpy or torch. Public API: `SimConfig`, `Simulator`, `Scene`, `GroundTruth`, `generate_dataset`
(the dataset format and its reader: `audio_vision.dataset`). Each is imported when first used, so that
`audio_vision.simulation.config` (a robot's array description, e.g. for converting a bag) loads without
the acoustics (pyroomacoustics).
"""
from importlib import import_module

_WHERE = {'SimConfig': 'config', 'Simulator': 'simulator', 'Scene': 'scene', 'GroundTruth': 'render',
          'generate_dataset': 'dataset'}
__all__ = list(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        return getattr(import_module(f'{__name__}.{_WHERE[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(list(globals()) + __all__)
