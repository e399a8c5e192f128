# SPDX-License-Identifier: Apache-2.0
"""Pinhole camera model in the REP 103 optical frame (z forward, x right, y down)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# sensor_msgs/Image encoding -> (numpy dtype, channels), for the encodings this package reads/writes.
IMAGE_ENCODINGS = {
    '32FC1': (np.float32, 1),
    '64FC1': (np.float64, 1),
    'mono8': (np.uint8, 1),
    '8UC1': (np.uint8, 1),
    'mono16': (np.uint16, 1),
    '16UC1': (np.uint16, 1),
    'rgb8': (np.uint8, 3),
    'bgr8': (np.uint8, 3),
}


def image_pixels(arr: np.ndarray, encoding: str) -> np.ndarray:
    """Check an (H, W) or (H, W, 3) array against an image encoding; return it C-contiguous and
    little-endian, ready to be an Image's data (no row padding). Shared by live topics and bags."""
    dtype, channels = IMAGE_ENCODINGS[encoding]
    arr = np.asarray(arr)
    if arr.dtype != dtype:
        raise TypeError(f'{encoding} needs {np.dtype(dtype).name} data, got {arr.dtype}')
    if arr.ndim != (2 if channels == 1 else 3) or (channels > 1 and arr.shape[2] != channels):
        raise ValueError(f'{encoding} needs {"(H, W)" if channels == 1 else f"(H, W, {channels})"} data, '
                         f'got shape {arr.shape}')
    return np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder('<'))


@dataclass(frozen=True)
class PinholeCamera:
    width: int = 64
    height: int = 64
    hfov_deg: float = 90.0

    def __post_init__(self):
        if self.width < 8 or self.height < 8:
            raise ValueError(f'image must be at least 8x8, got {self.width}x{self.height}')
        if not 10.0 <= self.hfov_deg <= 170.0:
            raise ValueError(f'hfov_deg must be in [10, 170], got {self.hfov_deg}')

    @property
    def fx(self) -> float:
        return (self.width / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)

    @property
    def fy(self) -> float:
        return self.fx  # square pixels

    @property
    def cx(self) -> float:
        return (self.width - 1) / 2.0

    @property
    def cy(self) -> float:
        return (self.height - 1) / 2.0

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def pixel_rays(self) -> np.ndarray:
        """(H, W, 3) ray directions in the optical frame with z = 1 (so t along a ray is z-depth)."""
        u, v = np.meshgrid(np.arange(self.width, dtype=np.float64),
                           np.arange(self.height, dtype=np.float64))
        return np.stack([(u - self.cx) / self.fx, (v - self.cy) / self.fy, np.ones_like(u)], axis=-1)

    def to_dict(self) -> dict:
        return {'width': self.width, 'height': self.height, 'hfov_deg': self.hfov_deg}
