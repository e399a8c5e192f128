# SPDX-License-Identifier: Apache-2.0
"""A room layout rendered into the camera: depth prior (REP 118 z-depth, m), class prior and confidence."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audio_vision.core.camera import R_BODY_FROM_OPTICAL, PinholeCamera
from audio_vision.core.classes import ClassTable

from .layout import RoomLayout


@dataclass(frozen=True)
class LayoutPrior:
    depth: np.ndarray        # (H, W) float32, m along the optical axis; NaN where no plane is seen
    classes: np.ndarray      # (H, W) uint8 class ids (wall / floor / ceiling); 255 where no plane
    confidence: np.ndarray   # (H, W) float32 in [0, 1]: the confidence of the plane each pixel sees


def render_layout(layout: RoomLayout, camera: PinholeCamera, class_table: ClassTable) -> LayoutPrior:
    """Cast every pixel's ray (optical frame, z = 1, so the ray parameter is z-depth) against the planes."""
    rays = camera.pixel_rays() @ R_BODY_FROM_OPTICAL.T                    # (H, W, 3) in the array frame
    shape = rays.shape[:2]
    depth = np.full(shape, np.inf)
    classes = np.full(shape, 255, dtype=np.uint8)
    confidence = np.zeros(shape, dtype=np.float32)
    for plane in layout.planes:
        den = rays @ plane.n
        with np.errstate(divide='ignore', invalid='ignore'):
            t = np.where(den > 1e-9, plane.offset / den, np.inf)
        nearer = t < depth
        depth = np.where(nearer, t, depth)
        classes[nearer] = class_table.id_of(plane.label)
        confidence[nearer] = plane.confidence
    depth = np.where(np.isfinite(depth), depth, np.nan).astype(np.float32)
    return LayoutPrior(depth, classes, confidence)
