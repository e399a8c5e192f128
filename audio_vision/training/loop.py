# SPDX-License-Identifier: Apache-2.0
"""One generic, resumable, optionally data-parallel training loop used by every stage.

State (weights, optimizer, epoch, history) is written atomically after every
epoch to `<stage_dir>/state.pt`; re-running the same command resumes from it. Under
`torchrun`, each rank takes a disjoint shard of every epoch's permutation and gradients
are averaged by DistributedDataParallel (gloo on CPU, nccl on GPU).
"""
from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from audio_vision.training.config import OptimConfig


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op without torchrun)."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group('nccl' if torch.cuda.is_available() else 'gloo')
    return DistInfo(dist.get_rank(), dist.get_world_size())


def wrap_ddp(model: nn.Module, info: DistInfo) -> nn.Module:
    if info.world_size <= 1:
        return model
    return nn.parallel.DistributedDataParallel(model)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + '.tmp')
    torch.save(obj, tmp)
    tmp.replace(path)


@dataclass(frozen=True)
class Monitor:
    """The validation metric early stopping watches: its key in `validate`'s dict and direction."""

    key: str
    higher_is_better: bool

    def better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best


def best_epoch(history: list[dict], monitor: Monitor | None) -> int | None:
    """1-based epoch with the best monitored value in `history` (None without a monitor/values)."""
    best, epoch = None, None
    for row in history:
        value = row.get(monitor.key) if monitor else None
        if value is not None and monitor.better(float(value), best):
            best, epoch = float(value), int(row['epoch'])
    return epoch


def stopped_early(history: list[dict], optim: OptimConfig, monitor: Monitor | None) -> bool:
    """Whether early stopping ends training after `history` (the monitored metric has not
    improved for `optim.patience` epochs)."""
    if monitor is None or optim.patience is None or not history:
        return False
    best = best_epoch(history, monitor)
    return best is not None and int(history[-1]['epoch']) - best >= optim.patience


def fit(model: nn.Module, step: Callable[[nn.Module, torch.Tensor], torch.Tensor], n_train: int,
        optim: OptimConfig, stage_dir: Path, seed: int, validate: Callable[[nn.Module], dict] | None = None,
        info: DistInfo = DistInfo(), desc: str = 'train', progress: bool = True,
        monitor: Monitor | None = None) -> list[dict]:
    """Train `model` (already DDP-wrapped if distributed) with `step(model, batch_indices) -> loss`.

    Returns the history: one dict per epoch with the mean train loss and `validate`'s metrics.
    With `optim.patience` and a `monitor`, training stops once the monitored validation metric
    has not improved for `patience` epochs, and the model ends with its best epoch's weights
    (kept in `<stage_dir>/best.pt`; the history marks it with `best_epoch`).
    """
    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    state_path = stage_dir / 'state.pt'
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay)
    steps_per_epoch = max(1, math.ceil(n_train / info.world_size / optim.batch_size))
    if optim.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, optim.max_steps_per_epoch)
    total = steps_per_epoch * optim.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=optim.lr, total_steps=max(total, 2),
                                                pct_start=0.1 if total > 20 else 0.3)
    history: list[dict] = []
    start_epoch = 0
    if state_path.exists():
        state = torch.load(state_path, map_location='cpu', weights_only=True)
        unwrap(model).load_state_dict(state['model'])
        opt.load_state_dict(state['optimizer'])
        history, start_epoch = list(state['history']), int(state['epoch'])
        # Re-derive the LR schedule position instead of loading it, so a resumed run may also
        # extend the number of epochs (the one-cycle schedule is stretched to the new total).
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            for _ in range(min(start_epoch * steps_per_epoch, total - 1)):
                sched.step()
        if info.is_main and start_epoch < optim.epochs:
            print(f'[{desc}] resuming after epoch {start_epoch}/{optim.epochs}')
    best_path = stage_dir / 'best.pt'
    early = monitor is not None and optim.patience is not None and validate is not None
    for epoch in range(start_epoch, optim.epochs):
        if early and stopped_early(history, optim, monitor):
            if info.is_main:
                print(f'[{desc}] early stop: {monitor.key} has not improved for {optim.patience} epochs '
                      f'(best epoch {best_epoch(history, monitor)})')
            break
        model.train()
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        order = torch.randperm(n_train, generator=g)[info.rank::info.world_size]
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f'{desc} {epoch + 1}/{optim.epochs}', unit='step',
                   disable=not (progress and info.is_main), leave=False)
        for i in bar:
            batch = order[i * optim.batch_size:(i + 1) * optim.batch_size]
            if len(batch) == 0:
                batch = order[:optim.batch_size]
            loss = step(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f'{losses[-1]:.4f}')
        row = {'epoch': epoch + 1, 'train_loss': sum(losses) / len(losses), 'lr': sched.get_last_lr()[0]}
        if validate is not None and info.is_main:
            unwrap(model).eval()
            with torch.no_grad():
                row.update(validate(unwrap(model)))
        history.append(row)
        if early and info.is_main and best_epoch(history, monitor) == epoch + 1:
            atomic_save(unwrap(model).state_dict(), best_path)
        if info.is_main:
            print(f'[{desc}] ' + ' '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}'
                                          for k, v in row.items()))
            with open(stage_dir / 'log.jsonl', 'a') as f:
                f.write(json.dumps(row) + '\n')
            atomic_save({'model': unwrap(model).state_dict(), 'optimizer': opt.state_dict(),
                         'epoch': epoch + 1, 'history': history}, state_path)
        if info.world_size > 1:
            dist.barrier()
    if early and best_path.exists():
        if info.world_size > 1:
            dist.barrier()
        unwrap(model).load_state_dict(torch.load(best_path, map_location='cpu', weights_only=True))
        best = best_epoch(history, monitor)
        history = [dict(row, best_epoch=best) for row in history]
    unwrap(model).eval()
    return history
