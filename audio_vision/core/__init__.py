# SPDX-License-Identifier: Apache-2.0
"""Pure core, one concern a folder: model/, features/, inference/, stream/, eval/; shared definitions (camera,
classes, frames) beside them (docs/ARCHITECTURE.md). Never imports rclpy."""
