# SPDX-License-Identifier: Apache-2.0
"""The generated results documents (scripts/results_docs/): the bar's verdicts and the 'each miss' section follow
the result files, and no number is typed into them: every one comes from a result file or a config."""
import ast
import copy
import dataclasses
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'scripts' / 'results_docs'


@pytest.fixture(scope='module')
def docs():
    sys.path.insert(0, str(ROOT / 'scripts'))
    try:
        from results_docs import common, inputs, model_card, readme_section, results_page
    finally:
        sys.path.remove(str(ROOT / 'scripts'))
    return SimpleNamespace(common=common, inputs=inputs, model_card=model_card, readme_section=readme_section,
                           results_page=results_page)


@pytest.fixture(scope='module')
def inp(docs):
    return dataclasses.replace(docs.inputs.load(ROOT), today='2000-01-01', machine='a test machine')


def test_every_missed_criterion_gets_a_cause(docs, inp):
    bar = docs.common.bar_rows(inp)
    section = docs.results_page.misses_section(inp, bar)
    missed = [name for name, ok, _ in bar if not ok]
    if not missed:
        assert section == ''
        return
    for name in missed:
        assert name in section
    assert section.count('- Measured cause:') == section.count('- Tried (measured):') >= 1


def with_method(inp, method_person_iou: dict | None = None):
    """The inputs with the method scoring as the VQ-VAE ceiling (which meets every criterion)."""
    res = copy.deepcopy(inp.results)
    for row in {'method', res.get('published_row', 'method')}:         # the decoded and the published row
        res['rows'][row] = copy.deepcopy(res['rows']['vqvae_upper_bound'])
        res['person_iou'][row] = method_person_iou or dict(res['person_iou']['vqvae_upper_bound'])
    return dataclasses.replace(inp, results=res)


def test_a_bar_met_has_no_misses_section(docs, inp):
    met = with_method(inp)
    bar = docs.common.bar_rows(met)
    assert all(ok for _, ok, _ in bar)
    assert docs.results_page.misses_section(met, bar) == ''
    assert 'The quality bar of issue #10 is met.' in docs.readme_section.section(met)


def test_a_single_miss_is_the_only_one_explained(docs, inp):
    one_miss = with_method(inp, {'speaking': 0.9, 'silent': 0.1})
    section = docs.results_page.misses_section(one_miss, docs.common.bar_rows(one_miss))
    assert section.count('- Measured cause:') == 1
    assert '**person IoU >= 0.30 (silent persons): 0.100**' in section


def test_reproduction_is_compared_with_the_shipped_models(docs, inp):
    rep = copy.deepcopy(inp.results)
    rep['rows']['method']['depth']['abs_rel'] += 0.004
    compared = {'command': 'python scripts/compare_models.py a b',
                'files': {'segmentation.pt': {'identical': True, 'max_abs_diff': 0.0},
                          'depth.pt': {'identical': False, 'max_abs_diff': 0.0012}}}
    facts = {**inp.facts, 'reproduction_run': {}}                     # no `against`: the shipped models
    text = docs.results_page.probes.reproduction_comparison(
        dataclasses.replace(inp, facts=facts, reproduction=rep, models_compared=compared))
    shipped = inp.results['rows']['method']['depth']['abs_rel']
    assert f'| method | depth AbsRel | {shipped:.3f} | {shipped + 0.004:.3f} | +0.004 |' in text
    assert 'The largest difference of a headline metric is 0.004.' in text
    assert '`segmentation.pt` is bit-identical' in text
    assert '`depth.pt` differs (largest difference of any tensor, BatchNorm statistics included: 0.0012)' in text
    assert docs.results_page.probes.reproduction_comparison(dataclasses.replace(inp, reproduction=None)) == ''


def test_a_reproduction_of_a_budget_study_is_compared_with_it_and_judged_by_its_rule(docs, inp):
    def scored(method_miou, e2e_miou, abs_rel=0.150):
        res = json.loads(json.dumps(inp.results))
        res['rows']['method']['segmentation']['miou'], res['rows']['end_to_end']['segmentation']['miou'] = \
            method_miou, e2e_miou
        res['rows']['method']['depth']['abs_rel'] = abs_rel
        return res
    facts = {**inp.facts, 'reproduction_run': {'what': 'sixteen epochs', 'study': 'segmentation_budget_study'}}
    seeds = {'6': {'0': scored(0.52, 0.56), '1': scored(0.50, 0.56, abs_rel=0.152)}}       # AbsRel spread 0.002
    timings = {'run': {'command': 'bash x.sh', 'commit': 'abc1234', 'started_utc': 'T', 'cpu_model': 'CPU',
                       'cpus': 2, 'features_cache_existed': True}, 'total': 3000.0}
    base = dataclasses.replace(inp, facts=facts, results=scored(0.52, 0.56), seed_study=seeds,
                               reproduction_timings=timings,
                               budget_studies={'segmentation': {'before': None, 'after': scored(0.55, 0.58)}})
    probes = docs.results_page.probes
    text = probes.reproduction_comparison(dataclasses.replace(base, reproduction=scored(0.51, 0.58)))
    assert 'A second run (`bash x.sh` at commit abc1234, started T on CPU, 2 cores: sixteen epochs; 50.0 min' in text
    assert "the method's mIoU 0.510 against the study's 0.550" in text
    assert 'moves the method\'s mIoU by 0.040.' in text and text.rstrip().endswith('the shipped models stay.')
    text = probes.reproduction_comparison(dataclasses.replace(base, reproduction=scored(0.53, 0.57, abs_rel=0.151)))
    assert 'did not: the VQ-VAE' not in text and text.rstrip().endswith(': met.')
    worse_depth = probes.reproduction_comparison(dataclasses.replace(base, reproduction=scored(0.53, 0.58, 0.153)))
    assert worse_depth.rstrip().endswith('the shipped models stay.')


def test_a_reproduction_is_compared_with_the_models_shipped_when_it_ran_once_others_replaced_them(docs, inp):
    then = copy.deepcopy(inp.results)
    then['rows']['method']['segmentation']['miou'] = 0.600          # the models shipped when it ran
    rep = copy.deepcopy(inp.results)
    rep['rows']['method']['segmentation']['miou'] = 0.590
    seeds = {'6': {'0': inp.results, '1': inp.results}}
    facts = {**inp.facts, 'reproduction_run': {'what': 'x', 'against': 'results_then.json'}}
    base = dataclasses.replace(inp, facts=facts, reproduction=rep, reproduction_against=then, seed_study=seeds)
    probes = docs.results_page.probes
    text = probes.reproduction_comparison(base)
    assert 'against the models shipped when it ran (docs/results_then.json):' in text
    assert '| method | mIoU | 0.600 | 0.590 | -0.010 |' in text
    assert probes.replaces_shipped(base).endswith('not met: the models shipped then stayed.')
    now = probes.reproduction_comparison(dataclasses.replace(base, facts={**inp.facts, 'reproduction_run': {}}))
    shipped = inp.results['rows']['method']['segmentation']['miou']
    assert f'| method | mIoU | {shipped:.3f} | 0.590 | {0.590 - shipped:+.3f} |' in now


def test_the_model_card_follows_the_simulation_config(docs, inp):
    sim = copy.deepcopy(inp.simulation)
    sim['camera']['width'], sim['chirp']['f_end'], sim['array']['mics_per_ring'] = 48, 6000.0, 3
    card = docs.model_card.render(dataclasses.replace(inp, simulation=sim))
    assert 'a level 48x64 pinhole camera' in card and '0.5-6 kHz chirp' in card and 'an 6-microphone' in card
    assert '(6 mics as in' in card


def test_every_document_renders_and_the_readme_keeps_its_other_sections(docs, inp):
    for render in (docs.results_page.render, docs.model_card.render):
        assert 'Measured 2000-01-01 on a test machine' in render(inp)
    readme = docs.readme_section.render(inp)
    assert readme.count('## Results\n\n') == 1 and '\n\n## Layout' in readme
    assert readme.replace(docs.readme_section.section(inp), '') != readme


