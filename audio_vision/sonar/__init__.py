# SPDX-License-Identifier: Apache-2.0
"""The sonar front-end (pure numpy): the room's planes measured from the chirp's echoes, without learning,
rendered into the camera as depth, class and confidence priors (docs/SONAR.md).

    est = LayoutEstimator(SonarConfig.from_sim_config(sim_cfg), mic_positions)
    layout = est.estimate(audio)                      # (C, N) window -> RoomLayout (planes, yaw)
    prior = render_layout(layout, camera, class_table)
"""
from .config import SonarConfig
from .echoes import EchoField, MatchedFilter, image_of
from .layout import CEILING, FLOOR, WALL, LayoutEstimator, Plane, Reflector, RoomLayout
from .render import LayoutPrior, ReflectorMap, render_layout, render_reflectors
from .truth import layout_errors, summarize_errors, true_layout

__all__ = ['CEILING', 'FLOOR', 'WALL', 'EchoField', 'LayoutEstimator', 'LayoutPrior', 'MatchedFilter', 'Plane',
           'Reflector', 'ReflectorMap', 'RoomLayout', 'SonarConfig', 'image_of', 'layout_errors', 'render_layout',
           'render_reflectors', 'summarize_errors', 'true_layout']
