# SPDX-License-Identifier: Apache-2.0
"""Run-time pieces below the ROS layer (pure: no ROS): stream statistics, real-time pacing, the perception node's
configuration and statistics."""
