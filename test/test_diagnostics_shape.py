# SPDX-License-Identifier: Apache-2.0
"""/diagnostics in the shape diagnostic_updater's monitors read: the perception node's output topic status
(frequency + time-stamp keys of ``TopicDiagnostic``) computed from a given clock. The live node's status
over DDS, on simulated time, is checked in test_ros_sim_time.py."""
import pytest

pytest.importorskip('diagnostic_msgs', reason='needs the ROS message packages: pip install -r requirements-ros.txt')

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

from audio_vision.ros.diagnostics import TopicStatus  # noqa: E402

NS = 1_000_000_000
FREQUENCY_KEYS = ['Events in window', 'Events since startup', 'Duration of window (s)', 'Actual frequency (Hz)',
                  'Target frequency (Hz)', 'Minimum acceptable frequency (Hz)', 'Maximum acceptable frequency (Hz)']
TIMESTAMP_KEYS = ['Earliest timestamp delay:', 'Latest timestamp delay:', 'Earliest acceptable timestamp delay:',
                  'Latest acceptable timestamp delay:', 'Late diagnostic update count:',
                  'Early diagnostic update count:', 'Zero seen diagnostic update count:']


def values(status):
    return {kv.key: kv.value for kv in status.values}


def test_topic_status_keys_levels_and_numbers():
    s = TopicStatus('perception_node: /depth/image topic status', 'audio_array', 4.0, 4.0, window_size=2)
    first = s.status(100 * NS)                     # nothing yet
    assert first.level == DiagnosticStatus.ERROR and first.message == 'No events recorded.'
    assert [kv.key for kv in first.values] == FREQUENCY_KEYS + TIMESTAMP_KEYS
    assert first.hardware_id == 'audio_array' and first.name.endswith('/depth/image topic status')
    for k in range(4):                              # 4 Hz for 1 s, each published 30 ms after its stamp
        t = 100 * NS + (k + 1) * NS // 4
        s.tick(t, t - 30_000_000)
    ok = s.status(101 * NS)
    v = values(ok)
    assert ok.level == DiagnosticStatus.OK and ok.message == 'Desired frequency met'
    assert (v['Events in window'], v['Events since startup'], v['Actual frequency (Hz)']) == ('4', '4', '4.000')
    assert v['Earliest timestamp delay:'] == v['Latest timestamp delay:'] == '0.030'
    assert v['Minimum acceptable frequency (Hz)'] == '3.600' and v['Target frequency (Hz)'] == '4.000'
    s.tick(101 * NS + NS // 2, 101 * NS + NS // 2 - 7 * NS)          # one, 7 s late: 5 events in 2 s
    late = s.status(102 * NS)
    v = values(late)
    assert late.level == DiagnosticStatus.ERROR and 'Frequency too low.' in late.message
    assert 'Timestamps too far in past seen.' in late.message
    assert v['Actual frequency (Hz)'] == '2.500' and v['Late diagnostic update count:'] == '1'
    assert v['Duration of window (s)'] == '2.000'   # the last window_size periods
    s.tick(102 * NS + 1, 0)
    assert values(s.status(103 * NS))['Zero seen diagnostic update count:'] == '1'
