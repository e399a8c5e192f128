# SPDX-License-Identifier: Apache-2.0
"""Embedded demo: simulator_node -> perception_node composed in one process, over real DDS topics.

Runs the simulated microphone array in real time over several random scenes, with the perception
node loading the shipped model (or --model-dir), both configured from the same config/*.yaml files the
launch file uses. A recorder node subscribes to the outputs; at the end the demo writes

  <out>/summary.json   message counts, output rate, latency (window end stamp -> receipt), per-scene
                       depth (AbsRel, delta1) and segmentation (mIoU) against the simulator's ground
                       truth, the sonar layout's depth and its floor / wall errors against the room,
                       dropped windows, invalid frames
  <out>/mosaic.png     ground truth, layout and prediction, one row per scene, depth on a scale in metres
  <out>/map.png        with --mapping: floor plan | occupancy_node's map | the plane map of the sonar's walls

and prints a short table. No ROS install needed beyond the Python packages (rclpy, message packages).
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from audio_vision.cli import UserError
from audio_vision.paths import config_dir

HELP = 'run simulator + perception nodes in one process and report accuracy, rate and latency'


def add_arguments(parser):
    parser.add_argument('--out', default='demo_out', help='output directory (default: demo_out/)')
    parser.add_argument('--duration', type=float, default=30.0, help='seconds of real time to run (default 30)')
    parser.add_argument('--scenes', type=int, default=3, help='number of random scenes (default 3)')
    parser.add_argument('--seed', type=int, default=None,
                        help="seed of the first scene (default: config/simulator.yaml's)")
    parser.add_argument('--model-dir', default=None, help='model directory (default: the shipped models)')
    parser.add_argument('--device', default=None, help='inference device (default: config/perception.yaml)')
    parser.add_argument('--mapping', action='store_true',
                        help='drive the simulated robot through one room and map it (occupancy_node, and the plane '
                             'map of the sonar\'s walls): also writes <out>/map.png and a mapping section in '
                             'summary.json')
    parser.add_argument('--sim-config', default=None,
                        help='simulation YAML of the demo\'s simulator (default: config/simulation.yaml); its array '
                             'must be the one the model was trained for')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS domain id of the demo graph (default: $ROS_DOMAIN_ID or 0)')


def run(args) -> int:
    if args.duration <= 0 or args.scenes < 1:
        raise UserError('--duration must be > 0 and --scenes >= 1')
    from audio_vision.ros.lifecycle import StartupError
    check_model_array(args.model_dir, args.sim_config)
    try:
        result = run_demo(Path(args.out), args.duration, args.scenes, seed=args.seed, model_dir=args.model_dir,
                          device=args.device, domain_id=args.domain_id, mapping=args.mapping,
                          sim_config=args.sim_config)
    except StartupError as exc:
        raise UserError(str(exc)) from None
    print_table(result)
    if args.mapping and 'mapping' in result:
        m = result['mapping']
        print(f"map: occupied F1 {m['occupied_f1']:.3f} (0.2 m tolerance), free IoU {m['free_iou']:.3f}, "
              f"{m['fused_images']} images fused; wrote {Path(args.out) / 'map.png'}")
        if 'planes' in m:
            p = m['planes']
            print(f"plane map (the sonar's walls fused over the drive): occupied F1 {p['occupied_f1']:.3f}, "
                  f"free IoU {p['free_iou']:.3f}, {p['windows']} layouts fused")
    print(f'wrote {Path(args.out) / "summary.json"} and {Path(args.out) / "mosaic.png"}')
    return 0


def check_model_array(model_dir: str | None, sim_config: str | None) -> None:
    """Refuse, naming both, a simulator whose array has another channel count than the model's (the perception
    node would drop every frame as invalid and the demo would end with an empty mosaic); warn when only the
    mics' positions differ."""
    from audio_vision.core.model.checkpoint import CheckpointError, ModalitySpec, read_checkpoint
    from audio_vision.paths import default_model_dir
    from audio_vision.simulation.config import SimConfig
    from audio_vision.simulation.geometry import mic_positions
    directory = Path(model_dir) if model_dir else default_model_dir()
    path = next((directory / f'{m}.pt' for m in ('depth', 'segmentation') if (directory / f'{m}.pt').is_file()), None)
    if path is None:
        return                                  # the perception node says what is missing
    try:                                        # the stored config only: no network is built here
        model_mics = ModalitySpec.from_dict(read_checkpoint(path)['config']).array.mic_positions
    except (CheckpointError, KeyError, TypeError, ValueError):
        return                                  # the perception node says what is wrong with the file
    yaml = Path(sim_config) if sim_config else config_dir() / 'simulation.yaml'
    try:
        sim_mics = mic_positions(SimConfig.from_yaml(yaml).array if yaml.is_file() else SimConfig().array)
    except (OSError, ValueError) as exc:
        raise UserError(f'{yaml}: {exc}') from None
    if sim_mics.shape != model_mics.shape:
        raise UserError(f'the model in {directory} was trained for a {len(model_mics)}-mic array, the simulator '
                        f'config {yaml} has a {len(sim_mics)}-mic array: pass --sim-config with the simulation '
                        f'YAML the model was trained on')
    if not np.allclose(sim_mics, model_mics, atol=1e-6):
        # The frames are valid (same channel count), only the physics differs: say so, run anyway.
        print(f'warning: the simulator config {yaml} places its {len(sim_mics)} mics elsewhere than the array '
              f'the model in {directory} was trained for; its predictions will suffer', file=sys.stderr)


