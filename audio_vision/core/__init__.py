# SPDX-License-Identifier: Apache-2.0
"""Pure core: features, models, inference pipeline, checkpoints, metrics. Never imports rclpy."""
