# SPDX-License-Identifier: Apache-2.0
"""Bodies stand on the floor: their depth read off the measured floor where they meet it (pure numpy).

The depth networks draw the room well where the front-end measured it and the bodies poorly: on the test split a
body's pixels are predicted at 1.25 times their depth at the median, the room behind them (docs/RESULTS.md). The
segmentation network places the bodies better than the depth network ranges them, and the floor is measured to a
millimetre. A person, an appliance or an alarm stands on the floor, so in every image column the lowest pixel of a
body lies where the body meets the floor, and the body's front is about as far as the floor there: the z-depth of
the floor at that pixel's lower edge. :func:`stand_bodies_on_floor` brings each column's body pixels no farther than
that depth; it never pushes a pixel away (a body is never behind the room it stands in, and the depth network's
nearer guess may be a nearer body). Columns whose lowest body pixel meets no floor (at or above the horizon, or no
floor measured) keep their depth.
"""
from __future__ import annotations

import numpy as np

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import ROOM_CLASSES, ClassTable
from audio_vision.core.frames import R_BODY_FROM_OPTICAL


def floor_contact_depth(normal, offset: float, camera: PinholeCamera) -> np.ndarray:
    """(H, W) z-depth (m) of the floor along the ray through each pixel's lower edge (row v + 0.5), NaN where the
    ray meets no floor. ``normal`` (3,) unit, array (body) frame, pointing from the array to the floor; ``offset``
    the floor's distance from the array (m): the floor is ``normal . p = offset``."""
    rays = camera.pixel_rays()                                       # (H, W, 3), optical frame, z = 1
    rays[..., 1] += 0.5 / camera.fy                                  # the lower edge of each pixel
    # normal . ray in the body frame, elementwise: no thread pool woken between two windows of the inference engine
    optical = (R_BODY_FROM_OPTICAL * np.asarray(normal, dtype=np.float64)[:, None]).sum(axis=0)
    down = (rays * optical).sum(axis=-1)
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(down > 1e-6, offset / down, np.nan)


def stand_bodies_on_floor(depth: np.ndarray, segmentation: np.ndarray, contact: np.ndarray,
                          body_ids) -> np.ndarray:
    """(H, W) ``depth`` with every column's body pixels (``segmentation`` in ``body_ids``) no farther than
    ``contact`` (:func:`floor_contact_depth`) at the column's lowest body pixel; a new array."""
    body = np.isin(segmentation, np.asarray(list(body_ids)))
    out = np.array(depth, dtype=np.float64, copy=True)
    columns = np.flatnonzero(body.any(axis=0))
    if not len(columns):
        return out.astype(depth.dtype)
    lowest = body.shape[0] - 1 - np.argmax(body[::-1, columns], axis=0)       # the lowest body row per column
    reach = contact[lowest, columns]                                          # NaN: that pixel meets no floor
    for x, z in zip(columns, reach):
        if np.isfinite(z):
            rows = body[:, x]
            out[rows, x] = np.minimum(out[rows, x], z)
    return out.astype(depth.dtype)


class FloorContact:
    """:func:`stand_bodies_on_floor` for one camera and class table, given a window's measured
    :class:`~audio_vision.sonar.RoomLayout` (its floor; a layout without one leaves the depth as it is)."""

    def __init__(self, camera: PinholeCamera, class_table: ClassTable):
        self.camera = camera
        self.body_ids = [class_table.id_of(c) for c in class_table.names if c not in ROOM_CLASSES]

    def __call__(self, depth: np.ndarray, segmentation: np.ndarray, layout) -> np.ndarray:
        floors = layout.get('floor')          # the front-end's plane label, as its class name
        if not floors:
            return depth
        contact = floor_contact_depth(floors[0].normal, floors[0].offset, self.camera)
        return stand_bodies_on_floor(depth, segmentation, contact, self.body_ids)
