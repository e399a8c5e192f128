# SPDX-License-Identifier: Apache-2.0
"""A robot's recording -> the training dataset (the schema of :mod:`audio_vision.dataset`, docs/SIMULATOR.md).

1. **Audio windows.** The audio frames are validated and pushed, in the order they were received, through
   the perception node's own ring buffer (:class:`audio_vision.core.stream.windowing.WindowAssembler`): the
   windows (``window_s`` every ``hop_s``, stream restarts at stamp gaps) are exactly those the node would
   run the model on. The audio topic holds ``sensor_msgs/Image`` audio frames (32FC1) or, as ROS 2's
   audio_capture records it, ``audio_common_msgs/AudioDataStamped`` with an ``AudioInfo`` topic (interleaved
   S16LE / S32LE / F32LE PCM; compressed audio is refused): :class:`~audio_vision.bag.audio_common.AudioTopic`.
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
5. **Writing.** Arrays, ``meta.json``, ``shard.json`` and ``card.json`` are written through the dataset layer
   (:mod:`audio_vision.dataset`: the schema, shard writer, card and hashes the simulator's generator uses too),
   so ``train``/``evaluate`` read the result unchanged. The card is written from plain data (the robot's
   :class:`~audio_vision.dataset.DatasetLayout` with the cropped camera); nothing of the simulator is imported.
   Unknowns are explicit: ``camera_pose`` and ``room_size`` are NaN, ``seed`` is -1.

Everything but the processed outputs is streamed: memory stays small for long recordings.
"""
from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from audio_vision.bag import messages as m
from audio_vision.bag.audio_common import AudioTopic
from audio_vision.bag.errors import BagError
from audio_vision.bag.reader import BagMessage, BagReader
from audio_vision.bag.schema import IMAGE, qualify
from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import IGNORE_LABEL
from audio_vision.core.stream.windowing import NS_PER_S, FrameError, FrameSpec, WindowAssembler
from audio_vision.dataset import DatasetLayout, DatasetWriter, generator_info, split_of_room

CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'


@dataclass
class FromBagOptions:
    audio_topic: str = '/audio/frames'         # Image audio frames or audio_common_msgs/AudioDataStamped
    audio_info_topic: str | None = None       # AudioDataStamped: its AudioInfo (None = the sibling audio_info)
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


@dataclass(frozen=True)
class WindowSettings:
    """How analysis windows are assembled from the audio frames (the perception node's ring buffer)."""

    spec: FrameSpec                   # a valid frame: channels, sample rate, chunk size limits
    window: int                       # samples per window
    hop: int                          # samples between window starts
    stream_tolerance_ns: int          # stamp continuity of consecutive frames

    def assembler(self) -> WindowAssembler:
        return WindowAssembler(self.spec.num_channels, self.spec.sample_rate, self.window, self.hop,
                               self.spec.max_samples, self.stream_tolerance_ns)


def iter_windows(reader: BagReader, topic: str | AudioTopic, settings: WindowSettings,
                 stats: FromBagResult | None = None):
    """Yield (window, stream id) as the perception node would assemble them from ``topic``'s frames (Image
    audio frames or ``AudioDataStamped``, see :class:`~audio_vision.bag.audio_common.AudioTopic`); an
    invalid frame or a stamp gap starts a new stream (counted in ``stats`` when given)."""
    audio = topic if isinstance(topic, AudioTopic) else AudioTopic(reader, topic)
    assembler = settings.assembler()
    stream = 0
    for samples, stamp in audio.frames(settings.spec):
        if isinstance(samples, FrameError):
            if stats is not None:
                stats.invalid_frames[samples.reason] = stats.invalid_frames.get(samples.reason, 0) + 1
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


@dataclass
class _Sample:
    """An analysis window that becomes a sample: where it is in the audio, its block and its images."""

    ordinal: int                      # the window's number among all windows of the bag
    start_ns: int
    end_ns: int
    block: int                        # the block of continuous audio it lies in: its room_id
    image_stamps: dict[str, int]      # modality -> header stamp of the image paired with it


@dataclass
class _Images:
    """The images the samples use, processed to the output size, and the output camera matrix."""

    by_stamp: dict[str, dict[int, np.ndarray]]     # modality -> stamp -> image
    K: np.ndarray


def bag_to_dataset(bag: str | Path, out: str | Path, layout: DatasetLayout, opts: FromBagOptions | None = None,
                   progress: Callable[[str], None] | None = None) -> FromBagResult:
    """Convert ``bag`` into a dataset directory ``out`` (see the module doc). ``layout`` describes the robot:
    the array (channels, sample rate, mic positions), the analysis window, class table and split fractions
    (``audio_vision.simulation.dataset.dataset_layout(cfg)`` makes it from a simulation config); the camera
    and window of the output follow the bag and ``opts``. On any error nothing is left behind in ``out``."""
    if not isinstance(layout, DatasetLayout):
        raise TypeError(f'layout must be an audio_vision.dataset.DatasetLayout, got {type(layout).__name__} '
                        '(audio_vision.simulation.dataset.dataset_layout(cfg) makes one from a SimConfig)')
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BagError(f'{out} exists and is not an empty directory; choose a new output directory')
    existed = out.exists()
    try:
        return _convert(Path(bag), out, layout, opts or FromBagOptions(), progress or (lambda text: None))
    except BaseException:
        if out.exists():
            if existed:
                for child in out.iterdir():
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            else:
                shutil.rmtree(out, ignore_errors=True)
        raise


