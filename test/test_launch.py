# SPDX-License-Identifier: Apache-2.0
"""launch/perceive.launch.py and the files it loads. The node plan (launch arguments -> nodes, parameters,
frames, transforms) and the config files are checked everywhere; the launch description itself only where
`launch` and `launch_ros` are importable (a ROS 2 install)."""
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
                'audio_capture_node': 'audio_capture.yaml', 'occupancy_node': 'occupancy.yaml'}


DOCUMENTED_ARGUMENTS = ('source', 'use_sim_time', 'log_level', 'params_file', 'model_dir', 'sim_config',
                        'namespace', 'frame_prefix', 'array_frame', 'camera_frame', 'parent_frame', 'x', 'y', 'z',
                        'roll', 'pitch', 'yaw', 'mapping', 'layout', 'sonar_calibration', 'rviz')


def test_launch_file_parses_and_declares_the_documented_arguments():
    """Without `launch`: the file is valid Python, imports `launch` only inside functions (so it loads
    anywhere), and its ARGUMENTS literal declares exactly the documented names."""
    tree = ast.parse(LAUNCH_FILE.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description' for n in tree.body)
    top_imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not [n for n in top_imports if 'launch' in ast.unparse(n)]
    (arguments,) = [n.value for n in tree.body if isinstance(n, ast.Assign)
                    and [t.id for t in n.targets if isinstance(t, ast.Name)] == ['ARGUMENTS']]
    names = tuple(ast.literal_eval(arguments)[i][0] for i in range(len(arguments.elts)))
    assert names == DOCUMENTED_ARGUMENTS
    for name, default, description in ast.literal_eval(arguments):
        assert isinstance(default, str) and description, name
    for name in DOCUMENTED_ARGUMENTS:    # each one is documented for users
        assert f'`{name}`' in (ROOT / 'docs' / 'ROS.md').read_text(), name


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
    assert topics['Map (mapping:=true)'] == 'map' and topics['Depth confidence'] == 'depth/confidence'
    assert displays['Map (mapping:=true)']['Topic']['Durability Policy'] == 'Transient Local'   # latched map
    assert topics['Predicted segmentation'] == 'segmentation/color'
    assert displays['Predicted points']['Class'] == 'rviz_default_plugins/PointCloud2'
    assert topics['Predicted points'] == 'depth/points'
    assert topics['Layout depth'] == 'layout/depth' and topics['Layout planes'] == 'layout/planes'
    assert displays['Layout planes']['Class'] == 'rviz_default_plugins/MarkerArray'
    assert rviz['Visualization Manager']['Global Options']['Fixed Frame'] == 'audio_array'


def _load_launch_module():
    spec = importlib.util.spec_from_file_location('perceive_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plan(module, rviz_installed=False, **args):
    return module.plan(args, config=ROOT / 'config', rviz_installed=lambda: rviz_installed)


def _by_name(specs):
    return {s['name']: s for s in specs}


def _param(spec, key):
    merged = {}
    for item in spec['parameters']:
        if isinstance(item, dict):
            merged.update(item)
    return merged.get(key)


def test_plan_sources():
    module = _load_launch_module()
    assert sorted(_by_name(_plan(module))) == ['audio_camera_tf', 'perception_node', 'simulator_node']
    assert sorted(_by_name(_plan(module, source='mic'))) == ['audio_camera_tf', 'audio_capture_node',
                                                             'perception_node']
    assert sorted(_by_name(_plan(module, source='none'))) == ['audio_camera_tf', 'perception_node']
    with pytest.raises(module.LaunchArgumentError, match='source'):
        _plan(module, source='microphone')
    with pytest.raises(module.LaunchArgumentError, match='unknown'):
        _plan(module, use_sim='false')     # the old argument is gone: refused, not silently ignored


def test_plan_mapping_adds_the_occupancy_node_and_a_driving_simulator():
    module = _load_launch_module()
    nodes = _by_name(_plan(module, mapping='true', namespace='r1'))
    assert sorted(nodes) == ['audio_array_mount_tf', 'audio_camera_tf', 'occupancy_node', 'perception_node',
                             'simulator_node']
    assert _param(nodes['occupancy_node'], 'map_frame_id') == 'r1/odom'
    assert _param(nodes['simulator_node'], 'trajectory') is True
    assert _param(nodes['simulator_node'], 'base_frame_id') == 'r1/base_link'
    assert nodes['audio_array_mount_tf']['arguments'][:4] == ['--frame-id', 'r1/base_link', '--child-frame-id',
                                                              'r1/audio_array']
    assert 'occupancy_node' not in _by_name(_plan(module))
    with pytest.raises(module.LaunchArgumentError, match='mapping'):
        _plan(module, mapping='maybe')


def test_plan_layout_on_by_default_and_switchable():
    module = _load_launch_module()
    assert _param(_by_name(_plan(module))['perception_node'], 'publish_layout') is True
    assert _param(_by_name(_plan(module, layout='false'))['perception_node'], 'publish_layout') is False
    with pytest.raises(module.LaunchArgumentError, match='layout'):
        _plan(module, layout='sometimes')


def test_plan_passes_a_speaker_calibration_and_refuses_a_missing_one(tmp_path):
    module = _load_launch_module()
    assert _param(_by_name(_plan(module))['perception_node'], 'sonar_calibration') is None
    cal = tmp_path / 'speaker.npz'
    cal.write_bytes(b'')
    perception = _by_name(_plan(module, sonar_calibration=str(cal)))['perception_node']
    assert _param(perception, 'sonar_calibration') == str(cal)
    with pytest.raises(module.LaunchArgumentError, match='sonar_calibration.*audio_vision calibrate'):
        _plan(module, sonar_calibration=str(tmp_path / 'missing.npz'))


def test_plan_frames_come_from_one_place():
    module = _load_launch_module()
    for source in ('sim', 'mic'):
        nodes = _by_name(_plan(module, source=source, array_frame='mic_array', camera_frame='mic_optical'))
        audio = nodes['simulator_node' if source == 'sim' else 'audio_capture_node']
        assert _param(audio, 'array_frame_id') == _param(nodes['perception_node'], 'array_frame_id') == 'mic_array'
        assert _param(nodes['perception_node'], 'camera_frame_id') == 'mic_optical'
        tf = nodes['audio_camera_tf']['arguments']
        assert tf[tf.index('--frame-id') + 1] == 'mic_array' and tf[tf.index('--child-frame-id') + 1] == 'mic_optical'
    assert _param(_by_name(_plan(module))['simulator_node'], 'publish_tf') is False   # one publisher of the TF
    for name, spec in _by_name(_plan(module)).items():       # and the YAML files cannot override the frames
        if name != 'audio_camera_tf':
            assert isinstance(spec['parameters'][-1], dict)


def test_plan_one_simulation_config_for_the_emitter_and_perception(tmp_path):
    """The chirp is configured once: the node that emits it and perception (which checks its model against
    it) get the same simulation YAML, after the YAML files so a params_file cannot split them."""
    module = _load_launch_module()
    default = str(ROOT / 'config' / 'simulation.yaml')
    mine = tmp_path / 'my_simulation.yaml'
    mine.write_text('chirp:\n  f_end: 7000.0\n')
    for source, emitter in (('sim', 'simulator_node'), ('mic', 'audio_capture_node')):
        for arg, expected in (({}, default), ({'sim_config': str(mine)}, str(mine))):
            nodes = _by_name(_plan(module, source=source, **arg))
            assert _param(nodes[emitter], 'sim_config') == _param(nodes['perception_node'], 'sim_config') == expected
            for name in (emitter, 'perception_node'):
                assert 'sim_config' in nodes[name]['parameters'][-1]
    bag = _by_name(_plan(module, source='none'))     # a bag: its chirp is unknown unless a file is named
    assert _param(bag['perception_node'], 'sim_config') is None
    assert _param(_by_name(_plan(module, source='none', sim_config=str(mine)))['perception_node'],
                  'sim_config') == str(mine)
    with pytest.raises(module.LaunchArgumentError, match='sim_config'):
        _plan(module, sim_config=str(tmp_path / 'missing.yaml'))


def test_launched_perception_refuses_a_chirp_the_model_does_not_matched_filter(tmp_path):
    """Graph-free: the start-up check perception_node runs on the launch plan's ``sim_config`` passes for the
    shipped model and config/simulation.yaml, and refuses an edited chirp with a line saying what to do."""
    pytest.importorskip('rclpy', reason='perception_node needs rclpy: pip install -r requirements-ros.txt')
    from audio_vision.core.model.checkpoint import load_checkpoint
    from audio_vision.ros.lifecycle import StartupError
    from audio_vision.ros.perception_node import check_chirp
    model = ROOT / 'models' / 'depth.pt'
    if not model.is_file():
        pytest.skip(f'no shipped model {model}')
    features = load_checkpoint(model).spec.features
    module = _load_launch_module()
    check_chirp(features, _param(_by_name(_plan(module))['perception_node'], 'sim_config'))
    data = yaml.safe_load((ROOT / 'config' / 'simulation.yaml').read_text())
    data['chirp']['f_end'] = float(data['chirp']['f_end']) - 500.0
    edited = tmp_path / 'simulation.yaml'
    edited.write_text(yaml.safe_dump(data))
    with pytest.raises(StartupError) as err:
        check_chirp(features, _param(_by_name(_plan(module, sim_config=str(edited)))['perception_node'], 'sim_config'))
    message = str(err.value)
    assert "parameter 'sim_config'" in message and str(edited) in message and '\n' not in message
    assert f"f_end {data['chirp']['f_end']!r} (emitted) vs chirp_f_end {features.chirp_f_end!r}" in message
    assert "set the `chirp` section of the simulation YAML" in message and 'or train the model' in message


def test_plan_mount_transform():
    module = _load_launch_module()
    assert 'audio_array_mount_tf' not in _by_name(_plan(module))        # no parent frame: no mount
    nodes = _by_name(_plan(module, parent_frame='base_link', x='0.1', y='-0.2', z='0.3', roll='0', pitch='0.5',
                           yaw='3.1416'))
    args = nodes['audio_array_mount_tf']['arguments']
    value = {args[i].lstrip('-'): args[i + 1] for i in range(0, args.index('--ros-args'), 2)}
    assert value['frame-id'] == 'base_link' and value['child-frame-id'] == 'audio_array'
    assert [float(value[k]) for k in ('x', 'y', 'z', 'roll', 'pitch', 'yaw')] == [0.1, -0.2, 0.3, 0.0, 0.5, 3.1416]
    with pytest.raises(module.LaunchArgumentError, match='yaw'):
        _plan(module, parent_frame='base_link', yaw='ninety')
    with pytest.raises(module.LaunchArgumentError, match='parent_frame'):
        _plan(module, parent_frame='audio_array')


def test_plan_two_robots_do_not_collide():
    module = _load_launch_module()
    frames, names = set(), set()
    for robot in ('robot1', 'robot2'):
        nodes = _plan(module, namespace=robot, parent_frame=f'{robot}/base_link')
        for spec in nodes:
            assert spec['namespace'] == robot
            names.add(f"/{spec['namespace']}/{spec['name']}")
            args = spec['arguments']
            if '--child-frame-id' in args:
                frames.add(args[args.index('--child-frame-id') + 1])
        assert _param(_by_name(nodes)['perception_node'], 'array_frame_id') == f'{robot}/audio_array'
    assert frames == {'robot1/audio_array', 'robot1/audio_camera_optical', 'robot2/audio_array',
                      'robot2/audio_camera_optical'}
    assert len(names) == 8    # 4 nodes each, all distinct
    explicit = _by_name(_plan(module, namespace='robot1', frame_prefix=''))
    assert _param(explicit['perception_node'], 'camera_frame_id') == 'audio_camera_optical'


def test_plan_sim_time_log_level_and_rviz():
    module = _load_launch_module()
    nodes = _plan(module, source='none', use_sim_time='true', log_level='DEBUG', model_dir='/models')
    assert all(_param(s, 'use_sim_time') is True for s in nodes)
    assert all(s['arguments'][-3:] == ['--ros-args', '--log-level', 'debug'] for s in nodes)
    assert _param(_by_name(nodes)['perception_node'], 'model_dir') == '/models'
    assert all(_param(s, 'use_sim_time') is False for s in _plan(module))
    with pytest.raises(module.LaunchArgumentError, match='log_level'):
        _plan(module, log_level='verbose')
    assert 'rviz2' not in _by_name(_plan(module, rviz='auto'))            # auto and not installed
    rviz = _by_name(_plan(module, rviz_installed=True, parent_frame='base_link'))
    assert rviz['rviz2']['arguments'][-2:] == ['-f', 'base_link']
    assert 'rviz2' not in _by_name(_plan(module, rviz='false'))
    assert 'rviz2' in _by_name(_plan(module, rviz='true'))
    for spec in nodes:
        for item in spec['parameters']:
            assert isinstance(item, dict) or Path(item).is_file(), item


def _launch_or_skip():
    pytest.importorskip('launch_ros')
    launch = pytest.importorskip('launch')
    if not hasattr(launch, 'LaunchDescription'):
        pytest.skip('the importable `launch` is not ROS 2 launch')


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
    return [e for e in opaque.execute(context) if isinstance(e, Node)]


def test_launch_description_with_launch_ros():
    _launch_or_skip()
    module = _load_launch_module()
    names = [e.name for e in module.generate_launch_description().entities
             if type(e).__name__ == 'DeclareLaunchArgument']
    assert tuple(names) == DOCUMENTED_ARGUMENTS

    nodes = _nodes_for(module, rviz='false')
    executables = sorted(n.node_executable for n in nodes)
    assert executables == ['perception_node', 'simulator_node', 'static_transform_publisher']

    nodes = _nodes_for(module, source='mic', rviz='false', model_dir='/models', namespace='robot1',
                       parent_frame='base_link')
    assert sorted(n.node_executable for n in nodes) == ['audio_capture_node', 'perception_node',
                                                        'static_transform_publisher', 'static_transform_publisher']


def test_launch_quaternion_is_the_body_to_optical_rotation():
    from audio_vision.core.frames import BODY_TO_OPTICAL_QUATERNION
    module = _load_launch_module()
    np.testing.assert_allclose([float(v) for v in module.BODY_TO_OPTICAL_QUATERNION], BODY_TO_OPTICAL_QUATERNION)
