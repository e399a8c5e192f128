# SPDX-License-Identifier: Apache-2.0
"""Reading rosbag2 bags with ``rosbags``, with one-line errors for everything a user can get wrong.

:class:`BagReader` opens a bag directory (``metadata.yaml`` + storage files) or a bare ``.mcap`` /
``.db3`` file; a directory whose metadata is missing or unreadable (a recording that was killed, a newer
metadata version) is read from its single storage file instead, as ``ros2 bag reindex`` would.
Messages come out raw (CDR bytes) in receive-time order; :meth:`BagReader.decode` turns them into
``rosbags`` message objects (ROS 2 Kilted's types and the shipped ``audio_common_msgs``; any other type from
the bag's own definition).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from rosbags.interfaces import Qos
from rosbags.rosbag2 import Reader
from rosbags.typesys import get_types_from_idl, get_types_from_msg

from audio_vision.bag.errors import BagError
from audio_vision.bag.messages import NS_PER_S, new_typestore, typestore
from audio_vision.bag.schema import qualify

STORAGE_SUFFIXES = ('.mcap', '.db3')


@dataclass
class TopicInfo:
    name: str
    msgtype: str
    count: int
    qos: list[Qos] = field(default_factory=list)


@dataclass(frozen=True)
class BagMessage:
    topic: str
    msgtype: str
    log_time_ns: int      # the bag's receive time
    data: bytes           # CDR


def _open_reader(path: Path) -> Reader:
    reader = Reader(path)
    reader.open()
    return reader


class BagReader:
    """An open bag. Use as a context manager; raises :class:`BagError` with a one-line message."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f'{self.path}: no such bag (expected a bag directory or a .mcap/.db3 file)')
        if self.path.is_file() and self.path.suffix not in STORAGE_SUFFIXES:
            raise BagError(f'{self.path}: not a rosbag2 bag (expected a bag directory or a .mcap/.db3 file)')
        self._reader = None
        try:
            self._reader = _open_reader(self.path)
        except Exception as exc:  # noqa: BLE001 - rosbags raises many types for corrupt input
            fallback = self._single_storage_file()
            if fallback is None:
                raise BagError(f'{self.path}: cannot read the bag: {_reason(exc)}{_hint(exc)}') from None
            try:
                self._reader = _open_reader(fallback)
            except Exception as exc2:  # noqa: BLE001
                why = _reason(exc) if _reason(exc) == _reason(exc2) else \
                    f'{_reason(exc)}; reading {fallback.name} directly: {_reason(exc2)}'
                raise BagError(f'{self.path}: cannot read the bag: {why}{_hint(exc2)}') from None
        try:
            self.topics = self._topics()
        except Exception as exc:  # noqa: BLE001
            self.close()
            raise BagError(f'{self.path}: cannot read the bag\'s topics: {_reason(exc)}') from None
        if self._reader.message_count == 0 or not self.topics:
            self.close()
            raise BagError(f'{self.path}: the bag contains no messages')
        self._store = typestore()

    def _single_storage_file(self) -> Path | None:
        if not self.path.is_dir():
            return None
        files = [p for p in self.path.iterdir() if p.suffix in STORAGE_SUFFIXES]
        return files[0] if len(files) == 1 else None

    def _topics(self) -> dict[str, TopicInfo]:
        topics: dict[str, TopicInfo] = {}
        for conn in self._reader.connections:
            info = topics.setdefault(conn.topic, TopicInfo(conn.topic, conn.msgtype, 0))
            if info.msgtype != conn.msgtype:
                raise BagError(f'{self.path}: topic {conn.topic} has two message types, '
                               f'{info.msgtype} and {conn.msgtype}')
            info.count += conn.msgcount
            info.qos.extend(getattr(conn.ext, 'offered_qos_profiles', []) or [])
        return topics

    # ------------------------------------------------------------ context manager
    def __enter__(self) -> 'BagReader':
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        if self._reader is not None and self._reader.is_open:
            self._reader.close()

    # ------------------------------------------------------------ summary
    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        """Receive time of the last message (rosbags' end_time is one past it)."""
        return int(self._reader.end_time) - 1

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_S

    @property
    def message_count(self) -> int:
        return int(self._reader.message_count)

    @property
    def storage(self) -> str:
        paths = getattr(self._reader.storage, 'storages', None)
        name = type(paths[0] if paths else self._reader.storage).__name__.lower()
        return 'mcap' if 'mcap' in name else 'sqlite3' if 'sqlite' in name else name

    def topic(self, name: str, msgtype: str | None = None, what: str = 'topic') -> TopicInfo:
        """The topic ``name`` (relative names are qualified), checked to exist (and have ``msgtype``)."""
        name = qualify(name)
        info = self.topics.get(name)
        if info is None:
            have = ', '.join(f'{t} ({i.msgtype})' for t, i in sorted(self.topics.items()))
            raise BagError(f'{self.path}: no {what} {name} in the bag; it has: {have}')
        if msgtype and info.msgtype != msgtype:
            raise BagError(f'{self.path}: {what} {name} has type {info.msgtype}, expected {msgtype}')
        return info

    def summary(self) -> str:
        lines = [f'bag {self.path} ({self.storage}): {self.message_count} messages, '
                 f'{self.duration_s:.3f} s']
        for t in sorted(self.topics.values(), key=lambda t: t.name):
            lines.append(f'  {t.name}  {t.msgtype}  {t.count} msgs')
        return '\n'.join(lines)

    # ------------------------------------------------------------ messages
    def messages(self, topics: Iterable[str] | None = None, start_ns: int | None = None,
                 stop_ns: int | None = None) -> Iterator[BagMessage]:
        """Raw messages of ``topics`` (all when None) in receive-time order."""
        wanted = None if topics is None else {qualify(t) for t in topics}
        conns = [c for c in self._reader.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        try:
            for conn, t, data in self._reader.messages(connections=conns, start=start_ns, stop=stop_ns):
                yield BagMessage(conn.topic, conn.msgtype, int(t), bytes(data))
        except BagError:
            raise
        except Exception as exc:  # noqa: BLE001 - truncated / corrupt storage
            raise BagError(f'{self.path}: the bag is corrupt or truncated: {_reason(exc)}') from None

    def decode(self, msg: BagMessage):
        """CDR bytes -> rosbags message object; BagError for unknown types or undecodable data."""
        store = self._store
        if msg.msgtype not in store.types:
            store = self._register_from_bag(msg.msgtype)
        try:
            return store.deserialize_cdr(msg.data, msg.msgtype)
        except Exception as exc:  # noqa: BLE001
            raise BagError(f'{self.path}: cannot decode a {msg.msgtype} message on {msg.topic} '
                           f'(at {msg.log_time_ns} ns): {_reason(exc)}') from None

    def _register_from_bag(self, msgtype: str):
        conn = next((c for c in self._reader.connections if c.msgtype == msgtype and c.msgdef.data), None)
        if conn is None:
            raise BagError(f'{self.path}: unknown message type {msgtype} (not a ROS 2 Kilted type and the '
                           'bag has no definition for it)')
        if self._store is typestore():     # a private copy: the bag's types must not leak into others
            self._store = new_typestore()
        try:
            if conn.msgdef.format.name == 'IDL':
                types = get_types_from_idl(conn.msgdef.data)
            else:
                types = get_types_from_msg(conn.msgdef.data, msgtype)
            self._store.register(types)
        except Exception as exc:  # noqa: BLE001
            raise BagError(f'{self.path}: cannot parse the bag\'s definition of {msgtype}: {_reason(exc)}') \
                from None
        return self._store


def _reason(exc: BaseException) -> str:
    text = ' '.join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + '...'


def _hint(exc: BaseException) -> str:
    text = str(exc).lower()
    if 'magic' in text or 'truncat' in text or 'unexpected end' in text or 'malformed' in text:
        return (' (corrupt or truncated, e.g. a recording that was killed: `mcap recover` or '
                '`ros2 bag reindex` may repair it)')
    return ''