# --- no typed numbers -------------------------------------------------------------------------------------------
#: names that hold digits without stating a number (an issue, the network's published name, a metric's name)
NAMES = re.compile(r'issue #\d+|ResNet-18|3-D|δ<1\.25')
#: numbers a rendered value may be multiplied or divided by: unit conversions (min, %, kHz, MB, MiB) and 1
CONVERSIONS = {1, 60, 100, 1000, 1e6, 1048576}


def typed_words(text: str) -> list[str]:
    """The numbers in a piece of template text: words of digits only, or of two such joined by 'x' (64x64)."""
    return [w for w in re.findall(r'\w+', NAMES.sub(' ', text)) if re.fullmatch(r'\d+(x\d+)?', w)]


def typed_numbers(source: str) -> list[str]:
    """Every number a module types into generated text: a digit in a string's literal text (not a docstring,
    not a format spec), a number constant inside a replacement field other than a unit conversion or an index,
    and a module-level number constant (it would reach the text by its name)."""
    tree = ast.parse(source)
    skip = set()                                   # docstrings, format specs, indices: not stated numbers
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skip.add(id(node.value))
        parts = [node.format_spec] if isinstance(node, ast.FormattedValue) and node.format_spec else []
        parts += [node.slice] if isinstance(node, ast.Subscript) else []
        parts += [node] if isinstance(node, ast.Compare) else []        # a condition: decides, is not shown
        skip.update(id(n) for part in parts for n in ast.walk(part))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [f'line {node.lineno}: {w!r} in {node.value!r}' for w in typed_words(node.value)]
        if isinstance(node, ast.FormattedValue):
            found += [f'line {n.lineno}: {n.value!r} in a replacement field' for n in ast.walk(node.value)
                      if is_number(n) and id(n) not in skip and n.value not in CONVERSIONS]
    shown = {id(n) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for n in ast.walk(node)}
    for statement in tree.body:
        if isinstance(statement, (ast.Assign, ast.AnnAssign)):
            found += [f'line {n.lineno}: module constant {n.value!r}' for n in ast.walk(statement)
                      if is_number(n) and id(n) not in skip | shown]
    return found


def is_number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def test_no_number_is_typed_into_the_documents():
    files = sorted(PACKAGE.glob('*.py')) + [ROOT / 'scripts' / 'write_results_docs.py']
    typed = {p.name: found for p in files if (found := typed_numbers(p.read_text()))}
    assert not typed, f'numbers typed into the results documents (take them from an input or facts.yaml): {typed}'


@pytest.mark.parametrize('source', [
    'text = f"now train 28 epochs of at most {steps} steps"',
    'text = f"budget {0.5 * mean:.3f}"',
    "text = 'Shoebox rooms 3-10 x 3-10 m, a level 64x64 camera'",
    'BUDGET_MIN = 150',
    'text = f"{x:.3f} of {28}"',
    "text = f'{x:.0%} and' + ' 40,000 windows'",
])
def test_the_check_finds_a_typed_number(source):
    assert typed_numbers(source)


@pytest.mark.parametrize('source', [
    'text = f"{x:.3f} MB, {y / 60:.1f} min, {z * 100:.0f} % ({d[:10]}, {r[0]})"',
    "text = 'the bar of issue #10: ResNet-18, 3-D aperture, δ<1.25, fp16, delta1, commit 2b9cf37'",
    'def f():\n    """28 epochs in a docstring."""\n    return 0.5 * x',
])
def test_the_check_lets_formats_names_and_logic_pass(source):
    assert not typed_numbers(source)


@pytest.fixture(scope='module')
def room_bar():
    sys.path.insert(0, str(ROOT / 'scripts'))
    try:
        from results_docs import room_bar
    finally:
        sys.path.remove(str(ROOT / 'scripts'))
    return room_bar


def test_room_bar_lists_an_absent_result_as_not_measured_never_as_met(room_bar, inp):
    bare = dataclasses.replace(inp, shifted=None, independent=None, independent_reference=None, benchmarks=None,
                               latency=None)
    rows = room_bar.rows(bare)
    unmeasured = [(name, ok) for name, ok, value in rows if value == 'not measured']
    assert {n.split(':')[0] for n, _ in unmeasured} >= {'shifted rooms', 'independent re-recording'}
    assert len(unmeasured) == 2 + 3 + 2 and not any(ok for _, ok in unmeasured)
    assert '**not met** | not measured' in room_bar.section(bare)


def test_room_bar_follows_the_method_and_explains_each_miss(room_bar, inp):
    ceiling = with_method(inp)
    met = {name for name, ok, _ in room_bar.rows(ceiling) if ok}
    assert {'test: depth AbsRel <= 0.12', 'test: mIoU >= 0.65', 'test: person IoU >= 0.35 (silent persons)'} <= met
    missed = {name: value for name, ok, value in room_bar.rows(inp) if not ok}
    causes = room_bar.causes(inp, missed)
    kinds = [line.split('**')[1] for line in causes]
    if any(n.startswith('test: depth AbsRel') for n in missed) and inp.depth_probe:
        assert 'Depth' in kinds
    if any('person IoU' in n for n in missed) and inp.reflectors:
        assert 'Persons' in kinds


def test_the_depth_cause_splits_the_error_at_the_layout_prior(room_bar):
    by_prior = {'method': {'measured': {'abs_rel': 0.1, 'pixel_share': 0.75, 'error_share': 0.5},
                           'not_measured': {'abs_rel': 0.3, 'pixel_share': 0.25, 'error_share': 0.5}},
                'layout': {'measured': {'abs_rel': 0.12}}}
    text = room_bar.prior_split(by_prior)
    assert 'measured the room (75 % of them) carry 50 %' in text and "layout prior's own 0.120" in text
    assert 'the others 50 % (AbsRel 0.300' in text
    assert room_bar.prior_split({}) == '' and room_bar.prior_split({'method': by_prior['method']}) == ''


def test_the_independent_miss_names_the_input_groups_that_cost_it(room_bar, inp):
    def run(name, groups, abs_rel, miou):
        return {'name': name, 'independent_groups': groups,
                'rows': {'method': {'abs_rel': abs_rel, 'delta1': 0.8, 'miou': miou}}}
    swap = {'windows': 7, 'runs': [run('reference', [], 0.10, 0.50), run('independent', ['a', 'b', 'c'], 0.20, 0.30),
                                   run('a alone', ['a'], 0.18, 0.49), run('b alone', ['b'], 0.11, 0.32),
                                   run('c alone', ['c'], 0.13, 0.45)]}
    text = room_bar.independent_cause(dataclasses.replace(inp, independent=None), swap)
    # AbsRel lost 0.10: a (0.08) and c (0.03) cost a quarter or more, b (0.01) does not; mIoU lost 0.20: only b
    assert ('AbsRel goes from 0.100 to 0.200 with every group swapped, and to 0.180 with the a alone, 0.130 with '
            'the c alone;') in text
    assert 'mIoU goes from 0.500 to 0.300 with every group swapped, and to 0.320 with the b alone.' in text
    missed = {'independent re-recording: method AbsRel within 15 %': '...'}
    kinds = [line.split('**')[1] for line in room_bar.causes(dataclasses.replace(inp, independent_swap=swap), missed)]
    assert 'Independent re-recording' in kinds
    assert not room_bar.causes(dataclasses.replace(inp, independent_swap=None), missed)


