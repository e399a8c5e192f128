# SPDX-License-Identifier: Apache-2.0
"""Measure the chirp speaker's response once, so the sonar front-end equalises it (docs/SONAR.md, "Calibration").

Record a few seconds with the speaker playing the chirp (the capture node does) and the robot away from
surfaces (every surface at least 0.9 m from the array, e.g. 1 m above the floor in the middle of a room;
free field is best), then:

  python -m audio_vision calibrate --wav calibration.wav --sim-config config/simulation.yaml --out speaker.npz

``--sim-config`` says what was emitted and heard: its ``chirp`` section and ``array`` (the same file the
perception node's ``sim_config`` names). ``--simulate`` records the calibration in the simulator's free
field instead, with the config's own (possibly non-ideal) speaker. Give the result to the perception node
(``sonar_calibration`` parameter) or to ``scripts/eval_sonar.py --calibration``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = 'measure the chirp speaker\'s response for the sonar front-end (from a WAV or the simulator\'s free field)'
#: frequencies the summary prints the measured response at, Hz
SUMMARY_HZ = (500, 1000, 2000, 3000, 4000, 5000, 6000, 7000)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--wav', type=Path, help='multichannel recording of the speaker playing the chirp')
    source.add_argument('--simulate', action='store_true',
                        help="record it in the simulator's free field with the config's speaker")
    parser.add_argument('--sim-config', type=Path, help='emitter and array YAML (default: config/simulation.yaml)')
    parser.add_argument('--out', type=Path, required=True, help='calibration file to write (.npz)')
    parser.add_argument('--windows', type=int, default=8, help='--simulate: windows recorded (default 8)')
    parser.add_argument('--seed', type=int, default=0, help='--simulate: seed of the first window (default 0)')
    parser.add_argument('--gate-ms', type=float, default=5.0,
                        help='direct-arrival gate half width, ms: no surface within c x gate / 2 of the array '
                             '(0.86 m at the default 5; a speaker rings for ms, a shorter gate misses it)')
    parser.add_argument('--plot', type=Path, help='PNG of the measured response (default: next to --out)')


def simulated_free_field(sim_cfg, windows: int, seed: int) -> list:
    """``windows`` 1-window recordings of the config's speaker in free field, (C, N) each, and the
    emission commanded in each (s within the chirp period)."""
    from audio_vision.simulation.simulator import Simulator, free_field
    sim = Simulator(free_field(sim_cfg))
    out = []
    for k in range(windows):
        audio, info = sim.record_with_info(sim.sample_scene(seed + k), sim_cfg.recording.window_s, seed + k)
        out.append((audio, info['chirp_phase_s']))
    return out


def wav_windows(path: Path, channels: int, sample_rate: int, period: int) -> list:
    """The WAV cut into windows of four chirp periods (the last partial one dropped)."""
    import soundfile
    from audio_vision.cli import UserError
    try:
        audio, rate = soundfile.read(str(path), dtype='float32', always_2d=True)
    except (RuntimeError, OSError) as exc:
        raise UserError(f'cannot read {path}: {exc}') from None
    if rate != sample_rate or audio.shape[1] != channels:
        raise UserError(f'{path}: {audio.shape[1]} channels at {rate} Hz; the config\'s array has {channels} mics '
                        f'at {sample_rate} Hz')
    step = 4 * period
    windows = [audio[i:i + step].T for i in range(0, len(audio) - step + 1, step)]
    if not windows:
        raise UserError(f'{path}: {len(audio) / rate:.2f} s is shorter than four chirp periods ({step / rate:.2f} s)')
    return windows


def run(args) -> int:
    from audio_vision.cli import UserError
    from audio_vision.commands.record import load_sim_config
    from audio_vision.simulation.geometry import mic_positions
    from audio_vision.sonar import SonarConfig
    from audio_vision.sonar.calibration import measure_speaker
    if args.windows < 1 or not args.gate_ms > 0:
        raise UserError('--windows must be >= 1 and --gate-ms > 0')
    sim_cfg = load_sim_config(args.sim_config)
    try:
        cfg = SonarConfig.from_sim_config(sim_cfg)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    mics = mic_positions(sim_cfg.array)
    commanded = None
    if args.simulate:
        recorded = simulated_free_field(sim_cfg, args.windows, args.seed)
        windows, commanded = [a for a, _ in recorded], [p for _, p in recorded]
    else:
        windows = wav_windows(args.wav, len(mics), cfg.sample_rate, cfg.period_samples)
    cal = measure_speaker(cfg, mics, windows, gate_s=args.gate_ms / 1000.0)
    path = cal.save(args.out)
    levels = ', '.join(f'{f / 1000:g} kHz {db:+.1f}' for f, db in zip(SUMMARY_HZ, cal.response_db(SUMMARY_HZ)))
    print(f'speaker response (dB re its mean over the band): {levels}')
    if commanded is not None:
        latency = _latency(cfg, mics, windows, commanded)
        print(f'playback-to-capture latency seen in the direct path: {1000 * latency:.2f} ms (median over '
              f'{len(windows)} windows; the front-end measures it per window and needs no setting)')
    plot = args.plot or path.with_suffix('.png')
    _plot(cal, plot)
    print(f'wrote {path} ({cal.windows} windows) and {plot}')
    return 0


def _latency(cfg, mics, windows, commanded) -> float:
    """Median of (emission measured from the direct path - emission commanded), wrapped into +-half a period."""
    import numpy as np

    from audio_vision.sonar.echoes import EchoField, MatchedFilter
    mf, period = MatchedFilter(cfg), cfg.chirp_period_s
    lags = [(EchoField(mf, mics, a).t_e - p + 0.5 * period) % period - 0.5 * period for a, p in zip(windows, commanded)]
    return float(np.median(lags))


def _plot(cal, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    fig, ax = plt.subplots(figsize=(6, 3), dpi=120)
    ax.plot(cal.freqs / 1000.0, 20.0 * np.log10(np.maximum(np.abs(cal.response), 1e-6)))
    ax.set_xlabel('frequency (kHz)')
    ax.set_ylabel('response (dB re mean)')
    ax.set_title(f'measured speaker response ({cal.windows} windows, gate ±{1000 * cal.gate_s:g} ms)')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
