# SPDX-License-Identifier: Apache-2.0
"""PNG figures: training curves and GT-vs-prediction mosaics (matplotlib, Agg backend)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from audio_vision.core.classes import ClassTable  # noqa: E402


def plot_curves(histories: dict[str, list[dict]], path: Path) -> None:
    """One panel per stage: train loss and every numeric validation metric against epoch."""
    stages = [(k, h) for k, h in histories.items() if h]
    if not stages:
        return
    fig, axes = plt.subplots(1, len(stages), figsize=(4.2 * len(stages), 3.4), squeeze=False)
    for ax, (name, hist) in zip(axes[0], stages):
        epochs = [r['epoch'] for r in hist]
        for key in hist[0]:
            if key in ('epoch', 'lr') or not isinstance(hist[0][key], (int, float)):
                continue
            ax.plot(epochs, [r[key] for r in hist], label=key, marker='.')
        ax.set_title(name)
        ax.set_xlabel('epoch')
        ax.set_yscale('symlog', linthresh=1e-2)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_mosaic(gt: dict[str, np.ndarray], rows: dict[str, dict[str, np.ndarray]], class_table: ClassTable,
                path: Path, max_depth: float = 10.0, titles: list[str] | None = None) -> None:
    """Columns = scenes; row pairs = (depth, segmentation) of GT, then each prediction row."""
    modalities = [m for m in ('depth', 'segmentation') if m in gt]
    named = [('ground truth', gt)] + [(k, v) for k, v in rows.items()]
    n_scenes = len(next(iter(gt.values())))
    n_rows = len(named) * len(modalities)
    fig, axes = plt.subplots(n_rows, n_scenes, figsize=(1.6 * n_scenes + 1.4, 1.6 * n_rows), squeeze=False)
    r = 0
    for name, images in named:
        for m in modalities:
            for s in range(n_scenes):
                ax = axes[r, s]
                ax.set_xticks([])
                ax.set_yticks([])
                if m not in images:
                    ax.set_facecolor('#eee')
                    continue
                if m == 'depth':
                    ax.imshow(images[m][s], cmap='turbo', vmin=0, vmax=max_depth)
                else:
                    ax.imshow(class_table.colorize(images[m][s]))
                if r == 0 and titles:
                    ax.set_title(titles[s], fontsize=7)
            axes[r, 0].set_ylabel(f'{name}\n{m}', fontsize=7, rotation=0, ha='right', va='center')
            r += 1
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