def test_the_srp_maps_loss_is_split_by_band_with_the_largest_share_named(room_bar):
    def run(name, groups, miou):
        return {'name': name, 'independent_groups': groups, 'rows': {'method': {'miou': miou}}}

    def band(name, miou):
        return {'name': f'SRP-PHAT {name} from the independent recording', 'band': f'SRP-PHAT {name}',
                'rows': {'method': {'miou': miou}}}
    swap = {'runs': [run('SRP-PHAT maps from the independent recording', ['SRP-PHAT maps'], 0.40)],
            'srp_band_runs': [band('1-2 Hz', 0.45), band('2-4 Hz', 0.42),
                              {**band('2-4 Hz', 0.10), 'name': 'SRP-PHAT 2-4 Hz from the reference recording'}]}
    text = room_bar.srp_bands_alone(swap, {'miou': 0.50})
    # all four bands cost 0.10; the 2-4 Hz band alone 0.08 of it: most of it; the reference-direction run is not read
    assert "takes the method's mIoU from 0.500 to 0.420 (2-4 Hz), 0.450 (1-2 Hz)" in text
    assert '(the 2-4 Hz band alone 80 % of what all of them cost, most of it)' in text
    swap['srp_band_runs'][1]['rows']['method']['miou'] = 0.47
    assert 'the 1-2 Hz band alone 50 % of what all of them cost, not most of it' in room_bar.srp_bands_alone(
        swap, {'miou': 0.50})
    assert room_bar.srp_bands_alone({'runs': []}, {'miou': 0.5}) == ''


def test_the_seed_study_applies_its_rule_to_the_seeds_means(room_bar, inp):
    assert room_bar.seed_study_table(dataclasses.replace(inp, seed_study={})) == ''

    def scored(abs_rel, miou):
        res = json.loads(json.dumps(inp.results))
        res['rows']['method']['depth']['abs_rel'], res['rows']['method']['segmentation']['miou'] = abs_rel, miou
        return res
    study = {'6': {'0': scored(0.150, 0.524), '1': scored(0.152, 0.514)},
             '9': {'0': scored(0.145, 0.509), '1': scored(0.146, 0.520)}}
    text = room_bar.seed_study_table(dataclasses.replace(inp, seed_study=study))
    # means: AbsRel 0.151 -> 0.1455 (below), mIoU 0.519 -> 0.5145 (at least 0.514): met
    assert '| 9 | 1 | 0.146 |' in text and 'mean AbsRel is 0.1455 against 0.1510' in text
    assert 'mIoU by 0.0100 (revision 6) and 0.0110 (revision 9)' in text
    assert 'revision 6 → 9 moved it by AbsRel -0.0050' in text and ': met on the seeds' in text
    study['9']['1'] = scored(0.146, 0.500)                        # mean mIoU 0.5045 < 0.514
    assert ': not met on the seeds' in room_bar.seed_study_table(dataclasses.replace(inp, seed_study=study))
    study['9']['1'] = None                                        # a file not here: no table
    assert room_bar.seed_study_table(dataclasses.replace(inp, seed_study=study)) == ''


def test_a_longer_budgets_rule_reads_the_seed_studys_spreads(room_bar, inp):
    def scored(method_miou, speaking=0.30, silent=0.25, e2e_miou=0.56, abs_rel=0.150, delta1=0.81, e2e_abs_rel=0.146):
        res = json.loads(json.dumps(inp.results))
        res['rows']['method']['segmentation']['miou'] = method_miou
        res['rows']['end_to_end']['segmentation']['miou'] = e2e_miou
        res['person_iou']['method'] = {'speaking': speaking, 'silent': silent}
        res['rows']['method']['depth'].update(abs_rel=abs_rel, delta1=delta1)
        res['rows']['end_to_end']['depth']['abs_rel'] = e2e_abs_rel
        return res
    # spreads: mIoU 0.02, persons 0.05, AbsRel 0.004, δ1 0.01
    seeds = {'6': {'0': scored(0.52), '1': scored(0.50, 0.25, 0.20, abs_rel=0.154, delta1=0.80)}}
    base = dataclasses.replace(inp, results=scored(0.52), seed_study=seeds)

    def table(modality, after, before=None):
        files = {modality: {'before': before or base.results, 'after': after}}
        return room_bar.longer_budget_table(dataclasses.replace(base, budget_studies=files), modality)
    assert room_bar.longer_budget_table(dataclasses.replace(base, budget_studies={}), 'segmentation') == ''
    assert table('segmentation', None) == ''
    no_seeds = dataclasses.replace(base, seed_study={}, budget_studies={'segmentation': {'before': base.results,
                                                                                         'after': scored(0.6)}})
    assert room_bar.longer_budget_table(no_seeds, 'segmentation') == ''
    text = table('segmentation', scored(0.55, 0.26))
    assert '| method | mIoU | 0.520 | 0.550 | +0.0300 | 0.0200 |' in text
    assert "the method's mIoU gains more than its seed spread: yes" in text and text.rstrip().endswith(': met.')
    # a gain within the seed spread, or persons down beyond theirs, or the baseline down at all (not retrained: 0)
    for longer in (scored(0.535), scored(0.55, 0.24), scored(0.55, e2e_miou=0.55)):
        assert table('segmentation', longer).rstrip().endswith(': not met.')
    # against another file than docs/results.json's models (once the longer budget is shipped)
    assert '| method | mIoU | 0.500 | 0.550 | +0.0500 | 0.0200 |' in table('segmentation', scored(0.55), scored(0.50))
    # depth: AbsRel must fall (lower is better) by more than its spread, δ1 not fall beyond its spread
    text = table('depth', scored(0.52, abs_rel=0.145))
    assert '| method | AbsRel | 0.150 | 0.145 | -0.0050 | 0.0040 |' in text and text.rstrip().endswith(': met.')
    assert "the method's AbsRel gains more than its seed spread: yes" in text
    for longer in (scored(0.52, abs_rel=0.147), scored(0.52, abs_rel=0.145, delta1=0.79),
                   scored(0.52, abs_rel=0.145, e2e_abs_rel=0.147)):
        assert table('depth', longer).rstrip().endswith(': not met.')


def test_the_depth_target_study_is_compared_from_its_file(room_bar, inp):
    inp = dataclasses.replace(inp, fused_layout={})     # the studies compare with the shipped models
    assert room_bar.depth_target_table(dataclasses.replace(inp, depth_target_study=None)) == ''
    spec = inp.facts['room_bar']['depth_target_study']
    shipped_target = inp.train.get('depth_target', 'absolute')
    # a study of the shipped target itself compares nothing
    bar = {**inp.facts['room_bar'], 'depth_target_study': {**spec, 'target': shipped_target}}
    same = dataclasses.replace(inp, facts={**inp.facts, 'room_bar': bar})
    assert room_bar.depth_target_table(same) == ''
    other = 'absolute' if shipped_target == 'layout_ratio' else 'layout_ratio'
    facts = {**inp.facts, 'room_bar': {**inp.facts['room_bar'], 'depth_target_study': {**spec, 'target': other}}}
    study = json.loads(json.dumps(inp.results))
    shipped = inp.results['rows']['method']['depth']
    for factor in (0.5, 1.5):
        study['rows']['method']['depth'] = {**shipped, 'abs_rel': shipped['abs_rel'] * factor}
        text = room_bar.depth_target_table(dataclasses.replace(inp, facts=facts, depth_target_study=study))
        ratio, absolute = ((shipped['abs_rel'], shipped['abs_rel'] * factor) if shipped_target == 'layout_ratio'
                           else (shipped['abs_rel'] * factor, shipped['abs_rel']))
        word = '(lower;' if ratio < absolute else '(not lower;'
        assert f'{ratio:.3f} against {absolute:.3f} absolute {word}' in text
        assert '| method |' in text and 'layout_ratio' in text and '(shipped)' in text
    if inp.depth_probe:
        text = room_bar.depth_target_table(dataclasses.replace(inp, facts=facts, depth_target_study=study,
                                                               depth_target_probe=inp.depth_probe))
        wall = inp.depth_probe['rows']['method']['by_class']['wall']
        assert f'wall {wall:.3f} → {wall:.3f}' in text


