# SPDX-License-Identifier: Apache-2.0
"""Scoring predictions against ground truth: image metrics, sparsification of confidence."""
