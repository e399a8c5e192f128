#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Make the golden bag (test/data/golden_bag) and the expected outputs of the shipped model on it
(test/data/golden_outputs.json); test/test_bag_golden.py checks features, model and node against them.

    .venv/bin/python scripts/make_golden_bag.py              # models/ (falls back to a tiny model)
    .venv/bin/python scripts/make_golden_bag.py --keep-bag   # only re-summarise (after a deliberate
                                                             # model change), keep the committed bag

The bag is simulated (config/simulation.yaml, scenes SEED and SEED + 1, SCENE_S each, fixed start stamp)
and stays under 2 MB. When models/depth.pt and models/segmentation.pt do not exist, a tiny
randomly-initialised model (test/helpers.py, torch seed 0, 8 mics) stands in and the summary says so;
re-run this script once the shipped model is in models/.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED = 2024
SCENES = 2
SCENE_S = 1.5
START_NS = 1_750_000_000 * 10**9
BAG = ROOT / 'test' / 'data' / 'golden_bag'
SUMMARY = ROOT / 'test' / 'data' / 'golden_outputs.json'


def make_bag(path: Path) -> None:
    from audio_vision.bag.record import record_simulation
    from audio_vision.simulation.config import SimConfig
    from audio_vision.simulation.simulator import Simulator
    cfg = SimConfig.from_yaml(ROOT / 'config' / 'simulation.yaml')
    record_simulation(Simulator(cfg), path, SCENES * SCENE_S, seed=SEED, scene_duration_s=SCENE_S,
                      start_ns=START_NS)


def tiny_model_dir(tmp: Path) -> Path:
    sys.path.insert(0, str(ROOT / 'test'))
    from helpers import write_tiny_models
    write_tiny_models(tmp, seed=0, num_mics=8)
    return tmp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model-dir', type=Path, default=ROOT / 'models')
    parser.add_argument('--keep-bag', action='store_true', help='keep the existing golden bag')
    args = parser.parse_args()

    import torch
    torch.set_num_threads(1)
    from audio_vision.bag.golden import TOLERANCES, bag_windows, file_sha256, summarize_offline
    from audio_vision.bag.reader import BagReader
    from audio_vision.core.inference.pipeline import AudioToVision

    if not args.keep_bag or not BAG.exists():
        if BAG.exists():
            shutil.rmtree(BAG)
        make_bag(BAG)
    size = sum(p.stat().st_size for p in BAG.iterdir())
    if size > 2 * 1024 * 1024:
        print(f'golden bag is {size} bytes (> 2 MB)', file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory() as tmp:
        shipped = (args.model_dir / 'depth.pt').is_file() and (args.model_dir / 'segmentation.pt').is_file()
        model_dir = args.model_dir if shipped else tiny_model_dir(Path(tmp))
        model = AudioToVision.load(model_dir, device='cpu')
        fc = model.feature_config
        windows = bag_windows(BAG, model.num_channels, model.sample_rate, model.window_samples, fc.hop_samples)
        rows = summarize_offline(model, windows)
        with BagReader(BAG) as reader:
            storage_file = next(p for p in BAG.iterdir() if p.suffix in ('.mcap', '.db3'))
            summary = {
                'about': 'Expected outputs of the model on test/data/golden_bag (scripts/make_golden_bag.py).',
                'model': {'source': 'models' if shipped else 'tiny', 'model_id': model.model_id,
                          'files': ({f'{m}.pt': file_sha256(args.model_dir / f'{m}.pt')
                                     for m in model.modalities} if shipped else None),
                          'window_samples': model.window_samples, 'hop_samples': fc.hop_samples,
                          'sample_rate': model.sample_rate, 'num_channels': model.num_channels},
                'bag': {'path': 'test/data/golden_bag', 'file': storage_file.name,
                        'sha256': file_sha256(storage_file), 'messages': reader.message_count,
                        'seed': SEED, 'scenes': SCENES, 'scene_s': SCENE_S, 'start_ns': START_NS},
                'tolerances': TOLERANCES,
                'windows': rows,
            }
    SUMMARY.write_text(json.dumps(summary, indent=1, allow_nan=False) + '\n', encoding='utf-8')
    print(f'{BAG} ({size} bytes), {SUMMARY}: {len(rows)} windows, model {summary["model"]["source"]} '
          f'{model.model_id}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
