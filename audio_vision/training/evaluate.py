# SPDX-License-Identifier: Apache-2.0
"""Evaluation on a dataset split (default: test, rooms never seen in training).

Rows: vqvae_upper_bound (decode(quantize(encode(GT))); only for models holding the VQ-VAE's encoder, which the
shipped files leave out: a training run's own models), method (AT-net + quantization), method_on_floor (with both
modalities and the layout: the method with its depth's bodies stood on the measured floor, as the pipeline publishes
it; ``published_row``), method_no_quant (AT-net output decoded without snapping to codewords), end_to_end, layout
(the sonar front-end's rendered priors, model-based, no learning; for a model whose features fuse the layout
over the drive, the fused room it reads), layout_method (the room from the layout where it has a prior, the rest and
the bodies from the method: :func:`join_layout`, no learning joins them), mean, and method_latent<N> for each
ablation model directory. Each window's own layout's measurement errors against the simulator's room are in
``layout_errors`` (and the fused room's in ``layout_errors_fused``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from audio_vision.core.classes import ROOM_CLASSES
from audio_vision.core.eval.metrics import DEPTH_KEYS, MetricAccumulator
from audio_vision.core.inference.floor_contact import FloorContact
from audio_vision.core.model.baselines import load_end_to_end, load_mean
from audio_vision.core.model.checkpoint import CheckpointError, load_checkpoint
from audio_vision.core.model.configs import config_to_dict
from audio_vision.core.model.encoding import MODALITIES, image_to_tensor
from audio_vision.dataset import DatasetReader
from audio_vision.training.data import load_split
from audio_vision.training.layout_eval import predict_layout
from audio_vision.training.plots import plot_mosaic
from audio_vision.training.trainer import batched

UPPER_BOUND_SKIPPED = ('the models hold no VQ-VAE encoder (shipped inference files): the upper bound is measured on '
                       'a training run\'s own models (<run-dir>/models)')
ROW_ORDER = ('vqvae_upper_bound', 'method', 'method_on_floor', 'method_no_quant', 'end_to_end', 'layout',
             'layout_method', 'mean')


def evaluate(data_dir: str | Path, models_dir: str | Path, split: str = 'test',
             ablation_dirs: tuple[str | Path, ...] = (), limit: int | None = None,
             mosaic_path: str | Path | None = None, mosaic_scenes: int = 6, progress: bool = True,
             layout: bool = True) -> dict:
    data_dir, models_dir = Path(data_dir), Path(models_dir)
    found = [m for m in MODALITIES if (models_dir / f'{m}.pt').exists()]
    if not found:
        raise CheckpointError(f'no depth.pt or segmentation.pt in {models_dir}; train with '
                              f'`python -m audio_vision train` or pass --models')
    models = {m: load_checkpoint(models_dir / f'{m}.pt', expect={'modality': m}) for m in found}
    spec = next(iter(models.values())).spec
    table = spec.class_table
    data_cache: dict[str, object] = {}

    def split_for(s):
        """The split's features as model spec `s` computes them (cached per features + array)."""
        key = json.dumps([config_to_dict(s.features), s.array.to_dict()], sort_keys=True)
        if key not in data_cache:
            data_cache[key] = load_split(data_dir, split, s.features, limit=limit, progress=progress,
                                         mic_positions=s.array.mic_positions)
        return data_cache[key]

    data = split_for(spec)
    reader = DatasetReader(data_dir, split)
    if data.audio_shape[0] != spec.array.num_channels:
        raise CheckpointError(f'dataset has {data.audio_shape[0]} channels but the models expect '
                              f'{spec.array.num_channels}')
    n = len(data)
    preds: dict[str, dict[str, np.ndarray]] = {}

    def put(row, modality, images):
        preds.setdefault(row, {})[modality] = images

    with torch.inference_mode():
        for m, model in models.items():
            encoding = model.encoding
            feats = lambda s, d=data: d.features[s].float()  # noqa: E731
            put('method', m, batched(lambda s: encoding.decode(model(feats(s), quantize=True)).numpy(), n))
            put('method_no_quant', m, batched(lambda s: encoding.decode(model(feats(s), quantize=False)).numpy(), n))
            if model.has_vqvae_encoder:
                put('vqvae_upper_bound', m, batched(lambda s: encoding.decode(model.reconstruction(
                    image_to_tensor(data.images(m)[s], m), feats(s))).numpy(), n))
            e2e_path = models_dir / f'end_to_end_{m}.pt'
            if e2e_path.exists():
                e2e, _ = load_end_to_end(e2e_path)
                put('end_to_end', m, batched(lambda s: e2e.encoding.decode(e2e(feats(s))).numpy(), n))
        layout_result, layout_skipped = None, None
        if layout and not reader.card.get('generator', {}).get('config'):
            layout_skipped = 'the dataset records no emitter (not simulated): no layout row'
        elif layout:
            features = spec.features
            layout_result = predict_layout(data_dir, split, limit=n, progress=progress, fuse=features.layout_fusion,
                                           keyframe_m=features.layout_fusion_keyframe_m,
                                           max_keyframes=features.layout_fusion_keyframes)
            # the layout rows are the room the model reads (fused over the drive where its features fuse it); the
            # floor the bodies stand on is each window's own, as the pipeline's (the front-end's measurement)
            layout_rows = layout_result.fused if features.layout_fusion else layout_result
            published = preds['method']
            if set(models) == set(MODALITIES):     # as the pipeline publishes it: bodies stood on the floor
                put('method_on_floor', 'depth', bodies_on_floor(preds['method'], layout_result.layouts,
                                                                reader.layout.camera, table))
                put('method_on_floor', 'segmentation', preds['method']['segmentation'])
                published = preds['method_on_floor']
            for m in models:
                put('layout', m, getattr(layout_rows, m))
                put('layout_method', m, join_layout(layout_rows, m, published, table))
        if (models_dir / 'mean.pt').exists():
            for m, images in load_mean(models_dir / 'mean.pt').predict(n).items():
                if m in models:
                    put('mean', m, images)
        for extra in ablation_dirs:
            extra = Path(extra)
            for m in MODALITIES:
                if not (extra / f'{m}.pt').exists():
                    continue
                model = load_checkpoint(extra / f'{m}.pt', expect={'modality': m})
                d = split_for(model.spec)
                put(f'method_latent{model.spec.vqvae.latent_size}', m, batched(
                    lambda s: model.encoding.decode(model(d.features[s].float())).numpy(), n))
                if model.has_vqvae_encoder:
                    put(f'vqvae_upper_bound_latent{model.spec.vqvae.latent_size}', m, batched(
                        lambda s: model.encoding.decode(model.reconstruction(
                            image_to_tensor(d.images(m)[s], m), d.features[s].float())).numpy(), n))

    rows = {}
    order = [r for r in ROW_ORDER if r in preds] + sorted(r for r in preds if r not in ROW_ORDER)
    for row in order:
        acc = MetricAccumulator(len(table), table.names)
        acc.add(preds[row], {'depth': data.depth, 'segmentation': data.segmentation})
        rows[row] = acc.result()
    card = reader.card
    subsets = person_subsets(reader, n)
    persons = {}
    if 'person' in table.names and 'segmentation' in models:
        person_id = table.names.index('person')
        for row in order:
            if 'segmentation' in preds[row]:
                persons[row] = {name: class_iou(preds[row]['segmentation'][idx], data.segmentation[idx], person_id)
                                for name, idx in subsets.items()}
    result = {'rows': rows, 'person_iou': persons, 'person_windows': {k: len(v) for k, v in subsets.items()},
              'n_samples': n, 'split': split, 'models': str(models_dir),
              'model_ids': {m: getattr(model, 'model_id', None) for m, model in models.items()},
              'dataset': {'path': str(data_dir), 'content_hash': card.get('content_hash'),
                          'counts': {k: v.get('count') for k, v in card.get('splits', {}).items()},
                          'seed': card.get('seed', card.get('generator', {}).get('seed'))}}
    # the row the pipeline publishes: method_on_floor (both modalities and the layout: the depth's bodies stood on the
    # measured floor), else method
    result['published_row'] = 'method_on_floor' if 'method_on_floor' in preds else 'method'
    if layout_skipped:
        result['layout_skipped'] = layout_skipped
    if not all(model.has_vqvae_encoder for model in models.values()):
        result['vqvae_upper_bound_skipped'] = UPPER_BOUND_SKIPPED
    if layout_result is not None:
        result['layout_errors'] = layout_result.errors
        if layout_result.fused is not None:        # the room the model reads: fused over each room's drive
            result['layout_errors_fused'] = layout_result.fused.errors
        result['layout_seconds_per_window'] = layout_result.seconds_per_window
    if mosaic_path:
        pick = np.linspace(0, n - 1, min(mosaic_scenes, n)).astype(int)
        gt = {m: data.images(m)[pick] for m in models}
        plot_mosaic(gt, {r: {m: v[pick] for m, v in preds[r].items()} for r in order}, table, Path(mosaic_path),
                    titles=[f'#{i}' for i in pick])
    return result


