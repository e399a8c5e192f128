# SPDX-License-Identifier: Apache-2.0
"""perception_node: audio frames in, depth and semantic segmentation images out.

Subscribes ``audio/frames`` (sensor-data QoS; ``audio_msg_type: image``, 32FC1 Image frames) or, with
``audio_msg_type: audio_common``, ``audio_stamped`` (``audio_common_msgs/AudioDataStamped``, interleaved PCM as
ROS 2's audio_capture publishes it) + the latched ``audio_info`` (``AudioInfo``: channels, rate, sample format);
both are decoded by :mod:`audio_vision.core.stream.codec`, as bags are. It validates every frame, assembles analysis
windows in a ring buffer (:mod:`audio_vision.core.stream.windowing`) and runs the model (:class:`AudioToVision`) on a
worker thread, never in the subscription callback. The inference queue is bounded and the latest
window wins: when it is full the oldest waiting window is dropped and counted.

Outputs (reliable QoS, stamped with the END of the analysis window, frame = camera optical frame):
``depth/image`` (32FC1 m, NaN invalid) + ``depth/camera_info``, ``segmentation/image`` (mono8 class ids)
+ ``segmentation/camera_info``, ``segmentation/color`` (rgb8), optionally ``depth/points``
(PointCloud2), and ``/diagnostics`` every ``diagnostics_period_s``. The images go out first; the colour view,
points and confidence are computed only while something subscribes to them.
"""
from __future__ import annotations

import collections
import os
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from audio_vision.core.inference.confidence import DEFAULT_KIND as DEFAULT_CONFIDENCE_KIND
from audio_vision.core.inference.inference_queue import InferenceQueue
from audio_vision.core.stream import codec
from audio_vision.core.stream.windowing import ALIGNMENTS, NS_PER_S, FrameError, Window
from audio_vision.paths import default_model_dir
from audio_vision.ros import conversions as conv
from audio_vision.ros.diagnostics import TopicStatus, diagnostic_array
from audio_vision.ros.lifecycle import ShellNode, StartupError, run_node
from audio_vision.ros.parameters import Param, declare_parameters, live_parameters
from audio_vision.ros.pose_source import PoseSource, pose_params
from audio_vision.runtime.drive import DriveOdometry
from audio_vision.runtime.perception_config import (IMAGE_FORMATS, MODALITIES, ConfigError, PerceptionConfig,
                                                    check_parameters, output_images, wants_confidence)
from audio_vision.runtime.perception_stats import LayoutStats, PerceptionStats

NODE_NAME = 'perception_node'
#: audio_msg_type values: sensor_msgs/Image audio frames, or audio_common_msgs/AudioDataStamped + AudioInfo
AUDIO_MSG_TYPES = ('image', 'audio_common')

