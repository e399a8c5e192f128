# SPDX-License-Identifier: Apache-2.0
"""A robot's recording -> the training dataset (the schema the simulator writes, docs/SIMULATOR.md).

1. **Audio windows.** The audio frames are validated and pushed, in the order they were received, through
   the perception node's own ring buffer (:class:`audio_vision.core.windowing.WindowAssembler`): the
   windows (``window_s`` every ``hop_s``, stream restarts at stamp gaps) are exactly those the node would
   run the model on.
2. **Alignment.** Each window is paired with the depth image (and segmentation image) whose header stamp
   is nearest to the window's *end* (the instant the node stamps its output with), if within
   ``tolerance_s``; windows without a partner are dropped.
3. **Images.** Each image is centre-cropped to the output aspect ratio and resized to the model's image
   size: segmentation by nearest neighbour, depth by the median of the valid source pixels of each output
   cell (NaN when fewer than half are valid), so depth edges never blend foreground into background.
   ``16UC1`` depth in millimetres (RealSense, Azure Kinect, OAK) becomes metres, 0 -> NaN. The camera
   matrix K is cropped and scaled the same way (from the depth camera_info).
4. **Splits.** Time is cut into blocks of ``block_s`` of continuous audio (a stream restart also starts a
   block); a block plays the role of a simulator room: ``room_id`` = block, the split comes from the
   simulator's own room-to-split rule, and windows that would straddle two blocks are dropped, so no audio
   is shared between splits. ``split='test'`` (etc.) puts everything in one split instead.
5. **Writing.** Arrays, ``meta.json``, ``shard.json`` and ``card.json`` are written with the simulator
   dataset module's schema, hashes and card writer, so ``train``/``evaluate`` read the result unchanged.
   Unknowns are explicit: ``camera_pose`` and ``room_size`` are NaN, ``seed`` is -1.

Everything but the processed outputs is streamed: memory stays small for long recordings.
"""
from __future__ import annotations

import dataclasses
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from audio_vision.bag import messages as m
from audio_vision.bag.errors import BagError
from audio_vision.bag.reader import BagMessage, BagReader
from audio_vision.bag.schema import IMAGE, qualify
from audio_vision.core.classes import IGNORE_LABEL
from audio_vision.core.windowing import NS_PER_S, FrameError, FrameSpec, WindowAssembler

CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'


@dataclass
class FromBagOptions:
    audio_topic: str = '/audio/frames'
    depth_topic: str = '/camera/depth/image_rect_raw'
    segmentation_topic: str | None = None
    depth_info_topic: str | None = None       # None = the depth topic's sibling camera_info
    tolerance_s: float = 0.05                 # |image stamp - window end| allowed
    window_s: float | None = None             # None = the config's recording.window_s
    hop_s: float = 0.25
    image_size: tuple[int, int] = (64, 64)    # (width, height) of the model's images
    block_s: float = 30.0
    split: str = 'auto'                       # auto | one of the config's split names
    stream_tolerance_s: float = 0.002         # stamp continuity of audio frames (perception node default)
    label_map: dict[int, int] | None = None   # source class id -> our class id (others: error)
    hfov_deg: float | None = None             # when the bag has no camera_info for the depth topic
    max_chunk_samples: int = 1 << 20


@dataclass
class FromBagResult:
    card: dict
    windows: int = 0              # analysis windows assembled from the audio
    samples: int = 0              # windows written (had a depth [and segmentation] image in tolerance)
    unmatched: int = 0            # windows without an image partner
    straddling: int = 0           # windows dropped at block boundaries
    invalid_frames: dict[str, int] = field(default_factory=dict)
    stream_resets: int = 0
    splits: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        bad = sum(self.invalid_frames.values())
        return (f'{self.samples} samples from {self.windows} windows ({self.unmatched} without an image in '
                f'tolerance, {self.straddling} straddling blocks); splits '
                + ', '.join(f'{k} {v}' for k, v in self.splits.items())
                + f'; {self.stream_resets} stream restarts' + (f', {bad} invalid frames' if bad else ''))


# ---------------------------------------------------------------- stamps without decoding

