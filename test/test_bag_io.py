# SPDX-License-Identifier: Apache-2.0
"""Bag I/O without a ROS graph: what `record` writes (topics, types, stamps, receive times, QoS, MCAP
validity), reading back, and one-line errors for bad bags."""
import shutil
import sqlite3

import numpy as np
import pytest

from audio_vision.bag import BagError
from audio_vision.bag import messages as m
from audio_vision.bag import schema
from audio_vision.bag.reader import BagReader
from audio_vision.bag.record import Segment, chunk_bounds, record_simulation, scene_durations, write_segments
from audio_vision.bag.writer import BagWriter
from audio_vision.cli import main as cli_main
from audio_vision.simulation.simulator import Simulator

START = 1_700_000_000 * 10**9
FS = 16000


@pytest.fixture(scope='module')
def sim():
    return Simulator()


@pytest.fixture(scope='module')
def sim_bag(tmp_path_factory, sim):
    path = tmp_path_factory.mktemp('io') / 'bag'
    summary = record_simulation(sim, path, 2.0, seed=3, scene_duration_s=1.0, start_ns=START, chunk_s=0.05,
                                gt_period_s=0.25, gap_s=0.1)
    return path, summary


def decoded(reader, topic):
    return [(msg.log_time_ns, reader.decode(msg)) for msg in reader.messages([topic])]


def test_recorded_topics_types_and_qos(sim_bag):
    path, summary = sim_bag
    meta = (path / 'metadata.yaml').read_text()
    assert 'storage_identifier: mcap' in meta and 'version: 9' in meta
    with BagReader(path) as r:
        assert r.storage == 'mcap'
        assert {t: i.msgtype for t, i in r.topics.items()} == {t: v[0] for t, v in schema.RECORDED_TOPICS.items()}
        qos = {t: i.qos[0] for t, i in r.topics.items()}
        assert qos['/audio/frames'].reliability.name == 'RELIABLE'      # as simulator_node offers it
        assert qos['/audio/frames'].durability.name == 'VOLATILE'
        assert qos['/ground_truth/depth/image'].reliability.name == 'RELIABLE'
        assert qos['/ground_truth/segmentation/color'].durability.name == 'TRANSIENT_LOCAL'
        assert qos['/tf_static'].durability.name == 'TRANSIENT_LOCAL'
        assert qos['/tf_static'].reliability.name == 'RELIABLE'
        # 2 scenes x 1 s in 0.05 s chunks; GT at 0, 0.25, ..., 1.0 s of each scene
        assert r.topics['/audio/frames'].count == 40
        assert r.topics['/ground_truth/depth/image'].count == 10
        assert r.start_ns == START
        assert r.end_ns == START + 2_100_000_000


def test_audio_stamps_receive_times_and_content(sim_bag, sim):
    path, _ = sim_bag
    scenes = [sim.record(sim.sample_scene(s), 1.0, s) for s in (3, 4)]
    with BagReader(path) as r:
        frames = decoded(r, '/audio/frames')
    starts = [START, START + 1_100_000_000]
    for k, (log_ns, msg) in enumerate(frames):
        scene, i = divmod(k, 20)
        assert (msg.header.frame_id, msg.encoding, msg.height, msg.width) == ('audio_array', '32FC1', 8, 800)
        assert msg.step == 4 * 800 and msg.is_bigendian == 0
        stamp = starts[scene] + i * 50_000_000
        assert m.stamp_ns(msg) == stamp
        assert log_ns == stamp + 50_000_000          # received when the chunk is complete
        np.testing.assert_array_equal(m.audio_samples(msg), scenes[scene][:, i * 800:(i + 1) * 800])


def test_ground_truth_and_tf(sim_bag, sim):
    path, _ = sim_bag
    gt = sim.render(sim.sample_scene(4))
    with BagReader(path) as r:
        depth = decoded(r, '/ground_truth/depth/image')
        info = decoded(r, '/ground_truth/depth/camera_info')
        seg = decoded(r, '/ground_truth/segmentation/image')
        tf = decoded(r, '/tf_static')
    assert [m.stamp_ns(x) for _, x in depth] == [t for t, _ in depth]     # received at their stamp
    assert [m.stamp_ns(x) for _, x in depth] == [m.stamp_ns(x) for _, x in info]   # same header
    assert all(x.header.frame_id == 'audio_camera_optical' for _, x in depth + info + seg)
    second = [x for _, x in depth if m.stamp_ns(x) >= START + 1_100_000_000]
    assert [m.stamp_ns(x) - START - 1_100_000_000 for x in second] == [k * 250_000_000 for k in range(5)]
    np.testing.assert_array_equal(m.depth_to_metres(second[0]), gt.depth)
    np.testing.assert_array_equal(m.labels_to_array(seg[-1][1]), gt.segmentation)
    np.testing.assert_allclose(m.camera_matrix(info[0][1]), gt.K)
    assert info[0][1].distortion_model == 'plumb_bob' and list(info[0][1].p[:3]) == list(gt.K[0])
    (t_log, tfm), = tf
    assert t_log == START
    t = tfm.transforms[0]
    assert (t.header.frame_id, t.child_frame_id) == ('audio_array', 'audio_camera_optical')
    q = t.transform.rotation
    assert (q.x, q.y, q.z, q.w) == (-0.5, 0.5, -0.5, 0.5)