def test_room_bar_never_counts_results_of_other_models_as_met(room_bar, inp):
    same = json.loads(json.dumps(inp.results))
    other = json.loads(json.dumps(same))
    other['model_ids'] = {'depth': 'aaaaaaaaaaaa', 'segmentation': 'bbbbbbbbbbbb'}
    for fresh, met in ((same, True), (other, False)):
        rows = {name: (ok, value) for name, ok, value in room_bar.rows(dataclasses.replace(inp, fresh=fresh))}
        ok, value = rows['new seed: method AbsRel within 10 % of the test split']
        assert ok is met and (('not the shipped ones' in value) is not met), value


def test_the_upper_bound_comes_from_the_files_with_encoders_and_only_for_the_same_method(docs, room_bar, inp):
    """Shipped files without the VQ-VAE encoder give no upper bound: it is taken from the same models scored with
    their encoders, refused when that file scores another method; their other results count as the shipped models'."""
    upper = json.loads(json.dumps(inp.results))
    upper['model_ids'] = {'depth': 'eeeeeeeeeeee', 'segmentation': 'ffffffffffff'}
    shipped = json.loads(json.dumps(inp.results))
    shipped['rows'].pop('vqvae_upper_bound', None)
    shipped['person_iou'].pop('vqvae_upper_bound', None)
    shipped['vqvae_upper_bound_skipped'] = 'no encoder'
    merged = docs.inputs.with_upper_bound(shipped, upper, 'results_upper.json')
    assert merged['rows']['vqvae_upper_bound'] == upper['rows']['vqvae_upper_bound']
    assert next(iter(merged['rows'])) == 'vqvae_upper_bound' and 'vqvae_upper_bound_skipped' not in merged
    assert merged['with_encoder_model_ids'] == upper['model_ids'] and merged['model_ids'] == shipped['model_ids']
    assert 'docs/results_upper.json' in docs.results_page.upper_bound_source(merged)
    assert docs.inputs.with_upper_bound(inp.results, upper, 'x.json') is inp.results      # a row of its own wins
    other = json.loads(json.dumps(upper))
    other['rows']['method']['depth']['abs_rel'] += 0.01
    with pytest.raises(ValueError, match='another method'):
        docs.inputs.with_upper_bound(shipped, other, 'results_upper.json')
    for fresh_ids, met in ((upper['model_ids'], True), ({'depth': 'a' * 12, 'segmentation': 'b' * 12}, False)):
        fresh = {**json.loads(json.dumps(inp.results)), 'model_ids': fresh_ids}
        rows = {name: (ok, value) for name, ok, value in room_bar.rows(dataclasses.replace(inp, results=merged,
                                                                                           fresh=fresh))}
        ok, value = rows['new seed: method AbsRel within 10 % of the test split']
        assert ok is met and ('with their VQ-VAE encoders' in value) is met, value


def test_the_training_table_names_its_run_and_whether_it_made_the_shipped_models(docs, inp):
    shipped = {'started_utc': '2026-01-01T00:00:00Z', 'cpu_model': 'CPU A', 'commit': 'aaaaaaa', 'command': 'x'}
    note = docs.results_page.training_run_note
    assert note(dataclasses.replace(inp, summary={**inp.summary, 'run': None})) == ''
    same = note(dataclasses.replace(inp, summary={**inp.summary, 'run': shipped}, timings={'run': shipped}))
    assert '2026-01-01T00:00:00Z' in same and 'not kept' not in same
    rerun = {**shipped, 'started_utc': '2026-02-02T00:00:00Z', 'cpu_model': 'CPU B'}
    other = note(dataclasses.replace(inp, summary={**inp.summary, 'run': rerun}, timings={'run': shipped}))
    assert 'CPU B' in other and 'CPU A' in other and 'not kept' in other


def test_a_reproduction_that_found_its_feature_cache_says_so_and_adds_the_last_computed_features(docs, inp):
    full = {'run': {'cpu_model': 'CPU A', 'started_utc': 'T0'}, 'features': 3000.0, 'total': 6000.0}
    cached = {'run': {'started_utc': 'T1', 'features_cache_existed': True}, 'features': 15.0, 'train': 2985.0,
              'total': 3000.0}
    text = docs.results_page.time_table(dataclasses.replace(inp, timings=cached, full_run_timings=full))
    assert 'the features were read, not computed' in text and '100.0 min' in text and 'within the' in text
    old_run = {**cached, 'run': {'started_utc': 'T1'}}          # before the record: a features stage of seconds
    assert 'not computed' in docs.results_page.time_table(dataclasses.replace(inp, timings=old_run,
                                                                              full_run_timings=full))
    computed = {**cached, 'run': {'started_utc': 'T1'}, 'features': 3000.0, 'total': 5985.0}
    assert 'not computed' not in docs.results_page.time_table(dataclasses.replace(inp, timings=computed,
                                                                                  full_run_timings=full))


def test_the_latent_probe_of_a_depth_model_relative_to_the_room_reports_segmentation_alone(docs, inp):
    seg = {'segmentation': {'miou': 0.2, 'pixel_acc': 0.7}}
    probe = {'command': 'probe', 'test_windows': 10, 'rows': {'mean image': seg, 'decoded mean latent': seg},
             'skipped': {'depth': 'depth_target layout_ratio: no image-free mean'}}
    text = docs.results_page.probes.latent_probe_section(dataclasses.replace(inp, latent_probe=probe))
    if inp.results['rows'].get('end_to_end'):
        assert 'depth not probed: depth_target layout_ratio' in text and 'mIoU 0.200' in text


def test_an_ablation_of_two_networks_says_each_networks_steps_from_its_rows():
    sys.path.insert(0, str(ROOT / 'scripts'))
    try:
        from results_docs import studies
    finally:
        sys.path.remove(str(ROOT / 'scripts'))

    def row(abs_rel, miou, person):
        return {'depth': {'abs_rel': abs_rel}, 'segmentation': {'miou': miou, 'per_class_iou': {'person': person}}}
    rows = {'A: none': row(0.3, 0.4, 0.0), 'B: none': row(0.31, 0.41, None), 'A: + x': row(0.2, 0.5, 0.1),
            'B: + x': row(0.19, 0.52, 0.2)}
    assert list(studies.by_network(rows)) == ['A', 'B']
    text = studies.steps_per_network(rows)
    assert '- A, none → + x: depth AbsRel 0.300 → 0.200, mIoU 0.400 → 0.500, person IoU 0.000 → 0.100.' in text
    assert '- B, none → + x: depth AbsRel 0.310 → 0.190' in text
    assert studies.steps_per_network({'none': row(0.3, 0.4, 0.0), '+ x': row(0.2, 0.5, 0.1)}) == ''


def test_a_retrain_study_compares_both_settings_from_their_files(room_bar, inp):
    assert room_bar.retrain_study_table(dataclasses.replace(inp, retrain_studies={}), 'srp_norm') == ''
    files = {'test': inp.results, 'independent': inp.independent, 'reference': inp.independent_reference}
    if not all(files.values()):
        pytest.skip('the independent re-recording results are not here')
    better = json.loads(json.dumps(inp.independent))
    better['rows']['method']['depth']['abs_rel'] = inp.independent_reference['rows']['method']['depth']['abs_rel']
    study = {'none': files, 'center': {**files, 'independent': better}}
    text = room_bar.retrain_study_table(dataclasses.replace(inp, retrain_studies={'srp_norm': study}), 'srp_norm')
    assert '| method | independent re-recording: AbsRel change |' in text and '| center (shipped) |' in text
    assert "With srp_norm none → center, the method's independent re-recording changes by" in text
    assert '→ +0.0 % in AbsRel' in text
    missing = {'none': files, 'center': {**files, 'test': None}}
    assert room_bar.retrain_study_table(dataclasses.replace(inp, retrain_studies={'srp_norm': missing}),
                                        'srp_norm') == ''