def header_stamp_ns(data: bytes) -> int:
    """Header stamp of a CDR message that starts with a std_msgs/Header (no full decode)."""
    if len(data) < 12:
        raise ValueError('message too short for a header')
    order = 'little' if data[1] & 1 else 'big'
    sec = int.from_bytes(data[4:8], order, signed=True)
    nsec = int.from_bytes(data[8:12], order, signed=False)
    return sec * NS_PER_S + nsec


# ---------------------------------------------------------------- image geometry

def crop_box(width: int, height: int, out_w: int, out_h: int) -> tuple[int, int, int, int]:
    """Centred crop (x0, y0, x1, y1) of a width x height image to the aspect ratio out_w : out_h."""
    if width * out_h > height * out_w:            # too wide
        cw = max(1, int(round(height * out_w / out_h)))
        x0 = (width - cw) // 2
        return x0, 0, x0 + cw, height
    ch = max(1, int(round(width * out_h / out_w)))
    y0 = (height - ch) // 2
    return 0, y0, width, y0 + ch


def crop_resize_K(K: np.ndarray, box, out_w: int, out_h: int) -> np.ndarray:
    """Camera matrix after cropping to ``box`` and resizing to out_w x out_h (pixel-centre convention)."""
    x0, y0, x1, y1 = box
    sx, sy = out_w / (x1 - x0), out_h / (y1 - y0)
    K = np.asarray(K, np.float64).reshape(3, 3)
    out = np.eye(3)
    out[0, 0], out[1, 1] = K[0, 0] * sx, K[1, 1] * sy
    out[0, 2] = (K[0, 2] - x0 + 0.5) * sx - 0.5
    out[1, 2] = (K[1, 2] - y0 + 0.5) * sy - 0.5
    return out


def _cells(start: int, stop: int, n_out: int) -> np.ndarray:
    """(n_out, max cell) source indices of each output cell along one axis; -1 pads short cells."""
    n_in = stop - start
    lo = np.floor(np.arange(n_out) * n_in / n_out).astype(int)
    hi = np.maximum(np.floor(np.arange(1, n_out + 1) * n_in / n_out).astype(int), lo + 1)
    width = int((hi - lo).max())
    idx = lo[:, None] + np.arange(width)[None]
    return np.where(idx < hi[:, None], idx + start, -1)


def resize_labels(labels: np.ndarray, box, out_w: int, out_h: int) -> np.ndarray:
    """Nearest-neighbour (cell centre) resample of the ``box`` crop of a label image."""
    x0, y0, x1, y1 = box
    rows = y0 + np.floor((np.arange(out_h) + 0.5) * (y1 - y0) / out_h).astype(int)
    cols = x0 + np.floor((np.arange(out_w) + 0.5) * (x1 - x0) / out_w).astype(int)
    return np.ascontiguousarray(labels[rows][:, cols])


def resize_depth(depth: np.ndarray, box, out_w: int, out_h: int, min_valid: float = 0.5) -> np.ndarray:
    """Median of the valid (finite) source pixels of each output cell of the ``box`` crop; NaN when fewer
    than ``min_valid`` of a cell's pixels are valid. Same size = unchanged."""
    x0, y0, x1, y1 = box
    if (x1 - x0, y1 - y0) == (out_w, out_h):
        return np.ascontiguousarray(depth[y0:y1, x0:x1], np.float32)
    padded = np.concatenate([np.asarray(depth, np.float32), np.full((1, depth.shape[1]), np.nan, np.float32)])
    padded = np.concatenate([padded, np.full((padded.shape[0], 1), np.nan, np.float32)], axis=1)
    rows, cols = _cells(y0, y1, out_h), _cells(x0, x1, out_w)   # -1 -> the NaN pad row / column
    cells = padded[rows[:, :, None, None], cols[None, None, :, :]]   # (oh, bh, ow, bw)
    cells = cells.transpose(0, 2, 1, 3).reshape(out_h, out_w, -1)
    size = ((rows >= 0).sum(1)[:, None] * (cols >= 0).sum(1)[None, :])
    valid = np.isfinite(cells).sum(-1)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        out = np.nanmedian(cells, axis=-1)
    out[valid < min_valid * size] = np.nan
    return out.astype(np.float32)