def run_demo(out: Path, duration: float, scenes: int, seed: int | None = None, model_dir: str | None = None,
             device: str | None = None, domain_id: int | None = None, log=print, mapping: bool = False,
             sim_config: str | None = None) -> dict:
    """Run the composed graph for ``duration`` s; write summary.json + mosaic.png (+ map.png with ``mapping``:
    one room, the robot driving a path, occupancy_node fusing the predicted depth, beside the plane map of the
    layouts the perception node measured); return the summary.
    ``sim_config``: a simulation YAML instead of the simulator's default."""
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    from audio_vision.ros import conversions as conv
    from audio_vision.ros.graph import Graph, TopicRecorder
    from audio_vision.ros.perception_node import PerceptionNode
    from audio_vision.ros.simulator_node import SimulatorNode

    topics = {
        'audio/frames': Image, 'depth/image': Image, 'depth/camera_info': CameraInfo, 'depth/points': PointCloud2,
        'segmentation/image': Image, 'segmentation/camera_info': CameraInfo, 'segmentation/color': Image,
        'ground_truth/depth/image': Image, 'ground_truth/segmentation/image': Image,
        'ground_truth/segmentation/color': Image, '/diagnostics': DiagnosticArray, 'layout/depth': Image,
    }
    kept = {'depth/image', 'segmentation/image', 'layout/depth'}
    scene_period = duration / scenes
    sim_params = {'scene_period_s': scene_period, 'segment_s': min(max(scene_period, 1.0), 600.0), 'rate': 1.0}
    if seed is not None:
        sim_params['seed'] = seed
    if sim_config:
        sim_params['sim_config'] = str(sim_config)
    if mapping:       # one room, driven through; the drive loops after whole laps
        scenes, scene_period = 1, duration
        sim_params.update(trajectory=True, scene_period_s=0.0, segment_s=min(max(duration, 1.0), 600.0))
    perception_params = {k: v for k, v in (('model_dir', model_dir), ('device', device)) if v}
    # the simulator's chirp (its sim_config, or its default) must be the one the model matched-filters
    perception_params['sim_config'] = str(sim_config) if sim_config else str(config_dir() / 'simulation.yaml')
    perception_params['publish_layout'] = True      # the room measured from the chirp, beside the prediction
    if mapping:
        perception_params['publish_confidence'] = True     # occupancy_node weighs depth by it (use_confidence)
    # the room fused over the drive reads the simulator's odometry while it drives; holding still it has none
    perception_params['pose_source'] = 'odom' if mapping else 'none'

    with Graph(domain_id=domain_id) as graph:
        perception = graph.add(PerceptionNode, perception_params)   # first: a bad model fails before anything runs
        sim = graph.add(SimulatorNode, sim_params)
        rec = graph.add(TopicRecorder, topics=topics, name='demo_recorder', depth=100, keep=kept.__contains__)
        mapper = None
        if mapping:
            from audio_vision.ros.occupancy_node import OccupancyNode
            L, W = sim.current.gt.scene.room.size[:2]
            mapper = graph.add(OccupancyNode, {'pose_source': 'odom', 'origin_x': -0.5, 'origin_y': -0.5,
                                               'width_m': L + 1.0, 'height_m': W + 1.0})
        log(f'demo: {scenes} scene(s) x {scene_period:.1f} s, model {perception.model.model_id} '
            f'on {perception.config.device}; running {duration:.0f} s ...')
        graph.start()
        t_end = time.monotonic() + duration
        while time.monotonic() < t_end:
            time.sleep(min(5.0, max(0.0, t_end - time.monotonic())))
            s = perception.stats()
            log(f'  {duration - max(0.0, t_end - time.monotonic()):5.1f} s: {s["frames"]} frames, '
                f'{s["outputs"]} predictions, scene {len(sim.scene_log)}/{scenes}')
        stats = perception.stats()
        scene_log = list(sim.scene_log)
        window_ns = perception.model.window_samples * 1_000_000_000 // perception.model.sample_rate
        class_table = perception.model.class_table
        model_id, device_name = perception.model.model_id, perception.config.device
        counts = {t: rec.count(t) for t in topics}
        depth_msgs, seg_msgs = rec.get('depth/image'), rec.get('segmentation/image')
        layouts = {stamp: layout for stamp, layout in list(perception.layout.recent)}
        layout_depth = {conv.time_to_ns(m.header.stamp): conv.image_to_array(m) for _, m in rec.get('layout/depth')}

    summary, mosaic_rows = evaluate(depth_msgs, seg_msgs, scene_log, window_ns, class_table,
                                    {t: (layout_depth[t], layouts.get(t)) for t in layout_depth})
    if mapper is not None:
        summary['mapping'] = write_map(out, mapper, scene_log[0], layouts, window_ns)
    summary = {
        'duration_s': duration, 'messages': counts, **summary,
        'inference_ms': _rounded(stats['inference_ms']), 'node_latency_ms': _rounded(stats['latency_ms']),
        'dropped_windows': stats['dropped_windows'], 'windows': stats['windows'],
        'invalid_frames': sum(stats['invalid_frames'].values()),
        'invalid_frames_by_reason': stats['invalid_frames'], 'stream_resets': stats['stream_resets'],
        'model_id': model_id, 'device': device_name,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / 'summary.json').write_text(json.dumps(summary, indent=2, allow_nan=False, default=_json_safe) + '\n')
    write_mosaic(out / 'mosaic.png', mosaic_rows, class_table)
    return summary


