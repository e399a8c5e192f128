# SPDX-License-Identifier: Apache-2.0
"""Run-time pieces below the ROS layer (pure: no rclpy): stream statistics and real-time pacing."""