# ---------------------------------------------------------------- the conversion

class _ImageTopic:
    """Stamps (pass 1) and processed images (pass 2) of one image topic."""

    def __init__(self, reader: BagReader, topic: str, what: str):
        self.topic = reader.topic(topic, IMAGE, what).name
        self.what = what
        self.stamps: list[int] = []

    def add_stamp(self, msg: BagMessage) -> None:
        self.stamps.append(header_stamp_ns(msg.data))

    def finish(self) -> None:
        self.sorted = np.array(sorted(self.stamps), dtype=np.int64)
        if self.sorted.size == 0:
            raise BagError(f'{self.what} {self.topic} has no messages')

    def nearest(self, t_ns: int, tol_ns: int) -> int | None:
        s = self.sorted
        i = int(np.searchsorted(s, t_ns))
        best = None
        for j in (i - 1, i):
            if 0 <= j < len(s) and abs(int(s[j]) - t_ns) <= tol_ns:
                if best is None or abs(int(s[j]) - t_ns) < abs(best - t_ns):
                    best = int(s[j])
        return best


def _frame_samples(reader: BagReader, msg: BagMessage, spec: FrameSpec) -> tuple[np.ndarray, int]:
    img = reader.decode(msg)
    return m.audio_samples(img, spec), m.stamp_ns(img)


def _windows(reader: BagReader, topic: str, spec: FrameSpec, window: int, hop: int, tol_ns: int,
             max_chunk: int, stats: FromBagResult | None = None):
    """Yield (window, stream id) as the perception node would assemble them."""
    assembler = WindowAssembler(spec.num_channels, spec.sample_rate, window, hop, max_chunk, tol_ns)
    stream = 0
    for msg in reader.messages([topic]):
        try:
            samples, stamp = _frame_samples(reader, msg, spec)
        except FrameError as exc:
            if stats is not None:
                stats.invalid_frames[exc.reason] = stats.invalid_frames.get(exc.reason, 0) + 1
            assembler.reset()
            stream += 1
            continue
        out = assembler.push(samples, stamp)
        if assembler.last_discontinuity:
            stream += 1
            if stats is not None:
                stats.stream_resets += 1
        for w in out:
            yield w, stream


def _check_audio(reader: BagReader, topic: str, num_channels: int, sample_rate: int) -> None:
    """Fail early, with the reason, when the frames cannot be this config's array at this rate."""
    stamps, widths = [], []
    for msg in reader.messages([topic]):
        img = reader.decode(msg)
        if img.encoding != '32FC1':
            raise BagError(f'{topic}: audio frames must be 32FC1 Images (height = channels), got '
                           f'encoding {img.encoding!r}')
        if img.height != num_channels:
            raise BagError(f'{topic}: frames have {img.height} channels but the array config has '
                           f'{num_channels} microphones (pass --config with the robot\'s array)')
        stamps.append(m.stamp_ns(img))
        widths.append(img.width)
        if len(stamps) >= 200:
            break
    if len(stamps) >= 3:
        d = np.diff(np.array(stamps, np.float64)) / NS_PER_S
        w = np.array(widths[:-1], np.float64)
        ok = d > 0
        if ok.sum() >= 2:
            rate = float(np.median(w[ok] / d[ok]))
            if abs(rate - sample_rate) > 0.02 * sample_rate:
                raise BagError(f'{topic}: frame stamps advance like {rate:.0f} Hz audio but the config says '
                               f'{sample_rate} Hz (pass --config with the robot\'s sample rate)')


