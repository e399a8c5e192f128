# SPDX-License-Identifier: Apache-2.0
"""Pinhole camera model in the REP 103 optical frame (z forward, x right, y down)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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
