# SPDX-License-Identifier: Apache-2.0
"""The two-stage method and its baselines, stage by stage, into one run directory.

run_dir/
  config.json               the TrainConfig and the dataset card this run used
  <stage>_<modality>/       state.pt (resumable) + log.jsonl, per stage
  models/<modality>.pt      the method (AT-net + VQ-VAE), one file per modality
  models/end_to_end_<modality>.pt, models/mean.pt   baselines
  curves.png                training curves of every stage
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from audio_vision.core.camera import PinholeCamera
from audio_vision.core.classes import DEFAULT_CLASS_TABLE, ClassTable
from audio_vision.core.eval.metrics import MetricAccumulator
from audio_vision.core.features.chirp import check_chirp_match
from audio_vision.core.model.baselines import EndToEnd, MeanImage, save_end_to_end, save_mean
from audio_vision.core.model.checkpoint import ArrayGeometry, ModalityModel, ModalitySpec, save_checkpoint
from audio_vision.core.model.encoding import MODALITIES, image_to_tensor, make_encoding
from audio_vision.dataset import DatasetReader
from audio_vision.training.config import TrainConfig
from audio_vision.training.data import SplitData, load_split
from audio_vision.training.loop import (DistInfo, Monitor, fit, init_distributed, read_log, stopped_early, unwrap,
                                        wrap_ddp)
from audio_vision.training.objectives import ATNetObjective
from audio_vision.training.plots import plot_curves
from audio_vision.training.specs import end_to_end_config, modality_spec

HEADLINE = {'depth': ('abs_rel', 'delta1'), 'segmentation': ('miou', 'pixel_acc')}
# What early stopping watches per modality (validation image metrics, not the training loss).
MONITOR = {'depth': Monitor('val_abs_rel', higher_is_better=False),
           'segmentation': Monitor('val_miou', higher_is_better=True)}


def dataset_summary(data_dir: Path, features=None) -> tuple[dict, ClassTable, PinholeCamera, ArrayGeometry]:
    reader = DatasetReader(data_dir, 'train')
    card = reader.card
    sim_chirp = card.get('generator', {}).get('config', {}).get('chirp')
    if features is not None and sim_chirp is not None:      # a simulated dataset: one chirp for both
        check_chirp_match(features, sim_chirp, f'the simulator that generated {data_dir}')
    table = ClassTable.from_list(card['class_table']) if card.get('class_table') else DEFAULT_CLASS_TABLE
    first = reader[0]
    h, w = first['depth'].shape
    fx = float(first['K'][0][0])
    camera = PinholeCamera(w, h, round(math.degrees(2 * math.atan((w / 2) / fx)), 6))
    array = ArrayGeometry(int(reader.sample_rate), np.asarray(reader.mic_positions, dtype=np.float64))
    summary = {'path': str(data_dir), 'content_hash': card.get('content_hash'),
               'counts': {k: v.get('count') for k, v in card.get('splits', {}).items()},
               'seed': card.get('seed', card.get('generator', {}).get('seed'))}
    return summary, table, camera, array


def image_scores(modality: str, pred: np.ndarray, gt: np.ndarray, table: ClassTable) -> dict:
    acc = MetricAccumulator(len(table), table.names)
    acc.add({modality: pred}, {modality: gt})
    res = acc.result()[modality]
    return {f'val_{k}': res[k] for k in HEADLINE[modality]}


def batched(fn, n: int, batch: int = 64) -> np.ndarray:
    return np.concatenate([fn(slice(i, min(n, i + batch))) for i in range(0, n, batch)])


class Trainer:
    def __init__(self, data_dir: str | Path, run_dir: str | Path, cfg: TrainConfig,
                 info: DistInfo | None = None, progress: bool = True, limit: int | None = None,
                 train_limit: int | None = None):
        """``limit`` caps every split (smoke runs); ``train_limit`` only the training split (learning
        curves: the validation split that early stopping watches stays whole)."""
        self.data_dir, self.run_dir, self.cfg = Path(data_dir), Path(run_dir), cfg
        self.info = info or init_distributed()
        self.progress = progress and self.info.is_main
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.set_num_threads(cfg.threads)
        self.summary, self.table, self.camera, self.array = dataset_summary(self.data_dir, cfg.features)
        caps = [c for c in (limit, train_limit) if c is not None]
        self.train = load_split(self.data_dir, 'train', cfg.features, limit=min(caps) if caps else None,
                                progress=self.progress)
        self.val = load_split(self.data_dir, 'val', cfg.features, limit=limit, progress=self.progress)
        self.histories: dict[str, list[dict]] = {}
        self.timings: dict[str, float] = {}
        if self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / 'config.json').write_text(json.dumps(
                {'train': cfg.to_dict(), 'dataset': self.summary}, indent=2, default=str))

    # -- specs --------------------------------------------------------------------------------
    def spec(self, modality: str) -> ModalitySpec:
        return modality_spec(self.cfg, modality, self.camera, self.array, self.table, self.summary)

    def _images(self, split: SplitData, modality: str, encoding, idx) -> torch.Tensor:
        return encoding.encode(image_to_tensor(split.images(modality)[idx], modality))

    def _targets(self, split: SplitData, model: ModalityModel, idx) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The encoded images of ``idx`` as the model's VQ-VAE sees them (relative to its reference where it has one,
        ``spec.depth_target``), and that reference (None for absolute images)."""
        modality = model.spec.modality
        features = split.features[idx].float() if model.relative else None    # read only where the reference is
        return model.targets(image_to_tensor(split.images(modality)[idx], modality), features)

    def _timed_fit(self, name: str, *args, **kwargs) -> list[dict]:
        t0 = time.time()
        modality = name.rsplit('_', 1)[-1]
        hist = fit(*args, info=self.info, desc=name, progress=self.progress, monitor=MONITOR.get(modality),
                   **kwargs)
        self.timings[name] = time.time() - t0
        self.histories[name] = hist
        return hist

    # -- stages -------------------------------------------------------------------------------
    def train_vqvae(self, model: ModalityModel) -> None:
        modality, encoding, cfg = model.spec.modality, model.encoding, self.cfg
        vq = wrap_ddp(model.vqvae, self.info)

        def step(net, idx):
            x, _ = self._targets(self.train, model, idx)
            out = net(x)
            return encoding.loss(out.reconstruction, x) + out.vq_loss

        def validate(net):
            recon, perp = [], []
            for i in range(0, len(self.val), 64):
                x, reference = self._targets(self.val, model, slice(i, i + 64))
                out = net(x)
                recon.append(encoding.decode(model.absolute(out.reconstruction, reference)).numpy())
                perp.append(float(out.perplexity))
            return {'codebook_used': net.quantizer.fraction_used(), 'perplexity': float(np.mean(perp)),
                    **image_scores(modality, np.concatenate(recon), self.val.images(modality), self.table)}

        self._timed_fit(f'vqvae_{modality}', vq, step, len(self.train), cfg.optim('vqvae_optim', modality),
                        self.run_dir / f'vqvae_{modality}', cfg.seed, validate)

    def load_trained_vqvae(self, model: ModalityModel) -> None:
        """The finished VQ-VAE of this run, for an AT-net stage run on its own: training against
        a random VQ-VAE would silently produce a useless model, so a missing one is an error."""
        modality = model.spec.modality
        state_path = self.run_dir / f'vqvae_{modality}' / 'state.pt'
        if not state_path.is_file():
            raise FileNotFoundError(
                f'--stages atnet needs the trained {modality} VQ-VAE of this run ({state_path} is missing): '
                f'add the vqvae stage (`--stages vqvae atnet`) or use the --run-dir that holds it')
        state = torch.load(state_path, map_location='cpu', weights_only=True)
        optim = self.cfg.optim('vqvae_optim', modality)
        if int(state['epoch']) < optim.epochs and not stopped_early(state['history'], optim, MONITOR[modality]):
            raise FileNotFoundError(
                f'the {modality} VQ-VAE in {state_path} is unfinished (epoch {state["epoch"]} of '
                f'{optim.epochs}): run `--stages vqvae atnet` to finish it first')
        best = state_path.with_name('best.pt')
        weights = torch.load(best, map_location='cpu', weights_only=True) if best.is_file() else state['model']
        model.vqvae.load_state_dict(weights)

    @torch.no_grad()
    def latents(self, model: ModalityModel, split: SplitData) -> torch.Tensor:
        """Continuous (not quantized) VQ-VAE encoder outputs of a split's images: the AT-net targets."""
        model.vqvae.eval()
        return torch.from_numpy(batched(lambda s: model.vqvae.encode(self._targets(split, model, s)[0]).numpy(),
                                        len(split)))

    def train_atnet(self, model: ModalityModel) -> None:
        modality, encoding, cfg = model.spec.modality, model.encoding, self.cfg
        for p in model.vqvae.parameters():
            p.requires_grad_(False)
        targets, val_targets = self.latents(model, self.train), self.latents(model, self.val)
        at = wrap_ddp(model.atnet, self.info)

        objective = ATNetObjective(cfg.atnet_objective.of(modality), model.vqvae, encoding)

        def step(net, idx):
            images = self._targets(self.train, model, idx)[0] if objective.needs_images else None
            return objective(net(self.train.features[idx].float()), targets[idx], images)

        def validate(net):
            preds, latent_loss = [], []
            for i in range(0, len(self.val), 64):
                feats = self.val.features[i:i + 64].float()
                z = net(feats)
                latent_loss.append(float(F.mse_loss(z, val_targets[i:i + 64])) * len(z))
                out = model.absolute(model.vqvae.decode_latent(z), model.reference(feats))
                preds.append(encoding.decode(out).numpy())
            return {'val_latent_mse': sum(latent_loss) / len(self.val),
                    **image_scores(modality, np.concatenate(preds), self.val.images(modality), self.table)}

        self._timed_fit(f'atnet_{modality}', at, step, len(self.train), cfg.optim('atnet_optim', modality),
                        self.run_dir / f'atnet_{modality}', cfg.seed, validate)

    def train_end_to_end(self, spec: ModalitySpec) -> EndToEnd:
        modality, cfg = spec.modality, self.cfg
        encoding = make_encoding(modality, len(self.table))
        torch.manual_seed(cfg.seed + 1)
        model = EndToEnd(end_to_end_config(cfg, spec))
        net = wrap_ddp(model, self.info)

        def step(m, idx):
            return encoding.loss(m(self.train.features[idx].float()), self._images(self.train, modality, encoding, idx))

        def validate(m):
            pred = batched(lambda s: encoding.decode(m(self.val.features[s].float())).numpy(), len(self.val))
            return image_scores(modality, pred, self.val.images(modality), self.table)

        self._timed_fit(f'end_to_end_{modality}', net, step, len(self.train), cfg.optim('end_to_end_optim', modality),
                        self.run_dir / f'end_to_end_{modality}', cfg.seed, validate)
        return unwrap(net)

    def stage_histories(self) -> dict[str, list[dict]]:
        """Every stage's epoch history in the run directory: this process' own, else its log.jsonl."""
        names = [f'{stage}_{modality}' for modality in MODALITIES for stage in ('vqvae', 'atnet', 'end_to_end')]
        out = {name: self.histories.get(name) or read_log(self.run_dir / name) for name in names}
        return {name: rows for name, rows in out.items() if rows}

    # -- the whole run -------------------------------------------------------------------------
    def run(self) -> dict:
        cfg, out_dir = self.cfg, self.run_dir / 'models'
        for modality in cfg.modalities:
            torch.manual_seed(cfg.seed)
            model = ModalityModel(self.spec(modality))
            if 'vqvae' in cfg.stages:
                self.train_vqvae(model)
            elif 'atnet' in cfg.stages:
                self.load_trained_vqvae(model)
            if 'atnet' in cfg.stages:
                self.train_atnet(model)
            if self.info.is_main and 'atnet' in cfg.stages:      # its VQ-VAE trained here or loaded
                hist = self.histories[f'atnet_{modality}']
                kept = next((r for r in hist if r['epoch'] == r.get('best_epoch')), hist[-1])   # the weights kept
                model.spec.metrics = {k: v for k, v in kept.items() if k.startswith('val_')}
                save_checkpoint(out_dir / f'{modality}.pt', model)
            if 'end_to_end' in cfg.stages:
                e2e = self.train_end_to_end(model.spec)
                if self.info.is_main:
                    save_end_to_end(out_dir / f'end_to_end_{modality}.pt', e2e, model.spec)
        if 'mean' in cfg.stages and self.info.is_main:
            mean = MeanImage.fit(self.train.depth if 'depth' in cfg.modalities else None,
                                 self.train.segmentation if 'segmentation' in cfg.modalities else None,
                                 len(self.table))
            save_mean(out_dir / 'mean.pt', mean)
        if self.info.is_main:
            # Several processes may train the stages of one run directory (scripts/reproduce_default_model.sh
            # trains a modality's AT-net and end-to-end baseline side by side): the curves and timings
            # cover every stage the directory holds, not only this process'.
            plot_curves(self.stage_histories(), self.run_dir / 'curves.png')
            path = self.run_dir / 'timings.json'
            earlier = json.loads(path.read_text()) if path.is_file() else {}
            path.write_text(json.dumps({**earlier, **self.timings}, indent=2))
        return {'histories': self.histories, 'timings': self.timings, 'models': str(out_dir)}
