# SPDX-License-Identifier: Apache-2.0
"""bag_player: publishes a rosbag2 bag into the live graph with its recorded timing, like ``ros2 bag play``.

Works without rosbag2: the bag is read with ``rosbags`` (:mod:`audio_vision.bag.reader`), every message's
CDR bytes are deserialised into the real rclpy message class (``rclpy.serialization.deserialize_message``)
and published with the QoS its publisher offered when it was recorded (sensor-data audio stays best
effort, ``/tf_static`` stays transient local). Messages go out at ``bag start + (receive time - first
receive time) / rate`` on the wall clock; headers keep their recorded stamps (as ``ros2 bag play``).

With ``clock: true`` (``ros2 bag play --clock``) the player also publishes ``/clock`` (rosgraph_msgs/Clock,
best effort, keep last 1, as rosbag2) with the bag's receive time being played: every ``1 / clock_rate_hz``
seconds and just before each message that moves it on, so nodes with ``use_sim_time: true`` never see a
message stamped ahead of their clock by more than the recording's own receive delay.

Topics whose message package is not importable (e.g. ``tf2_msgs`` on a Python-package-index install)
are skipped with a warning, unless they were asked for explicitly in ``topics``: then start-up fails.
"""
from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message

from audio_vision.bag import BagError
from audio_vision.bag.reader import BagReader, TopicInfo
from audio_vision.bag.schema import TF_STATIC_TOPIC, qualify
from audio_vision.core.stream.codec import NS_PER_S, split_ns
from audio_vision.ros.lifecycle import StartupError, run_node
from audio_vision.ros.parameters import Param, declare_parameters

NODE_NAME = 'bag_player'

