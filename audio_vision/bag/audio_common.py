# SPDX-License-Identifier: Apache-2.0
"""``audio_common_msgs`` in bags: the message definitions for ``rosbags`` and the audio topic of a bag.

A robot that records its microphones with ROS 2's ``audio_capture`` (``ros-<distro>-audio-common-msgs``,
``format: wave``) has ``audio_common_msgs/msg/AudioDataStamped`` on ``audio_stamped`` (interleaved PCM,
stamped at the first sample) and a latched ``audio_common_msgs/msg/AudioInfo`` on ``audio_info`` (channels,
sample rate, ``sample_format`` such as S16LE). The definitions are shipped as data
(``definitions/audio_common_msgs/msg/*.msg``, the released 0.3.x ones: see the README there) and
registered in the package's ``rosbags`` type store (:func:`audio_vision.bag.messages.typestore`), so such
bags are read and written without the ROS package installed.

:class:`AudioTopic` reads the audio of either kind of topic: ``sensor_msgs/Image`` audio frames (32FC1,
height = channels) or ``AudioDataStamped`` + ``AudioInfo``, decoded by :mod:`audio_vision.core.stream.codec`
(the same functions the perception node uses live), as ``(samples or FrameError, stamp_ns)`` per frame.
"""
from __future__ import annotations

import functools
from importlib import resources
from typing import Iterator

import numpy as np
from rosbags.typesys import get_types_from_msg

from audio_vision.bag.errors import BagError
from audio_vision.bag.schema import qualify
from audio_vision.core.stream import codec
from audio_vision.core.stream.windowing import FrameError, FrameSpec

PACKAGE = 'audio_common_msgs'
AUDIO_DATA = 'audio_common_msgs/msg/AudioData'
AUDIO_DATA_STAMPED = 'audio_common_msgs/msg/AudioDataStamped'
AUDIO_INFO = 'audio_common_msgs/msg/AudioInfo'
IMAGE = 'sensor_msgs/msg/Image'
#: message types an audio topic may have
AUDIO_TYPES = (IMAGE, AUDIO_DATA_STAMPED)


@functools.lru_cache(maxsize=1)
def definitions() -> dict[str, str]:
    """Type name -> the shipped ``.msg`` text of each ``audio_common_msgs`` message."""
    folder = resources.files('audio_vision.bag').joinpath('definitions', PACKAGE, 'msg')
    return {f'{PACKAGE}/msg/{name}': folder.joinpath(f'{name}.msg').read_text(encoding='utf-8')
            for name in ('AudioData', 'AudioDataStamped', 'AudioInfo')}


def register(store):
    """Register the ``audio_common_msgs`` types in a ``rosbags`` type store; returns the store."""
    types = {}
    for name, text in definitions().items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def info_topic_for(audio_topic: str) -> str:
    """The ``AudioInfo`` topic next to an audio topic (audio_capture: ``.../audio_stamped`` -> ``.../audio_info``)."""
    return audio_topic.rsplit('/', 1)[0] + '/audio_info'