def _camera_K(reader: BagReader, opts: FromBagOptions, width: int, height: int) -> np.ndarray:
    info_topic = opts.depth_info_topic or qualify(opts.depth_topic).rsplit('/', 1)[0] + '/camera_info'
    info_topic = qualify(info_topic)
    if info_topic in reader.topics:
        reader.topic(info_topic, CAMERA_INFO, 'camera_info topic')
        for msg in reader.messages([info_topic]):
            info = reader.decode(msg)
            K = m.camera_matrix(info)
            if (info.width, info.height) not in ((width, height), (0, 0)):
                raise BagError(f'{info_topic} is for {info.width}x{info.height} images but '
                               f'{opts.depth_topic} has {width}x{height}')
            if not K[0, 0] > 0:
                raise BagError(f'{info_topic}: camera matrix has fx = {K[0, 0]} (uncalibrated camera?)')
            return K
    if opts.depth_info_topic:
        raise BagError(f'no camera_info topic {info_topic} in the bag')
    if opts.hfov_deg is None:
        raise BagError(f'no camera_info for {opts.depth_topic} in the bag (looked for {info_topic}); '
                       'record it, or give --depth-info-topic or --hfov')
    f = (width / 2.0) / np.tan(np.radians(opts.hfov_deg) / 2.0)
    return np.array([[f, 0, (width - 1) / 2.0], [0, f, (height - 1) / 2.0], [0, 0, 1.0]])


