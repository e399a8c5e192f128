# SPDX-License-Identifier: Apache-2.0
"""rosbag2 I/O for audio_vision, pure Python (``rosbags``): no rclpy, no ROS install needed.

* :mod:`~audio_vision.bag.schema` - topic names, message types and offered QoS of an audio_vision bag;
* :mod:`~audio_vision.bag.messages` - building and decoding messages (numpy <-> rosbags message objects);
* :mod:`~audio_vision.bag.audio_common` - ``audio_common_msgs`` definitions (shipped as data) and the audio
  topic of a bag: Image audio frames or ``AudioDataStamped`` + ``AudioInfo``;
* :mod:`~audio_vision.bag.writer` / :mod:`~audio_vision.bag.reader` - writing and reading bags
  (MCAP or sqlite3), with one-line :class:`BagError` messages for unusable input;
* :mod:`~audio_vision.bag.record` - a simulated recording written straight to a bag (faster than real time);
* :mod:`~audio_vision.bag.convert` - a robot's recording -> the training dataset schema.

The rclpy side of replay lives in :mod:`audio_vision.ros.bag_player`.
"""
from audio_vision.bag.errors import BagError

__all__ = ['BagError']
