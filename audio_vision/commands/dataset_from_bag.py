# SPDX-License-Identifier: Apache-2.0
r"""Build a training dataset from a recorded rosbag2 bag: a robot's own audio + depth (+ segmentation).

Analysis windows are assembled from the audio frames exactly as the perception node assembles them,
paired with the depth / segmentation image whose stamp is nearest to the window's end (within
--tolerance), cropped to the model's aspect ratio and resized to its image size (nearest for labels,
NaN-aware median for depth; 16UC1 millimetres become metres). The result has the simulator's dataset
schema, so `train` and `evaluate` use it unchanged. The array (channels, sample rate, mic positions),
window, class table and split fractions come from --config (default config/simulation.yaml).
How to record such a bag on a robot: docs/RECORDING.md.

examples:
  python -m audio_vision dataset from-bag robot_bag --out data/robot \
      --depth-topic /camera/camera/aligned_depth_to_color/image_raw --segmentation-topic /segmenter/labels
  python -m audio_vision dataset from-bag audio_capture_bag --out data/robot --audio-topic /audio/audio_stamped \
      --depth-topic /camera/depth/image_rect_raw
  python -m audio_vision dataset from-bag sim_bag --out data/check --split test \
      --depth-topic /ground_truth/depth/image --segmentation-topic /ground_truth/segmentation/image
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = 'build a dataset from a recorded bag (audio frames + depth [+ segmentation] images)'


def _size(text: str) -> tuple[int, int]:
    try:
        parts = [int(v) for v in text.lower().split('x')]
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected N or WxH, got {text!r}') from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f'expected N or WxH, got {text!r}')
    return parts[0], parts[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    if not parser.description:      # the `dataset` command adds this subparser without a description
        parser.description = __doc__
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument('bag', type=Path, help='bag directory or .mcap / .db3 file')
    parser.add_argument('--out', type=Path, required=True, help='dataset directory to create')
    parser.add_argument('--audio-topic', default='/audio/frames',
                        help='audio: 32FC1 Image frames or audio_common_msgs/AudioDataStamped (default /audio/frames)')
    parser.add_argument('--audio-info-topic',
                        help='AudioInfo of an AudioDataStamped audio topic (default: its sibling audio_info)')
    parser.add_argument('--depth-topic', required=True, help='depth images (32FC1 m or 16UC1 mm)')
    parser.add_argument('--segmentation-topic',
                        help='segmentation images (mono8 class ids, pixel-aligned with depth); without it '
                             'labels are 255 (unknown): train with --modalities depth')
    parser.add_argument('--depth-info-topic', help='depth camera_info (default: the depth topic\'s sibling '
                                                   'camera_info)')
    parser.add_argument('--tolerance', type=float, default=0.05,
                        help='max |image stamp - window end| in seconds (default 0.05)')
    parser.add_argument('--hop', type=float, default=0.25, help='seconds between windows (default 0.25)')
    parser.add_argument('--window', type=float, help='analysis window in seconds (default: the config\'s)')
    parser.add_argument('--image-size', type=_size, default=(64, 64), metavar='N|WxH',
                        help="the model's image size (default 64)")
    parser.add_argument('--block', type=float, default=30.0,
                        help='seconds of audio per split block (default 30); blocks never share audio')
    parser.add_argument('--split', default='auto',
                        help="'auto' (blocks spread over train/val/test) or one split name for everything")
    parser.add_argument('--label-map', type=Path, help='YAML/JSON {source class id: our class id or name}')
    parser.add_argument('--hfov', type=float, help='depth camera horizontal FOV in degrees, when the bag '
                                                   'has no camera_info')
    parser.add_argument('--config', type=Path, help='simulation YAML describing the array '
                                                    '(default: config/simulation.yaml)')
    parser.add_argument('--quiet', action='store_true')


def _label_map(path: Path | None, class_table) -> dict[int, int] | None:
    from audio_vision.cli import UserError
    if path is None:
        return None
    import yaml
    try:
        data = yaml.safe_load(path.read_text(encoding='utf-8'))
    except FileNotFoundError:
        raise UserError(f'label map {path} not found') from None
    except yaml.YAMLError as exc:
        raise UserError(f'label map {path}: {" ".join(str(exc).split())}') from None
    if not isinstance(data, dict):
        raise UserError(f'label map {path}: expected a mapping {{source id: class id or name}}')
    out = {}
    for src, dst in data.items():
        try:
            src = int(src)
            dst = class_table.id_of(dst) if isinstance(dst, str) else int(dst)
        except (ValueError, KeyError, TypeError):
            raise UserError(f'label map {path}: bad entry {src!r}: {dst!r}') from None
        if not 0 <= src <= 255 or not 0 <= dst < len(class_table):
            raise UserError(f'label map {path}: entry {src}: {dst} out of range')
        out[src] = dst
    return out


def run(args) -> int:
    from audio_vision.cli import UserError
    from audio_vision.commands.record import load_sim_config
    from audio_vision.simulation.dataset import dataset_layout
    layout = dataset_layout(load_sim_config(args.config))      # the robot's array, window, classes, splits
    from audio_vision.bag import BagError
    from audio_vision.bag.convert import FromBagOptions, bag_to_dataset
    opts = FromBagOptions(
        audio_topic=args.audio_topic, audio_info_topic=args.audio_info_topic, depth_topic=args.depth_topic,
        segmentation_topic=args.segmentation_topic,
        depth_info_topic=args.depth_info_topic, tolerance_s=args.tolerance, window_s=args.window,
        hop_s=args.hop, image_size=args.image_size, block_s=args.block, split=args.split,
        label_map=_label_map(args.label_map, layout.class_table), hfov_deg=args.hfov)

    def say(text):
        if not args.quiet:
            print(f'from-bag: {text}', file=sys.stderr, flush=True)
    try:
        result = bag_to_dataset(args.bag, args.out, layout, opts, progress=say)
    except (BagError, ValueError) as exc:
        raise UserError(str(exc)) from None
    card = result.card
    missing = [s for s in ('train', 'val') if s not in result.splits]
    if args.split == 'auto' and missing:
        print(f'from-bag: note: no {" or ".join(missing)} samples: `train` needs both; record longer '
              f'(several minutes) or use a shorter --block', file=sys.stderr)
    print(f'{args.out}: {result.describe()}; content hash {card["content_hash"][:16]}')
    return 0
