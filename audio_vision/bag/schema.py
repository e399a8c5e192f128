# SPDX-License-Identifier: Apache-2.0
"""What an audio_vision bag holds: topic names, message types and the QoS the publishers offered.

Topic names in a bag are fully qualified (``/audio/frames``); the nodes use the relative names
(``audio/frames``) that resolve to them in the root namespace.

Offered QoS is stored per topic in the bag's metadata (and in the MCAP channel metadata) exactly as
``ros2 bag record`` stores it, so ``ros2 bag play`` and :mod:`audio_vision.ros.bag_player` re-offer it.
A simulated bag carries what the live nodes offer (simulator_node, audio_capture_node; checked against
the nodes' publishers in test/test_ros_sim_time.py): reliable, keep last 10 for the audio frames;
reliable + transient local, keep last 1 (latched) for the ground truth and ``/tf_static``, so RViz's
displays of the ground truth fill on replay as they do live.
"""
from __future__ import annotations

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

AUDIO_TOPIC = '/audio/frames'
GT_DEPTH_TOPIC = '/ground_truth/depth/image'
GT_DEPTH_INFO_TOPIC = '/ground_truth/depth/camera_info'
GT_SEG_TOPIC = '/ground_truth/segmentation/image'
GT_SEG_INFO_TOPIC = '/ground_truth/segmentation/camera_info'
GT_SEG_COLOR_TOPIC = '/ground_truth/segmentation/color'
TF_STATIC_TOPIC = '/tf_static'

ARRAY_FRAME = 'audio_array'
CAMERA_FRAME = 'audio_camera_optical'

IMAGE = 'sensor_msgs/msg/Image'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
TF_MESSAGE = 'tf2_msgs/msg/TFMessage'

_ZERO = QosTime(0, 0)  # "default" durations, as rclpy's predefined profiles leave them


def qos(reliability: QosReliability, durability: QosDurability = QosDurability.VOLATILE,
        depth: int = 10) -> Qos:
    """A keep-last QoS profile with automatic liveliness and default durations."""
    return Qos(history=QosHistory.KEEP_LAST, depth=depth, reliability=reliability, durability=durability,
               deadline=_ZERO, lifespan=_ZERO, liveliness=QosLiveliness.AUTOMATIC,
               liveliness_lease_duration=_ZERO, avoid_ros_namespace_conventions=False)


#: rclpy's ``qos_profile_sensor_data``: best effort, keep last 5, volatile
SENSOR_DATA_QOS = qos(QosReliability.BEST_EFFORT, depth=5)
#: reliable, keep last 10, volatile: what simulator_node and audio_capture_node offer on audio/frames
RELIABLE_QOS = qos(QosReliability.RELIABLE, depth=10)
#: reliable, transient local (latched), keep last 1: tf2's static broadcaster, simulator_node's ground truth
LATCHED_QOS = qos(QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, depth=1)

#: topic -> (message type, offered QoS) of a bag written by ``audio_vision record``
RECORDED_TOPICS = {
    TF_STATIC_TOPIC: (TF_MESSAGE, LATCHED_QOS),
    AUDIO_TOPIC: (IMAGE, RELIABLE_QOS),
    GT_DEPTH_TOPIC: (IMAGE, LATCHED_QOS),
    GT_DEPTH_INFO_TOPIC: (CAMERA_INFO, LATCHED_QOS),
    GT_SEG_TOPIC: (IMAGE, LATCHED_QOS),
    GT_SEG_INFO_TOPIC: (CAMERA_INFO, LATCHED_QOS),
    GT_SEG_COLOR_TOPIC: (IMAGE, LATCHED_QOS),
}


def qualify(topic: str) -> str:
    """'audio/frames' -> '/audio/frames' (bags store fully qualified names)."""
    topic = topic.strip()
    return topic if topic.startswith('/') else '/' + topic
