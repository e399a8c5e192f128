# SPDX-License-Identifier: Apache-2.0
"""`colcon build` of the package, as a ROS 2 user builds it (a workspace whose src/ holds the checkout;
the real install, not --symlink-install): the install space has the launch file, the configs, the models
and the node executables in lib/audio_vision/ (where `ros2 run` looks), and each executable runs from
there (`--help`: no ROS graph needed) with the installed package and its share directory.

Needs colcon (requirements-test.txt: colcon-common-extensions); skips without it."""
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytest.importorskip('colcon_core', reason='colcon is not installed: pip install colcon-common-extensions '
                                          '(requirements-test.txt)')
pytest.importorskip('colcon_ros', reason='colcon-ros (the ament_python build type) is not installed: '
                                         'pip install colcon-common-extensions (requirements-test.txt)')

ROOT = Path(__file__).resolve().parents[1]
EXECUTABLES = ('perception_node', 'simulator_node', 'audio_capture_node')


@pytest.fixture(scope='module')
def install(tmp_path_factory):
    ws = tmp_path_factory.mktemp('ws')
    (ws / 'src').mkdir()
    (ws / 'src' / 'audio_vision').symlink_to(ROOT, target_is_directory=True)
    proc = subprocess.run([sys.executable, '-m', 'colcon', 'build', '--packages-select', 'audio_vision',
                           '--event-handlers', 'console_direct-'],
                          cwd=ws, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return ws / 'install' / 'audio_vision'


def installed_env(prefix: Path) -> dict:
    """What `source install/setup.bash` sets for this package: its Python path and the ament index."""
    purelib = Path(sysconfig.get_path('purelib', vars={'base': str(prefix), 'platbase': str(prefix)}))
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(purelib)] + [p for p in [env.get('PYTHONPATH')] if p])
    env['AMENT_PREFIX_PATH'] = os.pathsep.join([str(prefix)] + [p for p in [env.get('AMENT_PREFIX_PATH')] if p])
    return env


def test_install_space_has_launch_configs_models(install):
    share = install / 'share' / 'audio_vision'
    assert (share / 'package.xml').is_file()
    assert (share / 'launch' / 'perceive.launch.py').is_file()
    for name in ('perception.yaml', 'simulator.yaml', 'audio_capture.yaml', 'simulation.yaml', 'audio_vision.rviz'):
        assert (share / 'config' / name).is_file(), name
    for name in ('depth.pt', 'segmentation.pt'):
        assert (share / 'models' / name).is_file(), name
    assert (install / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'audio_vision').is_file()


@pytest.mark.parametrize('executable', EXECUTABLES)
def test_installed_executable_runs(install, executable):
    path = install / 'lib' / 'audio_vision' / executable
    assert path.is_file() and os.access(path, os.X_OK)
    proc = subprocess.run([str(path), '--help'], cwd=install.parent.parent, env=installed_env(install),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f'usage: {executable}') and 'parameters' in proc.stdout
    assert 'Traceback' not in proc.stderr


def test_installed_package_uses_its_share_directory(install):
    code = ('import audio_vision, audio_vision.paths as p; '
            'print(audio_vision.__file__); print(p.default_model_dir()); print(p.config_dir())')
    proc = subprocess.run([sys.executable, '-c', code], cwd=install.parent.parent, env=installed_env(install),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    module, models, config = proc.stdout.split('\n')[:3]
    assert Path(module).is_relative_to(install)          # the installed copy, not the source tree
    assert Path(models) == install / 'share' / 'audio_vision' / 'models'
    assert Path(config) == install / 'share' / 'audio_vision' / 'config'
