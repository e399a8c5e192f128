# SPDX-License-Identifier: Apache-2.0
"""Writing rosbag2 bags (MCAP or sqlite3) with ``rosbags``: message definitions, type hashes and offered
QoS go into the bag exactly as ``ros2 bag record`` writes them, so ``ros2 bag info``/``play`` (Jazzy,
Kilted) and MCAP tools read the result."""
from __future__ import annotations

import shutil
from pathlib import Path

from rosbags.interfaces import Qos
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

from audio_vision.bag.errors import BagError
from audio_vision.bag.messages import serialize, typestore
from audio_vision.bag.schema import qualify

STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
#: rosbag2 metadata version written (9 = Jazzy and later: QoS as YAML lists with policy names)
BAG_VERSION = 9


class BagWriter:
    """A new bag at ``path`` (a directory; it must not exist). Use as a context manager.

    ``add_topic`` once per topic, then ``write(topic, msg, log_time_ns)`` in receive-time order.
    ``log_time_ns`` is the bag's receive time (what ``ros2 bag play`` paces on); header stamps are in
    the messages. Leaving the ``with`` block normally or by Ctrl-C closes the bag (a valid bag with what
    was written); any other exception aborts it and removes the directory.
    """

    def __init__(self, path: str | Path, storage: str = 'mcap', custom_data: dict[str, str] | None = None):
        if storage not in STORAGES:
            raise BagError(f'unknown storage {storage!r}; use one of {", ".join(STORAGES)}')
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f'{self.path} exists already; choose a new output path')
        try:                                # record --out bags/sim on a fresh clone: bags/ is made
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise BagError(f'{self.path.parent} is not a directory') from None
        self.storage = storage
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        for key, value in (custom_data or {}).items():
            self._writer.set_custom_data(key, str(value))
        self._connections = {}
        self.counts: dict[str, int] = {}
        self._open = False

    def __enter__(self) -> 'BagWriter':
        try:
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise BagError(f'cannot create bag {self.path}: {exc}') from None
        self._open = True
        return self

    def __exit__(self, exc_type, exc, tb):
        self._open = False
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self._writer.close()
        else:
            self._writer.abort()
            shutil.rmtree(self.path, ignore_errors=True)
        return False

    def add_topic(self, topic: str, msgtype: str, qos: Qos | None = None) -> None:
        topic = qualify(topic)
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=typestore(), offered_qos_profiles=[qos] if qos else [])
        self.counts[topic] = 0

    def write(self, topic: str, msg, log_time_ns: int) -> None:
        self.write_raw(topic, serialize(msg), log_time_ns)

    def write_raw(self, topic: str, data: bytes, log_time_ns: int) -> None:
        topic = qualify(topic)
        self._writer.write(self._connections[topic], int(log_time_ns), data)
        self.counts[topic] += 1