def _convert(bag: Path, out: Path, layout: DatasetLayout, opts: FromBagOptions, say) -> FromBagResult:
    settings = _window_settings(layout, opts)
    tol_ns = int(round(opts.tolerance_s * NS_PER_S))
    result = FromBagResult(card={})
    with BagReader(bag) as reader:
        audio = AudioTopic(reader, opts.audio_topic, opts.audio_info_topic)
        audio.check(layout.num_channels, layout.sample_rate)
        audio_topic = audio.name
        images = _image_topics(reader, opts)
        say('scanning image stamps')                                  # pass 1: stamps and matches
        by_topic = {t.topic: t for t in images.values()}
        for msg in reader.messages(list(by_topic)):
            by_topic[msg.topic].add_stamp(msg)
        for t in images.values():
            t.finish()
        say('assembling audio windows')
        samples = _plan(reader, audio, settings, images, tol_ns, opts.block_s, result)
        if not samples:
            window_s = settings.window / layout.sample_rate
            raise BagError(f'no analysis window of {window_s:g} s has a depth'
                           + (' and a segmentation' if opts.segmentation_topic else '')
                           + f' image within {opts.tolerance_s:g} s of its end ({result.windows} windows, '
                             f'{len(images["depth"].sorted)} depth images); check the topics and the clocks')
        say(f'processing {len({s.image_stamps["depth"] for s in samples})} depth images')     # pass 2
        processed = _process_images(reader, images, samples, opts, len(layout.class_table))
        out_layout = _output_layout(layout, processed.K, opts, settings.window)
        split_of = {s.block: (opts.split if opts.split != 'auto' else
                              split_of_room(s.block, layout.split_fractions)) for s in samples}
        counts = {split: sum(1 for s in samples if split_of[s.block] == split) for split in layout.splits}
        source = {'kind': 'rosbag2', 'bag': str(bag.resolve()), 'audio_topic': audio_topic,
                  'audio_format': audio.describe(),
                  'depth_topic': images['depth'].topic,
                  'segmentation_topic': images['segmentation'].topic if 'segmentation' in images else None,
                  'tolerance_s': opts.tolerance_s, 'hop_s': settings.hop / layout.sample_rate,
                  'block_s': opts.block_s, 'split': opts.split}
        writer = DatasetWriter(out, out_layout, generator_info(out_layout.config, -1, len(samples), source=source))
        shards = {split: writer.shard(split, 0, 1, count) for split, count in counts.items() if count}
        say(f'writing {len(samples)} samples')                          # pass 3: the audio, with its images
        _write_samples(reader, audio, settings, samples, processed, split_of, shards, bag)
    for shard in shards.values():
        shard.commit()
    result.card = writer.finish()
    result.samples = len(samples)
    result.splits = {split: count for split, count in counts.items() if count}
    return result


def _window_settings(layout: DatasetLayout, opts: FromBagOptions) -> WindowSettings:
    """Check the options against the layout; the window assembly they ask for."""
    if opts.split != 'auto' and opts.split not in layout.splits:
        raise BagError(f"split must be 'auto' or one of {layout.splits}, got {opts.split!r}")
    if not opts.tolerance_s >= 0 or not opts.hop_s > 0 or not opts.block_s > 0:
        raise BagError('tolerance must be >= 0, hop and block lengths > 0')
    if min(int(v) for v in opts.image_size) < 8:
        raise BagError('image size must be at least 8x8, got {}x{}'.format(*opts.image_size))
    fs = layout.sample_rate
    window_s = opts.window_s or layout.window_s
    window = int(round(window_s * fs))
    if int(round(opts.block_s * fs)) < window:
        raise BagError(f'block length ({opts.block_s} s) is shorter than the window ({window_s} s)')
    return WindowSettings(FrameSpec(layout.num_channels, fs, 1, opts.max_chunk_samples), window,
                          int(round(opts.hop_s * fs)), int(round(opts.stream_tolerance_s * NS_PER_S)))


def _image_topics(reader: BagReader, opts: FromBagOptions) -> dict[str, _ImageTopic]:
    images = {'depth': _ImageTopic(reader, opts.depth_topic, 'depth topic')}
    if opts.segmentation_topic:
        images['segmentation'] = _ImageTopic(reader, opts.segmentation_topic, 'segmentation topic')
    if len({t.topic for t in images.values()}) != len(images):
        raise BagError('depth and segmentation topics must differ')
    return images


