# SPDX-License-Identifier: Apache-2.0
"""scripts/eval_sonar.py's bar (not part of the package): issue #21's criteria on the bar's datasets and on a knob's
variant of one, each knob compared with the same windows measured without it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'scripts'))
import eval_sonar  # noqa: E402


def _measured(path: str, abs_rel: float, **knobs) -> dict:
    errors = {key: {'median': 0.001, 'p90': 0.002, 'failed': 0.3, 'n': 10} for key in eval_sonar.BAR}
    return {'path': path, 'n': 10, 'calibration': None, 'sonar_overrides': knobs, 'render_options': {},
            'layout_errors': errors,
            'rows': {'layout': {'depth': {'abs_rel': abs_rel, 'delta1': 0.9, 'valid_fraction': 0.8}}}}


def test_a_knobs_variant_of_a_bar_dataset_is_judged_by_the_bar_and_named():
    sets = {'fresh': _measured('data/fresh', 0.147), 'fresh_low': _measured('data/fresh', 0.151, wall_cfar=5.0),
            'other': _measured('data/other', 0.40), 'other_low': _measured('data/other', 0.41, wall_cfar=5.0)}
    assert eval_sonar.base_of(sets, 'fresh_low') == 'fresh' and eval_sonar.base_of(sets, 'fresh') is None
    verdicts = eval_sonar.verdicts({'datasets': sets})
    assert {d for d, _, _ in verdicts} == {'fresh', 'fresh_low'}          # 'other' is not a bar dataset
    missed = [(d, c) for d, c, ok in verdicts if not ok]
    assert missed == [('fresh_low', 'layout AbsRel <= 0.15 (0.1510, on its 80% of pixels with a prior, 10 windows)')]
    sets['fresh_low']['n'] = 9                                              # other windows: no base to compare with
    assert eval_sonar.base_of(sets, 'fresh_low') is None
