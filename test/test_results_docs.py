# SPDX-License-Identifier: Apache-2.0
"""The generated results page: the bar's verdicts and the 'each miss' section follow the result files."""
import copy
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def docs():
    spec = importlib.util.spec_from_file_location('write_results_docs', ROOT / 'scripts' / 'write_results_docs.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def results():
    return json.loads((ROOT / 'docs' / 'results.json').read_text())


def test_every_missed_criterion_gets_a_cause(docs, results):
    bar = docs.bar_rows(results)
    section = docs.misses_section(results, bar)
    missed = [name for name, ok, _ in bar if not ok]
    if not missed:
        assert section == ''
        return
    for name in missed:
        assert name in section
    assert section.count('- Measured cause:') == section.count('- Tried (measured):') >= 1


def test_a_bar_met_has_no_misses_section(docs, results):
    res = copy.deepcopy(results)
    rows = res['rows']
    rows['method'] = copy.deepcopy(rows['vqvae_upper_bound'])      # the ceiling meets every criterion
    res['person_iou']['method'] = dict(res['person_iou']['vqvae_upper_bound'])
    bar = docs.bar_rows(res)
    assert all(ok for _, ok, _ in bar)
    assert docs.misses_section(res, bar) == ''


def test_a_single_miss_is_the_only_one_explained(docs, results):
    res = copy.deepcopy(results)
    res['rows']['method'] = copy.deepcopy(res['rows']['vqvae_upper_bound'])
    res['person_iou']['method'] = {'speaking': 0.9, 'silent': 0.1}
    section = docs.misses_section(res, docs.bar_rows(res))
    assert section.count('- Measured cause:') == 1
    assert '**person IoU >= 0.30 (silent persons): 0.100**' in section


def test_reproduction_is_compared_with_the_shipped_models(docs, results, tmp_path, monkeypatch):
    rep = copy.deepcopy(results)
    rep['rows']['method']['depth']['abs_rel'] += 0.004
    (tmp_path / 'results_reproduction.json').write_text(json.dumps(rep))
    compared = {'command': 'python scripts/compare_models.py a b',
                'files': {'segmentation.pt': {'identical': True, 'max_abs_diff': 0.0},
                          'depth.pt': {'identical': False, 'max_abs_diff': 0.0012}}}
    (tmp_path / 'models_compared.json').write_text(json.dumps(compared))
    monkeypatch.setattr(docs, 'DOCS', tmp_path)
    text = docs.reproduction_comparison(results)
    shipped = results['rows']['method']['depth']['abs_rel']
    assert f'| method | depth AbsRel | {shipped:.3f} | {shipped + 0.004:.3f} | +0.004 |' in text
    assert 'The largest difference of a headline metric is 0.004.' in text
    assert '`segmentation.pt` is bit-identical' in text
    assert '`depth.pt` differs (largest difference of any tensor, BatchNorm statistics included: 0.0012)' in text
    (tmp_path / 'results_reproduction.json').unlink()
    assert docs.reproduction_comparison(results) == ''


def test_generated_block_is_replaced_and_a_missing_block_refused(tmp_path):
    from audio_vision.paths import rewrite_generated_block
    doc = tmp_path / 'doc.md'
    doc.write_text('intro\n<!-- B -->\nold\n<!-- E -->\noutro\n')
    rewrite_generated_block(doc, '<!-- B -->', '<!-- E -->', 'new\n')
    assert doc.read_text() == 'intro\n<!-- B -->\nnew\n<!-- E -->\noutro\n'
    with pytest.raises(ValueError, match='no generated block'):
        rewrite_generated_block(doc, '<!-- X -->', '<!-- E -->', 'x\n')