def _rounded(d: dict) -> dict:
    return {k: (None if v is None or not math.isfinite(v) else round(float(v), 2)) for k, v in d.items()}


def _json_safe(v):
    return None if isinstance(v, float) and not math.isfinite(v) else str(v)


def _fit(gt: np.ndarray, shape) -> np.ndarray:
    """Nearest-neighbour resample of a ground-truth image to the prediction's size (if they differ)."""
    if gt.shape == tuple(shape):
        return gt
    rows = (np.arange(shape[0]) * gt.shape[0] // shape[0])
    cols = (np.arange(shape[1]) * gt.shape[1] // shape[1])
    return gt[rows][:, cols]


def evaluate(depth_msgs, seg_msgs, scene_log, window_ns: int, class_table, layouts=None):
    """Rate/latency from the received outputs; metrics of every prediction whose whole analysis window
    lies inside one scene, averaged per scene; the same for the sonar layout (``layouts``: {stamp ns: (its
    depth image, its RoomLayout or None)}): its depth on the pixels it has a prior for, and its planes' errors
    against the scene's room. Returns (summary part, mosaic rows)."""
    from audio_vision.core.eval.metrics import depth_metrics, segmentation_metrics
    from audio_vision.ros import conversions as conv
    layouts = layouts or {}

    received = np.array([t for t, _ in depth_msgs or seg_msgs], dtype=np.int64)
    stamps = np.array([conv.time_to_ns(m.header.stamp) for _, m in depth_msgs or seg_msgs], dtype=np.int64)
    rate = float((len(received) - 1) / ((received[-1] - received[0]) / 1e9)) if len(received) > 1 else 0.0
    latency = (received - stamps) / 1e6
    lat = {'p50': None, 'p95': None}
    if len(latency):
        lat = {'p50': round(float(np.percentile(latency, 50)), 2), 'p95': round(float(np.percentile(latency, 95)), 2)}

    preds = {}
    for key, msgs in (('depth', depth_msgs), ('segmentation', seg_msgs)):
        for _, m in msgs:
            preds.setdefault(conv.time_to_ns(m.header.stamp), {})[key] = conv.image_to_array(m)
    scenes, rows = [], []
    for i, record in enumerate(scene_log):
        start = record.start_ns
        stop = scene_log[i + 1].start_ns if i + 1 < len(scene_log) else None
        inside = sorted(t for t in preds if t - window_ns >= start and (stop is None or t <= stop))
        gt = _ground_truth(record, inside[-1] if inside else start)
        gt_depth = np.asarray(gt.depth, np.float32)
        gt_seg = np.asarray(gt.segmentation, np.uint8)
        d_rows, s_rows = [], []
        for t in inside:
            p = preds[t]
            if hasattr(record.gt, 'render_at'):        # a drive: the ground truth at the prediction's pose
                gt = _ground_truth(record, t)
                gt_depth, gt_seg = np.asarray(gt.depth, np.float32), np.asarray(gt.segmentation, np.uint8)
            if 'depth' in p:
                d_rows.append(depth_metrics(p['depth'], _fit(gt_depth, p['depth'].shape)))
            if 'segmentation' in p:
                s_rows.append(segmentation_metrics(p['segmentation'], _fit(gt_seg, p['segmentation'].shape),
                                                   len(class_table)))
        entry = {'seed': int(record.seed), 'windows': len(inside)}
        if d_rows:
            entry['depth'] = {k: _mean(r[k] for r in d_rows) for k in ('abs_rel', 'rmse', 'delta1')}
        if s_rows:
            entry['segmentation'] = {k: _mean(r[k] for r in s_rows) for k in ('miou', 'pixel_acc')}
        measured = sorted(t for t in layouts if t - window_ns >= start and (stop is None or t <= stop))
        if measured:
            entry['layout'] = _layout_entry(record, [(t, *layouts[t]) for t in measured])
        scenes.append(entry)
        last = preds[inside[-1]] if inside else {}
        # the layout measured nearest the last prediction (the same window, unless its queue dropped it)
        near = min(measured, key=lambda t: abs(t - (inside[-1] if inside else t))) if measured else None
        last_layout = layouts[near][0] if near is not None else None
        rows.append((record.seed, gt_depth, last_layout, last.get('depth'), gt_seg, last.get('segmentation')))
    return {'output_rate_hz': round(rate, 3), 'latency_ms': lat, 'scenes': scenes}, rows


def _layout_entry(record, measured) -> dict:
    """A scene's layout figures over its measured windows [(stamp, depth image, RoomLayout or None)]: depth
    AbsRel / delta1 and the share of pixels with a prior; floor, ceiling and wall distance errors (m, median
    over what was measured) and the share of the room's walls measured."""
    from audio_vision.core.eval.metrics import depth_metrics
    from audio_vision.sonar import layout_errors, summarize_errors, true_layout
    d_rows, errors = [], []
    for t, depth, layout in measured:
        gt = _ground_truth(record, t)
        d_rows.append(depth_metrics(depth, _fit(np.asarray(gt.depth, np.float32), depth.shape)))
        if layout is not None and record.room_size is not None:
            errors.append(layout_errors(layout, true_layout(gt.camera_pose, record.room_size)))
    entry = {'windows': len(measured), **{k: _mean(r[k] for r in d_rows) for k in ('abs_rel', 'delta1')},
             'prior_fraction': _mean(r['valid_fraction'] for r in d_rows)}
    if errors:
        s = summarize_errors(errors)
        entry.update(floor_m=s['floor_m']['median'], ceiling_m=s['ceiling_m']['median'],
                     wall_m=s['wall_distance_m']['median'],
                     walls_measured=None if s['wall_distance_m']['failed'] is None
                     else round(1.0 - s['wall_distance_m']['failed'], 4))
        entry.update(nearest_wall(errors))
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in entry.items()}


def nearest_wall(errors: list[dict]) -> dict:
    """Over windows' :func:`~audio_vision.sonar.layout_errors`: the room's nearest wall, median distance (m), and the
    share of windows that measured it. It fills most of the image: when the sonar does not hear it (an absorbing
    wall returns no echo), the prior is open on that side and the networks guess the depth there."""
    nearest = [min(e['walls'], key=lambda w: w['offset']) for e in errors if e['walls']]
    if not nearest:
        return {}
    return {'nearest_wall_m': float(np.median([w['offset'] for w in nearest])),
            'nearest_wall_measured': float(np.mean([w['distance'] is not None for w in nearest]))}


def _ground_truth(record, stamp_ns: int):
    """The ground truth of a scene record at ``stamp_ns``: the scene's, or for a drive the pose's."""
    if not hasattr(record.gt, 'render_at'):
        return record.gt
    return record.gt.render_at(((stamp_ns - record.start_ns) / 1e9) % record.gt.duration_s)


def write_map(out: Path, mapper, record, layouts=None, window_ns: int = 0) -> dict:
    """<out>/map.png (floor plan | the occupancy node's map | with ``layouts``, the plane map of the sonar's walls;
    with the path) and their scores vs the floor plan (the plane map's under ``planes``)."""
    from audio_vision.simulation.mapping import floor_plan_masks, plot_maps, score_grid
    drive = record.gt
    config = mapper.grid.config
    occupied, free = floor_plan_masks(drive, config)
    grids = {'method': mapper.grid}
    if layouts:
        grids['layout_planes'], windows = plane_map(record, layouts, window_ns, config)
    scores = {name: score_grid(g, occupied, free) for name, g in grids.items()}
    t = np.arange(0.0, drive.duration_s, 0.25)
    poses = np.array([(ti, p.x, p.y, p.yaw) for ti, p in zip(t, drive.trajectory.poses(t))])
    out.mkdir(parents=True, exist_ok=True)
    plot_maps({'config': config, 'true_occupied': occupied, 'true_free': free, 'poses': poses,
               'grids': grids, 'scores': scores}, out / 'map.png',
              f'the demo drive (room {drive.scene.room.size[0]:.1f} x {drive.scene.room.size[1]:.1f} m)',
              (('method', 'occupancy_node: method depth + confidence'),
               ('layout_planes', 'sonar wall planes fused over the drive')))
    stats = mapper.stats()
    result = {**_rounded_scores(scores['method']), 'fused_images': stats['fused'], 'rejected_images': stats['rejected']}
    if 'layout_planes' in scores:
        result['planes'] = {**_rounded_scores(scores['layout_planes']), 'windows': windows}
    return result


def plane_map(record, layouts: dict, window_ns: int, config):
    """(grid, windows): the sonar's wall planes of a drive's ``layouts`` ({window end stamp ns: RoomLayout}) fused
    at the array's pose at each window's middle (the simulator's odometry; PlaneMapper.add says why the middle),
    rasterised on ``config``'s grid (audio_vision.mapping.planes)."""
    from audio_vision.core.frames import body_pose
    from audio_vision.mapping.planes import PlaneMapper
    mapper = PlaneMapper()
    for stamp in sorted(t for t in layouts if t - window_ns >= record.start_ns):
        t = ((stamp - window_ns // 2 - record.start_ns) / 1e9) % record.gt.duration_s
        mapper.add(layouts[stamp], body_pose(record.gt.scene_at(t).camera_pose))
    return mapper.grid(config), mapper.windows


def _rounded_scores(scores: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return round(float(np.mean(values)), 4) if values else None


def write_mosaic(path: Path, rows, class_table) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    titles = ('GT depth', 'layout depth (sonar; grey: no prior)', 'predicted depth', 'GT segmentation',
              'predicted segmentation')
    depth_cmap = matplotlib.colormaps['viridis'].with_extremes(bad='0.8')
    fig, axes = plt.subplots(max(1, len(rows)), 5, figsize=(12.5, 2.6 * max(1, len(rows))), squeeze=False)
    for r, (seed, gt_d, lay_d, pr_d, gt_s, pr_s) in enumerate(rows):
        vmax = float(np.nanmax(gt_d)) if np.isfinite(gt_d).any() else 1.0
        images = (gt_d, lay_d, pr_d, class_table.colorize(gt_s), None if pr_s is None else class_table.colorize(pr_s))
        shown = None
        for c, img in enumerate(images):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(f'seed {seed}', fontsize=8)
            if img is None:
                ax.text(0.5, 0.5, 'no prediction', ha='center', va='center', transform=ax.transAxes)
            elif c < 3:
                shown = ax.imshow(np.ma.masked_invalid(img), cmap=depth_cmap, vmin=0.0, vmax=vmax)
            else:
                ax.imshow(img)
        if shown is not None:            # one colour scale per row, in metres
            fig.colorbar(shown, ax=axes[r, 2], fraction=0.046, pad=0.02).set_label('depth (m)', fontsize=8)
    handles = [matplotlib.patches.Patch(color=np.array(c.color) / 255, label=c.name) for c in class_table.classes]
    fig.legend(handles=handles, loc='lower center', ncol=len(handles), fontsize=8, frameon=False)
    fig.subplots_adjust(bottom=0.08 / max(1, len(rows)) + 0.02)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_table(s: dict, file=None) -> None:
    file = file or sys.stdout   # resolved at call time: sys.stdout may have been replaced since import

    def f(v, fmt='{:.3f}'):
        return '-' if v is None else fmt.format(v)
    print(f"{'scene':>5}  {'seed':>8}  {'windows':>7}  {'AbsRel':>7}  {'delta1':>7}  {'mIoU':>6}  |  layout: "
          f"{'AbsRel':>7}  {'delta1':>7}  {'prior':>6}  {'floor m':>7}  {'walls m':>7}  {'walls':>6}", file=file)
    for i, sc in enumerate(s['scenes']):
        d, g, lay = sc.get('depth', {}), sc.get('segmentation', {}), sc.get('layout', {})
        print(f"{i:>5}  {sc['seed']:>8}  {sc['windows']:>7}  {f(d.get('abs_rel')):>7}  {f(d.get('delta1')):>7}  "
              f"{f(g.get('miou')):>6}  |          {f(lay.get('abs_rel')):>7}  {f(lay.get('delta1')):>7}  "
              f"{f(lay.get('prior_fraction'), '{:.0%}'):>6}  {f(lay.get('floor_m')):>7}  {f(lay.get('wall_m')):>7}  "
              f"{f(lay.get('walls_measured'), '{:.0%}'):>6}", file=file)
    for i, sc in enumerate(s['scenes']):
        lay = sc.get('layout', {})
        if lay.get('nearest_wall_measured') is not None and lay['nearest_wall_measured'] < 0.5:
            print(f"scene {i}: the nearest wall ({lay['nearest_wall_m']:.2f} m) was heard in "
                  f"{lay['nearest_wall_measured']:.0%} of the windows: an absorbing wall returns no echo above the "
                  "clutter, the layout is open on that side and the depth there is the networks' guess "
                  "(docs/SONAR.md, 'Assumptions and limits')", file=file)
    lat = s['latency_ms']
    print(f"output rate {s['output_rate_hz']:.2f} Hz | latency p50 {f(lat['p50'], '{:.0f}')} ms, "
          f"p95 {f(lat['p95'], '{:.0f}')} ms (window end -> received) | inference p50 "
          f"{f(s['inference_ms']['p50'], '{:.0f}')} ms | dropped windows {s['dropped_windows']} | "
          f"invalid frames {s['invalid_frames']}", file=file)
