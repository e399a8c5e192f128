# SPDX-License-Identifier: Apache-2.0
"""scripts/ablation.py --merge-into: a variant run later joins an earlier result of its study, in the study's row
order, its provenance recorded and no earlier row lost."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def ablation():
    spec = importlib.util.spec_from_file_location('ablation_script', ROOT / 'scripts' / 'ablation.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def result(rows: list[str], command: str) -> dict:
    return {'study': 'prior', 'command': command, 'description': f'run by {command}.',
            'rows': {r: {'depth': {'abs_rel': float(len(r))}} for r in rows},
            'training_windows': dict.fromkeys(rows, 100), 'atnet_objective': dict.fromkeys(rows),
            'seconds': dict.fromkeys(rows, 1.0), 'train_seconds': dict.fromkeys(rows, {}),
            'elsewhere': {'fresh': {'path': 'data/f', 'split': 'train', 'rows': {r: {} for r in rows}}}}


def test_a_later_variant_joins_in_the_studys_order(ablation):
    variants = ablation.STUDIES['prior'][1]
    order = ablation.row_order(variants, ('atnet', 'end_to_end'))
    names = list(variants)
    assert order[:2] == [f'AT-net (the method): {names[0]}', f'end-to-end: {names[0]}']
    earlier = result([order[0], order[1], order[4], order[5]], 'first')
    added = result([order[2], order[3]], 'second')
    merged = ablation.merge_results(earlier, added, order)
    for key in ('rows', 'training_windows', 'seconds'):
        assert list(merged[key]) == order
    assert list(merged['elsewhere']['fresh']['rows']) == order
    assert merged['rows'][order[0]] == earlier['rows'][order[0]] and merged['rows'][order[2]] == added['rows'][order[2]]
    assert merged['command'] == 'first' and merged['added_runs'][0]['rows'] == [order[2], order[3]]
    assert 'second' in merged['description']
    with pytest.raises(SystemExit, match='study'):
        ablation.merge_results({**earlier, 'study': 'width'}, added, order)