PARAMS = [
    Param('model_dir', str(default_model_dir()),
          "directory holding the model checkpoints (depth.pt, segmentation.pt); '' = the shipped models",
          why='the model is loaded once at start-up (seconds); restart the node to load another'),
    Param('modalities', list(MODALITIES), 'modalities to predict and publish: depth and/or segmentation'),
    Param('device', 'cpu', "inference device, e.g. 'cpu', 'cuda', 'cuda:0'"),
    Param('backend', '', "inference backend; '' = the model's default"),
    Param('window_s', 0.0, "analysis window in seconds; 0 = the model's window (any other value must "
                           'equal it)', range=(0.0, 60.0)),
    Param('hop_s', 0.0, "time between the starts of consecutive analysis windows in seconds; 0 = the "
                        "model's hop (its feature config)", range=(0.0, 60.0)),
    Param('audio_msg_type', 'image', "audio input: 'image' = 32FC1 sensor_msgs/Image frames on audio/frames; "
                                     "'audio_common' = audio_common_msgs/AudioDataStamped on audio_stamped + its "
                                     'AudioInfo on audio_info (ROS 2 audio_capture, format wave; needs '
                                     'ros-<distro>-audio-common-msgs)', choices=AUDIO_MSG_TYPES,
          why='the audio subscription is created at start-up; restart the node to change it'),
    Param('window_alignment', 'hop', "where analysis windows end: 'hop' = every hop_s on the stream's sample grid "
                                     "(as dataset from-bag assembles them); 'frame' = at the newest sample when a "
                                     'frame reaches the next hop point (no wait for the rest of the frame: lower '
                                     'latency when frames do not divide the hop; the interval jitters by up to '
                                     'one frame)', choices=ALIGNMENTS),
    Param('array_frame_id', 'audio_array', 'frame_id expected on audio/frames (the array frame)'),
    Param('accept_any_frame_id', False, 'accept audio frames of any frame_id; false: frames whose frame_id is '
                                        'not array_frame_id are dropped and counted'),
    Param('camera_frame_id', 'audio_camera_optical', 'frame_id of the outputs (REP 103 optical frame)'),
    Param('qos_depth', 5, 'history depth of the output publishers (reliable)', range=(1, 1000)),
    Param('input_qos_depth', 10, 'history depth of the audio/frames subscription (sensor-data QoS)',
          range=(1, 1000)),
    Param('queue_size', 1, 'analysis windows waiting for inference; when full the oldest is dropped',
          range=(1, 64), read_only=False),
    Param('min_chunk_samples', 16, 'smallest accepted audio frame, in samples', range=(1, 1 << 20)),
    Param('max_chunk_samples', 48000, 'largest accepted audio frame, in samples', range=(1, 1 << 20)),
    Param('stamp_tolerance_s', 0.002, 'allowed deviation of a frame stamp from where the stream expects it '
                                      '(the end of the newest frame, or a hole a late frame fills)',
          range=(0.0, 1.0)),
    Param('publish_points', False, 'also publish depth/points (PointCloud2 in the optical frame; computed only '
                                   'while it has a subscriber)', read_only=False),
    Param('points_stride', 1, 'pixel stride of depth/points', range=(1, 64), read_only=False),
    Param('diagnostics_period_s', 1.0, 'period of /diagnostics', range=(0.1, 60.0)),
    Param('warmup', True, 'run one inference at start-up so the first real window is not slow'),
    Param('publish_confidence', False, 'also publish depth/confidence and segmentation/confidence (32FC1 in '
                                       '[0, 1], same header as the image; runs the eager engine, only while a '
                                       'confidence topic has a subscriber or min_confidence > 0)'),
    Param('confidence_kind', DEFAULT_CONFIDENCE_KIND, 'per-pixel confidence signal: echo_range, decoder, latent, '
                                                      'margin or posterior (audio_vision.core.inference.confidence)'),
    Param('bodies_on_floor', True, 'with both modalities and a model reading the layout prior, stand the bodies the '
                                   'segmentation draws on the floor the sonar front-end measured: their depth no '
                                   'farther than the floor where they meet it (docs/RESULTS.md measures it)'),
    Param('odom_frame_id', 'odom', 'fixed frame the room is fused in over a drive (a model with layout_fusion): '
                                   'the odometry\'s frame (pose_source tf: the TF parent looked up)'),
    *pose_params('window', choices=('auto', 'tf', 'odom', 'none')),
    Param('fusion_max_step_m', 1.0, 'a model with layout_fusion: a step longer than this between consecutive '
                                    "windows' poses restarts the drive (an odometry reset, a new room)",
          range=(0.01, 100.0)),
    Param('min_confidence', 0.0, 'depth pixels with a confidence below this are published as NaN '
                                 '(REP 118 invalid); 0 = off', range=(0.0, 1.0), read_only=False),
    Param('sim_config', '', "simulation YAML whose chirp the audio carries (simulator node, capture node with "
                            "chirp: true); the node refuses to start when the model matched-filters another "
                            "chirp; '' = not checked (and the layout assumes the built-in chirp)"),
    Param('publish_layout', False, 'also measure the room from the chirp\'s echoes (sonar front-end, no learning; '
                                   'docs/SONAR.md) and publish layout/depth (32FC1, the image\'s header) and '
                                   'layout/planes (visualization_msgs/MarkerArray, array frame; with a model that '
                                   'fuses the room over the drive, of that room); on its own thread, '
                                   'latest window wins, never delaying the images; with a model that reads the '
                                   'layout prior, each window is measured once for both',
          why='the front-end is built at start-up; restart the node to switch it'),
    Param('sonar_calibration', '', "the chirp speaker's measured response for the layout and for a model whose input "
                                   "holds the layout prior (python -m audio_vision calibrate; docs/SONAR.md, "
                                   "\"Calibration\"); '' = an ideal speaker",
          why='the front-end is built at start-up; restart the node to switch it'),
]


