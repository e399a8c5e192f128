# SPDX-License-Identifier: Apache-2.0
"""Perception graph: an audio source (simulator, microphone array, or none for bags) -> perception_node,
the static TF parent_frame -> array -> camera optical frame, and RViz where it is installed.

    ros2 launch audio_vision perceive.launch.py                        # simulator + perception (+ RViz)
    ros2 launch audio_vision perceive.launch.py source:=mic parent_frame:=base_link x:=0.1 z:=0.3 yaw:=3.1416
    ros2 launch audio_vision perceive.launch.py source:=none use_sim_time:=true   # + ros2 bag play --clock BAG
    ros2 launch audio_vision perceive.launch.py namespace:=robot1 rviz:=false log_level:=debug
    ros2 launch audio_vision perceive.launch.py mapping:=true            # + occupancy_node, simulator drives a path
    ros2 launch audio_vision perceive.launch.py layout:=false            # no sonar layout (layout/depth, layout/planes)

Each node reads its own config/<node>.yaml; ``params_file`` (optional) is loaded after those and
overrides them for every node that it names (keys like ``/**/perception_node``). The frame ids
(``array_frame``, ``camera_frame``, with ``frame_prefix``) are given to every node and to the static
transforms from here, so they cannot disagree. With a ``namespace`` the frame prefix defaults to
``<namespace>/``: two robots publish ``robot1/audio_array`` and ``robot2/audio_array``, not one frame twice.
Likewise one simulation YAML (``sim_config``, default config/simulation.yaml) goes to the node that emits
the chirp (simulator or capture node) and to perception_node, which refuses to start when the model
matched-filters another chirp than that file's (audio_vision.core.features.chirp.check_chirp_match).

The node plan is computed by :func:`plan` without importing ``launch`` (tested without a ROS install).
"""
import math
import os
import shutil
from pathlib import Path

PACKAGE = 'audio_vision'
# the optical frame (z forward, x right, y down) in the array body frame (x forward, y left, z up)
BODY_TO_OPTICAL_QUATERNION = ('-0.5', '0.5', '-0.5', '0.5')
SOURCES = ('sim', 'mic', 'none')
LOG_LEVELS = ('debug', 'info', 'warn', 'error', 'fatal')
MOUNT_POSE = ('x', 'y', 'z', 'roll', 'pitch', 'yaw')

ARGUMENTS = (
    ('source', 'sim', "audio source: 'sim' (simulator_node), 'mic' (audio_capture_node: the array), "
                      "'none' (perception only, e.g. for ros2 bag play)"),
    ('use_sim_time', 'false', 'every node uses /clock (ros2 bag play --clock, audio_vision replay --clock)'),
    ('log_level', 'info', 'log level of every node: debug, info, warn, error, fatal'),
    ('params_file', '', 'extra ROS 2 parameter file applied after config/<node>.yaml'),
    ('model_dir', '', "perception model directory; '' = the shipped models"),
    ('sim_config', '', "simulation YAML whose 'chirp' the audio source emits and perception checks its model "
                       "against; '' = config/simulation.yaml of the package"),
    ('namespace', '', 'namespace of every node and topic'),
    ('frame_prefix', 'auto', "prefix of every frame id; 'auto' = '<namespace>/' with a namespace, else ''"),
    ('array_frame', 'audio_array', 'frame of the microphone array (REP 103 body: x forward, z up)'),
    ('camera_frame', 'audio_camera_optical', 'optical frame of the outputs, co-located with the array'),
    ('parent_frame', '', "frame the array is mounted on (e.g. base_link); '' = no mount transform"),
    ('x', '0.0', 'array position in parent_frame, m'),
    ('y', '0.0', 'array position in parent_frame, m'),
    ('z', '0.0', 'array position in parent_frame, m'),
    ('roll', '0.0', 'array orientation in parent_frame, rad (fixed axes x, y, z)'),
    ('pitch', '0.0', 'array orientation in parent_frame, rad'),
    ('yaw', '0.0', 'array orientation in parent_frame, rad'),
    ('mapping', 'false', 'also run occupancy_node (depth + confidence -> nav_msgs/OccupancyGrid on map); with '
                         "source:=sim the simulator drives a trajectory and publishes odom (+ TF odom -> base_link)"),
    ('layout', 'true', 'perception also measures the room from the chirp\'s echoes and publishes layout/depth and '
                       'layout/planes (sonar front-end, docs/SONAR.md)'),
    ('sonar_calibration', '', "the chirp speaker's measured response for the layout (python -m audio_vision "
                              "calibrate); '' = an ideal speaker"),
    ('rviz', 'auto', "start RViz with config/audio_vision.rviz: 'true', 'false', or 'auto' (when rviz2 is "
                     'installed and a display is set)'),
)
ARGUMENT_NAMES = tuple(name for name, _, _ in ARGUMENTS)


