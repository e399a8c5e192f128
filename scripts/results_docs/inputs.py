# SPDX-License-Identifier: Apache-2.0
"""Every file the results documents are written from, read once into one `Inputs`.

The document modules only format what is here: no section opens a file. Optional result files are None
when absent (their sections are then left out)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from audio_vision.paths import measured_here
from audio_vision.training.loop import read_log

MODALITIES = ('depth', 'segmentation')
#: scripts/ablation.py studies, in the order the results page shows them, with their headings
ABLATION_STUDIES = {'features': 'Feature ablation', 'objective': 'AT-net objective ablation',
                    'width': 'ResNet width', 'data': 'Learning curve', 'prior': 'Layout-prior ablation',
                    'srp': 'SRP-PHAT maps'}
FACTS = Path(__file__).with_name('facts.yaml')


@dataclass(frozen=True)
class Inputs:
    """What the three documents are written from (result files as parsed JSON, None where absent)."""

    results: dict                   # docs/results.json: the test split
    fresh: dict | None              # docs/results_fresh.json: a dataset of a new seed
    shifted: dict | None            # docs/results_shifted.json: the shifted rooms' test split
    prior_budget_before: dict | None   # facts.yaml room_bar.budget_before: the prior's models at the lower budget
    prior_budget_after: dict | None    # ... and at the raised one (its `against` file; docs/results.json without)
    depth_target_study: dict | None    # facts.yaml room_bar.depth_target_study: depth relative to the layout
    depth_target_probe: dict | None    # its per-class depth errors (scripts/depth_error_probe.py)
    independent: dict | None        # docs/results_independent.json: test windows re-recorded independently
    independent_reference: dict | None   # docs/results_independent_reference.json: the same windows, this pipeline
    independent_swap: dict | None   # docs/independent_swap.json: their features swapped group by group
    independent_val: dict | None    # docs/results_independent_val.json: validation windows re-recorded independently
    independent_val_reference: dict | None   # docs/results_independent_val_reference.json: the same, this pipeline
    retrain_studies: dict           # facts.yaml room_bar.retrain_studies: {study: {setting: {test/...: json}}}
    seed_study: dict                # facts.yaml room_bar.seed_study: {revision: {seed: test-split json}}
    vqvae_budget: dict              # {seed: json}: facts.yaml room_bar.vqvae_budget_study's files ({} without it)
    # {study: {variant: json}}: facts.yaml room_bar.<modality>_atnet_study* (ATNET_STUDY)'s files and its 'before',
    # in facts.yaml's order
    atnet_studies: dict
    # {key: {seed: {'variant': json, 'control': json}}}: the files of facts.yaml room_bar's ATNET_SEEDS keys
    atnet_seeds: dict
    # {modality: {'before': json, 'after': json}}: facts.yaml room_bar.<modality>_budget_study's files (before: its
    # ``before``, docs/results.json by default; after: its ``file``)
    budget_studies: dict
    timings: dict                   # docs/reproduce_timings.json ({} when absent)
    full_run_timings: dict          # docs/reproduce_timings_full_run.json: the last run that computed the features
    summary: dict                   # docs/training_summary.json (or the runs it summarises)
    card: dict                      # the dataset's card.json ({} when the dataset is not here)
    trained_on: dict                # the training dataset as the shipped depth checkpoint records it ({} if none)
    sizes: dict                     # models/*.pt: file name -> MB
    today: str
    machine: str
    ablations: dict                 # study -> docs/ablation_<study>.json, for the studies present
    budget_before: dict             # modality -> the results of the models shipped before (facts.yaml budget_study)
    budget_after: dict              # the results at the raised budget (facts.yaml budget_study.after; else results)
    depth_probe: dict | None        # docs/depth_error_probe.json
    shifted_probe: dict | None      # docs/depth_error_probe_shifted.json (the same probe on the shifted rooms)
    # {study: {'test': json, 'fresh': json, 'probe': json}} of facts.yaml room_bar's ROOM_PRIOR_STUDIES present: the
    # method retrained on another room as its layout prior, on the test split, the new seed's windows, and its depth
    # errors (scripts/depth_error_probe.py; None where the study names none)
    room_priors: dict
    direction_maps: dict | None     # docs/direction_maps_diagnostic.json
    latent_probe: dict | None       # docs/latent_mean_probe.json
    confidence: dict | None         # docs/confidence.json
    benchmarks: dict | None         # docs/benchmarks.json (benchmarks/bench_perception.py)
    latency: dict | None            # docs/latency_breakdown.json (benchmarks/latency_breakdown.py)
    # the measurements before those (docs/benchmarks_previous.json, docs/latency_breakdown_previous.json): kept when
    # a re-measurement moves to another machine
    benchmarks_previous: dict | None
    latency_previous: dict | None
    bench_sonar: dict | None        # docs/bench_sonar.json (benchmarks/bench_sonar.py)
    sonar: dict | None              # docs/sonar.json (scripts/eval_sonar.py)
    ceiling_material: dict | None   # docs/ceiling_material.json (scripts/ceiling_material_probe.py)
    bodies_on_floor_val: dict | None   # facts.yaml room_bar.bodies_on_floor_study's validation-split file
    # facts.yaml room_bar.fused_layout_shipping's files: {'val', 'before_val', 'test_before', 'fresh_before',
    # 'probe_before', 'odometry_noise'}
    fused_layout: dict
    reflectors: dict | None         # docs/reflectors.json (scripts/eval_reflectors.py)
    mapping: dict | None            # docs/mapping.json
    mapping_tuning: dict | None     # docs/mapping_tuning.json
    layout_snap: dict | None              # docs/layout_snap.json: the method's depth snapped to the measured layout
    reproduction: dict | None       # docs/results_reproduction.json
    # what that run is compared with: facts.yaml reproduction_run's ``against`` file, the models shipped when it ran
    # (None without it: the shipped models, docs/results.json)
    reproduction_against: dict | None
    reproduction_timings: dict | None   # docs/reproduce_timings_reproduction.json: the timings of that run
    models_compared: dict | None    # docs/models_compared.json
    notes: str                      # docs/reproduce_notes.md: how the times were taken ('' when absent)
    readme: str                     # README.md as it is, its results section to be replaced
    simulation: dict                # config/simulation.yaml: what the dataset was simulated with
    facts: dict                     # facts.yaml: the numbers no result file records

    @property
    def train(self) -> dict:
        """The training run's config (config/train.yaml with every default filled in)."""
        return (self.summary.get('config') or {}).get('train', {})

    @property
    def counts(self) -> dict:
        """Windows per split of the dataset the results were scored on."""
        return self.results['dataset'].get('counts') or {}

    @property
    def mics(self) -> int:
        """Microphones of the simulated array: its positions, or its rings times the microphones per ring."""
        array = self.simulation['array']
        if array.get('positions'):
            return len(array['positions'])
        return len(array['ring_heights']) * array['mics_per_ring']

    @property
    def array_diameter_m(self) -> float:
        """The simulated array's horizontal aperture: its rings' diameter."""
        return 2 * self.simulation['array']['ring_radius']