def bodies_on_floor(method: dict[str, np.ndarray], layouts: list, camera, table) -> np.ndarray:
    """(N, H, W) the method's depth with the bodies its segmentation draws stood on each window's measured floor
    (:class:`audio_vision.core.inference.floor_contact.FloorContact`, as the pipeline does)."""
    contact = FloorContact(camera, table)
    return np.stack([contact(d, s, layout) for d, s, layout in zip(method['depth'], method['segmentation'], layouts)])


def join_layout(layout, modality: str, method: dict[str, np.ndarray], table) -> np.ndarray:
    """The layout row joined with the method's prediction, no learning: where the layout has a prior (the room's
    shell, measured) and the method sees the room there (wall / floor / ceiling: a body is a class the layout
    never draws), the layout's depth and class; elsewhere the method's."""
    pred = method[modality]
    room = np.isfinite(layout.depth)                                   # (N, H, W)
    if 'segmentation' in method:
        room &= np.isin(method['segmentation'], [table.id_of(c) for c in ROOM_CLASSES])
    ours = layout.depth if modality == 'depth' else layout.segmentation
    room = room.reshape(room.shape[:1] + (1,) * (pred.ndim - room.ndim) + room.shape[1:])
    return np.where(room, ours.reshape(room.shape), pred)


def person_subsets(reader: DatasetReader, n: int) -> dict[str, np.ndarray]:
    """Window indices whose persons in view all speak, or are all silent (persons that emit nothing
    can only be sensed by their echo)."""
    out: dict[str, list[int]] = {'speaking': [], 'silent': []}
    for i in range(n):
        scene = reader.metadata(i).get('scene') or {}         # recorded bags have no scene
        persons = [src for src in scene.get('sources', []) if src['class_name'] == 'person' and src.get('in_fov')]
        if persons and all(src.get('silent', False) for src in persons):
            out['silent'].append(i)
        elif persons and not any(src.get('silent', False) for src in persons):
            out['speaking'].append(i)
    return {k: np.asarray(v, dtype=np.int64) for k, v in out.items()}


