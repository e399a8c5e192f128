#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Where the independent re-recording's loss comes from: the networks fed the same windows' features with each group
of channels taken from one recording or the other (an input swap; no retraining).

`scripts/rerecord_independent.py` re-records test windows with another room-acoustics engine; the scenes and ground
truth are the same, only the audio differs. The shipped networks read five groups of channels (docs/ARCHITECTURE.md):
the log spectrogram, the phase differences, the echo beams, the direction maps (SRP-PHAT per band, the chirp's echo
energy per range bin) and the sonar layout prior. Each group
is swapped alone, both ways: from the independent recording into this pipeline's (what that group alone costs), and
from this pipeline's into the independent one (what that group alone recovers). Writes docs/independent_swap.json,
which docs/RESULTS.md's cause of the independent re-recording's miss is generated from.

    python scripts/independent_swap_probe.py --data data/independent --reference data/default --models models
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from audio_vision.core.eval.metrics import MetricAccumulator
from audio_vision.core.model.baselines import load_end_to_end
from audio_vision.core.model.checkpoint import CheckpointError, load_checkpoint
from audio_vision.core.model.encoding import MODALITIES
from audio_vision.dataset import DatasetReader
from audio_vision.paths import cpu_model, source_commit
from audio_vision.training.data import load_split
from audio_vision.training.trainer import batched

ROOT = Path(__file__).resolve().parents[1]


def channel_groups(features, num_mics: int) -> dict[str, tuple[int, int, int, int]]:
    """Each group of the feature stack's channels (core/features/stack.py), in channel order: (start, stop) of its
    channels and (start, stop) of its values in those channels flattened. The direction maps are packed
    (core/features/packing.py: the SRP-PHAT band maps, then the chirp echo maps, row-major): two groups of one
    block."""
    cells = features.map_grid ** 2
    srp = (len(features.srp_band_edges_hz) - 1) * cells
    sizes = {'spectrogram': num_mics,
             'phase differences': 2 * (num_mics - 1) if features.spatial == 'ipd' else 0,
             'echo beams': len(features.echo_azimuths_deg) if features.echo else 0,
             'direction maps': features.map_planes, 'layout prior': features.prior_planes}
    plane = features.num_bins * features.num_frames
    out, start = {}, 0
    for name, size in sizes.items():
        if name == 'direction maps' and size:
            out['SRP-PHAT maps'] = (start, start + size, 0, srp)
            if features.echo:
                out['chirp echo maps'] = (start, start + size, srp, features.num_direction_maps * cells)
        elif size:
            out[name] = (start, start + size, 0, size * plane)
        start += size
    if start != features.num_feature_channels(num_mics):
        raise AssertionError(f'channel groups cover {start} channels, the stack has '
                             f'{features.num_feature_channels(num_mics)}')
    return out


def srp_band_groups(group: tuple[int, int, int, int], features) -> dict[str, tuple[int, int, int, int]]:
    """The SRP-PHAT maps' group (:func:`channel_groups`) split band by band: {'SRP-PHAT LO-HI Hz': (start, stop) of
    its channels, (start, stop) of its values}; each band's map is a block of the packed values."""
    lo, hi, a, b = group
    edges = features.srp_band_edges_hz
    cells = (b - a) // (len(edges) - 1)
    return {f'SRP-PHAT {edges[k]:g}-{edges[k + 1]:g} Hz': (lo, hi, a + k * cells, a + (k + 1) * cells)
            for k in range(len(edges) - 1)}


def same_windows(data: Path, reference: Path, split: str, n: int) -> None:
    """The two datasets hold the same scenes, window for window (index and ground truth), or this stops."""
    a, b = DatasetReader(data, split), DatasetReader(reference, split)
    for i in range(n):
        x, y = a[i], b[i]
        for key in ('index', 'depth', 'segmentation', 'camera_pose'):
            if not np.array_equal(np.asarray(x[key]), np.asarray(y[key])):
                raise SystemExit(f'window {i} of {data} ({split}) is not window {i} of {reference}: {key} differs')


def scores(networks: dict, features: torch.Tensor, truth: dict, table) -> dict:
    """{row: {abs_rel, delta1, miou}} of the method and the end-to-end baseline on these features."""
    n = int(features.shape[0])
    out = {}
    for row, predict in networks.items():
        preds = {m: batched(lambda s, f=f: f(features[s].float()), n) for m, f in predict.items()}
        acc = MetricAccumulator(len(table), table.names)
        acc.add(preds, truth)
        r = acc.result()
        out[row] = {'abs_rel': r['depth']['abs_rel'], 'delta1': r['depth']['delta1'],
                    'miou': r['segmentation']['miou']}
    return out