def test_mcap_readable_by_mcap_tools(sim_bag):
    """The MCAP file alone (no metadata.yaml) is a valid ros2 MCAP: profile, schemas, QoS metadata."""
    mcap_reader = pytest.importorskip('mcap.reader', reason='needs mcap: pip install -r requirements-test.txt')
    path, _ = sim_bag
    with open(path / 'bag.mcap', 'rb') as f:
        reader = mcap_reader.make_reader(f)
        header = reader.get_header()
        summary = reader.get_summary()
        assert header.profile == 'ros2'
        schemas = {s.name: s.encoding for s in summary.schemas.values()}
        assert schemas['sensor_msgs/msg/Image'] == 'ros2msg'
        channels = {c.topic: c for c in summary.channels.values()}
        assert channels['/audio/frames'].message_encoding == 'cdr'
        assert 'reliability: reliable' in channels['/audio/frames'].metadata['offered_qos_profiles']
        assert summary.statistics.message_count == 91    # 1 tf + 40 audio + 5 ground-truth topics x 10
        n = sum(1 for _ in reader.iter_messages(topics=['/audio/frames']))
    assert n == 40
    with BagReader(path / 'bag.mcap') as r:            # a bare .mcap is a bag too
        assert r.topics['/audio/frames'].count == 40


def test_sqlite3_storage_and_cdr_compatible_with_rclpy(tmp_path, sim):
    path = tmp_path / 'db'
    record_simulation(sim, path, 0.5, seed=1, start_ns=START, storage='sqlite3')
    assert (path / 'db.db3').is_file()
    with BagReader(path) as r:
        assert r.storage == 'sqlite3'
        raw = next(r.messages(['/audio/frames']))
        info_raw = next(r.messages(['/ground_truth/depth/camera_info']))
        ours = r.decode(raw)
    serialization = pytest.importorskip('rclpy.serialization')
    from sensor_msgs.msg import CameraInfo, Image
    msg = serialization.deserialize_message(raw.data, Image)
    assert (msg.height, msg.width, msg.encoding, msg.header.frame_id) == (8, 800, '32FC1', 'audio_array')
    np.testing.assert_array_equal(np.frombuffer(bytes(msg.data), '<f4').reshape(8, 800), m.audio_samples(ours))
    info = serialization.deserialize_message(info_raw.data, CameraInfo)
    assert info.width == 64 and info.k[0] == pytest.approx(32.0)


def test_image_decoding_of_driver_layouts():
    depth_mm = np.array([[0, 1000], [2500, 65535]], np.uint16)
    msg = m.image(depth_mm, '16UC1', 0, 'cam')
    out = m.depth_to_metres(msg)
    np.testing.assert_array_equal(out, np.array([[np.nan, 1.0], [2.5, 65.535]], np.float32))
    # big-endian rows with padding
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    padded = np.zeros((2, 16), np.uint8)
    padded[:, :12] = arr.astype('>f4').view(np.uint8).reshape(2, 12)
    Image = m.typestore().types['sensor_msgs/msg/Image']
    msg = Image(header=m.header(0, 'x'), height=2, width=3, encoding='32FC1', is_bigendian=1, step=16,
                data=padded.ravel())
    np.testing.assert_array_equal(m.image_to_array(msg), arr)
    with pytest.raises(ValueError, match='encoding'):
        m.image_to_array(Image(header=m.header(0, 'x'), height=1, width=1, encoding='yuv422', is_bigendian=0,
                               step=2, data=np.zeros(2, np.uint8)))


def test_chunking_and_scene_split():
    assert chunk_bounds(1900, 800) == [(0, 800), (800, 1900)]          # 300-sample tail merged
    assert chunk_bounds(2000, 800) == [(0, 800), (800, 1600), (1600, 2000)]
    assert chunk_bounds(2100, 800) == [(0, 800), (800, 1600), (1600, 2100)]
    assert scene_durations(10, 5) == [5.0, 5.0]
    assert scene_durations(11, 5) == [5.0, 6.0]
    assert scene_durations(13, 5) == [5.0, 5.0, 3.0]
    assert scene_durations(3, None) == [3.0]


def test_segment_writer_without_gap_gives_the_boundary_instant_to_the_next_scene(tmp_path):
    seg = Segment(np.zeros((2, 1600), np.float32), np.ones((8, 8), np.float32), np.zeros((8, 8), np.uint8),
                  np.eye(3))
    s = write_segments(tmp_path / 'b', [seg, seg], FS, start_ns=0, chunk_samples=400, gt_period_s=0.05, gap_s=0)
    with BagReader(tmp_path / 'b') as r:
        stamps = [m.stamp_ns(x) for _, x in decoded(r, '/ground_truth/depth/image')]
    assert s.segment_starts_ns == [0, 100_000_000]
    assert stamps == [0, 50_000_000, 100_000_000, 150_000_000]   # 0.1 s belongs to scene 2 only