def load_model(model_dir: str, modalities, device: str, backend: str, calibration: str = '',
               bodies_on_floor: bool = True):
    """Load the model for the node (``calibration``: the speaker's response file for a model with the layout
    prior, '' = ideal); any failure becomes a one-line :class:`StartupError`."""
    from audio_vision.core.model.checkpoint import CheckpointError
    from audio_vision.core.inference.pipeline import AudioToVision
    kwargs = {'backend': backend} if backend else {}  # '' = the loader's default
    kwargs['bodies_on_floor'] = bodies_on_floor
    if calibration:
        from audio_vision.sonar.calibration import SpeakerCalibration
        try:
            kwargs['calibration'] = SpeakerCalibration.load(calibration)
        except (OSError, ValueError) as exc:
            raise StartupError(f"parameter 'sonar_calibration': {exc}") from None
    try:
        return AudioToVision.load(model_dir, modalities=tuple(modalities), device=device, **kwargs)
    except CheckpointError as exc:
        raise StartupError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - e.g. unknown device / backend: still one line
        raise StartupError(f'cannot load the model from {model_dir}: {type(exc).__name__}: {exc}') from None


def audio_common_types():
    """(AudioDataStamped, AudioInfo) of the installed ``audio_common_msgs``; :class:`StartupError` saying what
    to install when it is not importable."""
    try:
        from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    except ImportError as exc:
        distro = os.environ.get('ROS_DISTRO') or '<distro>'
        raise StartupError(f"parameter 'audio_msg_type' is 'audio_common' but audio_common_msgs cannot be imported "
                           f'({exc}): install ros-{distro}-audio-common-msgs (sudo apt install '
                           f'ros-{distro}-audio-common-msgs, or rosdep install) and source the ROS setup, '
                           "or use audio_msg_type 'image'") from None
    return AudioDataStamped, AudioInfo


def check_chirp(features, sim_config: str) -> None:
    """Refuse to start (:class:`StartupError`) when the model matched-filters another chirp than the one
    ``sim_config`` (a simulation YAML) emits."""
    from audio_vision.core.features.chirp import check_chirp_match
    from audio_vision.simulation.config import SimConfig
    try:
        chirp = SimConfig.from_yaml(sim_config).chirp
        check_chirp_match(features, chirp, f"parameter 'sim_config' ({sim_config})")
    except FileNotFoundError:
        raise StartupError(f"parameter 'sim_config': file {sim_config} not found") from None
    except (ValueError, TypeError) as exc:     # ChirpMismatch, or a broken simulation YAML
        raise StartupError(f"parameter 'sim_config': {exc}") from None


def layout_estimator(model, sim_config: str, calibration: str = ''):
    """The sonar front-end for the emitter's chirp and speaker (``sim_config``'s chirp section, the built-in
    one when ''), the model's array and the speaker's ``calibration`` file ('' = ideal); :class:`StartupError`
    when it cannot measure this stream."""
    from audio_vision.simulation.config import SimConfig
    from audio_vision.sonar import LayoutEstimator, SonarConfig
    from audio_vision.sonar.calibration import SpeakerCalibration
    try:
        sim = SimConfig.from_yaml(sim_config) if sim_config else SimConfig()
        cfg = SonarConfig.from_emitter(sim.chirp, int(model.sample_rate))
    except FileNotFoundError:
        raise StartupError(f"parameter 'sim_config': file {sim_config} not found") from None
    except (ValueError, TypeError) as exc:     # no chirp, or a chirp the front-end cannot use
        raise StartupError(f"parameter 'publish_layout': {exc}") from None
    try:
        speaker = SpeakerCalibration.load(calibration) if calibration else None
        if speaker is not None:
            speaker.check(cfg)
    except (OSError, ValueError) as exc:
        raise StartupError(f"parameter 'sonar_calibration': {exc}") from None
    if model.window_samples < cfg.period_samples:
        raise StartupError(f"parameter 'publish_layout': the model's window ({model.window_samples} samples) is "
                           f'shorter than one chirp period ({cfg.period_samples}); the layout needs a whole period')
    return LayoutEstimator(cfg, model.spec.array.mic_positions, speaker)