#: facts.yaml room_bar keys of the AT-net studies one change apart: <modality>_atnet_study, then later ones
#: <modality>_atnet_study_<name> (each judged against the AT-net shipped when it ran)
#: facts.yaml room_bar's studies of the method retrained on another room as its layout prior (room_bar.room_prior_*)
ROOM_PRIOR_STUDIES = ('exact_room_study', 'audible_room_study', 'fused_room_study')
ATNET_STUDY = re.compile(r'(depth|segmentation)_atnet_study(_\w+)?')
#: facts.yaml room_bar keys of a variant against the shipped setting at several seeds, paired by seed
ATNET_SEEDS = re.compile(r'(depth|segmentation)_atnet_seeds(_\w+)?')


def atnet_study_modality(key: str) -> str:
    """The modality of an AT-net study's facts.yaml key (:data:`ATNET_STUDY`)."""
    return key.split('_', 1)[0]


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def with_upper_bound(results: dict, upper: dict | None, name: str) -> dict:
    """``results`` with the VQ-VAE upper bound's rows taken from ``upper`` (docs/<name>: the same models scored with
    their VQ-VAE encoders, which the shipped files leave out) where ``results`` has none; as it is otherwise. The two
    files must score the same method: the encoder is all that differs between them. Their model ids (the files' content
    hashes) differ; ``with_encoder_model_ids`` names the upper bound's, whose other results count as the shipped
    models' (the method's test-split scores equal)."""
    if upper is None or 'vqvae_upper_bound' in results['rows']:
        return results
    a, b = upper['rows']['method'], results['rows']['method']
    headline = (('depth', 'abs_rel'), ('depth', 'delta1'), ('segmentation', 'miou'))
    if any(abs(a[m][k] - b[m][k]) > 1e-6 for m, k in headline):
        raise ValueError(f'docs/{name} scores another method than docs/results.json (its method row differs): '
                         'measure it again from the training runs\' own files (facts.yaml vqvae_upper_bound)')
    out = {k: v for k, v in results.items() if k != 'vqvae_upper_bound_skipped'}
    out['rows'] = {'vqvae_upper_bound': upper['rows']['vqvae_upper_bound'], **results['rows']}
    if 'vqvae_upper_bound' in upper.get('person_iou', {}):
        out['person_iou'] = {'vqvae_upper_bound': upper['person_iou']['vqvae_upper_bound'], **results['person_iou']}
    out['vqvae_upper_bound_from'] = name
    if upper.get('model_ids') != results.get('model_ids'):
        out['with_encoder_model_ids'] = upper.get('model_ids')    # the same inference, another file: room_bar._within
    return out


