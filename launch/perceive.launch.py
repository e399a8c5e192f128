"""Perception graph: an audio source (simulator or microphone array) -> perception_node, the static TF
array -> camera optical frame, and RViz.

    ros2 launch audio_vision perceive.launch.py                      # simulator + perception + RViz
    ros2 launch audio_vision perceive.launch.py use_sim:=false       # real array (audio_capture_node)
    ros2 launch audio_vision perceive.launch.py model_dir:=/path/to/models rviz:=false namespace:=robot1

Each node reads its own config/<node>.yaml; ``params_file`` (optional) is loaded after those and
overrides them for every node that it names (keys like ``/**/perception_node``).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace

PACKAGE = 'audio_vision'
ARRAY_FRAME = 'audio_array'
CAMERA_FRAME = 'audio_camera_optical'
# the optical frame (z forward, x right, y down) in the array body frame (x forward, y left, z up)
BODY_TO_OPTICAL_QUATERNION = ('-0.5', '0.5', '-0.5', '0.5')

ARGUMENTS = (
    ('use_sim', 'true', 'true: simulator_node is the audio source; false: audio_capture_node (real array)'),
    ('params_file', '', 'extra ROS 2 parameter file applied after config/<node>.yaml'),
    ('model_dir', '', "perception model directory; '' = the shipped models"),
    ('namespace', '', 'namespace of every node and topic'),
    ('rviz', 'true', 'start RViz with config/audio_vision.rviz'),
)


def _true(value: str) -> bool:
    return value.strip().lower() in ('true', '1', 'yes', 'on')


def _config_dir():
    from audio_vision.paths import config_dir   # share/audio_vision/config (or the source tree)
    return config_dir()


def _nodes(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    config = _config_dir()

    def parameters(yaml_name, **overrides):
        files = [str(config / yaml_name)] + ([arg['params_file']] if arg['params_file'] else [])
        return files + ([overrides] if overrides else [])

    perception_overrides = {'model_dir': arg['model_dir']} if arg['model_dir'] else {}
    actions = [PushRosNamespace(arg['namespace'])] if arg['namespace'] else []
    actions.append(Node(package=PACKAGE, executable='perception_node', name='perception_node', output='screen',
                        parameters=parameters('perception.yaml', **perception_overrides)))
    if _true(arg['use_sim']):
        # the static TF comes from static_transform_publisher below, not from the simulator
        actions.append(Node(package=PACKAGE, executable='simulator_node', name='simulator_node', output='screen',
                            parameters=parameters('simulator.yaml', publish_tf=False)))
    else:
        actions.append(Node(package=PACKAGE, executable='audio_capture_node', name='audio_capture_node',
                            output='screen', parameters=parameters('audio_capture.yaml')))
    qx, qy, qz, qw = BODY_TO_OPTICAL_QUATERNION
    actions.append(Node(package='tf2_ros', executable='static_transform_publisher', name='audio_camera_tf',
                        arguments=['--frame-id', ARRAY_FRAME, '--child-frame-id', CAMERA_FRAME,
                                   '--qx', qx, '--qy', qy, '--qz', qz, '--qw', qw]))
    if _true(arg['rviz']):
        actions.append(Node(package='rviz2', executable='rviz2', name='rviz2',
                            arguments=['-d', str(config / 'audio_vision.rviz')]))
    return [GroupAction(actions)]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in ARGUMENTS]
        + [OpaqueFunction(function=_nodes)])
