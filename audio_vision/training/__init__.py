# SPDX-License-Identifier: Apache-2.0
"""Two-stage training (VQ-VAE, then AT-net), baselines and evaluation. Pure: no rclpy."""