def srp_band_means(feats: dict, group: tuple[int, int, int, int], features) -> dict:
    """{band: {recording: mean}}: each SRP-PHAT band map's value averaged over the windows and directions, as the
    networks read it, for both recordings."""
    lo, hi, a, b = group
    edges = features.srp_band_edges_hz
    out = {}
    for name, data in feats.items():
        maps = data.features[:, lo:hi].float().reshape(len(data), -1)[:, a:b]
        means = maps.reshape(len(data), len(edges) - 1, -1).mean(dim=(0, 2))
        for k, m in enumerate(means.tolist()):
            out.setdefault(f'{edges[k]:g}-{edges[k + 1]:g} Hz', {})[name] = m
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, default=Path('data/independent'), help='the re-recorded dataset')
    ap.add_argument('--reference', type=Path, default=Path('data/default'),
                    help='the dataset its windows were re-recorded from')
    ap.add_argument('--split', default='test')
    ap.add_argument('--models', type=Path, default=Path('models'))
    ap.add_argument('--json', type=Path, default=ROOT / 'docs' / 'independent_swap.json')
    args = ap.parse_args()
    n = len(DatasetReader(args.data, args.split))
    same_windows(args.data, args.reference, args.split, n)
    try:
        models = {m: load_checkpoint(args.models / f'{m}.pt', expect={'modality': m}) for m in MODALITIES}
        end_to_end = {m: load_end_to_end(args.models / f'end_to_end_{m}.pt')[0] for m in MODALITIES}
    except CheckpointError as e:
        raise SystemExit(f'independent_swap_probe: {e}') from None
    spec = models['depth'].spec
    if len({repr(m.spec.features) for m in models.values()}) != 1:
        raise SystemExit('the depth and segmentation models read different features: this probe swaps one stack')
    feats = {name: load_split(path, args.split, spec.features, limit=n, mic_positions=spec.array.mic_positions)
             for name, path in (('independent', args.data), ('reference', args.reference))}
    truth = {'depth': feats['reference'].depth, 'segmentation': feats['reference'].segmentation}
    networks = {'method': {m: (lambda x, mod=mod: mod.encoding.decode(mod(x, quantize=True)).numpy())
                           for m, mod in models.items()}, 'end_to_end': {}}
    for m, e2e in end_to_end.items():
        networks['end_to_end'][m] = lambda x, mod=e2e: mod.encoding.decode(mod(x)).numpy()
    groups = channel_groups(spec.features, spec.array.num_channels)
    bands = srp_band_groups(groups['SRP-PHAT maps'], spec.features) if 'SRP-PHAT maps' in groups else {}

    def mixed(independent_groups, independent_bands=(), reference_bands=()) -> torch.Tensor:
        """The reference features with ``independent_groups`` (names of ``groups``) and ``independent_bands`` (of
        ``bands``) from the independent recording, then ``reference_bands`` put back from the reference."""
        x = feats['reference'].features.clone()
        swaps = [(groups[g], 'independent') for g in independent_groups]
        swaps += [(bands[g], 'independent') for g in independent_bands]
        swaps += [(bands[g], 'reference') for g in reference_bands]
        for (lo, hi, a, b), source in swaps:
            block = x[:, lo:hi].reshape(len(x), -1)                     # a copy: the block is not contiguous
            block[:, a:b] = feats[source].features[:, lo:hi].reshape(len(x), -1)[:, a:b]
            x[:, lo:hi] = block.reshape(x[:, lo:hi].shape)
        return x

    runs = [('reference', []), ('independent', list(groups))]
    runs += [(f'{g} from the independent recording', [g]) for g in groups]
    runs += [(f'{g} from the reference recording', [h for h in groups if h != g]) for g in groups]
    result = {'command': f'python scripts/independent_swap_probe.py --data {args.data} --reference {args.reference} '
                         f'--models {args.models}',
              'date': time.strftime('%Y-%m-%d'), 'commit': source_commit(), 'machine': cpu_model(),
              'split': args.split, 'windows': n,
              'groups': {g: {'channels': v[:2], 'values': v[2:]} for g, v in groups.items()},
              'engine': DatasetReader(args.data, args.split).card.get('generator', {}).get('engine'), 'runs': []}
    result['srp_band_mean'] = srp_band_means(feats, groups['SRP-PHAT maps'], spec.features)

    def scored(name: str, x: torch.Tensor, **about) -> dict:
        """One run: the networks' scores on ``x``, printed."""
        row = {'name': name, **about, 'rows': scores(networks, x, truth, spec.class_table)}
        print(f"{name:48s} " + '  '.join(f"{r}: AbsRel {v['abs_rel']:.3f} d1 {v['delta1']:.3f} mIoU {v['miou']:.3f}"
                                         for r, v in row['rows'].items()))
        return row

    with torch.inference_mode():
        result['runs'] = [scored(name, mixed(independent_groups), independent_groups=independent_groups)
                          for name, independent_groups in runs]
        # The SRP-PHAT maps band by band: one band from the independent recording (the rest of the features this
        # pipeline's), and every group from the independent recording but that band (what the band alone recovers).
        result['srp_band_runs'] = [
            scored(name, x, band=band) for band in bands
            for name, x in ((f'{band} from the independent recording', mixed([], independent_bands=[band])),
                            (f'{band} from the reference recording', mixed(list(groups), reference_bands=[band])))]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