def test_retrain_spread_reads_each_setting_and_leaves_out_a_superseded_study(docs, inp):
    """The end-to-end miss's spread over retrains: each setting's method-vs-baseline gap from its own test file,
    nothing from a study a later one holds (``superseded_by``), and where a later retrain replaced the study's shipped
    setting's models, the text says it is of the configuration shipped before."""
    sys.path.insert(0, str(ROOT / 'scripts'))
    try:
        from results_docs import room_bar
    finally:
        sys.path.remove(str(ROOT / 'scripts'))
    studies = inp.facts['room_bar']['retrain_studies']
    current = [n for n, g in studies.items() if not g.get('superseded_by')]
    superseded = [n for n in studies if n not in current]
    assert current and superseded
    for name in superseded:
        assert room_bar.retrain_spread(inp, name, 'segmentation', 'miou', 'mIoU') == ''
    name = current[0]
    text = room_bar.retrain_spread(inp, name, 'segmentation', 'miou', 'mIoU')
    shipped_now = studies[name]['settings'][str(studies[name]['shipped'])]['test'] == 'results.json'
    assert ('the configuration shipped before' in text) != shipped_now
    retrained = [n for n, spec in studies[name]['settings'].items() if spec.get('retrained', True)]
    tests = {n: files['test']['rows'] for n, files in inp.retrain_studies[name].items() if n in retrained}
    for n in set(studies[name]['settings']) - set(retrained):       # a re-score is not a retrain's spread
        assert f' {n} ' not in text.split('the method against the baseline:')[1] + ' '
    for n, rows in tests.items():
        m, e = rows['method']['segmentation']['miou'], rows['end_to_end']['segmentation']['miou']
        assert f"{n}{' (shipped)' if n == str(studies[name]['shipped']) else ''} {(m - e) / e * 100:+.1f} %" in text
    low = min(r['end_to_end']['segmentation']['miou'] for r in tests.values())
    assert f"baseline's {low:.3f}-" in text


def test_end_to_end_spreads_reads_both_bars_criterion_names(docs, inp):
    """Issue #10 names its criterion 'on depth AbsRel', issue #22 'on AbsRel' behind a 'test:' prefix: both find
    the metric's spread, and a criterion of another kind finds none."""
    sys.path.insert(0, str(ROOT / 'scripts'))
    try:
        from results_docs import room_bar
    finally:
        sys.path.remove(str(ROOT / 'scripts'))
    both = room_bar.end_to_end_spreads(inp, ['method within 5 % of end-to-end on depth AbsRel, or ahead: 1 vs 2',
                                             'test: method within 5 % of end-to-end on mIoU, or ahead'])
    assert set(both) == {'AbsRel', 'mIoU'}
    assert both['mIoU'] == room_bar.end_to_end_spreads(inp, ['test: method within 5 % of end-to-end on mIoU'])['mIoU']
    assert room_bar.end_to_end_spreads(inp, ['test: mIoU >= 0.65', 'shifted rooms: method AbsRel within 10 %']) == {}


def test_the_pages_say_where_the_results_were_measured_not_where_they_were_written(docs):
    recorded = {'date': '1999-12-31', 'machine': 'the machine that measured them'}
    assert docs.inputs.measured({'measured': recorded}) == recorded
    here = docs.inputs.measured({})                            # a file from before the record: here and today
    assert set(here) == {'date', 'machine'} and here['machine'] != recorded['machine']


def test_the_independent_miss_names_the_held_out_windows_change(docs, inp):
    room_bar = sys.modules[docs.results_page.__name__.rsplit('.', 1)[0] + '.room_bar']
    rows = {'depth': {'abs_rel': 0.2, 'delta1': 0.8}, 'segmentation': {'miou': 0.5}}
    worse = copy.deepcopy(rows)
    worse['depth']['abs_rel'] = 0.21
    text = room_bar.held_out_windows(dataclasses.replace(
        inp, independent_val={'rows': {'method': worse}, 'n_samples': 7},
        independent_val_reference={'rows': {'method': rows}}))
    assert text.startswith(' On 7 validation windows') and '+5.0 % in AbsRel, +0.0 % in δ1, +0.0 % in mIoU' in text
    assert room_bar.held_out_windows(dataclasses.replace(inp, independent_val=None)) == ''
    far = copy.deepcopy(rows)
    far['depth']['abs_rel'] = 0.24                              # +20 % on the test windows: 15 points apart
    held = dict(independent_val={'rows': {'method': worse}, 'n_samples': 7},
                independent_val_reference={'rows': {'method': rows}},
                independent_reference={'rows': {'method': rows}})
    apart = room_bar.held_out_windows(dataclasses.replace(
        inp, independent={'rows': {'method': far}, 'n_samples': 9}, **held))
    assert 'against +20.0 % in AbsRel on the 9 test windows: the test figure depends on which windows' in apart
    near = room_bar.held_out_windows(dataclasses.replace(
        inp, independent={'rows': {'method': worse}, 'n_samples': 9}, **held))
    assert 'against +5.0 % in AbsRel on the 9 test windows (within 5 points of each other).' in near


def test_the_method_against_end_to_end_at_both_budgets(room_bar, inp):
    def scored(method, e2e):
        res = json.loads(json.dumps(inp.results))
        res['rows']['method']['segmentation']['miou'], res['rows']['end_to_end']['segmentation']['miou'] = method, e2e
        return res
    studies = {'segmentation': {'before': scored(0.50, 0.55), 'after': scored(0.54, 0.56)}}
    text = room_bar.budget_gap(dataclasses.replace(inp, budget_studies=studies), 'segmentation', 'miou', 'mIoU')
    assert text.endswith('the method against the baseline on mIoU -9.1 % and -3.6 %.')
    studies['segmentation']['after'] = None
    assert room_bar.budget_gap(dataclasses.replace(inp, budget_studies=studies), 'segmentation', 'miou', 'mIoU') == ''


def test_the_vqvae_budget_rule_takes_the_lower_seed(room_bar, inp):
    inp = dataclasses.replace(inp, fused_layout={})     # the studies compare with the shipped models

    def scored(miou):
        res = json.loads(json.dumps(inp.results))
        res['rows']['method']['segmentation']['miou'] = miou
        return res
    facts = json.loads(json.dumps(inp.facts))
    facts['room_bar']['vqvae_budget_study'] = {'epochs': 8, 'command': 'train', 'files': {'0': 'a.json', '1': 'b.json'}}
    seeds = {'6': {'0': scored(0.52), '1': scored(0.50)}}                                  # mIoU spread 0.02
    vq4 = {**inp.train, 'optim_overrides': {}}                       # the shipped VQ-VAE at the base 4 epochs
    base = dataclasses.replace(inp, facts=facts, seed_study=seeds, reproduction=scored(0.51),
                               budget_studies={'segmentation': {'before': None, 'after': scored(0.55)}},
                               summary={**inp.summary, 'config': {**inp.summary['config'], 'train': vq4}})
    text = room_bar.vqvae_budget_table(dataclasses.replace(base, vqvae_budget={'0': scored(0.54), '1': scored(0.53)}))
    assert '| its own VQ-VAE (8 epochs, seed 1) | 0.530 |' in text and '| shipped VQ-VAE (' in text
    assert text.rstrip().endswith('the lower seed\'s method mIoU 0.5300 against the segmentation budget study\'s '
                                  'less the seed spread, 0.5300: met.')
    low = room_bar.vqvae_budget_table(dataclasses.replace(base, vqvae_budget={'0': scored(0.54), '1': scored(0.52)}))
    assert low.rstrip().endswith('not met.')
    assert room_bar.vqvae_budget_table(dataclasses.replace(base, vqvae_budget={'0': scored(0.54), '1': None})) == ''
    # the shipped models' segmentation VQ-VAE trained at the study's epochs: the study's row is of the one before
    train = {**inp.train, 'optim_overrides': {'segmentation': {'vqvae_optim': {'epochs': 8}}}}
    shipped = dataclasses.replace(base, vqvae_budget={'0': scored(0.54), '1': scored(0.53)}, results=scored(0.54),
                                  summary={**inp.summary, 'config': {**inp.summary['config'], 'train': train}})
    text = room_bar.vqvae_budget_table(shipped)
    assert '| the VQ-VAE shipped before (' in text and '| shipped VQ-VAE (' not in text
    assert '| its own VQ-VAE (8 epochs), the shipped models (docs/results.json) | 0.540 |' in text


