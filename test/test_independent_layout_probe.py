# SPDX-License-Identifier: Apache-2.0
"""scripts/independent_layout_probe.py (not part of the package): a directory that is no dataset, or a reference with
fewer windows than the re-recording, stops at the command line with what to give instead."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'scripts'))
from independent_layout_probe import main  # noqa: E402


def _card(path: Path, test_windows: int) -> Path:
    path.mkdir()
    (path / 'card.json').write_text(json.dumps({'splits': {'test': {'count': test_windows}}}))
    return path


def test_a_directory_that_is_no_dataset_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(['--data', str(tmp_path / 'nothing'), '--json', str(tmp_path / 'out.json')])
    assert 'is not a dataset (no card.json)' in capsys.readouterr().err
    assert not (tmp_path / 'out.json').exists()


def test_a_reference_with_fewer_windows_is_refused(tmp_path, capsys):
    data, reference = _card(tmp_path / 'independent', 10), _card(tmp_path / 'default', 4)
    with pytest.raises(SystemExit):
        main(['--data', str(data), '--reference', str(reference), '--json', str(tmp_path / 'out.json')])
    assert 'fewer test windows' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['--data', str(_card(tmp_path / 'empty', 0)), '--reference', str(reference),
              '--json', str(tmp_path / 'out.json')])
    assert 'has no test windows' in capsys.readouterr().err