class LayoutOutput:
    """The layout's stage of the node: front-end, its queue (latest window wins), publishers, statistics."""

    def __init__(self, node: 'PerceptionNode', qos: QoSProfile):
        from visualization_msgs.msg import MarkerArray
        self.estimator = layout_estimator(node.model, node.params['sim_config'], node.params['sonar_calibration'])
        # A model reading the layout prior measures each window's room already: where its front-end measures
        # exactly as this one, its measurements are shared, and the front-end runs once per window, not twice.
        shared = node.model.shared_layout_estimates()
        self.shared = shared if shared is not None and shared.estimator.measures_like(self.estimator) else None
        self.measure = self.estimator.estimate if self.shared is None else self.shared.estimate
        self.depth_pub = node.create_publisher(Image, 'layout/depth', qos)
        self.planes_pub = node.create_publisher(MarkerArray, 'layout/planes', qos)
        self.stats = LayoutStats()
        self.stats.shared_with_features = self.shared is not None
        #: the latest layouts measured, (window end stamp ns, RoomLayout): for a consumer in the same process (the
        #: demo scores them); 1024 windows are 4 min at the default hop, a few hundred kB
        self.recent: collections.deque = collections.deque(maxlen=1024)
        # with a model that fuses the room over the drive, the topics show the room it reads: the windows this
        # queue measured fused with their poses as the model's are (its own drive: the queue drops windows)
        self.fusion = self.odometry = None
        if node.drive is not None:
            from audio_vision.sonar.fusion import DriveFusion
            features = node.model.feature_config
            self.fusion = DriveFusion(features.layout_fusion_keyframe_m, features.layout_fusion_keyframes)
            self.odometry = DriveOdometry(node.params['fusion_max_step_m'], node.params['max_pose_age_s'])
        self.queue = InferenceQueue(node._measure_layout, 1, 'perception_layout', on_error=node._layout_failed,
                                    start=False)

    def snapshot(self) -> dict:
        return self.stats.snapshot(self.queue.dropped, self.queue.errors)


def checked_model(params: dict):
    """The model, loaded once the checks that do not need it passed (the parameters, audio_common_msgs when
    asked for): a refused start names the first problem before seconds go to loading. :class:`StartupError`
    saying what to do otherwise."""
    try:
        modalities = check_parameters(params)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    if params['audio_msg_type'] == 'audio_common':
        audio_common_types()
    return load_model(params['model_dir'] or str(default_model_dir()), modalities, params['device'],
                      params['backend'], params['sonar_calibration'], params['bodies_on_floor'])


def stream_config(params: dict, model) -> PerceptionConfig:
    """The model's chirp checked against ``sim_config``, the stream's :class:`PerceptionConfig`, then one warm-up
    inference (``warmup``); :class:`StartupError` saying what to do otherwise."""
    if params['sim_config']:
        check_chirp(model.feature_config, params['sim_config'])
    try:
        config = PerceptionConfig.from_parameters(params, model)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    if params['warmup']:
        model.predict(np.zeros((model.num_channels, config.window), np.float32))
    return config