def test_the_speed_cause_sets_the_models_before_and_the_machine_before_beside_the_figure(room_bar, inp):
    def bench(p50, cpu, commit, compared=None):
        b = {'default_backend': 'onnx-parallel', 'date': '2026-12-07T11:00:00', 'perception': {
             'onnx-parallel': {'both': {'p50_ms': p50}}}, 'machine': {'cpu': cpu, 'git_commit': commit}}
        if compared is not None:
            b['perception_compared'] = {'onnx-parallel': {'both': {'p50_ms': compared}}}
        return b

    def latency(p50, commit):
        return {'results': {'source=sim': {'total_ms': {'p50': p50}}}, 'machine': {'git_commit': commit}}
    now = dataclasses.replace(inp, benchmarks=bench(25.2, 'CPU B', 'bbb', compared=25.5),
                              benchmarks_previous=bench(21.4, 'CPU A', 'aaa'),
                              latency=latency(43.0, 'bbb'), latency_previous=latency(34.3, 'aaa'))
    text = room_bar.machine_speed(now)
    assert 'took 25.2 ms p50 on CPU B' in text and 'the models shipped before' in text and '25.5 ms' in text
    assert 'on CPU A (2026-12-07, git aaa, docs/benchmarks_previous.json): 21.4 ms' in text
    assert '43.0 ms now, 34.3 ms in the previous measurement' in text
    assert room_bar.machine_speed(dataclasses.replace(now, benchmarks_previous=None)) == ''


def test_a_speed_figure_measured_beside_other_jobs_says_so(room_bar, inp):
    def rows(load):
        b = copy.deepcopy(inp.benchmarks)
        b['machine']['load_average_at_start'] = [load, 0.5, 0.5]
        lat = copy.deepcopy(inp.latency)
        lat['machine']['load_average_at_start'] = [load, 0.5, 0.5]
        return room_bar.speed_rows(dataclasses.replace(inp, benchmarks=b, latency=lat))
    if not inp.benchmarks or not inp.latency:
        pytest.skip('no recorded benchmarks')
    busy, quiet = rows(1.39), rows(0.2)
    assert all('measured beside other jobs, load average 1.39 at its start' in value for _, _, value in busy)
    assert not any('beside other jobs' in value for _, _, value in quiet)
    assert [met for _, met, _ in busy] == [met for _, met, _ in quiet]      # said, not judged


def test_the_vqvae_gap_is_told_once_the_shipped_vqvae_has_the_studys_epochs(room_bar, inp):
    inp = dataclasses.replace(inp, fused_layout={})     # the studies compare with the shipped models

    def scored(method, e2e):
        res = json.loads(json.dumps(inp.results))
        res['rows']['method']['segmentation']['miou'], res['rows']['end_to_end']['segmentation']['miou'] = method, e2e
        return res
    facts = json.loads(json.dumps(inp.facts))
    facts['room_bar']['vqvae_budget_study'] = {'epochs': 8, 'command': 'train', 'files': {}}
    train = {**inp.train, 'optim_overrides': {'segmentation': {'vqvae_optim': {'epochs': 8}}}}
    base = dataclasses.replace(inp, facts=facts, results=scored(0.53, 0.58),
                               budget_studies={'segmentation': {'before': None, 'after': scored(0.55, 0.58)}},
                               summary={**inp.summary, 'config': {**inp.summary['config'], 'train': train}})
    text = room_bar.vqvae_gap(base)
    assert "mIoU 0.550 (-5.2 % against its baseline's 0.580)" in text and '0.530 (-8.6 % against 0.580' in text
    assert 'the gap moved with the VQ-VAE' in text
    other_baseline = room_bar.vqvae_gap(dataclasses.replace(base, results=scored(0.53, 0.57)))
    assert 'the gap moved' not in other_baseline
    four = {**train, 'optim_overrides': {}}
    assert room_bar.vqvae_gap(dataclasses.replace(
        base, summary={**inp.summary, 'config': {**inp.summary['config'], 'train': four}})) == ''


def segmentation_scored(inp, miou: float, speaking: float, silent: float) -> dict:
    """The test results with the method's mIoU and person IoUs replaced."""
    res = json.loads(json.dumps(inp.results))
    res['rows']['method']['segmentation']['miou'] = miou
    res['person_iou']['method'] = {'speaking': speaking, 'silent': silent}
    return res


def test_the_atnet_study_judges_each_variant_by_its_rule_and_names_the_stopped_ones(room_bar, inp):
    def scored(miou, speaking=0.35, silent=0.25):
        return segmentation_scored(inp, miou, speaking, silent)
    facts = json.loads(json.dumps(inp.facts))
    facts['room_bar']['segmentation_atnet_study'] = {
        'variants': {'a': {'x.image_weight': 4.0}, 'b': {'y.joined_convs': 2}, 'c': {'z': 1}}, 'command': 'train',
        'files': {'a': 'a.json', 'b': 'b.json'}, 'before': 'before.json',
        'stopped': {'c': {'epoch': 9, 'val_miou': 0.48, 'shipped_val_miou': 0.52}}}
    seeds = {'6': {'0': scored(0.52, 0.30, 0.20), '1': scored(0.50, 0.33, 0.24)}}   # spreads 0.02, 0.03, 0.04
    base = dataclasses.replace(inp, facts=facts, seed_study=seeds)
    runs = {'before': scored(0.53), 'a': scored(0.56), 'b': scored(0.56, silent=0.20)}
    key = 'segmentation_atnet_study'
    text = room_bar.atnet_study_table(dataclasses.replace(base, atnet_studies={key: runs}), key)
    assert '| the shipped setting | 0.5300 | 0.3500 | 0.2500 |' in text
    assert '| a: x.image_weight 4 | 0.5600 |' in text and '| b: y.joined_convs 2 | 0.5600 |' in text
    assert 'a: mIoU +0.0300 (spread 0.0200), person IoU, speaking +0.0000 (spread 0.0300), ' \
           'person IoU, silent +0.0000 (spread 0.0400): met' in text
    assert 'b: mIoU +0.0300' in text and 'person IoU, silent -0.0500 (spread 0.0400): not met' in text
    assert 'c (z 1) was stopped after epoch 9 and not scored on the test split: its validation mIoU 0.4800 ' \
           "against the shipped run's 0.5200" in text
    small = room_bar.atnet_study_table(dataclasses.replace(
        base, atnet_studies={key: {**runs, 'a': scored(0.545)}}), key)
    assert 'a: mIoU +0.0150 (spread 0.0200)' in small and ': met' not in small
    assert room_bar.atnet_study_table(dataclasses.replace(
        base, atnet_studies={key: {**runs, 'b': None}}), key) == ''