class AudioTopic:
    """The audio topic of an open :class:`audio_vision.bag.reader.BagReader`: Image frames or
    ``AudioDataStamped`` (+ its ``AudioInfo``, by default the sibling ``audio_info`` topic)."""

    def __init__(self, reader, topic: str, info_topic: str | None = None):
        self.reader = reader
        info = reader.topic(topic, what='audio topic')
        self.name, self.msgtype = info.name, info.msgtype
        if self.msgtype not in AUDIO_TYPES:
            raise BagError(f'{reader.path}: audio topic {self.name} has type {self.msgtype}, expected '
                           f'{IMAGE} (32FC1 audio frames) or {AUDIO_DATA_STAMPED} (with {AUDIO_INFO})')
        self.layout: codec.PcmLayout | None = None
        self.info_topic = None
        if self.msgtype == AUDIO_DATA_STAMPED:
            name = qualify(info_topic or info_topic_for(self.name))
            if name not in reader.topics:
                have = ', '.join(f'{t} ({i.msgtype})' for t, i in sorted(reader.topics.items()))
                raise BagError(f'{reader.path}: no AudioInfo topic {name} in the bag for the audio on {self.name} '
                               f'(channels, rate and sample format come from it; give it with --audio-info-topic); '
                               f'the bag has: {have}')
            self.info_topic = reader.topic(name, AUDIO_INFO, 'AudioInfo topic').name
            self.layout = self._read_layout()
        elif info_topic:
            raise BagError(f'{self.name} carries Image audio frames: an AudioInfo topic applies only to '
                           f'{AUDIO_DATA_STAMPED}')

    def _read_layout(self) -> codec.PcmLayout:
        layouts = set()
        for msg in self.reader.messages([self.info_topic]):
            try:
                layouts.add(codec.pcm_layout(self.reader.decode(msg)))
            except ValueError as exc:
                raise BagError(f'{self.reader.path}: {self.info_topic}: {exc}') from None
        if not layouts:
            raise BagError(f'{self.reader.path}: {self.info_topic} has no AudioInfo message')
        if len(layouts) > 1:
            raise BagError(f'{self.reader.path}: {self.info_topic}: the audio format changed during the recording '
                           f'({sorted(layouts, key=str)}); split the bag where it changes')
        return layouts.pop()

    def describe(self) -> str:
        """'N ch @ R Hz S16LE (AudioDataStamped)' or 'Image audio frames'."""
        if self.layout is None:
            return 'Image audio frames (32FC1)'
        lay = self.layout
        return f'{lay.channels} ch @ {lay.sample_rate} Hz {lay.sample_format} ({AUDIO_DATA_STAMPED})'

    def frames(self, spec: FrameSpec | None = None) -> Iterator[tuple[np.ndarray | FrameError, int]]:
        """(C, N) float32 samples (or the :class:`FrameError` that rejected the frame) and the stamp of the
        first sample, per message in receive order; validated against ``spec`` when given."""
        for msg in self.reader.messages([self.name]):
            m = self.reader.decode(msg)
            stamp = codec.header_stamp_to_ns(m)
            try:
                if self.layout is None:
                    samples = codec.audio_samples(m, spec) if spec is not None else codec.audio_samples(m)
                else:
                    samples = codec.pcm_samples(m.audio.data, self.layout, spec)
            except FrameError as exc:
                yield exc, stamp
                continue
            yield samples, stamp

    def check(self, num_channels: int, sample_rate: int) -> None:
        """Fail early, with the reason, when the audio cannot be this array at this rate (``AudioInfo`` or,
        for Image frames, the frames' height and how fast their stamps advance)."""
        if self.layout is not None:
            if self.layout.channels != num_channels:
                raise BagError(f'{self.info_topic}: the audio has {self.layout.channels} channels but the array '
                               f"config has {num_channels} microphones (pass --config with the robot's array)")
            if self.layout.sample_rate != sample_rate:
                raise BagError(f'{self.info_topic}: the audio is {self.layout.sample_rate} Hz but the config says '
                               f"{sample_rate} Hz (pass --config with the robot's sample rate)")
            return
        stamps, widths = [], []
        for msg in self.reader.messages([self.name]):
            img = self.reader.decode(msg)
            if img.encoding != '32FC1':
                raise BagError(f'{self.name}: audio frames must be 32FC1 Images (height = channels), got '
                               f'encoding {img.encoding!r}')
            if img.height != num_channels:
                raise BagError(f'{self.name}: frames have {img.height} channels but the array config has '
                               f"{num_channels} microphones (pass --config with the robot's array)")
            stamps.append(codec.header_stamp_to_ns(img))
            widths.append(img.width)
            if len(stamps) >= 200:
                break
        if len(stamps) >= 3:
            d = np.diff(np.array(stamps, np.float64)) / codec.NS_PER_S
            w = np.array(widths[:-1], np.float64)
            ok = d > 0
            if ok.sum() >= 2:
                rate = float(np.median(w[ok] / d[ok]))
                if abs(rate - sample_rate) > 0.02 * sample_rate:
                    raise BagError(f'{self.name}: frame stamps advance like {rate:.0f} Hz audio but the config says '
                                   f"{sample_rate} Hz (pass --config with the robot's sample rate)")
