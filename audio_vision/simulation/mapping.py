# SPDX-License-Identifier: Apache-2.0
"""Occupancy mapping of a simulated drive, scored against the simulator's floor plan (pure: no rclpy).

    drive = TrajectoryDrive.sample(Simulator(), seed=3, duration_s=60.0)
    result = map_drive(drive, AudioToVision.load('models', backend='eager'))
    result['scores']['method']      # occupied F1 (0.2 m tolerance), free-space IoU, ...

Windows of the drive's audio (the model's window, every ``hop_s``) are predicted with confidence and fused at
the camera pose of the window's end (the stamp the perception node gives its outputs); the ground-truth depth
rendered at the same poses is fused into a second grid, the ceiling of the mapper itself. Each grid is a
:class:`MapVariant` (which depth, with or without its confidence / the predicted segmentation, which grid
configuration), so several mapper configurations are compared on the same predictions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from audio_vision.core.frames import body_pose
from audio_vision.mapping.occupancy import GridConfig, OccupancyGrid2D, iou, occupied_f1

from .scene import Body
from .trajectory import TrajectoryDrive


def grid_for_room(size, resolution: float = 0.05, margin: float = 0.5, **kwargs) -> GridConfig:
    """A grid covering the room's floor (room frame: a corner at the origin) with ``margin`` around it."""
    return GridConfig(resolution=resolution, width_m=float(size[0]) + 2 * margin, height_m=float(size[1]) + 2 * margin,
                      origin=(-margin, -margin), **kwargs)


