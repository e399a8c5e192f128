"""Pure core: features, models, inference pipeline, checkpoints, metrics. Never imports rclpy."""