def test_a_depth_atnet_variant_must_lower_absrel_by_more_than_the_spread(room_bar, inp):
    def scored(abs_rel, delta1):
        res = json.loads(json.dumps(inp.results))
        res['rows']['method']['depth'].update(abs_rel=abs_rel, delta1=delta1)
        return res
    facts = json.loads(json.dumps(inp.facts))
    for other in [k for k in facts['room_bar'] if k.startswith('depth_atnet_')]:   # only this test's studies
        del facts['room_bar'][other]
    facts['reproduction_run'] = {}                     # no reproduction shipped after them
    facts['room_bar']['depth_atnet_study'] = {'variants': {'j': {'atnet.joined_convs': 2}}, 'command': 'train',
                                              'files': {'j': 'j.json'}, 'before': 'before.json'}
    seeds = {'6': {'0': scored(0.150, 0.810), '1': scored(0.148, 0.807)}}            # spreads 0.002, 0.003
    base, key = dataclasses.replace(inp, facts=facts, seed_study=seeds), 'depth_atnet_study'

    def verdict(abs_rel, delta1):
        runs = {'before': scored(0.149, 0.807), 'j': scored(abs_rel, delta1)}
        return room_bar.atnet_study_table(dataclasses.replace(base, atnet_studies={key: runs}), key)
    assert 'j: AbsRel -0.0030 (spread 0.0020), δ1 -0.0020 (spread 0.0030): met.' in verdict(0.146, 0.805)
    assert ': not met.' in verdict(0.148, 0.807)          # lower, but within the spread
    assert ': not met.' in verdict(0.146, 0.800)          # δ1 falls by more than its spread
    assert '| depth AT-net | method AbsRel | method δ1 |' in verdict(0.146, 0.805)
    # shipped, with a control (the shipped setting trained as the variant was): its row and the variant against it
    facts['room_bar']['depth_atnet_study'].update(shipped='j', control={'file': 'c.json', 'how': 'the stage alone'})
    runs = {'before': scored(0.149, 0.807), 'j': scored(0.146, 0.805), 'control': scored(0.147, 0.806)}
    text = room_bar.atnet_study_table(dataclasses.replace(base, atnet_studies={key: runs}), key)
    assert '| the setting shipped before | 0.1490 | 0.8070 |' in text
    assert '| j: atnet.joined_convs 2 (shipped) |' in text
    assert '| the setting shipped before, trained as the variants were (the stage alone) | 0.1470 | 0.8060 |' in text
    # a later study of the same modality ships another variant: the first one's row says it was replaced
    facts['room_bar']['depth_atnet_study_more'] = {'variants': {'k': {'atnet.joined_convs': 4}}, 'command': 'train',
                                                   'files': {'k': 'k.json'}, 'before': 'j.json', 'shipped': 'k'}
    studies = {key: runs, 'depth_atnet_study_more': {'before': runs['j'], 'k': scored(0.140, 0.810)}}
    later = dataclasses.replace(base, atnet_studies=studies)
    assert '| j: atnet.joined_convs 2 (shipped, replaced later: depth_atnet_study_more) |' in \
        room_bar.atnet_study_table(later, key)
    assert '| k: atnet.joined_convs 4 (shipped) |' in room_bar.atnet_study_table(later, 'depth_atnet_study_more')
    assert room_bar.shipped_atnet(later)['depth'][:2] == ('depth_atnet_study_more', 'k')
    # a reproduction at the shipped setting whose models were shipped: the AT-net is that run's, not the study's
    facts['reproduction_run'] = {'shipped': True}
    assert '| k: atnet.joined_convs 4 (shipped, replaced later: reproduction_run) |' in \
        room_bar.atnet_study_table(later, 'depth_atnet_study_more')
    assert room_bar.shipped_atnet(later) == {}
    assert 'met (against the shipped setting trained as it was: AbsRel -0.0010, δ1 -0.0010).' in text
    # a study shipped after that reproduction: its AT-net replaces the run's, and the reproduction replaced k before
    facts['room_bar']['depth_atnet_study_after'] = {
        'variants': {'m': {'atnet.joined_convs': 6}}, 'command': 'train', 'files': {'m': 'm.json'},
        'before': 'k.json', 'shipped': 'm', 'shipped_since_reproduction': True}
    after = dataclasses.replace(base, atnet_studies={**studies, 'depth_atnet_study_after': {
        'before': studies['depth_atnet_study_more']['k'], 'm': scored(0.139, 0.811)}})
    assert [k for k in room_bar.shipping_order(after) if not k.startswith('segmentation')] == [
        'depth_atnet_study', 'depth_atnet_study_more', 'reproduction_run', 'depth_atnet_study_after']
    assert room_bar.shipped_atnet(after)['depth'][:2] == ('depth_atnet_study_after', 'm')
    assert '| k: atnet.joined_convs 4 (shipped, replaced later: reproduction_run) |' in \
        room_bar.atnet_study_table(after, 'depth_atnet_study_more')
    assert '| m: atnet.joined_convs 6 (shipped) |' in room_bar.atnet_study_table(after, 'depth_atnet_study_after')


def test_the_atnet_seeds_rule_pairs_each_seed_with_its_control(room_bar, inp):
    def scored(miou, speaking=0.35, silent=0.25):
        return segmentation_scored(inp, miou, speaking, silent)
    facts = json.loads(json.dumps(inp.facts))
    facts['room_bar']['segmentation_atnet_study'] = {'variants': {'j': {'atnet.joined_convs': 2}}}
    key = 'segmentation_atnet_seeds'
    facts['room_bar'][key] = {
        'variant': 'j', 'command': 'train',
        'files': {'0': {'variant': 'j0.json', 'control': 'c0.json'}, '1': {'variant': 'j1.json', 'control': 'c1.json'}}}
    seeds = {'6': {'0': scored(0.52, 0.30, 0.20), '1': scored(0.50, 0.33, 0.24)}}   # mIoU spread 0.02: half 0.01

    def verdict(j0, c0, j1, c1):
        runs = {'0': {'variant': j0, 'control': c0}, '1': {'variant': j1, 'control': c1}}
        return room_bar.atnet_seeds_table(dataclasses.replace(inp, facts=facts, seed_study=seeds,
                                                              atnet_seeds={key: runs}), key)
    text = verdict(scored(0.54), scored(0.53), scored(0.55), scored(0.535))
    assert '| 0 | j: atnet.joined_convs 2 | 0.5400 | 0.3500 | 0.2500 |' in text
    assert '| 1 | the shipped setting | 0.5350 |' in text
    assert 'mIoU +0.0100, +0.0150 (mean +0.0125)' in text and text.rstrip().endswith('met.')
    assert ': not met.' not in text
    # the mean is above half the spread, but one seed loses
    assert ': not met.' in verdict(scored(0.57), scored(0.53), scored(0.53), scored(0.535))
    # both seeds win, by less than half the spread on average
    assert ': not met.' in verdict(scored(0.535), scored(0.53), scored(0.54), scored(0.535))
    # a person IoU's mean falls
    assert ': not met.' in verdict(scored(0.54, silent=0.2), scored(0.53), scored(0.55), scored(0.535))
    assert verdict(scored(0.54), scored(0.53), scored(0.55), None) == ''


def test_the_models_size_is_judged_in_megabytes_and_its_miss_names_the_baselines(room_bar, inp):
    sizes = {'depth.pt': 10.9, 'segmentation.pt': 10.8, 'end_to_end_depth.pt': 9.4, 'end_to_end_segmentation.pt': 9.4}
    name, met, value = room_bar.size_row(dataclasses.replace(inp, sizes=sizes))
    assert name == 'models/ <= 40 MB' and not met and value == '40.50 MB (38.6 MiB)'
    assert room_bar.size_row(dataclasses.replace(inp, sizes={**sizes, 'depth.pt': 10.3}))[1]
    text = ' '.join(room_bar.causes(dataclasses.replace(inp, sizes=sizes), {name: value}))
    assert 'are 18.80 MB of it' in text and '21.70 MB' in text


