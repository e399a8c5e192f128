#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Why an L2-regressed latent is a hard target: decode the average latent and compare it with the
average image.

A network trained with L2 on an uncertain target predicts the conditional mean of that target. For the
end-to-end baseline the target is the image (its pixel loss' optimum under uncertainty is a sensible
average image); for the AT-net it is the VQ-VAE's latent, and the decoder of an averaged latent need not
be an average image. This probe measures the unconditional case on the test split: the training set's
mean image (the `mean` baseline) against the frozen VQ-VAE decoder applied to the training set's mean
continuous latent, and against that latent snapped to its nearest codewords (what the method decodes).
Writes docs/latent_mean_probe.json.

    .venv/bin/python scripts/latent_mean_probe.py --data data/default --models models
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from audio_vision.core.eval.metrics import MetricAccumulator
from audio_vision.core.model.baselines import load_mean
from audio_vision.core.model.checkpoint import load_checkpoint
from audio_vision.core.model.encoding import image_to_tensor
from audio_vision.dataset import DatasetReader

ROOT = Path(__file__).resolve().parents[1]


def images(reader: DatasetReader, modality: str, limit: int) -> np.ndarray:
    return np.stack([reader[i][modality] for i in range(min(limit, len(reader)))])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', type=Path, default=ROOT / 'data' / 'default')
    ap.add_argument('--models', type=Path, default=ROOT / 'models')
    ap.add_argument('--train-limit', type=int, default=4000)
    ap.add_argument('--test-limit', type=int, default=1600)
    ap.add_argument('--out', type=Path, default=ROOT / 'docs' / 'latent_mean_probe.json')
    args = ap.parse_args()
    train, test = DatasetReader(args.data, 'train'), DatasetReader(args.data, 'test')
    mean = load_mean(args.models / 'mean.pt')
    result = {'command': f'python scripts/latent_mean_probe.py --data {args.data} --models {args.models}',
              'train_windows': min(args.train_limit, len(train)), 'test_windows': min(args.test_limit, len(test)),
              'rows': {}}
    models = {m: load_checkpoint(args.models / f'{m}.pt', expect={'modality': m}) for m in ('depth', 'segmentation')}
    if not all(model.has_vqvae_encoder for model in models.values()):
        print(f'{args.models} holds the shipped files, which leave out the VQ-VAE encoder this probe encodes the '
              f'training images with: run it with --models <a directory of the training runs\' own depth.pt and '
              f'segmentation.pt>; {args.out} is left as it is')
        return 0
    for modality, model in models.items():
        if model.spec.depth_target != 'absolute':     # its latents are of departures from each window's own prior
            result.setdefault('skipped', {})[modality] = f'depth_target {model.spec.depth_target}: no image-free mean'
            continue
        vq, encoding = model.vqvae.eval(), model.encoding
        with torch.inference_mode():
            z = torch.cat([vq.encode(encoding.encode(image_to_tensor(chunk, modality)))
                           for chunk in np.array_split(images(train, modality, args.train_limit), 40)])
            z_mean = z.mean(dim=0, keepdim=True)                                   # (1, D, h, w)
            decoded = encoding.decode(vq.decoder(z_mean)).numpy()[0]                # no snapping
            snapped = encoding.decode(vq.decode_latent(z_mean)).numpy()[0]          # nearest codewords
        gt = images(test, modality, args.test_limit)
        n = len(gt)
        for name, image in (('mean image', getattr(mean, modality)), ('decoded mean latent', decoded),
                            ('decoded mean latent, snapped', snapped)):
            acc = MetricAccumulator(len(model.spec.class_table), model.spec.class_table.names)
            acc.add({modality: np.repeat(image[None], n, axis=0)}, {modality: gt})
            scores = acc.result()[modality]
            keep = ('abs_rel', 'delta1') if modality == 'depth' else ('miou', 'pixel_acc')
            result['rows'].setdefault(name, {})[modality] = {k: scores[k] for k in keep}
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result['rows'], indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
