#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write docs/RESULTS.md, models/README.md and the README's results section from the files that
scripts/reproduce_default_model.sh and the evaluation commands wrote, so that every number and every
comparative sentence in them is computed from a result file or a config, never typed.

Inputs: docs/results.json (test split), docs/results_fresh.json (optional: a dataset of a new seed),
docs/ablation_<study>.json (optional: scripts/ablation.py studies), docs/reproduce_timings.json (the reproduction
script's own stage timings), runs/default-<modality>/ (training logs; summarised into
docs/training_summary.json so the docs can be regenerated without the runs), config/simulation.yaml, and
scripts/results_docs/facts.yaml (the few numbers no result file records: issue #10's bar and budgets...).
The documents are rendered by scripts/results_docs/.

    .venv/bin/python scripts/write_results_docs.py [--runs runs/default]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from results_docs import inputs, model_card, readme_section, results_page

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=Path, default=ROOT / 'runs' / 'default',
                    help='prefix of the per-modality run directories (<runs>-depth, <runs>-segmentation)')
    args = ap.parse_args()
    summary = inputs.summarise_training(args.runs)
    if summary['stages']:                     # the runs are here: keep their summary for when they are not
        (ROOT / 'docs' / 'training_summary.json').write_text(json.dumps(summary, indent=1))
    inp = inputs.load(ROOT, summary if summary['stages'] else None)
    (ROOT / 'docs' / 'RESULTS.md').write_text(results_page.render(inp))
    (ROOT / 'models' / 'README.md').write_text(model_card.render(inp))
    (ROOT / 'README.md').write_text(readme_section.render(inp))


if __name__ == '__main__':
    main()
