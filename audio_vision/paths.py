# SPDX-License-Identifier: Apache-2.0
"""Where installed data lives: share/audio_vision on a ROS 2 install, the source tree otherwise."""
from __future__ import annotations

import json
from pathlib import Path

PACKAGE = 'audio_vision'
_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def share_dir() -> Path:
    """share/audio_vision of an installed package, else the source checkout's root."""
    try:
        from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
    except ImportError:
        return _SOURCE_ROOT
    try:
        return Path(get_package_share_directory(PACKAGE))
    except (PackageNotFoundError, LookupError, ValueError, OSError):
        return _SOURCE_ROOT


def default_model_dir() -> Path:
    return share_dir() / 'models'


def config_dir() -> Path:
    return share_dir() / 'config'


def source_commit() -> str | None:
    """The short git commit of the source checkout this package runs from, for result files to record;
    None on an install or a tree without git."""
    import subprocess
    try:
        out = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=_SOURCE_ROOT, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), for result files to record where they were measured."""
    import platform
    try:
        with open('/proc/cpuinfo') as f:
            return next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')),
                        platform.processor() or platform.machine())
    except OSError:
        return platform.processor() or platform.machine()


def busy_at_start(machine: dict) -> bool:
    """Whether a benchmark's machine record (its ``load_average_at_start``) says at least one core was busy before it
    began (1-minute load average >= 1): its speed figures then say as much about the other jobs as about the code."""
    return (machine.get('load_average_at_start') or [0.0])[0] >= 1.0


def measured_here() -> dict:
    """When and on what a result is being measured: {'date': ISO date, 'machine': CPU, cores, Python, torch}, for
    the result file to carry (the docs made from it quote these, not the machine that writes the docs)."""
    import datetime
    import os
    import platform

    import torch
    return {'date': datetime.date.today().isoformat(),
            'machine': f'{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, '
                       f'torch {torch.__version__}'}


def publish_result(result: dict, json_path: Path, table: str, markdown_path: Path | None, begin: str,
                   end: str) -> None:
    """A measurement script's last step: its result as JSON, its table printed and, if asked, written into
    the generated block of a document (:func:`rewrite_generated_block`)."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2))
    print(table)
    if markdown_path:
        rewrite_generated_block(markdown_path, begin, end, table)


def rewrite_generated_block(path: Path, begin: str, end: str, body: str) -> None:
    """Replace what lies between the markers ``begin`` and ``end`` of a document with ``body`` (the part a
    script generates from its result file; the rest of the document stays as written)."""
    import re
    text = Path(path).read_text()
    if begin not in text or end not in text:
        raise ValueError(f'{path} has no generated block {begin!r} ... {end!r}')
    block = f'{begin}\n{body}{end}'
    Path(path).write_text(re.sub(re.escape(begin) + '.*?' + re.escape(end), lambda _: block, text, flags=re.S))