class LaunchArgumentError(ValueError):
    """An argument value the launch file cannot use (one line, names the argument)."""


def _bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ('true', '1', 'yes', 'on'):
        return True
    if v in ('false', '0', 'no', 'off'):
        return False
    raise LaunchArgumentError(f"{name}:={value!r}: expected true or false")


def _float(name: str, value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise LaunchArgumentError(f'{name}:={value!r}: expected a number') from None
    if not math.isfinite(v):
        raise LaunchArgumentError(f'{name}:={value!r}: expected a finite number')
    return v


def rviz_available() -> bool:
    """rviz2 is installed (ament index, else PATH) and there is a display to open it on."""
    if not (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
        return False
    try:
        from ament_index_python.packages import get_package_prefix
        get_package_prefix('rviz2')
        return True
    except Exception:  # noqa: BLE001 - ament_index missing or rviz2 not installed
        return shutil.which('rviz2') is not None


def config_dir() -> Path:
    """share/audio_vision/config of the installed package (the source tree's config/ when not installed)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(PACKAGE)) / 'config'
    except Exception:  # noqa: BLE001 - not installed: the source tree
        return Path(__file__).resolve().parents[1] / 'config'


def plan(args: dict, config: Path | None = None, rviz_installed=rviz_available) -> list[dict]:
    """The nodes to start for launch arguments ``args`` (name -> string; missing names take the
    defaults): dicts with package, executable, name, parameters (files + one dict), arguments, and
    namespace. Raises :class:`LaunchArgumentError` for an unusable value."""
    unknown = set(args) - set(ARGUMENT_NAMES)
    if unknown:
        raise LaunchArgumentError(f'unknown launch arguments: {sorted(unknown)}')
    a = {name: str(args.get(name, default)) for name, default, _ in ARGUMENTS}
    config = Path(config) if config is not None else config_dir()
    if a['source'] not in SOURCES:
        raise LaunchArgumentError(f"source:={a['source']!r}: expected one of {', '.join(SOURCES)}")
    if a['log_level'].lower() not in LOG_LEVELS:
        raise LaunchArgumentError(f"log_level:={a['log_level']!r}: expected one of {', '.join(LOG_LEVELS)}")
    sim_time = _bool('use_sim_time', a['use_sim_time'])
    pose = [_float(k, a[k]) for k in MOUNT_POSE]
    namespace = a['namespace'].strip('/')
    prefix = a['frame_prefix']
    if prefix == 'auto':
        prefix = f'{namespace}/' if namespace else ''
    array_frame, camera_frame = prefix + a['array_frame'], prefix + a['camera_frame']
    parent_frame = a['parent_frame'].strip()
    for name, frame in (('array_frame', array_frame), ('camera_frame', camera_frame)):
        if not a[name] or frame.startswith('/') or ' ' in frame:
            raise LaunchArgumentError(f'{name}: {frame!r} is not a valid frame id')
    if parent_frame in (array_frame, camera_frame):
        raise LaunchArgumentError(f'parent_frame:={parent_frame!r} is one of the array\'s own frames')
    mapping = _bool('mapping', a['mapping'])
    odom_frame, base_frame = prefix + 'odom', prefix + 'base_link'
    if mapping and a['source'] == 'sim' and not parent_frame:
        parent_frame = base_frame      # the simulated robot's base_link is at the array (identity mount)
    # one chirp: the emitter and perception read the same simulation YAML
    sim_config = a['sim_config'] or str(config / 'simulation.yaml')
    if not Path(sim_config).is_file():
        raise LaunchArgumentError(f'sim_config:={sim_config!r}: file not found')
    rviz = a['rviz'].strip().lower()
    start_rviz = rviz_installed() if rviz == 'auto' else _bool('rviz', rviz)

    log_args = ['--ros-args', '--log-level', a['log_level'].lower()]
    common = {'use_sim_time': sim_time}

    def node(executable, yaml_name, **overrides):
        files = [str(config / yaml_name)] + ([a['params_file']] if a['params_file'] else [])
        return {'package': PACKAGE, 'executable': executable, 'name': executable, 'namespace': namespace,
                'parameters': files + [{**common, **overrides}], 'arguments': log_args}

    perception = {'array_frame_id': array_frame, 'camera_frame_id': camera_frame}
    perception['publish_layout'] = _bool('layout', a['layout'])
    if a['sonar_calibration']:
        if not Path(a['sonar_calibration']).is_file():
            raise LaunchArgumentError(f"sonar_calibration:={a['sonar_calibration']!r}: file not found "
                                      '(make it with python -m audio_vision calibrate)')
        perception['sonar_calibration'] = a['sonar_calibration']
    if mapping:
        perception['publish_confidence'] = True     # the occupancy grid weighs depth by it
    # the room fused over the drive (a model with layout_fusion) reads the array's pose: the odometry of a driving
    # simulator or robot; a simulator holding still has none to give (each window is then its room alone)
    perception.update({'odom_frame_id': odom_frame, 'base_frame_id': base_frame})
    if a['source'] == 'sim' and not mapping:
        perception['pose_source'] = 'none'
    if a['model_dir']:
        perception['model_dir'] = a['model_dir']
    if a['source'] != 'none' or a['sim_config']:   # a bag (source none): checked only when sim_config is given
        perception['sim_config'] = sim_config
    nodes = [node('perception_node', 'perception.yaml', **perception)]
    if a['source'] == 'sim':   # the static TF comes from static_transform_publisher below, not the simulator
        traj = {'trajectory': True, 'odom_frame_id': odom_frame, 'base_frame_id': base_frame} if mapping else {}
        nodes.append(node('simulator_node', 'simulator.yaml', array_frame_id=array_frame,
                          camera_frame_id=camera_frame, publish_tf=False, sim_config=sim_config, **traj))
    elif a['source'] == 'mic':
        nodes.append(node('audio_capture_node', 'audio_capture.yaml', array_frame_id=array_frame,
                          sim_config=sim_config))

    if mapping:
        nodes.append(node('occupancy_node', 'occupancy.yaml', map_frame_id=odom_frame, base_frame_id=base_frame))

    def static_tf(name, parent, child, extra):
        return {'package': 'tf2_ros', 'executable': 'static_transform_publisher', 'name': name,
                'namespace': namespace, 'parameters': [common],
                'arguments': ['--frame-id', parent, '--child-frame-id', child, *extra] + log_args}
    qx, qy, qz, qw = BODY_TO_OPTICAL_QUATERNION
    nodes.append(static_tf('audio_camera_tf', array_frame, camera_frame,
                           ['--qx', qx, '--qy', qy, '--qz', qz, '--qw', qw]))
    if parent_frame:
        nodes.append(static_tf('audio_array_mount_tf', parent_frame, array_frame,
                               [x for k, v in zip(MOUNT_POSE, pose) for x in (f'--{k}', repr(v))]))
    if start_rviz:
        nodes.append({'package': 'rviz2', 'executable': 'rviz2', 'name': 'rviz2', 'namespace': namespace,
                      'parameters': [common],
                      'arguments': ['-d', str(config / 'audio_vision.rviz'), '-f', parent_frame or array_frame]})
    return nodes


def _nodes(context):
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node
    args = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENT_NAMES}
    try:
        specs = plan(args)
    except LaunchArgumentError as exc:
        raise RuntimeError(f'perceive.launch.py: {exc}') from None
    return [Node(package=s['package'], executable=s['executable'], name=s['name'], namespace=s['namespace'] or None,
                 parameters=s['parameters'], arguments=s['arguments'], output='screen') for s in specs]


def generate_launch_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in ARGUMENTS]
        + [OpaqueFunction(function=_nodes)])