PARAMS = [
    Param('bag', '', 'bag to play: a rosbag2 directory or a .mcap / .db3 file'),
    Param('rate', 1.0, 'playback speed relative to the recording', range=(0.01, 100.0)),
    Param('loop', False, 'play the bag again and again'),
    Param('topics', '', "comma-separated topics to play; '' = every topic of the bag"),
    Param('remap', '', "comma-separated 'from:=to' topic renames, e.g. '/audio/frames:=/robot/audio'"),
    Param('delay_s', 0.5, 'wait this long before the first message (lets DDS discovery finish)',
          range=(0.0, 60.0)),
    Param('wait_for_topic', '', "before playing, wait until this (bag) topic has a subscriber; '' = don't"),
    Param('wait_timeout_s', 30.0, 'give up waiting for wait_for_topic after this long (then play anyway)',
          range=(0.0, 3600.0)),
    Param('autostart', True, 'start playing at once; false = wait for play() (tests)'),
    Param('clock', False, 'publish /clock with the bag time (for nodes with use_sim_time: true)'),
    Param('clock_rate_hz', 40.0, 'how often /clock is published while playing', range=(1.0, 1000.0)),
]


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> sensor_msgs.msg.Image; None when the package is not importable."""
    parts = msgtype.split('/')
    if len(parts) == 2:
        parts = [parts[0], 'msg', parts[1]]
    if len(parts) != 3:
        return None
    pkg, kind, name = parts
    try:
        return getattr(importlib.import_module(f'{pkg}.{kind}'), name)
    except (ImportError, AttributeError):
        return None


def qos_from_bag(info: TopicInfo) -> QoSProfile:
    """The QoS to offer for a recorded topic, adapted from its recorded offers as ``ros2 bag play`` does:
    reliability / durability of the recording when every recorded publisher agreed, reliable / volatile
    otherwise; keep-last with the recorded depth (at least 10 for volatile topics)."""
    offers = info.qos
    reliability, durability, depth = ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, 10
    if not offers and info.name == TF_STATIC_TOPIC:
        return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
    if offers:
        rel = {q.reliability.name for q in offers}
        dur = {q.durability.name for q in offers}
        if rel == {'BEST_EFFORT'}:
            reliability = ReliabilityPolicy.BEST_EFFORT
        if dur == {'TRANSIENT_LOCAL'}:
            durability = DurabilityPolicy.TRANSIENT_LOCAL
        recorded = max((q.depth for q in offers), default=0)
        depth = max(recorded, 1) if durability == DurabilityPolicy.TRANSIENT_LOCAL else max(recorded, 10)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability,
                      durability=durability)


def parse_remap(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (s.strip() for s in text.split(','))):
        if ':=' not in item:
            raise StartupError(f"parameter 'remap': {item!r} is not 'from:=to'")
        src, dst = (s.strip() for s in item.split(':=', 1))
        if not src or not dst:
            raise StartupError(f"parameter 'remap': {item!r} is not 'from:=to'")
        out[qualify(src)] = qualify(dst)
    return out


@dataclass
class _Channel:
    name: str            # topic published to (after remapping)
    msg_class: type
    publisher: object
    count: int = 0


class BagPlayer(Node):
    """Plays a bag (see the module doc). ``finished`` is set when a non-looping playback has ended;
    ``published`` counts messages per bag topic; ``pass_count`` counts completed passes."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.finished = threading.Event()
        self.error: str | None = None
        self.reader: BagReader | None = None
        try:
            self._setup()
        except BaseException:
            self.destroy_node()
            raise

    def _setup(self):
        p = self.params = declare_parameters(self, PARAMS)
        if not p['bag']:
            raise StartupError("parameter 'bag': no bag given")
        try:
            self.reader = BagReader(p['bag'])
        except BagError as exc:
            raise StartupError(str(exc)) from None
        wanted = [qualify(t) for t in p['topics'].split(',') if t.strip()]
        for t in wanted:
            if t not in self.reader.topics:
                have = ', '.join(sorted(self.reader.topics))
                raise StartupError(f'topic {t} is not in the bag {p["bag"]}; it has: {have}')
        remap = parse_remap(p['remap'])
        self._wait_for = qualify(p['wait_for_topic']) if p['wait_for_topic'].strip() else None
        self.channels: dict[str, _Channel] = {}
        self.skipped: dict[str, str] = {}
        for name in (wanted or sorted(self.reader.topics)):
            info = self.reader.topics[name]
            cls = message_class(info.msgtype)
            if cls is None:
                if wanted:
                    raise StartupError(f'cannot play {name}: message type {info.msgtype} is unknown here '
                                       f'(its Python package is not installed)')
                self.skipped[name] = info.msgtype
                self.get_logger().warning(f'skipping {name}: message type {info.msgtype} is unknown here '
                                          '(its Python package is not installed)')
                continue
            topic = remap.get(name, name)
            self.channels[name] = _Channel(topic, cls, self.create_publisher(cls, topic, qos_from_bag(info)))
        if self._wait_for and self._wait_for not in self.channels:
            raise StartupError(f"parameter 'wait_for_topic': {self._wait_for} is not a played topic of the bag")
        if not self.channels:
            raise StartupError(f'nothing to play in {p["bag"]}: no topic with a known message type '
                               f'(skipped: {", ".join(f"{t} ({m})" for t, m in self.skipped.items())})')
        self.pass_count = 0
        self._clock_lock = threading.Lock()
        self._clock_ns = 0          # last bag time published on /clock
        # (first receive time, monotonic t0, rate, the receive time of the next message to publish) of the pass being
        # played: the clock between messages runs with the wall clock, but never past a message not yet published
        self._position = None
        self.clock_pub = None
        if p['clock']:
            from rosgraph_msgs.msg import Clock
            self._clock_msg = Clock
            self.clock_pub = self.create_publisher(
                Clock, '/clock', QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
            self.clock_timer = self.create_timer(1.0 / p['clock_rate_hz'], self._tick_clock)
        self.get_logger().info(
            f'{p["bag"]}: {len(self.channels)} topics, {self.reader.duration_s:.2f} s at {p["rate"]:g}x'
            + (', looping' if p['loop'] else ''))
        if p['autostart']:
            self.play()

    @property
    def published(self) -> dict[str, int]:
        return {t: c.count for t, c in self.channels.items()}

    def play(self) -> None:
        """Start playback on a background thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name='bag_player', daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a non-looping playback has finished (True) or ``timeout`` passed (False)."""
        return self.finished.wait(timeout)

    def _run(self):
        try:
            if self._stop.wait(self.params['delay_s']):
                return
            if self._wait_for and not self._wait_for_subscriber():
                return
            while not self._stop.is_set():
                self._play_once()
                if self._stop.is_set():
                    break
                self.pass_count += 1
                if not self.params['loop']:
                    break
        except BagError as exc:
            self.error = str(exc)
            self.get_logger().error(f'playback stopped: {exc}')
        except Exception as exc:  # noqa: BLE001 - a bad message ends playback with a clear line
            self.error = f'{type(exc).__name__}: {exc}'
            self.get_logger().error(f'playback stopped: {self.error}')
        finally:
            self.finished.set()

    def _wait_for_subscriber(self) -> bool:
        pub = self.channels[self._wait_for].publisher
        t0 = time.monotonic()
        deadline = t0 + self.params['wait_timeout_s']
        while pub.get_subscription_count() < 1:
            if time.monotonic() > deadline:
                self.get_logger().warning(f'no subscriber on {self._wait_for} after '
                                          f'{self.params["wait_timeout_s"]:g} s; playing anyway')
                return True
            if self._stop.wait(0.05):
                return False
        self.get_logger().info(f'{self._wait_for} has a subscriber after {time.monotonic() - t0:.2f} s')
        # the subscriber's side of the match may lag the publisher's by a moment
        return not self._stop.wait(0.3)

    def publish_clock(self, bag_ns: int) -> None:
        """Publish ``bag_ns`` on /clock unless the clock is there already (it never runs backwards within a
        pass; a new pass of a loop starts it again)."""
        with self._clock_lock:
            if self.clock_pub is None or bag_ns <= self._clock_ns:
                return
            self._clock_ns = bag_ns
            msg = self._clock_msg()
            msg.clock.sec, msg.clock.nanosec = split_ns(bag_ns)
            self.clock_pub.publish(msg)

    def _tick_clock(self):
        position = self._position
        if position is not None:
            first_ns, t0, rate, next_ns = position
            # capped at the next message: on a busy machine its publication may lag its due time, and a clock that ran
            # past it would stamp the bag's end later than its last message
            self.publish_clock(min(first_ns + int((time.monotonic() - t0) * rate * NS_PER_S), next_ns))

    def _play_once(self):
        rate = float(self.params['rate'])
        first_ns = None
        t0 = time.monotonic()
        for msg in self.reader.messages(list(self.channels)):
            if first_ns is None:
                first_ns = msg.log_time_ns
                with self._clock_lock:
                    self._clock_ns = 0          # a new pass (loop): the bag time starts again
            self._position = (first_ns, t0, rate, msg.log_time_ns)
            due = t0 + (msg.log_time_ns - first_ns) / NS_PER_S / rate
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            if self._stop.is_set():
                return
            channel = self.channels[msg.topic]
            try:
                ros_msg = deserialize_message(msg.data, channel.msg_class)
            except Exception as exc:  # noqa: BLE001
                raise BagError(f'cannot deserialise a {msg.msgtype} message on {msg.topic} at '
                               f'{msg.log_time_ns} ns: {exc}') from None
            self.publish_clock(msg.log_time_ns)
            channel.publisher.publish(ros_msg)
            channel.count += 1
        self._position = None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def destroy_node(self):
        self.stop()
        if self.reader is not None:
            self.reader.close()
        return super().destroy_node()


def main(args=None):
    return run_node(BagPlayer, args, NODE_NAME)


if __name__ == '__main__':
    raise SystemExit(main())
