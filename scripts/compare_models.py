#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Compare two model directories file by file, weight by weight: are the networks a rerun of training
produced the shipped ones, and where not, by how much do their weights differ?

    .venv/bin/python scripts/compare_models.py models runs/repro-models --json docs/models_compared.json

For each `*.pt` in both directories: whether every tensor is bit-identical, and the largest absolute
difference of any weight (the files are loaded with `weights_only=True`; configs are not compared).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def tensors(obj, prefix: str = '') -> dict[str, torch.Tensor]:
    """Every tensor in a (nested) checkpoint payload, by its dotted path."""
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(tensors(v, f'{prefix}.{k}' if prefix else str(k)))
        return out
    return {}


def compare_files(a: Path, b: Path) -> dict:
    ta = tensors(torch.load(a, map_location='cpu', weights_only=True))
    tb = tensors(torch.load(b, map_location='cpu', weights_only=True))
    if ta.keys() != tb.keys():
        return {'identical': False, 'same_tensors': False, 'max_abs_diff': None}
    diffs = [float((ta[k].float() - tb[k].float()).abs().max()) if ta[k].numel() else 0.0 for k in ta
             if ta[k].shape == tb[k].shape]
    same_shapes = len(diffs) == len(ta)
    identical = same_shapes and all(torch.equal(ta[k], tb[k]) for k in ta)
    return {'identical': identical, 'same_tensors': same_shapes, 'tensors': len(ta),
            'max_abs_diff': max(diffs, default=0.0) if same_shapes else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('first', type=Path)
    ap.add_argument('second', type=Path)
    ap.add_argument('--json', type=Path, help='write the comparison here')
    args = ap.parse_args(argv)
    names = sorted({p.name for p in args.first.glob('*.pt')} & {p.name for p in args.second.glob('*.pt')})
    if not names:
        print(f'no *.pt file is in both {args.first} and {args.second}', file=sys.stderr)
        return 1
    out = {'command': ' '.join(['python', Path(sys.argv[0]).as_posix()] + (argv if argv is not None else sys.argv[1:])),
           'first': str(args.first), 'second': str(args.second),
           'files': {name: compare_files(args.first / name, args.second / name) for name in names}}
    for name, r in out['files'].items():
        print(f"{name}: {'identical' if r['identical'] else 'differs'} (max |Δw| {r['max_abs_diff']})")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