def measured(results: dict) -> dict:
    """Where and when the test split's results were measured: as docs/results.json records it (``evaluate`` writes
    it), else here and today (a file from before the record)."""
    return results.get('measured') or measured_here()


def summarise_training(runs: Path) -> dict:
    """Per stage: epochs run, best epoch, final/best validation metrics, codebook usage; plus configs."""
    out = {'stages': {}, 'config': None}
    run_info = (read_json(Path(runs) / 'timings.json') or {}).get('run')   # scripts/reproduce_default_model.sh's
    if run_info:
        out['run'] = run_info
    for m in MODALITIES:
        run = Path(f'{runs}-{m}')
        if not run.is_dir():
            continue
        cfg = read_json(run / 'config.json')
        out['config'] = cfg or out['config']       # the last modality's run: the newest config
        for stage in ('vqvae', 'atnet', 'end_to_end'):
            rows = read_log(run / f'{stage}_{m}')
            if rows:
                out['stages'][f'{stage}_{m}'] = {'epochs_run': len(rows), 'history': rows}
        timings = read_json(run / 'timings.json') or {}
        for name, seconds in timings.items():
            out['stages'].setdefault(name, {})['seconds'] = round(seconds, 1)
    return out


def trained_on(checkpoint: Path) -> dict:
    """The training dataset (path, content hash, counts, seed) a checkpoint records, {} without one."""
    if not checkpoint.is_file():
        return {}
    return torch.load(checkpoint, map_location='cpu', weights_only=True)['config'].get('dataset') or {}


def fused_layout_files(docs: Path, facts: dict) -> dict:
    """facts.yaml room_bar.fused_layout_shipping's result files that exist: {'val', 'before_val', 'test_before',
    'fresh_before', 'probe_before', 'odometry_noise'} -> their contents."""
    shipping = facts['room_bar'].get('fused_layout_shipping') or {}
    files = {key: read_json(docs / shipping[f'{key}_file'])
             for key in ('val', 'before_val', 'test_before', 'fresh_before', 'probe_before', 'odometry_noise')
             if f'{key}_file' in shipping}
    return {key: res for key, res in files.items() if res is not None}


