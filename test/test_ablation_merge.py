# SPDX-License-Identifier: Apache-2.0
"""scripts/ablation.py --merge-into: a variant run later joins an earlier result of its study, in the study's row
order, its provenance recorded and no earlier row lost."""
from pathlib import Path

import pytest
from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def ablation():
    return load_script('ablation')


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


def test_also_takes_a_split_and_a_window_limit(ablation):
    import argparse
    assert ablation.dataset_arg('ind=data/independent') == ('ind', (Path('data/independent'), 'test', None))
    assert ablation.dataset_arg('ref=data/default:test:100') == ('ref', (Path('data/default'), 'test', 100))
    assert ablation.dataset_arg('fresh=data/f:train') == ('fresh', (Path('data/f'), 'train', None))
    for bad in ('data/default', 'ref=data/default:test:some'):
        with pytest.raises(argparse.ArgumentTypeError):
            ablation.dataset_arg(bad)


def test_the_srp_study_changes_only_the_direction_map_branch(ablation):
    variants = ablation.STUDIES['srp'][1]
    for patch, share in variants.values():
        assert set(patch) == {'atnet', 'end_to_end'} and share == 1.0
        assert {p['srp_norm'] for p in patch.values()} <= {'none', 'center', 'standardize', 'drop'}
    assert len({p['atnet']['srp_norm'] for p, _ in variants.values()}) == len(variants)


def test_the_recording_gap_compares_the_same_rows():
    import sys
    sys.path.insert(0, str(ROOT / 'scripts'))
    try:
        from results_docs.studies import recording_gap
    finally:
        sys.path.remove(str(ROOT / 'scripts'))

    def row(abs_rel, miou):
        return {'depth': {'abs_rel': abs_rel, 'delta1': 0.8}, 'segmentation': {'miou': miou}}
    study = {'elsewhere': {'independent': {'rows': {'a': row(0.12, 0.45), 'b': row(0.2, 0.4)}},
                           'reference': {'rows': {'a': row(0.10, 0.50), 'b': row(0.1, 0.5)}}}}
    text = recording_gap(study)
    assert ('- a: depth AbsRel 0.120 vs 0.100 (+20.0 %), δ1 0.800 vs 0.800 (+0.0 %), '
            'mIoU 0.450 vs 0.500 (-10.0 %).') in text
    assert '- b: depth AbsRel 0.200 vs 0.100 (+100.0 %)' in text
    assert recording_gap({'elsewhere': {'independent': study['elsewhere']['independent']}}) == ''
