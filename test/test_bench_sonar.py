# SPDX-License-Identifier: Apache-2.0
"""benchmarks/bench_sonar.py's paired comparison (not part of the package): a revision's sonar package imported
beside this checkout's measures the same windows, and against itself every layout is equal."""
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from audio_vision.simulation.config import SimConfig
from audio_vision.simulation.dataset import generate_dataset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'benchmarks'))
from bench_sonar import paired_against, paragraph  # noqa: E402


def _unchanged_since_head() -> bool:
    """Whether this is a git checkout whose sonar package is HEAD's (the pairing exports HEAD's)."""
    try:
        return subprocess.run(['git', '-C', str(ROOT), 'diff', '--quiet', 'HEAD', '--', 'audio_vision/sonar'],
                              capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not _unchanged_since_head(), reason='needs a git checkout whose audio_vision/sonar is HEAD\'s')
def test_paired_against_head_measures_the_same_layouts(tmp_path):
    cfg = SimConfig()
    cfg = dataclasses.replace(cfg, camera=dataclasses.replace(cfg.camera, width=16, height=16),
                              recording=dataclasses.replace(cfg.recording, window_s=0.5, rir_max_s=0.3),
                              dataset=dataclasses.replace(cfg.dataset, poses_per_room=2))
    generate_dataset(tmp_path / 'd', 8, seed=3, cfg=cfg, workers=1, progress=False)
    r = paired_against('HEAD', tmp_path / 'd', 'train', windows=2, rounds=2)
    assert r['windows'] == 2 and r['rounds'] == 2
    assert r['same_layouts'] == 2
    assert set(r['median_ms']) == {'this checkout', 'HEAD'} and all(v > 0 for v in r['median_ms'].values())
    lo, hi = r['ratio_quartiles']
    assert 0 < lo <= r['ratio_median'] <= hi
    assert not [m for m in sys.modules if m.startswith('sonar_HEAD')]      # the revision's modules do not linger
    text = paragraph({'sonar_front_end': {'p50_ms': 1.0, 'p90_ms': 1.0, 'cpu_p50_ms': 1.0, 'n': 2},
                      'feature_extractor': {'p50_ms': 1.0, 'cpu_p50_ms': 1.0}, 'command': 'x', 'date': 'd',
                      'commit': 'c', 'machine': {'torch_threads': 1, 'cpu_model': 'm'}, 'paired': [r]})
    assert 'Paired against HEAD' in text and 'equal on 2 of the 2 windows' in text


def test_the_budget_is_met_only_where_every_standalone_pass_of_the_run_keeps_it():
    from bench_sonar import BUDGET_MS, budget_verdict

    def run(first, after=None, paired=()):
        out = {'sonar_front_end': {'p50_ms': first},
               'paired': [{'median_ms': {'this checkout': p, 'REV': 2 * p}} for p in paired]}
        if after is not None:
            out['sonar_front_end_after'] = {'p50_ms': after}
        return out

    under, over = BUDGET_MS - 0.5, BUDGET_MS + 0.5
    assert budget_verdict(run(under, under, paired=[over])).startswith('met (every standalone pass of this run: 2 of 2')
    drifted = budget_verdict(run(under, over))
    assert drifted.startswith('met by 1 of 2 standalone passes') and drifted.endswith('not met with a margin')
    assert budget_verdict(run(over, over)).startswith('not met')
    assert budget_verdict(run(under)).startswith('met (every standalone pass of this run: 1 of 1')
