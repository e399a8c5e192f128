#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
r"""Occupancy mapping from sound: a simulated drive through one room, mapped with the method's depth (+ its
confidence), the same gated by the method's predicted segmentation (occupancy_node ``use_segmentation``), without
confidence, with the ground-truth depth (the mapper's ceiling), and with the sonar layout's depth (no learning:
each window's own, and fused over the drive with the simulator's poses as odometry, ``LayoutFusion``), scored
against the floor plan; and the sonar's wall planes fused over the whole drive and rasterised straight into the
grid (``layout_planes``: :class:`~audio_vision.mapping.planes.PlaneMapper`; target: occupied F1 >= 0.8 and
free-space IoU >= 0.8).

Occupied-cell F1 (0.2 m tolerance) and free-space IoU per map; target: occupied F1 >= 0.6 with the method. All
depth maps fuse the same predictions with occupancy_node's default parameters (``--pixel-stride`` 2) except where
a variant says otherwise (``variants`` in the JSON); the plane map reads the same windows' layouts. Writes JSON +
PNG (floor plan | GT-depth map | method map without and with segmentation | the three sonar maps, with the path)
of the first seed:

    .venv/bin/python scripts/eval_mapping.py --models models --seeds 11 12 --duration 60 \
        --json docs/mapping.json --png docs/mapping.png
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audio_vision.core.frames import body_pose  # noqa: E402
from audio_vision.core.inference.pipeline import AudioToVision  # noqa: E402
from audio_vision.mapping.planes import PlaneMapConfig, PlaneMapper  # noqa: E402
from audio_vision.paths import source_commit  # noqa: E402
from audio_vision.simulation.config import SimConfig  # noqa: E402
from audio_vision.simulation.mapping import (MapVariant, grid_for_room, map_drive, mean_scores, plot_maps,  # noqa: E402
                                             score_grid)
from audio_vision.simulation.simulator import Simulator  # noqa: E402
from audio_vision.simulation.trajectory import TrajectoryDrive  # noqa: E402
from audio_vision.sonar import LayoutEstimator, SonarConfig, render_layout  # noqa: E402
from audio_vision.sonar.fusion import LayoutFusion  # noqa: E402

TARGET_F1 = 0.6
#: issue #22's bar for the plane map (mean of the rooms)
TARGET_PLANES = {'occupied_f1': 0.8, 'free_iou': 0.8}
#: the maps compared; 'method' is the mapper before segmentation gating (depth + confidence)
VARIANTS = {
    'method': MapVariant(),
    'method_segmentation': MapVariant(segmentation=True),
    'method_no_confidence': MapVariant(confidence=False),
    'ground_truth': MapVariant('ground_truth', confidence=False),
    'layout': MapVariant('layout', confidence=False),
    'layout_fused': MapVariant('layout_fused', confidence=False),
}
PANELS = (('ground_truth', 'ground-truth depth'), ('method', 'method depth + confidence'),
          ('method_segmentation', 'method depth + confidence + segmentation'), ('layout', 'sonar layout'),
          ('layout_fused', 'sonar layout fused over the drive'),
          ('layout_planes', 'sonar wall planes fused over the drive'))


def layout_depths(sim: Simulator, drive: TrajectoryDrive, window_s: float, planes: PlaneMapper):
    """The ``extra`` of one drive: each window's layout depth, and the layout fused with the drive's earlier
    windows at the window's pose (causal); each layout is also added to ``planes`` at the array's pose at the
    window's middle (PlaneMapper.add)."""
    estimator = LayoutEstimator(SonarConfig.from_sim_config(sim.cfg), sim.mic_positions)
    fusion = LayoutFusion()

    def extra(window, camera_pose, t):
        layout, pose = estimator.estimate(window), body_pose(camera_pose)
        fusion.add(layout, pose)
        planes.add(layout, body_pose(drive.scene_at(t - window_s / 2).camera_pose))
        return {'layout': render_layout(layout, sim.camera, sim.class_table).depth,
                'layout_fused': render_layout(fusion.layout(pose), sim.camera, sim.class_table).depth}
    return extra


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', type=Path, default=Path('models'), help='model directory (default: models)')
    parser.add_argument('--config', type=Path, default=Path('config/simulation.yaml'), help='simulation YAML')
    parser.add_argument('--seeds', type=int, nargs='+', default=[11], help='room seeds, one drive each')
    parser.add_argument('--duration', type=float, default=60.0, help='seconds of driving per room')
    parser.add_argument('--hop', type=float, default=0.25, help='seconds between predicted windows')
    parser.add_argument('--update', type=float, default=0.25, help='seconds between room-response updates')
    parser.add_argument('--resolution', type=float, default=0.05, help='map cell size, m')
    parser.add_argument('--pixel-stride', type=int, default=2, help="fuse every n-th pixel (occupancy_node's default)")
    parser.add_argument('--json', type=Path, default=Path('docs/mapping.json'))
    parser.add_argument('--png', type=Path, default=Path('docs/mapping.png'), help='map figure of the first seed')
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model = AudioToVision.load(args.models, modalities=('depth', 'segmentation'), backend='eager')
    sim = Simulator(SimConfig.from_yaml(args.config))
    rooms = []
    plane_config = PlaneMapConfig()
    for k, seed in enumerate(args.seeds):
        drive = TrajectoryDrive.sample(sim, seed, args.duration)
        planes = PlaneMapper(plane_config)
        result = map_drive(drive, model, hop_s=args.hop, update_s=args.update, variants=VARIANTS,
                           config=grid_for_room(drive.scene.room.size, args.resolution, pixel_stride=args.pixel_stride),
                           extra=layout_depths(sim, drive, model.window_samples / model.sample_rate, planes))
        grid = planes.grid(result['config'])
        result['grids']['layout_planes'] = grid
        result['scores']['layout_planes'] = score_grid(grid, result['true_occupied'], result['true_free'],
                                                       result['tolerance_m'])
        room = drive.scene.room
        rooms.append({'seed': seed, 'room_size_m': [round(v, 3) for v in room.size], 'rt60_s': room.rt60,
                      'bodies': len(drive.scene.sources), 'speed_m_s': drive.trajectory.speed,
                      'lap_s': drive.trajectory.lap_s, 'windows': result['windows'], 'scores': result['scores']})
        print(f"seed {seed}: room {room.size[0]:.1f} x {room.size[1]:.1f} m, " + ', '.join(
            f"{n} F1 {s['occupied_f1']:.3f} IoU {s['free_iou']:.3f}" for n, s in result['scores'].items()))
        if k == 0:
            args.png.parent.mkdir(parents=True, exist_ok=True)
            plot_maps(result, args.png, f'seed {seed}: {args.duration:g} s drive, room {room.size[0]:.1f} x '
                                        f'{room.size[1]:.1f} m, {len(drive.scene.sources)} bodies', PANELS)
    mean = {name: mean_scores([r['scores'][name] for r in rooms]) for name in rooms[0]['scores']}
    out = {'command': ' '.join([Path(sys.argv[0]).as_posix()] + (argv if argv is not None else sys.argv[1:])),
           'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
           'machine': f'{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, '
                      f'Python {platform.python_version()}, torch {torch.__version__}',
           'git': source_commit() or 'unknown', 'models': str(args.models), 'model_id': model.model_id,
           'config': str(args.config),
           'duration_s': args.duration, 'hop_s': args.hop, 'update_s': args.update,
           'resolution_m': args.resolution, 'pixel_stride': args.pixel_stride, 'tolerance_m': 0.2,
           'target_occupied_f1': TARGET_F1,
           'variants': {**{k: v.describe() for k, v in VARIANTS.items()},
                        'layout_planes': {'mapper': 'PlaneMapper', **asdict(plane_config)}},
           'rooms': rooms, 'mean': mean, 'target_met': bool(mean['method']['occupied_f1'] >= TARGET_F1),
           'target_met_with_segmentation': bool(mean['method_segmentation']['occupied_f1'] >= TARGET_F1),
           'target_layout_planes': TARGET_PLANES,
           'target_met_layout_planes': all(mean['layout_planes'][k] >= v for k, v in TARGET_PLANES.items()),
           'seconds': round(time.time() - t0, 1)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    print(f"mean: method F1 {mean['method']['occupied_f1']:.3f}, with segmentation "
          f"{mean['method_segmentation']['occupied_f1']:.3f}, GT depth F1 {mean['ground_truth']['occupied_f1']:.3f}"
          f"; plane map F1 {mean['layout_planes']['occupied_f1']:.3f} IoU {mean['layout_planes']['free_iou']:.3f}"
          f"; wrote {args.json} and {args.png} in {out['seconds']} s")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
