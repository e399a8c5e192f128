# SPDX-License-Identifier: Apache-2.0
"""`python -m audio_vision <subcommand>`: one entry point for every tool of the package.

Each subcommand lives in `audio_vision/commands/<name>.py` and exposes
`HELP` (one line), `add_arguments(parser)` and `run(args) -> int`.
Modules are imported lazily so `--help` and light commands stay fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module under audio_vision.commands
SUBCOMMANDS = {
    'demo': 'demo',
    'dataset': 'dataset',
    'train': 'train',
    'evaluate': 'evaluate',
    'record': 'record',
    'replay': 'replay',
    'node': 'node',
    'calibrate': 'calibrate',
}
#: former subcommands that are scripts of the source checkout now, not part of the installed package
MOVED = {'bench': 'benchmarks/bench_perception.py'}


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='audio_vision',
        description='See with sound: depth and segmentation images from a microphone array.')
    sub = parser.add_subparsers(dest='command', metavar='<subcommand>', required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(f'audio_vision.commands.{module_name}')
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] and argv[0] in MOVED:
        print(f'audio_vision {argv[0]}: error: not part of the installed package any more; from a source checkout '
              f'of the repository run: python {" ".join([MOVED[argv[0]], *argv[1:]])}', file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f'audio_vision {args.command}: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
