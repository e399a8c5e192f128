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
from contextlib import contextmanager, nullcontext
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


class WeightAverage:
    """Exponential moving average of a model's parameters and float buffers (BatchNorm statistics).

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates, so the average
    does not drag the random initialisation along; integer buffers (batch counters) are copied.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f'ema_decay must lie in (0, 1), got {decay}')
        self.decay, self.updates = decay, 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for key, value in model.state_dict().items():
            avg = self.shadow[key]
            if avg.is_floating_point():
                avg.mul_(d).add_(value.detach(), alpha=1.0 - d)
            else:
                avg.copy_(value)

    def state_dict(self) -> dict:
        return {'updates': self.updates, 'shadow': self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state['updates'])
        self.shadow = {k: v.clone() for k, v in state['shadow'].items()}

    @contextmanager
    def applied(self, model: nn.Module):
        """Run the block with the averaged weights in ``model``; its own weights come back after."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.load_state_dict(own)


def read_log(stage_dir: Path) -> list[dict]:
    """The epoch rows `fit` appended to `<stage_dir>/log.jsonl` ([] when the stage has none)."""
    log = Path(stage_dir) / 'log.jsonl'
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []


def fit(model: nn.Module, step: Callable[[nn.Module, torch.Tensor], torch.Tensor], n_train: int,
        optim: OptimConfig, stage_dir: Path, seed: int, validate: Callable[[nn.Module], dict] | None = None,
        info: DistInfo = DistInfo(), desc: str = 'train', progress: bool = True,
        monitor: Monitor | None = None) -> list[dict]:
    """Train `model` (already DDP-wrapped if distributed) with `step(model, batch_indices) -> loss`.

    Returns the history: one dict per epoch with the mean train loss and `validate`'s metrics.
    With `optim.patience` and a `monitor`, training stops once the monitored validation metric
    has not improved for `patience` epochs, and the model ends with its best epoch's weights
    (kept in `<stage_dir>/best.pt`; the history marks it with `best_epoch`). With
    `optim.ema_decay`, the weights validated, kept and returned are the moving average.
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
    state = torch.load(state_path, map_location='cpu', weights_only=True) if state_path.exists() else None
    if state is not None:
        unwrap(model).load_state_dict(state['model'])
        opt.load_state_dict(state['optimizer'])
        history, start_epoch = list(state['history']), int(state['epoch'])
    # A resumed run that was not averaging before starts its average from the loaded weights.
    average = WeightAverage(unwrap(model), optim.ema_decay) if optim.ema_decay else None
    if average is not None and state is not None and 'average' in state:
        average.load_state_dict(state['average'])
    averaged = average.applied if average is not None else nullcontext
    if state is not None:
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
            if average is not None:
                average.update(unwrap(model))
            losses.append(loss.item())
            bar.set_postfix(loss=f'{losses[-1]:.4f}')
        row = {'epoch': epoch + 1, 'train_loss': sum(losses) / len(losses), 'lr': sched.get_last_lr()[0]}
        if validate is not None and info.is_main:
            unwrap(model).eval()
            with torch.no_grad(), averaged(unwrap(model)) as net:
                row.update(validate(net))
        history.append(row)
        if early and info.is_main and best_epoch(history, monitor) == epoch + 1:
            with averaged(unwrap(model)) as net:
                atomic_save(net.state_dict(), best_path)
        if info.is_main:
            print(f'[{desc}] ' + ' '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}'
                                          for k, v in row.items()))
            with open(stage_dir / 'log.jsonl', 'a') as f:
                f.write(json.dumps(row) + '\n')
            atomic_save({'model': unwrap(model).state_dict(), 'optimizer': opt.state_dict(),
                         'epoch': epoch + 1, 'history': history,
                         **({'average': average.state_dict()} if average is not None else {})}, state_path)
        if info.world_size > 1:
            dist.barrier()
    if early and best_path.exists():
        if info.world_size > 1:
            dist.barrier()
        unwrap(model).load_state_dict(torch.load(best_path, map_location='cpu', weights_only=True))
        best = best_epoch(history, monitor)
        history = [dict(row, best_epoch=best) for row in history]
    elif average is not None:
        unwrap(model).load_state_dict(average.shadow)
    unwrap(model).eval()
    return history
