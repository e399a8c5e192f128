# SPDX-License-Identifier: Apache-2.0
"""Lint like an ament_python package: flake8, pep257 (pydocstyle) and an SPDX header on every file.

The settings live in setup.cfg ([flake8], [pydocstyle]: ament_flake8's and ament_pep257's, with the
deviations written down there). The tool tests skip, naming the package that runs them, where the tool
is not importable (requirements-test.txt installs both)."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: what the linters check: the package, its scripts, benchmarks, launch files and tests
TREES = ('audio_vision', 'scripts', 'benchmarks', 'launch', 'test')
SPDX = '# SPDX-License-Identifier: Apache-2.0'


def python_files() -> list[Path]:
    """Every .py file of the checked trees, plus setup.py."""
    files = [ROOT / 'setup.py']
    for tree in TREES:
        files += sorted(p for p in (ROOT / tree).rglob('*.py') if '__pycache__' not in p.parts)
    return files


def run_tool(module: str, *args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f'{module} is not installed; `pip install -r requirements-test.txt` installs it and runs this')
    # no timeout of its own: pytest-timeout (pytest.ini) bounds it; pydocstyle alone takes minutes on a starved core
    return subprocess.run([sys.executable, '-m', module, *args, *TREES, 'setup.py'], cwd=ROOT, capture_output=True,
                          text=True)


def test_flake8():
    result = run_tool('flake8')
    assert result.returncode == 0, f'flake8 (settings in setup.cfg):\n{result.stdout}{result.stderr}'


def test_pep257():
    result = run_tool('pydocstyle')
    assert result.returncode == 0, f'pydocstyle (settings in setup.cfg):\n{result.stdout}{result.stderr}'


def test_spdx_headers():
    files = python_files()
    assert len(files) > 50, 'the file walk found too few files'
    missing = []
    for path in files:
        head = path.read_text(encoding='utf-8').splitlines()[:2]
        if SPDX not in head:
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, f'no "{SPDX}" line in the first two lines of: {", ".join(missing)}'