# ---------------------------------------------------------------- bad input

def run_cli(capsys, *argv):
    code = cli_main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize('command', [['replay'], ['dataset', 'from-bag']])
def test_bad_bags_give_one_line_errors(tmp_path, capsys, sim_bag, command):
    extra = ['--out', str(tmp_path / 'ds'), '--depth-topic', '/ground_truth/depth/image'] \
        if command[0] == 'dataset' else []
    missing = tmp_path / 'nope'
    code, err = run_cli(capsys, *command, str(missing), *extra)
    assert code == 2 and 'no such bag' in err and len(err.splitlines()) == 1

    corrupt = tmp_path / 'corrupt'
    shutil.copytree(sim_bag[0], corrupt)
    data = (corrupt / 'bag.mcap').read_bytes()
    (corrupt / 'bag.mcap').write_bytes(data[:len(data) // 3])          # truncated recording
    code, err = run_cli(capsys, *command, str(corrupt), *extra)
    assert code == 2 and len(err.splitlines()) == 1 and ('corrupt' in err or 'cannot read' in err), err

    garbage = tmp_path / 'garbage.mcap'
    garbage.write_bytes(b'not a bag at all' * 10)
    code, err = run_cli(capsys, *command, str(garbage), *extra)
    assert code == 2 and len(err.splitlines()) == 1 and str(garbage) in err

    empty = tmp_path / 'empty'
    with BagWriter(empty) as w:
        w.add_topic('/audio/frames', schema.IMAGE, schema.SENSOR_DATA_QOS)
    code, err = run_cli(capsys, *command, str(empty), *extra)
    assert code == 2 and 'no messages' in err and len(err.splitlines()) == 1
    assert not (tmp_path / 'ds').exists()


def _custom_bag(path, msgdef, storage='mcap'):
    with BagWriter(path, storage) as w:
        w._connections['/thing'] = w._writer.add_connection('/thing', 'my_pkg/msg/Thing', msgdef=msgdef,
                                                            rihs01='RIHS01_' + '0' * 64)
        w.counts['/thing'] = 0
        w.write_raw('/thing', b'\x00\x01\x00\x00\x07\x00\x00\x00', 1)


def test_unknown_message_types(tmp_path, capsys):
    _custom_bag(tmp_path / 'with_def', 'int32 x\n')
    with BagReader(tmp_path / 'with_def') as r:
        assert r.decode(next(r.messages())).x == 7      # the bag's own definition is used
    _custom_bag(tmp_path / 'no_def', '', storage='sqlite3')
    with BagReader(tmp_path / 'no_def') as r:
        with pytest.raises(BagError, match='unknown message type my_pkg/msg/Thing'):
            r.decode(next(r.messages()))
    code, err = run_cli(capsys, 'dataset', 'from-bag', str(tmp_path / 'no_def'), '--out', str(tmp_path / 'o'),
                        '--depth-topic', '/thing', '--audio-topic', '/thing')
    assert code == 2 and 'has type my_pkg/msg/Thing, expected sensor_msgs/msg/Image' in err


def test_record_cli(tmp_path, capsys):
    out = tmp_path / 'rec'
    code = cli_main(['record', '--out', str(out), '--duration', '0.5', '--seed', '2', '--storage', 'sqlite3',
                     '--start-time', '1700000000', '--quiet'])
    assert code == 0
    assert 'sqlite3' in capsys.readouterr().out
    with sqlite3.connect(out / 'rec.db3') as db:
        n = db.execute("select count(*) from messages m join topics t on m.topic_id = t.id "
                       "where t.name = '/audio/frames'").fetchone()[0]
    assert n == 10
    code, err = run_cli(capsys, 'record', '--out', str(out))
    assert code == 2 and 'exists already' in err
    code, err = run_cli(capsys, 'record', '--out', str(tmp_path / 'x'), '--duration', '0')
    assert code == 2 and '--duration' in err


def test_bag_directory_without_metadata_is_read_from_its_storage_file(tmp_path, sim_bag):
    killed = tmp_path / 'killed'
    shutil.copytree(sim_bag[0], killed)
    (killed / 'metadata.yaml').unlink()          # as after a recorder crash
    with BagReader(killed) as r:
        assert r.topics['/audio/frames'].count == 40
        assert r.topics['/audio/frames'].qos[0].reliability.name == 'RELIABLE'   # from the MCAP channel


def test_writer_makes_missing_parent_folders_and_refuses_a_file_as_parent(tmp_path):
    """`record --out bags/sim` on a fresh clone: bags/ is created; a file where a folder should be is refused."""
    nested = tmp_path / 'bags' / 'today' / 'sim'
    with BagWriter(nested) as w:
        w.add_topic('/audio/frames', schema.IMAGE, schema.SENSOR_DATA_QOS)
    assert nested.is_dir() and (nested / 'metadata.yaml').exists()
    (tmp_path / 'a_file').write_text('x')
    with pytest.raises(BagError, match='is not a directory'):
        BagWriter(tmp_path / 'a_file' / 'sim')
