# SPDX-License-Identifier: Apache-2.0
"""Mapping (pure numpy): depth images and poses fused into a 2-D occupancy grid. Not part of the method; read by
the occupancy node (ros/occupancy_node.py) and the offline drives (simulation/mapping.py). Never imports rclpy."""