def bag_to_dataset(bag: str | Path, out: str | Path, cfg=None, opts: FromBagOptions | None = None,
                   progress: Callable[[str], None] | None = None) -> FromBagResult:
    """Convert ``bag`` into a dataset directory ``out`` (see the module doc). ``cfg`` (a SimConfig)
    gives the array (channels, sample rate, mic positions), the analysis window, class table and
    split fractions; it defaults to the package's simulation config. On any error nothing is left
    behind in ``out``."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BagError(f'{out} exists and is not an empty directory; choose a new output directory')
    existed = out.exists()
    try:
        return _bag_to_dataset(bag, out, cfg, opts, progress)
    except BaseException:
        if out.exists():
            if existed:
                for child in out.iterdir():
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            else:
                shutil.rmtree(out, ignore_errors=True)
        raise


def _bag_to_dataset(bag, out: Path, cfg, opts, progress) -> FromBagResult:
    from audio_vision.simulation import dataset as ds
    from audio_vision.simulation.config import CameraConfig, SimConfig
    from audio_vision.simulation.simulator import Simulator

    opts = opts or FromBagOptions()
    cfg = cfg or SimConfig()
    say = progress or (lambda text: None)
    splits = list(cfg.dataset.split_fractions)
    if opts.split != 'auto' and opts.split not in splits:
        raise BagError(f"split must be 'auto' or one of {splits}, got {opts.split!r}")
    if not opts.tolerance_s >= 0 or not opts.hop_s > 0 or not opts.block_s > 0:
        raise BagError('tolerance must be >= 0, hop and block lengths > 0')
    out_w, out_h = (int(v) for v in opts.image_size)
    if min(out_w, out_h) < 8:
        raise BagError(f'image size must be at least 8x8, got {out_w}x{out_h}')

    probe = Simulator(cfg)
    fs, channels = probe.sample_rate, probe.num_channels
    window_s = opts.window_s or cfg.recording.window_s
    window, hop = int(round(window_s * fs)), int(round(opts.hop_s * fs))
    block = int(round(opts.block_s * fs))
    if block < window:
        raise BagError(f'block length ({opts.block_s} s) is shorter than the window ({window_s} s)')
    tol_ns = int(round(opts.tolerance_s * NS_PER_S))
    stream_tol = int(round(opts.stream_tolerance_s * NS_PER_S))
    spec = FrameSpec(channels, fs, 1, opts.max_chunk_samples)
    num_classes = len(probe.class_table)

    with BagReader(bag) as reader:
        audio_topic = reader.topic(opts.audio_topic, IMAGE, 'audio topic').name
        _check_audio(reader, audio_topic, channels, fs)
        images = {'depth': _ImageTopic(reader, opts.depth_topic, 'depth topic')}
        if opts.segmentation_topic:
            images['segmentation'] = _ImageTopic(reader, opts.segmentation_topic, 'segmentation topic')
        by_topic = {t.topic: t for t in images.values()}
        if len(by_topic) != len(images):
            raise BagError('depth and segmentation topics must differ')

        # pass 1: image stamps, window stamps, matches
        say('scanning image stamps')
        for msg in reader.messages(list(by_topic)):
            by_topic[msg.topic].add_stamp(msg)
        for t in images.values():
            t.finish()
        say('assembling audio windows')
        result = FromBagResult(card={})
        plan = []        # (window ordinal, start_ns, end_ns, block id, {modality: image stamp})
        block_ids: dict[tuple[int, int], int] = {}
        current, k = -1, 0     # stream id, ordinal of the window within its stream
        for w, stream in _windows(reader, audio_topic, spec, window, hop, stream_tol, opts.max_chunk_samples,
                                  result):
            result.windows += 1
            if stream != current:
                current, k = stream, 0
            offset = k * hop       # start of the window, in samples from its stream's start
            k += 1
            b_lo, b_hi = offset // block, (offset + window - 1) // block
            if b_lo != b_hi:
                result.straddling += 1
                continue
            match = {k: t.nearest(w.end_ns, tol_ns) for k, t in images.items()}
            if any(v is None for v in match.values()):
                result.unmatched += 1
                continue
            bid = block_ids.setdefault((stream, b_lo), len(block_ids))
            plan.append((result.windows - 1, w.start_ns, w.end_ns, bid, match))
        if not plan:
            raise BagError(f'no analysis window of {window_s:g} s has a depth'
                           + (' and a segmentation' if opts.segmentation_topic else '')
                           + f' image within {opts.tolerance_s:g} s of its end ({result.windows} windows, '
                             f'{len(images["depth"].sorted)} depth images); check the topics and the clocks')

        # pass 2: the images that are used, processed to the output size
        say(f'processing {len({p[4]["depth"] for p in plan})} depth images')
        needed = {k: {p[4][k] for p in plan} for k in images}
        processed: dict[str, dict[int, np.ndarray]] = {k: {} for k in images}
        K_out = None
        box_of = {}
        for msg in reader.messages(list(by_topic)):
            kind = 'depth' if msg.topic == images['depth'].topic else 'segmentation'
            stamp = header_stamp_ns(msg.data)
            if stamp not in needed[kind] or stamp in processed[kind]:
                continue
            img = reader.decode(msg)
            try:
                arr = m.depth_to_metres(img) if kind == 'depth' else m.labels_to_array(img)
            except ValueError as exc:
                raise BagError(f'{msg.topic}: {exc}') from None
            h, w_ = arr.shape
            box = box_of.setdefault((kind, w_, h), crop_box(w_, h, out_w, out_h))
            if kind == 'depth':
                if K_out is None:
                    K_out = crop_resize_K(_camera_K(reader, opts, w_, h), box, out_w, out_h)
                processed[kind][stamp] = resize_depth(arr, box, out_w, out_h)
            else:
                labels = _map_labels(arr, opts.label_map, num_classes, msg.topic)
                processed[kind][stamp] = resize_labels(labels, box, out_w, out_h)

        # output layout: the simulator's schema, with this camera and window
        hfov = float(np.degrees(2 * np.arctan((out_w / 2.0) / K_out[0, 0])))
        if not 10.0 <= hfov <= 170.0:
            raise BagError(f'the cropped camera has a {hfov:.1f} deg field of view; supported: 10..170')
        out_cfg = dataclasses.replace(
            cfg, camera=CameraConfig(out_w, out_h, round(hfov, 6)),
            recording=dataclasses.replace(cfg.recording, window_s=window / fs))
        sim = Simulator(out_cfg)
        specs = ds.array_specs(sim)
        split_of = {p[3]: (opts.split if opts.split != 'auto' else
                           ds.split_of_room(p[3], cfg.dataset.split_fractions)) for p in plan}
        counts = {s: sum(1 for p in plan if split_of[p[3]] == s) for s in splits}
        generator = {'format_version': ds.FORMAT_VERSION, 'seed': -1, 'n': len(plan), 'num_shards': 1,
                     'sharding': 'index % num_shards == shard', 'config': out_cfg.to_dict(),
                     'source': {'kind': 'rosbag2', 'bag': str(Path(bag).resolve()), 'audio_topic': audio_topic,
                                'depth_topic': images['depth'].topic,
                                'segmentation_topic': images['segmentation'].topic
                                if 'segmentation' in images else None,
                                'tolerance_s': opts.tolerance_s, 'hop_s': hop / fs, 'block_s': opts.block_s,
                                'split': opts.split}}
        name = ds.shard_name(0, 1)
        out.mkdir(parents=True, exist_ok=True)
        writers = {}
        for s, count in counts.items():
            if count == 0:
                continue
            tmp = out / s / f'.{name}.partial'
            tmp.mkdir(parents=True)
            writers[s] = (tmp, {k: np.lib.format.open_memmap(tmp / f'{k}.npy', mode='w+', dtype=dt,
                                                             shape=(count,) + shape)
                                for k, (shape, dt) in specs.items()}, [])

        # pass 3: the audio of the planned windows, written with their images
        say(f'writing {len(plan)} samples')
        plan_by_ordinal = {p[0]: (i, p) for i, p in enumerate(plan)}
        rows = {s: 0 for s in writers}
        seg_blank = np.full((out_h, out_w), IGNORE_LABEL, np.uint8)      # no segmentation topic: unknown
        for n, (w, _stream) in enumerate(_windows(reader, audio_topic, spec, window, hop, stream_tol,
                                                  opts.max_chunk_samples)):
            if n not in plan_by_ordinal:
                continue
            index, (_, start_ns, end_ns, bid, match) = plan_by_ordinal[n]
            if (w.start_ns, w.end_ns) != (start_ns, end_ns):
                raise BagError(f'{bag}: the bag changed while it was read')
            s = split_of[bid]
            tmp, mm, metas = writers[s]
            r = rows[s]
            mm['audio'][r] = w.audio
            mm['depth'][r] = processed['depth'][match['depth']]
            mm['segmentation'][r] = (processed['segmentation'][match['segmentation']]
                                     if 'segmentation' in match else seg_blank)
            mm['K'][r] = K_out
            mm['camera_pose'][r] = np.nan
            mm['room_size'][r] = np.nan
            mm['seed'][r], mm['index'][r], mm['room_id'][r] = -1, index, bid
            metas.append({'index': index, 'seed': -1, 'room_id': bid, 'split': s,
                          'source': 'rosbag2', 'window_start_ns': start_ns, 'window_end_ns': end_ns,
                          'image_stamps_ns': match})
            rows[s] = r + 1

    for s, (tmp, mm, metas) in writers.items():
        for arr in mm.values():
            arr.flush()
        del mm
        info = {'split': s, 'shard': 0, 'num_shards': 1, 'count': rows[s],
                'indices': [x['index'] for x in metas], 'rooms': sorted({x['room_id'] for x in metas}),
                'content_hash': ds.hash_arrays(tmp), 'config_hash': ds.hash_json(generator)}
        ds.write_json(tmp / 'meta.json', metas)
        ds.write_json(tmp / 'shard.json', info)
        final = out / s / name
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    np.save(out / 'mic_positions.npy', np.asarray(sim.mic_positions, dtype=np.float64))
    result.card = ds.write_card(out, generator, sim)
    result.samples = len(plan)
    result.splits = {s: c for s, c in counts.items() if c}
    return result


def _map_labels(labels: np.ndarray, label_map: dict[int, int] | None, num_classes: int, topic: str) -> np.ndarray:
    if label_map:
        lut = np.full(256, 255, np.uint8)
        for src, dst in label_map.items():
            lut[int(src)] = int(dst)
        mapped = lut[labels]
        if (mapped == 255).any():
            bad = sorted(set(np.unique(labels[mapped == 255]).tolist()))
            raise BagError(f'{topic}: class ids {bad} are not in the label map')
        labels = mapped
    if labels.size and int(labels.max()) >= num_classes:
        bad = sorted(int(v) for v in np.unique(labels[labels >= num_classes]))
        raise BagError(f'{topic}: class ids {bad} are outside the class table (0..{num_classes - 1}); '
                       'map them with --label-map')
    return labels
