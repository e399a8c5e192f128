# SPDX-License-Identifier: Apache-2.0
"""ROS 2 shell: one thin Node class per file, message conversions, and the composed graph.

The only part of the package that imports rclpy; everything it calls lives in the pure layers.
"""