class PerceptionNode(ShellNode):

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)

    # ------------------------------------------------------------ set-up

    def _setup(self):
        p = self.params = declare_parameters(self, PARAMS)
        self.model = checked_model(p)
        self.config = stream_config(p, self.model)
        self.statistics = PerceptionStats()     # shared by the subscription callbacks, the workers, the timer
        self.assembler = self.config.assembler()
        self._frame_sizes = set()               # frame sizes seen (a note on latency for each new one)
        self._pcm: codec.PcmLayout | FrameError | None = None      # audio_common: the AudioInfo's layout
        self._with_confidence = wants_confidence(p)
        self._rays = None                       # the camera's pixel rays, for depth/points

        out_qos = self._out_qos = QoSProfile(depth=p['qos_depth'], reliability=ReliabilityPolicy.RELIABLE)
        self.pubs = {}          # <modality> (its image), <modality>_info, points, segmentation_color -> publisher
        self.conf_pubs = {}     # <modality> -> its confidence publisher (publish_confidence)
        for m in self.config.modalities:
            self.pubs[m] = self.create_publisher(Image, f'{m}/image', out_qos)
            self.pubs[f'{m}_info'] = self.create_publisher(CameraInfo, f'{m}/camera_info', out_qos)
            if p['publish_confidence']:
                self.conf_pubs[m] = self.create_publisher(Image, f'{m}/confidence', out_qos)
        if p['publish_points']:
            self._enable_points()
        if 'segmentation' in self.pubs:
            self.pubs['segmentation_color'] = self.create_publisher(Image, 'segmentation/color', out_qos)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        # diagnostic_updater-style health of the main output (what topic monitors and aggregators read);
        # hardware id = the array being perceived
        main_out = self.pubs[self.config.modalities[0]]
        self.output_status = TopicStatus(f'{self.get_name()}: {main_out.topic_name} topic status',
                                         p['array_frame_id'], self.config.rate_hz, self.config.rate_hz)
        # a model that fuses the room over the drive reads each window's pose (odometry or TF + the mount)
        self.poses = self.drive = None
        if self.model.fuses_layout:
            self.poses = PoseSource(self, p, p['odom_frame_id'])
            self.drive = DriveOdometry(p['fusion_max_step_m'], p['max_pose_age_s'])
        self.layout = LayoutOutput(self, out_qos) if p['publish_layout'] else None
        # inference off the callbacks: bounded queue, latest window wins
        self.inference = InferenceQueue(self._infer, p['queue_size'], 'perception_inference',
                                        on_error=self._inference_failed, start=False)

        in_qos = QoSProfile(depth=p['input_qos_depth'], reliability=qos_profile_sensor_data.reliability,
                            durability=qos_profile_sensor_data.durability,
                            history=qos_profile_sensor_data.history)
        if p['audio_msg_type'] == 'image':
            self.sub = self.create_subscription(Image, 'audio/frames', self.on_frame, in_qos)
        else:
            data_type, info_type = audio_common_types()
            self.sub = self.create_subscription(data_type, 'audio_stamped', self.on_audio_data, in_qos)
            latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)   # audio_capture's audio_info
            self.info_sub = self.create_subscription(info_type, 'audio_info', self.on_audio_info, latched)
        self.diag_timer = self.create_timer(p['diagnostics_period_s'], self.publish_diagnostics)
        live_parameters(self, PARAMS, self._apply_parameters)
        for queue in self._queues():            # the workers last: everything they use exists
            queue.start()
        self.get_logger().info(self.config.describe(self.model.model_id))
        if p['bodies_on_floor'] and not self.model.bodies_on_floor:
            self.get_logger().info('bodies_on_floor: inactive (it needs both modalities and a model reading the '
                                   'layout prior)')
        if self.poses is not None:
            self.get_logger().info(f'layout fused over the drive: poses from {self.poses.mode}'
                                   + (' (none: each window its room alone)' if self.poses.mode == 'none' else
                                      f" in '{p['odom_frame_id']}'"))
        if self.layout is not None:
            self.get_logger().info('layout: measured once per window, shared with the model\'s layout prior'
                                   if self.layout.shared is not None else
                                   'layout: its own sonar front-end (the model reads no layout prior, or measures '
                                   'with another configuration, array or calibration)')

    def _queues(self) -> list[InferenceQueue]:
        """The worker queues built so far (images, layout)."""
        layout = getattr(self, 'layout', None)
        return [q for q in (getattr(self, 'inference', None), layout and layout.queue) if q is not None]

    def _apply_parameters(self, changes: dict) -> None:
        """Run-time parameter changes (validated by parameters.live_parameters): take effect with the next
        window. The depth/points publisher is created the first time publish_points is switched on."""
        params = {**self.params, **changes}
        if params['publish_points']:
            self._enable_points()
        self._with_confidence = wants_confidence(params)
        self.inference.set_capacity(params['queue_size'])
        self.params = params      # one assignment: the worker sees the old or the new set, never a mix

    def _enable_points(self) -> None:
        """Create depth/points (once; at start-up or when publish_points is first switched on)."""
        if 'depth' in self.pubs and 'points' not in self.pubs:
            self._rays = self.model.camera.pixel_rays()
            self.pubs['points'] = self.create_publisher(PointCloud2, 'depth/points', self._out_qos)

    def destroy_node(self):
        stopped = True
        for queue in self._queues():
            stopped &= queue.close()
        model = getattr(self, 'model', None)
        if model is not None and stopped:           # not while it still infers
            model.close()
        return super().destroy_node()

    # ------------------------------------------------------------ input

    def on_frame(self, msg: Image) -> None:
        """Subscription callback: validate, buffer, enqueue completed windows. No inference here."""
        self.statistics.frames_in.tick()
        try:
            samples = conv.msg_to_audio(msg, self.config.spec)
        except FrameError as exc:
            self._invalid_frame(exc)
            return
        self._push(samples, msg)

    def on_audio_info(self, msg) -> None:
        """``audio_info`` callback (audio_common): the layout of the PCM that follows, checked against the model."""
        try:
            layout = codec.pcm_layout(msg)
            codec.check_pcm_layout(layout, self.config.spec)
        except FrameError as exc:
            self._pcm = exc
        except ValueError as exc:
            self._pcm = FrameError('encoding', str(exc))
        else:
            if layout != self._pcm:
                self.get_logger().info(f'audio_info: {layout.channels} ch @ {layout.sample_rate} Hz '
                                       f'{layout.sample_format}')
            self._pcm = layout
            return
        self.get_logger().error(f'audio_info: {self._pcm}; audio frames are dropped until a usable AudioInfo '
                                'arrives', throttle_duration_sec=5.0)

    def on_audio_data(self, msg) -> None:
        """``audio_stamped`` callback (audio_common): decode the PCM with the AudioInfo's layout, then as on_frame."""
        self.statistics.frames_in.tick()
        layout = self._pcm
        try:
            if layout is None:
                raise FrameError('encoding', 'no AudioInfo received on audio_info yet (channels, rate and sample '
                                             'format come from it)')
            if isinstance(layout, FrameError):
                raise layout
            samples = codec.pcm_samples(msg.audio.data, layout, self.config.spec)
        except FrameError as exc:
            self._invalid_frame(exc)
            return
        self._push(samples, msg)

    def _invalid_frame(self, exc: FrameError) -> None:
        self.statistics.invalid.add(exc.reason)
        self.get_logger().warning(f'dropping audio frame: {exc}', throttle_duration_sec=5.0)

    def _push(self, samples: np.ndarray, msg) -> None:
        """Buffer a validated frame (``msg`` gives its header) and enqueue the windows it completes."""
        windows = self.assembler.push(samples, conv.time_to_ns(msg.header.stamp), msg.header.frame_id)
        n = samples.shape[1]
        if n not in self._frame_sizes and len(self._frame_sizes) < 16:
            self._frame_sizes.add(n)
            note = self.config.chunk_note(n)
            if note:
                self.get_logger().info(note)
        if self.assembler.last_event == 'frame_id':
            self.get_logger().warning(f"dropping audio frames of frame '{msg.header.frame_id}': expected "
                                      f"'{self.params['array_frame_id']}' (accept_any_frame_id: false)",
                                      throttle_duration_sec=5.0)
        for w in windows:
            self.statistics.window_queued(self.inference.put(w))
            if self.layout is not None:
                self.layout.queue.put(w)

    # ------------------------------------------------------------ inference worker

    def _infer(self, window: Window) -> None:
        t0 = time.perf_counter()
        confidence = None
        pose, drive = self._window_pose(window)
        if self._needs_confidence():
            prediction, confidence = self.model.predict_with_confidence(window.audio, self.params['confidence_kind'],
                                                                        pose, drive)
        else:
            prediction = self.model.predict(window.audio, pose, drive)
        self.statistics.inference_latency.add(time.perf_counter() - t0)
        self.publish_prediction(prediction, window.end_ns, confidence)

    def _window_pose(self, window: Window, odometry=None) -> tuple[np.ndarray | None, int | None]:
        """The array's pose at the window's end and its drive as ``odometry`` (a :class:`DriveOdometry`; the
        images' by default) tells them, for a model that fuses the layout; else (None, None)."""
        odometry = odometry or self.drive
        if odometry is None:
            return None, None
        T, stamp = self.poses.pose(window.end_ns, self.params['array_frame_id'])
        return odometry.window(T, stamp, window.end_ns)

    def _inference_failed(self, exc: BaseException) -> None:
        """The inference queue's error handler: keep serving; reported in diagnostics."""
        error = self.statistics.inference_failed(exc)
        self.get_logger().error(f'inference failed: {error}', throttle_duration_sec=5.0)

    def _measure_layout(self, window: Window) -> None:
        """The layout queue's handler: measure the room in ``window``, publish its depth prior and planes (with a
        model that fuses the room over the drive, of the fused room it reads)."""
        from audio_vision.sonar import render_layout
        from audio_vision.sonar.render import plane_patches
        out = self.layout
        t0 = time.perf_counter()
        measured = layout = out.measure(window.audio)
        out.recent.append((window.end_ns, measured))
        if out.fusion is not None:        # the room the model reads: fused over the drive
            layout = out.fusion.fuse(measured, *self._window_pose(window, out.odometry))
        prior = render_layout(layout, self.model.camera, self.model.class_table)
        out.stats.measured(measured.failed, time.perf_counter() - t0)      # what the window's echoes gave
        header = conv.make_header(window.end_ns, self.params['camera_frame_id'])
        out.depth_pub.publish(conv.array_to_image(prior.depth, '32FC1', header))
        array_header = conv.make_header(window.end_ns, self.params['array_frame_id'])
        out.planes_pub.publish(conv.layout_markers(plane_patches(layout), array_header, self.model.class_table))
        out.stats.outputs += 1

    def _layout_failed(self, exc: BaseException) -> None:
        error = self.layout.stats.failed(exc)
        self.get_logger().error(f'layout failed: {error}', throttle_duration_sec=5.0)

    def _needs_confidence(self) -> bool:
        """Run the (slower) confidence path for this window: min_confidence masks depth, or a confidence topic
        has a subscriber (publish_confidence without one costs nothing)."""
        if not self._with_confidence:
            return False
        return self.params['min_confidence'] > 0 or any(_subscribed(pub) for pub in self.conf_pubs.values())

    def publish_prediction(self, prediction: dict, stamp_ns: int, confidence: dict | None = None) -> None:
        """Publish one window's outputs, the images first; derived outputs (points, colour, confidence) only
        when something subscribes to them."""
        header = conv.make_header(stamp_ns, self.params['camera_frame_id'])
        confidence = confidence or {}
        images = output_images(prediction, confidence, self.config.modalities, self.params['min_confidence'])
        for m, image in images.items():      # the images first (what consumers wait for), then what they derive
            self.pubs[m].publish(conv.array_to_image(image, IMAGE_FORMATS[m][1], header))
        camera = self.model.camera
        info = conv.camera_info_msg(camera.K, camera.width, camera.height, header)
        for m, image in images.items():
            self.pubs[f'{m}_info'].publish(info)
            if m in confidence and m in self.conf_pubs and _subscribed(self.conf_pubs[m]):
                self.conf_pubs[m].publish(conv.array_to_image(np.asarray(confidence[m], np.float32), '32FC1', header))
            self._publish_view(m, image, header)
        now_ns = self.get_clock().now().nanoseconds
        self.statistics.published((now_ns - stamp_ns) / NS_PER_S)
        self.output_status.tick(now_ns, stamp_ns)

    def _publish_view(self, modality: str, image, header) -> None:
        """A modality's derived view, while it has a subscriber: depth/points, segmentation/color."""
        if modality == 'depth':
            points = self.pubs.get('points')
            if points is not None and self.params['publish_points'] and _subscribed(points):
                points.publish(conv.points_to_cloud(
                    conv.depth_to_points(image, self._rays, self.params['points_stride']), header))
        elif _subscribed(self.pubs['segmentation_color']):      # segmentation
            self.pubs['segmentation_color'].publish(
                conv.array_to_image(self.model.class_table.colorize(image), 'rgb8', header))

    # ------------------------------------------------------------ diagnostics

    def stats(self) -> dict:
        """A snapshot of the counters reported in /diagnostics (totals since start-up)."""
        return self.statistics.snapshot(self.assembler.counts,
                                        self.layout_stats() if self.layout is not None else None,
                                        self.fusion_stats() if self.drive is not None else None)

    def layout_stats(self) -> dict:
        return self.layout.snapshot()

    def fusion_stats(self) -> dict:
        return {'pose_source': self.poses.mode, 'posed_windows': self.drive.posed,
                'restarts': self.drive.restarts.snapshot()}

    def publish_diagnostics(self) -> None:
        level, message, values = self.statistics.report(self.stats(), self.model.model_id, self.config.device,
                                                        self.layout.stats if self.layout is not None else None)
        now = self.get_clock().now()
        self.diag_pub.publish(diagnostic_array(now.to_msg(), f'{self.get_name()}: audio perception',
                                               self.params['array_frame_id'], getattr(DiagnosticStatus, level),
                                               message, values, [self.output_status.status(now.nanoseconds)]))


def _subscribed(publisher) -> bool:
    """Whether any subscription (in this process or another, a bag recorder included) matches ``publisher``."""
    return publisher.get_subscription_count() > 0


def main(args=None):
    return run_node(PerceptionNode, args, NODE_NAME)


if __name__ == '__main__':
    raise SystemExit(main())