def _inside_body(body: Body, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    cx, cy = body.center
    if body.shape == 'cylinder':
        return np.hypot(x - cx, y - cy) <= body.size[0]
    c, s = math.cos(body.yaw), math.sin(body.yaw)
    u, v = c * (x - cx) + s * (y - cy), -s * (x - cx) + c * (y - cy)
    return (np.abs(u) <= body.size[0] / 2) & (np.abs(v) <= body.size[1] / 2)


def floor_plan_masks(drive: TrajectoryDrive, config: GridConfig) -> tuple[np.ndarray, np.ndarray]:
    """(occupied, free) boolean grids of the floor plan: the walls' cells and the bodies' footprints are
    occupied (bodies reaching into the grid's height band), the rest of the room's floor is free."""
    grid = OccupancyGrid2D(config)
    xs, ys = grid.cell_centers()
    L, W = drive.scene.room.size[:2]
    occupied = np.zeros(config.shape, bool)
    step = config.resolution / 4
    along_x, along_y = np.arange(0.0, L + step, step), np.arange(0.0, W + step, step)
    outline = np.concatenate([np.stack([along_x, np.full_like(along_x, y)], 1) for y in (0.0, W)]
                             + [np.stack([np.full_like(along_y, x), along_y], 1) for x in (0.0, L)])
    row, col, inside = grid.cell_of(outline)
    occupied[row[inside], col[inside]] = True
    for body in (s.body for s in drive.scene.sources):
        if body.height >= config.z_min:
            occupied |= _inside_body(body, xs, ys)
    in_room = (xs > 0) & (xs < L) & (ys > 0) & (ys < W)
    return occupied, in_room & ~occupied


@dataclass(frozen=True)
class MapVariant:
    """One grid of a drive: the depth fused (``'method'``, ``'ground_truth'`` or the name of an extra depth of
    the frames, e.g. the sonar layout's: :attr:`DriveFrames.extra_depth`), weighted by the method's depth
    confidence or not, gated by the method's predicted segmentation or not (occupancy_node's
    ``use_confidence`` / ``use_segmentation``), and grid-parameter overrides (``GridConfig`` fields)."""

    depth: str = 'method'
    confidence: bool = True
    segmentation: bool = False
    overrides: tuple[tuple[str, object], ...] = ()

    def describe(self) -> dict:
        return {'depth': self.depth, 'confidence': self.confidence, 'segmentation': self.segmentation,
                **dict(self.overrides)}


#: the grids map_drive fuses by default
DEFAULT_VARIANTS = {'method': MapVariant(), 'method_no_confidence': MapVariant(confidence=False),
                    'ground_truth': MapVariant('ground_truth', confidence=False)}


@dataclass
class DriveFrames:
    """What a drive gives the mapper, predicted once and fused into any number of grids: per window (the
    model's window every ``hop_s``, stamped at its end) the camera pose and the method's depth, depth
    confidence and segmentation, plus the ground-truth depth at the same pose where asked for."""

    poses: np.ndarray                     # (N, 4, 4) camera pose (optical frame in the room frame)
    path: np.ndarray                      # (N, 4) rows of t, x, y, yaw of the robot
    depth: np.ndarray                     # (N, H, W) m
    confidence: np.ndarray                # (N, H, W) in [0, 1]
    segmentation: np.ndarray | None       # (N, H, W) class ids, None without a segmentation model
    gt_depth: np.ndarray | None           # (N, H, W) m, None unless rendered
    K: np.ndarray                         # (3, 3) camera intrinsics
    extra_depth: dict = field(default_factory=dict)   # name -> (N, H, W) m: other depth sources per window


def predict_drive(drive: TrajectoryDrive, model, audio: np.ndarray | None = None, hop_s: float = 0.25,
                  update_s: float = 0.25, batch: int = 16, progress=None, ground_truth: bool = True,
                  extra=None) -> DriveFrames:
    """Record ``drive`` (unless its ``audio`` is given) and predict every window once. ``extra``: a callable
    (window audio (C, N), camera pose 4 x 4 at the window's end, the window's end time in s) -> {name: depth
    image} called on every window in order (another depth source, e.g. the sonar layout, fused over the drive by
    the caller)."""
    sim = drive.sim
    fs = sim.sample_rate
    if audio is None:
        audio = drive.record(update_s)
    window = int(model.window_samples)
    hop = int(round(hop_s * fs))
    ends = np.arange(window, audio.shape[1] + 1, hop)
    poses, path, depth, conf, seg, gt, extras = [], [], [], [], [], [], {}
    this_drive = object()             # a drive id no other drive has: the model's fusion starts afresh
    for start in range(0, len(ends), batch):
        chunk = ends[start:start + batch]
        x = np.stack([audio[:, e - window:e] for e in chunk]).astype(np.float32)
        scenes = [drive.scene_at(e / fs) for e in chunk]
        # the array's pose at each window's end: the odometry a model that fuses the layout over the drive reads
        odometry = [body_pose(scene.camera_pose) for scene in scenes]
        images, confidence = model.predict_batch_with_confidence(x, poses=odometry, drives=[this_drive] * len(chunk))
        depth.extend(images['depth'])
        conf.extend(confidence['depth'])
        if 'segmentation' in images:
            seg.extend(images['segmentation'])
        for e, scene in zip(chunk, scenes):
            t = e / fs
            poses.append(scene.camera_pose)
            path.append((t, *scene.robot_position[:2], scene.robot_yaw))
            if extra is not None:
                for name, image in extra(audio[:, e - window:e], scene.camera_pose, t).items():
                    extras.setdefault(name, []).append(image)
            if ground_truth:
                gt.append(sim.render(scene).depth)
        if progress is not None:
            progress(min(start + batch, len(ends)), len(ends))
    return DriveFrames(np.array(poses), np.array(path), np.array(depth), np.array(conf),
                       np.array(seg) if seg else None, np.array(gt) if ground_truth else None, sim.camera.K,
                       {name: np.array(images) for name, images in extras.items()})


def fuse_drive(frames: DriveFrames, config: GridConfig, variant: MapVariant) -> OccupancyGrid2D:
    """One grid: every frame of ``frames`` fused as ``variant`` says, on ``config`` + the variant's overrides."""
    if variant.segmentation and frames.segmentation is None:
        raise ValueError('a variant with segmentation needs a model that predicts segmentation')
    if variant.depth == 'ground_truth' and frames.gt_depth is None:
        raise ValueError('a ground-truth variant needs frames predicted with ground_truth=True')
    if variant.depth not in ('method', 'ground_truth') and variant.depth not in frames.extra_depth:
        raise ValueError(f'variant depth {variant.depth!r}: the frames have no such depth '
                         f'(extra: {sorted(frames.extra_depth)})')
    grid = OccupancyGrid2D(replace(config, **dict(variant.overrides)))
    for i, T in enumerate(frames.poses):
        if variant.depth == 'ground_truth':
            grid.integrate(frames.gt_depth[i], frames.K, T)
        elif variant.depth != 'method':
            grid.integrate(frames.extra_depth[variant.depth][i], frames.K, T)
        else:
            grid.integrate(frames.depth[i], frames.K, T, frames.confidence[i] if variant.confidence else None,
                           frames.segmentation[i] if variant.segmentation else None)
    return grid


def map_drive(drive: TrajectoryDrive, model, audio: np.ndarray | None = None, hop_s: float = 0.25,
              update_s: float = 0.25, config: GridConfig | None = None, tolerance_m: float = 0.2,
              batch: int = 16, progress=None, variants: dict[str, MapVariant] | None = None, extra=None) -> dict:
    """Fuse each of ``variants`` (default: :data:`DEFAULT_VARIANTS`) along ``drive`` and score each grid
    against the floor plan. Returns grids, masks, poses and scores (by variant name). A variant with
    ``segmentation`` needs ``model`` to predict segmentation too."""
    variants = dict(DEFAULT_VARIANTS if variants is None else variants)
    if any(v.segmentation for v in variants.values()) and 'segmentation' not in model.modalities:
        raise ValueError('a variant with segmentation needs a model that predicts segmentation')
    config = config or grid_for_room(drive.scene.room.size)
    frames = predict_drive(drive, model, audio, hop_s, update_s, batch, progress,
                           ground_truth=any(v.depth == 'ground_truth' for v in variants.values()), extra=extra)
    grids = {name: fuse_drive(frames, config, v) for name, v in variants.items()}
    occupied, free = floor_plan_masks(drive, config)
    scores = {name: score_grid(g, occupied, free, tolerance_m) for name, g in grids.items()}
    return {'grids': grids, 'true_occupied': occupied, 'true_free': free, 'poses': frames.path,
            'scores': scores, 'windows': int(len(frames.poses)), 'config': config, 'tolerance_m': tolerance_m}


def score_grid(grid: OccupancyGrid2D, occupied: np.ndarray, free: np.ndarray, tolerance_m: float = 0.2) -> dict:
    """Occupied F1 (with tolerance), free-space IoU and the observed share of the room of one grid."""
    f1 = occupied_f1(grid.occupied_mask(), occupied, grid.config.resolution, tolerance_m)
    return {**{f'occupied_{k}': v for k, v in f1.items() if k != 'tolerance_m'},
            'free_iou': iou(grid.free_mask(), free),
            'observed_fraction_of_room': float((grid.observed & (occupied | free)).sum()
                                               / max((occupied | free).sum(), 1))}


SCORE_KEYS = ('occupied_f1', 'occupied_precision', 'occupied_recall', 'free_iou')


def mean_scores(scores: list[dict]) -> dict:
    """The mean over rooms of :func:`score_grid`'s headline scores."""
    return {k: float(np.mean([s[k] for s in scores])) for k in SCORE_KEYS}


def plot_maps(result: dict, path, title: str = '', labels=None) -> None:
    """PNG: floor plan, then the maps of ``labels`` ((grid name, panel label) pairs; default: ground-truth depth,
    method) present in ``result['grids']`` (with the path ``result['poses']``: rows of t, x, y, yaw)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cfg = result['config']
    extent = (cfg.origin[0], cfg.origin[0] + cfg.shape[1] * cfg.resolution,
              cfg.origin[1], cfg.origin[1] + cfg.shape[0] * cfg.resolution)
    plan = np.full(cfg.shape, 0.5)
    plan[result['true_free']] = 0.0
    plan[result['true_occupied']] = 1.0
    panels = [('floor plan', plan, None)]
    labels = labels or (('ground_truth', 'ground-truth depth'), ('method', 'method depth + confidence'))
    for name, label in ((n, lb) for n, lb in labels if n in result['grids']):
        g = result['grids'][name]
        img = np.where(g.observed, g.probabilities(), 0.5)
        s = result['scores'][name]
        panels.append((f"{label}\nF1 {s['occupied_f1']:.2f}, free IoU {s['free_iou']:.2f}", img, s))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2))
    for ax, (label, img, _) in zip(axes, panels):
        ax.imshow(img, origin='lower', extent=extent, cmap='gray_r', vmin=0, vmax=1, interpolation='nearest')
        p = result['poses']
        ax.plot(p[:, 1], p[:, 2], color='tab:orange', lw=1)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel('x (m)')
        ax.set_aspect('equal')
    axes[0].set_ylabel('y (m)')
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