def _plan(reader: BagReader, audio_topic: AudioTopic, settings: WindowSettings, images: dict[str, _ImageTopic],
          tol_ns: int, block_s: float, result: FromBagResult) -> list[_Sample]:
    """The windows that become samples: within one block, with every image within tolerance of their end
    (the others are counted in ``result``)."""
    block = int(round(block_s * settings.spec.sample_rate))
    samples: list[_Sample] = []
    block_ids: dict[tuple[int, int], int] = {}
    current, k = -1, 0     # stream id, ordinal of the window within its stream
    for w, stream in iter_windows(reader, audio_topic, settings, result):
        result.windows += 1
        if stream != current:
            current, k = stream, 0
        offset = k * settings.hop       # start of the window, in samples from its stream's start
        k += 1
        b_lo, b_hi = offset // block, (offset + settings.window - 1) // block
        if b_lo != b_hi:
            result.straddling += 1
            continue
        match = {kind: t.nearest(w.end_ns, tol_ns) for kind, t in images.items()}
        if any(v is None for v in match.values()):
            result.unmatched += 1
            continue
        bid = block_ids.setdefault((stream, b_lo), len(block_ids))
        samples.append(_Sample(result.windows - 1, w.start_ns, w.end_ns, bid, match))
    return samples


def _process_images(reader: BagReader, images: dict[str, _ImageTopic], samples: list[_Sample],
                    opts: FromBagOptions, num_classes: int) -> _Images:
    """Decode the images the samples use, crop and resize them to the output size; the output K."""
    out_w, out_h = (int(v) for v in opts.image_size)
    needed = {kind: {s.image_stamps[kind] for s in samples} for kind in images}
    processed: dict[str, dict[int, np.ndarray]] = {kind: {} for kind in images}
    K_out = None
    box_of = {}
    for msg in reader.messages([t.topic for t in images.values()]):
        kind = 'depth' if msg.topic == images['depth'].topic else 'segmentation'
        stamp = header_stamp_ns(msg.data)
        if stamp not in needed[kind] or stamp in processed[kind]:
            continue
        img = reader.decode(msg)
        try:
            arr = m.depth_to_metres(img) if kind == 'depth' else m.labels_to_array(img)
        except ValueError as exc:
            raise BagError(f'{msg.topic}: {exc}') from None
        h, w = arr.shape
        box = box_of.setdefault((kind, w, h), crop_box(w, h, out_w, out_h))
        if kind == 'depth':
            if K_out is None:
                K_out = crop_resize_K(_camera_K(reader, opts, w, h), box, out_w, out_h)
            processed[kind][stamp] = resize_depth(arr, box, out_w, out_h)
        else:
            labels = _map_labels(arr, opts.label_map, num_classes, msg.topic)
            processed[kind][stamp] = resize_labels(labels, box, out_w, out_h)
    return _Images(processed, K_out)


def _output_layout(layout: DatasetLayout, K: np.ndarray, opts: FromBagOptions, window: int) -> DatasetLayout:
    """The dataset's layout: the robot's array and splits, the cropped camera, the window actually used."""
    out_w, out_h = (int(v) for v in opts.image_size)
    hfov = float(np.degrees(2 * np.arctan((out_w / 2.0) / K[0, 0])))
    if not 10.0 <= hfov <= 170.0:
        raise BagError(f'the cropped camera has a {hfov:.1f} deg field of view; supported: 10..170')
    return layout.with_images(PinholeCamera(out_w, out_h, round(hfov, 6)), window / layout.sample_rate)


def _write_samples(reader: BagReader, audio_topic: AudioTopic, settings: WindowSettings, samples: list[_Sample],
                   images: _Images, split_of: dict[int, str], shards: dict, bag: Path) -> None:
    """Assemble the windows again and write the planned ones, with their images, to their split's shard."""
    planned = {s.ordinal: (index, s) for index, s in enumerate(samples)}
    h, w = next(iter(images.by_stamp['depth'].values())).shape
    seg_blank = np.full((h, w), IGNORE_LABEL, np.uint8)      # no segmentation topic: every label unknown
    for n, (window, _stream) in enumerate(iter_windows(reader, audio_topic, settings)):
        if n not in planned:
            continue
        index, s = planned[n]
        if (window.start_ns, window.end_ns) != (s.start_ns, s.end_ns):
            raise BagError(f'{bag}: the bag changed while it was read')
        split = split_of[s.block]
        seg = s.image_stamps.get('segmentation')
        arrays = {'audio': window.audio, 'depth': images.by_stamp['depth'][s.image_stamps['depth']],
                  'segmentation': seg_blank if seg is None else images.by_stamp['segmentation'][seg],
                  'K': images.K, 'camera_pose': np.nan, 'room_size': np.nan,   # unknown on a robot
                  'seed': -1, 'index': index, 'room_id': s.block}
        meta = {'index': index, 'seed': -1, 'room_id': s.block, 'split': split, 'source': 'rosbag2',
                'window_start_ns': s.start_ns, 'window_end_ns': s.end_ns, 'image_stamps_ns': s.image_stamps}
        shards[split].append(arrays, meta)


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