def test_a_later_seeds_study_names_the_shipped_variant_it_is_paired_against(room_bar, inp):
    facts = json.loads(json.dumps(inp.facts))
    facts['room_bar']['segmentation_atnet_study'] = {'variants': {'j2': {'atnet.joined_convs': 2}}}
    key = 'segmentation_atnet_seeds_more'
    facts['room_bar'][key] = {'variant': 'j4', 'control': 'j2', 'variants': {'j4': {'atnet.joined_convs': 4}},
                              'command': 'train', 'files': {'0': {}, '1': {}}}
    seeds = {'6': {'0': segmentation_scored(inp, 0.52, 0.30, 0.20), '1': segmentation_scored(inp, 0.50, 0.33, 0.24)}}
    runs = {s: {'variant': segmentation_scored(inp, v, 0.4, 0.3), 'control': segmentation_scored(inp, c, 0.4, 0.3)}
            for s, v, c in (('0', 0.55, 0.54), ('1', 0.56, 0.545))}
    text = room_bar.atnet_seeds_table(dataclasses.replace(inp, facts=facts, seed_study=seeds,
                                                          atnet_seeds={key: runs}), key)
    assert '| 0 | j4: atnet.joined_convs 4 | 0.5500 |' in text
    assert '| 1 | the shipped setting (j2: atnet.joined_convs 2) | 0.5450 |' in text
    assert 'mIoU +0.0100, +0.0150 (mean +0.0125)' in text and 'no other mean negative: met.' in text


def test_the_exact_room_study_says_which_bars_the_front_end_blocks(room_bar, inp):
    """A bar met on the exact room and missed on the measured one is the front-end's; one missed on both is the
    room's; without its file the study renders nothing."""
    assert room_bar.oracle_room(dataclasses.replace(inp, room_priors={}), 'exact_room_study') == ''
    bar = inp.facts['room_bar']
    oracle = json.loads(json.dumps(inp.results))
    measured = inp.results['rows']['method']
    oracle['rows']['method']['depth'] = {**measured['depth'], 'abs_rel': bar['depth_abs_rel'] / 2,
                                         'delta1': min(1.0, bar['depth_delta1'] + 0.05)}
    oracle['rows']['method']['segmentation'] = {**measured['segmentation'], 'miou': bar['miou'] / 2}
    priors = {'exact_room_study': {'test': oracle, 'fresh': None, 'probe': None}}
    text = room_bar.oracle_room(dataclasses.replace(inp, room_priors=priors), 'exact_room_study')
    front_end, room = text.split('blocked by the planes')[1].split('How it was made')[0].split('Missed there too')
    if measured['depth']['abs_rel'] > bar['depth_abs_rel']:
        assert f"test: depth AbsRel <= {bar['depth_abs_rel']:.2f}" in front_end
    assert f"test: mIoU >= {bar['miou']:.2f}" in room and 'mIoU' not in front_end
    assert 'new seed' not in front_end + room               # the new seed's windows not scored: no verdict there
    assert f"| **{bar['miou'] / 2:.3f}** |" in text                      # a miss in bold
    assert f"| {bar['depth_abs_rel'] / 2:.3f} |" in text


def test_the_fused_room_rule_asks_for_a_gain_beyond_the_seed_spread_and_no_loss_beyond_it(room_bar, inp):
    inp = dataclasses.replace(inp, fused_layout={})     # the studies compare with the shipped models
    spreads = room_bar.seed_spreads(inp)
    if not spreads:
        pytest.skip('the seed study\'s files are not here')
    shipped = inp.results['rows']['method']

    def verdict(abs_rel_gain, miou_gain):
        fused = json.loads(json.dumps(inp.results))
        fused['rows']['method']['depth'] = {**shipped['depth'], 'abs_rel': shipped['depth']['abs_rel'] - abs_rel_gain}
        fused['rows']['method']['segmentation'] = {**shipped['segmentation'],
                                                   'miou': shipped['segmentation']['miou'] + miou_gain}
        priors = {'fused_room_study': {'test': fused, 'fresh': None, 'probe': None}}
        text = room_bar.fused_room(dataclasses.replace(inp, room_priors=priors))
        return text.split('The rule fixed before its results (facts.yaml): ')[1].split(':')[0]

    a, m = spreads[('method', 'abs_rel')], spreads[('method', 'miou')]
    assert verdict(1.5 * a, 0.0) == 'met'
    assert verdict(0.0, 1.5 * m) == 'met'
    assert verdict(0.5 * a, 0.5 * m) == 'not met'                # inside the seed noise
    assert verdict(1.5 * a, -1.5 * m) == 'not met'               # depth bought with segmentation


def test_bodies_on_the_floor_are_judged_on_the_validation_split_against_the_seed_spreads(room_bar, inp):
    spreads = room_bar.seed_spreads(inp)
    if not spreads:
        pytest.skip('the seed study\'s files are not here')
    row = inp.facts['room_bar']['bodies_on_floor_study']['row']
    method = inp.results['rows']['method']

    def verdict(abs_rel_gain, delta1_loss):
        val = json.loads(json.dumps(inp.results))
        val['rows'][row] = {**method, 'depth': {**method['depth'], 'abs_rel': method['depth']['abs_rel'] - abs_rel_gain,
                                                'delta1': method['depth']['delta1'] - delta1_loss}}
        text = room_bar.bodies_on_floor(dataclasses.replace(inp, bodies_on_floor_val=val))
        assert '| validation |' in text
        return text.split('(facts.yaml): ')[1].split(' on the validation split')[0]

    a, d = spreads[('method', 'abs_rel')], spreads[('method', 'delta1')]
    assert verdict(1.5 * a, 0.0) == 'met'
    assert verdict(0.5 * a, 0.0) == 'not met'
    assert verdict(1.5 * a, 1.5 * d) == 'not met'
    assert room_bar.bodies_on_floor(dataclasses.replace(inp, bodies_on_floor_val=None)) == ''


def test_the_shifted_rooms_cause_says_where_the_error_sits(room_bar):
    def probe(out_share, out_abs_rel, error_share):
        return {'published_row': 'method_on_floor', 'by_prior': {'method_on_floor': {
            'measured': {'abs_rel': 0.07, 'pixel_share': 1 - out_share, 'error_share': 1 - error_share},
            'not_measured': {'abs_rel': out_abs_rel, 'pixel_share': out_share, 'error_share': error_share}}}}
    text = room_bar.unmeasured_room_note(probe(0.28, 0.352, 0.65), probe(0.23, 0.269, 0.56))
    assert '28 % of the pixels there against 23 %' in text and 'AbsRel is 0.352 (0.269)' in text
    assert 'carries 65 % of its error (56 %)' in text
    assert room_bar.unmeasured_room_note(None, probe(0.23, 0.269, 0.56)) == ''
    assert room_bar.unmeasured_room_note(probe(0.28, 0.352, 0.65), {'by_prior': {}}) == ''


def test_the_odometry_noise_table_compares_with_no_odometry_and_the_models_before(room_bar, inp):
    def level(frac, deg, abs_rel):
        return {'position_drift_share': frac, 'yaw_drift_deg_per_m': deg,
                'method_on_floor': {'abs_rel': abs_rel, 'delta1': 0.8, 'miou': 0.5}}
    noise = {'command': 'probe', 'machine': 'm', 'date': 'd', 'published_row': 'method_on_floor',
             'levels': {'0:0': level(0.0, 0.0, 0.11), '0.05:2': level(0.05, 2.0, 0.14),
                        'none': level(None, None, 0.13)}}
    before = json.loads(json.dumps(inp.results))
    before['published_row'] = 'method'
    before['rows']['method']['depth']['abs_rel'] = 0.128
    text = room_bar.odometry_noise_table({'odometry_noise': noise, 'test_before': before})
    assert '| none (`pose_source: none`) | 0.1300 |' in text and '| 5 %, 2 | 0.1400 |' in text
    assert 'AbsRel is 0.1300, worse than the models before the fusion (0.1280' in text
    assert 'Drift of 5 %, 2 gives no better than no odometry.' in text
    before['rows']['method']['depth']['abs_rel'] = 0.135
    assert 'no worse than the models before' in room_bar.odometry_noise_table({'odometry_noise': noise,
                                                                               'test_before': before})
    assert room_bar.odometry_noise_table({'odometry_noise': noise}) == ''