def load(root: Path, summary: dict | None = None) -> Inputs:
    """Read every input below `root`; `summary` replaces docs/training_summary.json (a summary of the runs)."""
    docs = root / 'docs'
    facts = read_yaml(FACTS)
    upper_bound = facts['vqvae_upper_bound']['file']
    results = with_upper_bound(read_json(docs / 'results.json'), read_json(docs / upper_bound), upper_bound)
    before = {m: read_json(docs / b['file']) for m, b in facts['budget_study']['before'].items()}
    ablations = {s: read_json(docs / f'ablation_{s}.json') for s in ABLATION_STUDIES}
    notes = docs / 'reproduce_notes.md'
    when = measured(results)                       # where and when the test split was scored
    return Inputs(
        results=results,
        fresh=read_json(docs / 'results_fresh.json'),
        shifted=read_json(docs / 'results_shifted.json'),
        prior_budget_before=read_json(docs / facts['room_bar']['budget_before']['file']),
        prior_budget_after=read_json(docs / facts['room_bar']['budget_before'].get('against', 'results.json')),
        depth_target_study=read_json(docs / facts['room_bar']['depth_target_study']['file']),
        depth_target_probe=read_json(docs / facts['room_bar']['depth_target_study']['probe']),
        independent=read_json(docs / 'results_independent.json'),
        independent_reference=read_json(docs / 'results_independent_reference.json'),
        independent_swap=read_json(docs / 'independent_swap.json'),
        independent_val=read_json(docs / 'results_independent_val.json'),
        independent_val_reference=read_json(docs / 'results_independent_val_reference.json'),
        retrain_studies={
            study: {setting: {k: read_json(docs / spec[k]) for k in ('test', 'independent', 'reference', 'shifted')}
                    for setting, spec in given['settings'].items()}
            for study, given in facts['room_bar'].get('retrain_studies', {}).items()},
        seed_study={revision: {seed: read_json(docs / name) for seed, name in seeds.items()}
                    for revision, seeds in facts['room_bar'].get('seed_study', {}).get('revisions', {}).items()},
        vqvae_budget={seed: read_json(docs / name) for seed, name in
                      facts['room_bar'].get('vqvae_budget_study', {}).get('files', {}).items()},
        atnet_studies={key: {variant: read_json(docs / name) for variant, name in
                             {**study['files'], 'before': study.get('before', 'results.json'),
                              **({'control': study['control']['file']} if 'control' in study else {})}.items()}
                       for key, study in facts['room_bar'].items() if ATNET_STUDY.fullmatch(key)},
        atnet_seeds={key: {seed: {side: read_json(docs / name) for side, name in pair.items()}
                           for seed, pair in study['files'].items()}
                     for key, study in facts['room_bar'].items() if ATNET_SEEDS.fullmatch(key)},
        budget_studies={m: {'before': read_json(docs / spec.get('before', 'results.json')),
                            'after': read_json(docs / spec['file'])}
                        for m in ('depth', 'segmentation') if (spec := facts['room_bar'].get(f'{m}_budget_study'))},
        timings=read_json(docs / 'reproduce_timings.json') or {},
        full_run_timings=read_json(docs / 'reproduce_timings_full_run.json') or {},
        summary=summary or read_json(docs / 'training_summary.json') or {'stages': {}, 'config': None},
        # the dataset path is as the evaluation recorded it: relative to where the writer runs (the repository)
        card=read_json(Path(results['dataset']['path']) / 'card.json') or {},
        trained_on=trained_on(root / 'models' / 'depth.pt'),
        sizes={p.name: p.stat().st_size / 1e6 for p in sorted((root / 'models').glob('*.pt'))},
        today=when['date'],
        machine=when['machine'],
        ablations={s: a for s, a in ablations.items() if a},
        budget_before={m: r for m, r in before.items() if r},
        budget_after=(read_json(docs / facts['budget_study']['after']['file']) if 'after' in facts['budget_study']
                      else None) or results,
        depth_probe=read_json(docs / 'depth_error_probe.json'),
        shifted_probe=read_json(docs / 'depth_error_probe_shifted.json'),
        room_priors={key: {'test': read_json(docs / study['file']), 'fresh': read_json(docs / study['fresh_file']),
                           'probe': read_json(docs / study['depth_probe']) if 'depth_probe' in study else None}
                     for key in ROOM_PRIOR_STUDIES if (study := facts['room_bar'].get(key))},
        direction_maps=read_json(docs / 'direction_maps_diagnostic.json'),
        latent_probe=read_json(docs / 'latent_mean_probe.json'),
        confidence=read_json(docs / 'confidence.json'),
        benchmarks=read_json(docs / 'benchmarks.json'),
        latency=read_json(docs / 'latency_breakdown.json'),
        benchmarks_previous=read_json(docs / 'benchmarks_previous.json'),
        latency_previous=read_json(docs / 'latency_breakdown_previous.json'),
        bench_sonar=read_json(docs / 'bench_sonar.json'),
        sonar=read_json(docs / 'sonar.json'),
        ceiling_material=read_json(docs / 'ceiling_material.json'),
        bodies_on_floor_val=(read_json(docs / floor['val_file'])
                             if (floor := facts['room_bar'].get('bodies_on_floor_study')) else None),
        fused_layout=fused_layout_files(docs, facts),
        reflectors=read_json(docs / 'reflectors.json'),
        mapping=read_json(docs / 'mapping.json'),
        mapping_tuning=read_json(docs / 'mapping_tuning.json'),
        layout_snap=read_json(docs / 'layout_snap.json'),
        reproduction=read_json(docs / 'results_reproduction.json'),
        reproduction_against=(read_json(docs / against)
                              if (against := (facts.get('reproduction_run') or {}).get('against')) else None),
        reproduction_timings=read_json(docs / 'reproduce_timings_reproduction.json'),
        models_compared=read_json(docs / 'models_compared.json'),
        notes=notes.read_text().strip() if notes.is_file() else '',
        readme=(root / 'README.md').read_text(),
        simulation=read_yaml(root / 'config' / 'simulation.yaml'),
        facts=facts,
    )
