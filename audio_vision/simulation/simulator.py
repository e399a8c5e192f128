# SPDX-License-Identifier: Apache-2.0
"""`Simulator`: the public face of the simulation layer (scene sampling, GT rendering, recording).

    sim = Simulator(SimConfig())
    scene = sim.sample_scene(seed=7)
    gt = sim.render(scene)                       # depth (H, W) float32 m, segmentation uint8, K, pose
    audio = sim.record(scene, 1.0, seed=7)       # (C, N) float32, steady-state, physical time

Recorded audio is in digital full-scale units: a 94 dB SPL (1 Pa RMS) tone at a mic reads
`recording.sensitivity_dbfs` dBFS RMS.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import DEFAULT_CLASS_TABLE, ClassTable

from . import scene as scene_mod
from .acoustics import RoomResponse, Scatterer, convolve_steady, room_response
from .config import SimConfig
from .geometry import mic_positions, transform_points
from .render import GroundTruth, render
from .scene import Room, Scene
from .signals import GENERATORS, chirp_pulse, chirp_train, played_pulse

_RECORD_TAG, _TAIL_TAG, _NOISE_TAG = 0x52454344, 0x5441494C, 0x4E4F4953  # 'RECD', 'TAIL', 'NOIS'
_P_REF = 20e-6  # Pa, 0 dB SPL


class Simulator:
    def __init__(self, cfg: SimConfig | None = None, class_table: ClassTable = DEFAULT_CLASS_TABLE,
                 room_acoustics=None):
        """`room_acoustics`: the RIR engine, a function with `acoustics.room_response`'s signature and result
        (default: that one; e.g. `independent.room_response` re-records scenes with another implementation)."""
        self.cfg = cfg if cfg is not None else SimConfig()
        self.room_acoustics = room_response if room_acoustics is None else room_acoustics
        self.class_table = class_table
        self.camera = PinholeCamera(self.cfg.camera.width, self.cfg.camera.height, self.cfg.camera.hfov_deg)
        self._mics = mic_positions(self.cfg.array)
        self._mics.setflags(write=False)

    @property
    def sample_rate(self) -> int:
        return int(self.cfg.recording.sample_rate)

    @property
    def mic_positions(self) -> np.ndarray:
        """(C, 3) microphone positions in the array frame, m (read-only)."""
        return self._mics

    @property
    def num_channels(self) -> int:
        return int(self._mics.shape[0])

    # --- scenes -------------------------------------------------------------------------
    def sample_room(self, seed: int) -> Room:
        return scene_mod.sample_room(self.cfg, int(seed))

    def sample_scene(self, seed: int, room: Room | None = None) -> Scene:
        """A random scene; pass `room` to put a new robot pose and sources into a known room."""
        return scene_mod.sample_scene(self.cfg, self.class_table, int(seed), room)

    # --- ground truth -------------------------------------------------------------------
    def render(self, scene: Scene) -> GroundTruth:
        return render(scene, self.camera, self.class_table)

    # --- audio --------------------------------------------------------------------------
    def mic_positions_room(self, scene: Scene) -> np.ndarray:
        return transform_points(scene.array_pose, self._mics)

    def emitters(self, scene: Scene) -> list[tuple[str, np.ndarray]]:
        """(name, room-frame position) of every sound emitter: the chirp speaker first, if on,
        then the sounding (not silent) sources in scene order."""
        out = []
        if self.cfg.chirp.enabled:
            speaker = transform_points(scene.array_pose, np.asarray([self.cfg.chirp.speaker_position]))[0]
            out.append(('chirp', speaker))
        out += [(s.class_name, np.asarray(s.position, dtype=np.float64)) for s in scene.sources if not s.silent]
        return out

    def scatterers(self, scene: Scene) -> list[Scatterer]:
        """Every source body (silent or not) as a scatterer; a sounding one owns its emitter index."""
        out, emitter = [], int(self.cfg.chirp.enabled)
        for s in scene.sources:
            cc = self.cfg.sources.classes.get(s.class_name)
            out.append(Scatterer.from_body(s.body, cc.reflection if cc is not None else 0.9,
                                           -1 if s.silent else emitter))
            emitter += 0 if s.silent else 1
        return out

    def room_response(self, scene: Scene, seed: int = 0) -> RoomResponse:
        """The RIRs (S, C, L) from every emitter (see `emitters`) to every mic, body echoes included."""
        positions = np.array([p for _, p in self.emitters(scene)]).reshape(-1, 3)
        rng = np.random.default_rng([int(seed), _TAIL_TAG])
        return self.room_acoustics(scene.room, self.mic_positions_room(scene), positions, self.cfg.recording,
                                   rng, air_absorption=self.cfg.room.air_absorption,
                                   scatterers=self.scatterers(scene))

    def emitter_signals(self, scene: Scene, n_total: int, t0: int, seed: int) -> tuple[np.ndarray, dict]:
        """(S, n_total) float32 signals of every emitter (order of `emitters`), sample `t0` emitted at t = 0,
        in full-scale units at 1 m; plus {'chirp_phase_s'}. Shared by `record_with_info` and the trajectory mode."""
        cfg, fs = self.cfg, self.sample_rate
        rng = np.random.default_rng([int(seed), _RECORD_TAG])
        full_scale_per_pa = 10.0 ** (cfg.recording.sensitivity_dbfs / 20.0)
        signals = np.zeros((len(self.emitters(scene)), n_total), dtype=np.float32)
        info: dict = {'chirp_phase_s': None}
        k = 0
        if cfg.chirp.enabled:
            ch = cfg.chirp
            period = int(round(ch.period_s * fs))
            phase = int(rng.integers(0, period))
            pulse, lag = played_pulse(chirp_pulse(fs, ch.f_start, ch.f_end, ch.duration_s, ch.kind), fs,
                                      ch.speaker.response_db, ch.speaker.latency_s)
            level = _P_REF * 10.0 ** (ch.level_db_spl / 20.0) * full_scale_per_pa
            # chirp_phase_s is when the sweep was commanded; a speaker's latency plays it later
            signals[0] = level * chirp_train(n_total, pulse, period, t0 + phase + lag)
            info['chirp_phase_s'] = phase / fs
            k = 1
        for i, source in enumerate(scene.sources):
            if source.silent:                       # emits nothing (its body still scatters)
                continue
            source_rng = np.random.default_rng([int(seed), _RECORD_TAG, i])
            x = GENERATORS[source.class_name](n_total, fs, source.signal_seed, source_rng)
            signals[k] = _P_REF * 10.0 ** (source.level_db_spl / 20.0) * full_scale_per_pa * x
            k += 1
        return signals, info

    def record(self, scene: Scene, duration_s: float, seed: int) -> np.ndarray:
        """(C, N) float32 steady-state audio of `duration_s` seconds (see `record_with_info`)."""
        return self.record_with_info(scene, duration_s, seed)[0]

    def record_with_info(self, scene: Scene, duration_s: float, seed: int) -> tuple[np.ndarray, dict]:
        """Audio plus what was drawn for it (chirp phase, SNR, mic gains, RT60 per band).

        Every source plays throughout and the chirp repeats with its period; the sources start
        one RIR length before t = 0, so reverberation from the past is present and any window
        of a long recording is statistically the same as a short one.
        """
        if not duration_s > 0:
            raise ValueError(f'duration_s must be positive, got {duration_s}')
        cfg, fs = self.cfg, self.sample_rate
        n_out = int(round(duration_s * fs))
        response = self.room_response(scene, seed)
        n_src, _, L = response.rirs.shape
        out_start = L - 1 + response.latency        # full history, and latency compensated
        n_total = out_start + n_out
        t0 = L - 1                                  # signal index emitted at t = 0
        info: dict = {'rt60_bands': response.rt60_bands.tolist(),
                      'rt60_band_centers': response.band_centers.tolist()}
        signals, drawn = self.emitter_signals(scene, n_total, t0, seed)
        info.update(drawn)
        full_scale_per_pa = 10.0 ** (cfg.recording.sensitivity_dbfs / 20.0)
        audio = convolve_steady(signals, response.rirs, out_start, n_out)

        noise_rng = np.random.default_rng([int(seed), _NOISE_TAG])
        gains_db = noise_rng.normal(0.0, cfg.noise.gain_mismatch_db, self.num_channels) \
            if cfg.noise.gain_mismatch_db > 0 else np.zeros(self.num_channels)
        audio *= (10.0 ** (gains_db / 20.0)).astype(np.float32)[:, None]
        # Self-noise from the datasheet SNR (re 94 dB SPL): an absolute floor, so quiet rooms
        # stay quiet instead of being normalised up.
        snr_db = float(noise_rng.uniform(*cfg.noise.snr_db_range))
        noise_rms = full_scale_per_pa * 10.0 ** (-snr_db / 20.0)
        audio += (noise_rms * noise_rng.standard_normal(audio.shape)).astype(np.float32)
        info.update(snr_db=snr_db, mic_gains_db=gains_db.tolist(), rir_length=int(L))
        return audio.astype(np.float32, copy=False), info

    def describe(self) -> dict:
        """Static facts a consumer needs (for cards and checkpoints)."""
        return {'sample_rate': self.sample_rate, 'num_channels': self.num_channels,
                'mic_positions': self._mics.tolist(), 'camera': self.camera.to_dict(),
                'K': self.camera.K.tolist(), 'class_table': self.class_table.to_list()}


def free_field(cfg: SimConfig) -> SimConfig:
    """The same array, speaker, mics and noise with nothing to reflect: no image sources, no reverberant tail,
    no bodies (what a speaker calibration records; docs/SONAR.md, "Calibration")."""
    return dataclasses.replace(
        cfg, recording=dataclasses.replace(cfg.recording, ism_order=0, diffuse_tail=False, body_scattering=False),
        sources=dataclasses.replace(cfg.sources, count_range=(0, 0)))


def level_dbfs(audio: np.ndarray) -> float:
    """RMS level of a signal in dBFS (-inf for silence)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 0 else float('-inf')
