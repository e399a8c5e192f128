# SPDX-License-Identifier: Apache-2.0
"""package.xml: every dependency key resolves with rosdep on the supported distros, and the pip-only
dependencies stay pinned in requirements.txt.

A key resolves when it is a released ROS package of the distro, or a top-level key of rosdistro's
base.yaml / python.yaml with an entry for the distro's Ubuntu release. The data (a copy of rosdistro,
see its README) is looked up in ``$AUDIO_VISION_ROSDEP_REFERENCE`` or ``../shared/reference/rosdep``
next to the checkout; the resolution tests skip (with that reason) where it is absent."""
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_XML = ROOT / 'package.xml'
REFERENCE = Path(os.environ.get('AUDIO_VISION_ROSDEP_REFERENCE', ROOT.parent / 'shared' / 'reference' / 'rosdep'))
#: ROS distro -> the Ubuntu release its binaries are built for (REP 2000)
DISTROS = {'humble': 'jammy', 'jazzy': 'noble', 'kilted': 'noble'}
DEPEND_TAGS = ('depend', 'build_depend', 'buildtool_depend', 'exec_depend', 'test_depend', 'build_export_depend')


def dependency_keys() -> dict[str, str]:
    """Map key -> tag of every dependency in package.xml."""
    root = ET.parse(PACKAGE_XML).getroot()
    return {e.text.strip(): e.tag for tag in DEPEND_TAGS for e in root.iter(tag)}


@pytest.fixture(scope='module')
def rosdep_data():
    files = [REFERENCE / n for n in ('base.yaml', 'python.yaml', *(f'{d}-packages.txt' for d in DISTROS))]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        pytest.skip(f'rosdep reference data not found in {REFERENCE} (missing {", ".join(missing)}); '
                    'set AUDIO_VISION_ROSDEP_REFERENCE to a folder with rosdistro base.yaml, python.yaml '
                    'and <distro>-packages.txt')
    rules = {}
    for name in ('base.yaml', 'python.yaml'):
        rules.update(yaml.safe_load((REFERENCE / name).read_text()))
    packages = {d: set((REFERENCE / f'{d}-packages.txt').read_text().split()) for d in DISTROS}
    return rules, packages


def ubuntu_rule(rules: dict, key: str, release: str):
    """What rosdep installs for ``key`` on Ubuntu ``release``: None when it cannot resolve it."""
    entry = (rules.get(key) or {}).get('ubuntu')
    if isinstance(entry, dict) and not ({'pip', 'apt', 'source'} & set(entry)):   # per release
        entry = entry.get(release, entry.get('*'))
    return entry or None


def pip_packages(rule) -> list[str]:
    return list(rule.get('pip', {}).get('packages', [])) if isinstance(rule, dict) else []


def test_package_xml_is_format_3_with_the_ament_python_build_type():
    root = ET.parse(PACKAGE_XML).getroot()
    assert root.get('format') == '3'
    assert root.find('name').text == 'audio_vision'
    assert root.find('export/build_type').text == 'ament_python'


@pytest.mark.parametrize('distro', sorted(DISTROS))
def test_every_dependency_key_resolves(rosdep_data, distro):
    rules, packages = rosdep_data
    unresolved = [key for key in dependency_keys()
                  if key not in packages[distro] and ubuntu_rule(rules, key, DISTROS[distro]) is None]
    assert not unresolved, f'rosdep cannot resolve on {distro} (Ubuntu {DISTROS[distro]}): {unresolved}'


def test_no_key_installs_an_unpinned_torch(rosdep_data):
    rules, _ = rosdep_data
    for key in dependency_keys():
        for release in set(DISTROS.values()):
            pulled = {p.split('=')[0].split('<')[0].split('>')[0].lower() for p in
                      pip_packages(ubuntu_rule(rules, key, release))}
            assert not pulled & {'torch', 'torchvision'}, key
            assert ubuntu_rule(rules, key, release) != ['python3-torch'], key


def test_rviz2_is_optional():
    """Headless robots: rviz2 must not be a run dependency (the launch file starts it when installed)."""
    assert 'rviz2' not in dependency_keys()


def test_torch_is_pinned_in_requirements():
    lines = [ln.split('#')[0].strip() for ln in (ROOT / 'requirements.txt').read_text().splitlines()]
    torch = [ln for ln in lines if re.match(r'torch\b', ln)]
    assert torch == ['torch==2.13.0']


def test_python_modules_the_nodes_import_have_a_key():
    """The ROS message packages imported by the package's modules are declared."""
    imported = set()
    for path in (ROOT / 'audio_vision').rglob('*.py'):
        imported |= set(re.findall(r'^\s*(?:from|import) (\w+_msgs|rclpy|rcl_interfaces|tf2_ros|launch_ros|'
                                   r'sensor_msgs_py|cv_bridge|ament_index_python)\b', path.read_text(), re.M))
    undeclared = imported - set(dependency_keys())
    assert not undeclared, undeclared
