# SPDX-License-Identifier: Apache-2.0
"""Pure simulation layer (numpy, scipy, pyroomacoustics): scenes, ground truth, recordings, datasets.

Never imports rclpy or torch at import time. Public API:
`SimConfig`, `Simulator`, `Scene`, `GroundTruth`, `DatasetReader`, `generate_dataset`
(and `AudioVisionDataset`, which imports torch when first used).
"""
from .config import SimConfig
from .render import GroundTruth
from .scene import Scene
from .simulator import Simulator

__all__ = ['SimConfig', 'Simulator', 'Scene', 'GroundTruth', 'DatasetReader', 'generate_dataset',
           'AudioVisionDataset']


def __getattr__(name):
    # Lazy: the dataset module pulls in multiprocessing/tqdm, the torch wrapper pulls in torch.
    if name in ('DatasetReader', 'generate_dataset', 'AudioVisionDataset'):
        from . import dataset
        return getattr(dataset, name)
    raise AttributeError(name)
