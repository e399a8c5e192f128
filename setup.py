# SPDX-License-Identifier: Apache-2.0
"""ament_python package: `colcon build` on a ROS 2 install, or `pip install -e .` in a venv."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'audio_vision'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    # message definitions shipped as data (audio_common_msgs, for reading and writing bags with rosbags)
    package_data={'audio_vision.bag': ['definitions/*/msg/*.msg', 'definitions/*/README.md']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.launch.py')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml') + glob('config/*.rviz')),
        ('share/' + PACKAGE + '/models', glob('models/*.pt') + glob('models/*.md') + glob('models/*.json')),
    ],
    # ROS dependencies come from package.xml (rosdep); pip dependencies from requirements.txt.
    install_requires=['setuptools'],
    python_requires='>=3.11',
    zip_safe=True,
    maintainer='audio_vision developers',
    maintainer_email='dev@audio-vision.invalid',
    description='Depth and semantic segmentation from a microphone array, for ROS 2.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'audio_vision = audio_vision.cli:main',
            'audio_capture_node = audio_vision.ros.audio_capture_node:main',
            'simulator_node = audio_vision.ros.simulator_node:main',
            'perception_node = audio_vision.ros.perception_node:main',
            'occupancy_node = audio_vision.ros.occupancy_node:main',
        ],
    },
)