def class_iou(pred: np.ndarray, gt: np.ndarray, class_id: int) -> float | None:
    """The IoU of one class over a set of images (None when it is in neither)."""
    p, g = pred == class_id, gt == class_id
    union = int(np.logical_or(p, g).sum())
    return float(np.logical_and(p, g).sum() / union) if union else None


def markdown_table(result: dict) -> str:
    """The results JSON as a Markdown table (depth metrics, then segmentation)."""
    lines = [f'Split `{result["split"]}`, {result["n_samples"]} samples.', '',
             '| row | ' + ' | '.join(DEPTH_KEYS) + ' | mIoU | pixel acc |',
             '|---|' + '---|' * (len(DEPTH_KEYS) + 2)]
    for row, r in result['rows'].items():
        d, s = r.get('depth', {}), r.get('segmentation', {})
        cells = [f'{d[k]:.3f}' if k in d else '–' for k in DEPTH_KEYS]
        cells += [f'{s["miou"]:.3f}' if s else '–', f'{s["pixel_acc"]:.3f}' if s else '–']
        lines.append(f'| {row} | ' + ' | '.join(cells) + ' |')
    seg_rows = {k: v['segmentation']['per_class_iou'] for k, v in result['rows'].items() if 'segmentation' in v}
    if seg_rows:
        names = list(next(iter(seg_rows.values())))
        lines += ['', '| row | ' + ' | '.join(f'IoU {n}' for n in names) + ' |', '|---|' + '---|' * len(names)]
        for row, ious in seg_rows.items():
            lines.append(f'| {row} | ' + ' | '.join('–' if ious[n] is None else f'{ious[n]:.3f}' for n in names) + ' |')
    if result.get('person_iou'):
        counts = result.get('person_windows', {})
        lines += ['', '| row | person IoU, speaking persons (' + str(counts.get('speaking', '?')) + ' windows) '
                  '| person IoU, silent persons (' + str(counts.get('silent', '?')) + ' windows) |', '|---|---|---|']
        for row, ious in result['person_iou'].items():
            cells = ('–' if ious.get(k) is None else f'{ious[k]:.3f}' for k in ('speaking', 'silent'))
            lines.append(f'| {row} | ' + ' | '.join(cells) + ' |')
    if result.get('layout_skipped'):
        lines += ['', f"Layout row: {result['layout_skipped']}."]
    if result.get('vqvae_upper_bound_skipped'):
        lines += ['', f"No vqvae_upper_bound row: {result['vqvae_upper_bound_skipped']}."]
    errors = result.get('layout_errors')
    if errors:
        lines += ['', '| layout error (sonar front-end vs the simulator\'s room) | median | p90 | not measured |',
                  '|---|---|---|---|']
        for key, name in (('floor_m', 'floor distance (m)'), ('ceiling_m', 'ceiling distance (m)'),
                          ('wall_distance_m', 'wall distance along its normal (m)'),
                          ('wall_angle_deg', 'wall orientation (deg)')):
            e = errors[key]
            cells = ['–' if e[k] is None else f'{e[k]:.3f}' for k in ('median', 'p90')]
            lines.append(f'| {name} | ' + ' | '.join(cells) + f' | {e["failed"]:.1%} |')
    return '\n'.join(lines) + '\n'
