"""launch/perceive.launch.py and the files it loads. The launch description itself is checked only where
`launch` and `launch_ros` are importable (a ROS 2 install); the config files always."""
import ast
import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / 'launch' / 'perceive.launch.py'
NODE_CONFIGS = {'perception_node': 'perception.yaml', 'simulator_node': 'simulator.yaml',
                'audio_capture_node': 'audio_capture.yaml'}


def test_launch_file_parses_and_declares_the_documented_arguments():
    tree = ast.parse(LAUNCH_FILE.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description' for n in tree.body)
    source = LAUNCH_FILE.read_text()
    for arg in ('use_sim', 'params_file', 'model_dir', 'namespace', 'rviz'):
        assert f"'{arg}'" in source


@pytest.mark.parametrize('node, filename', sorted(NODE_CONFIGS.items()))
def test_node_config_files_declare_only_known_parameters(node, filename):
    pytest.importorskip('rclpy')
    params = importlib.import_module(f'audio_vision.ros.{node}').PARAMS
    data = yaml.safe_load((ROOT / 'config' / filename).read_text())
    assert list(data) == [f'/**/{node}']
    values = data[f'/**/{node}']['ros__parameters']
    declared = {p.name: p for p in params}
    assert set(values) <= set(declared), set(values) - set(declared)
    for name, value in values.items():      # the same types as the defaults (rclpy refuses int for double)
        assert type(value) is type(declared[name].default) or (
            isinstance(value, list) and isinstance(declared[name].default, list)), name


def test_rviz_config_shows_ground_truth_and_predictions():
    rviz = yaml.safe_load((ROOT / 'config' / 'audio_vision.rviz').read_text())
    displays = {d['Name']: d for d in rviz['Visualization Manager']['Displays']}
    topics = {name: d.get('Topic', {}).get('Value') for name, d in displays.items()}
    assert topics['GT depth'] == 'ground_truth/depth/image' and topics['Predicted depth'] == 'depth/image'
    assert topics['GT segmentation'] == 'ground_truth/segmentation/color'
    assert topics['Predicted segmentation'] == 'segmentation/color'
    assert displays['Predicted points']['Class'] == 'rviz_default_plugins/PointCloud2'
    assert topics['Predicted points'] == 'depth/points'
    assert rviz['Visualization Manager']['Global Options']['Fixed Frame'] == 'audio_array'


def _load_launch_module():
    spec = importlib.util.spec_from_file_location('perceive_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nodes_for(module, **args):
    from launch import LaunchContext
    from launch_ros.actions import Node
    ld = module.generate_launch_description()
    context = LaunchContext()
    for entity in ld.entities:
        if type(entity).__name__ == 'DeclareLaunchArgument':
            entity.visit(context)
    for name, value in args.items():
        context.launch_configurations[name] = value
    opaque = [e for e in ld.entities if type(e).__name__ == 'OpaqueFunction'][0]
    (group,) = opaque.execute(context)
    return [e for e in group.get_sub_entities() if isinstance(e, Node)], group


def test_launch_description_with_launch_ros():
    pytest.importorskip('launch_ros')
    launch = pytest.importorskip('launch')
    if not hasattr(launch, 'LaunchDescription'):
        pytest.skip('the importable `launch` is not ROS 2 launch')
    module = _load_launch_module()
    names = [e.name for e in module.generate_launch_description().entities
             if type(e).__name__ == 'DeclareLaunchArgument']
    assert names == ['use_sim', 'params_file', 'model_dir', 'namespace', 'rviz']

    nodes, _ = _nodes_for(module)
    executables = sorted(n.node_executable for n in nodes)
    assert executables == ['perception_node', 'rviz2', 'simulator_node', 'static_transform_publisher']

    nodes, _ = _nodes_for(module, use_sim='false', rviz='false', model_dir='/models', namespace='robot1')
    assert sorted(n.node_executable for n in nodes) == ['audio_capture_node', 'perception_node',
                                                        'static_transform_publisher']


def test_launch_quaternion_is_the_body_to_optical_rotation():
    pytest.importorskip('launch_ros')
    launch = pytest.importorskip('launch')
    if not hasattr(launch, 'LaunchDescription'):
        pytest.skip('the importable `launch` is not ROS 2 launch')
    from audio_vision.ros.conversions import BODY_TO_OPTICAL_QUATERNION
    module = _load_launch_module()
    np.testing.assert_allclose([float(v) for v in module.BODY_TO_OPTICAL_QUATERNION], BODY_TO_OPTICAL_QUATERNION)
