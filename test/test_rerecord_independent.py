# SPDX-License-Identifier: Apache-2.0
"""scripts/rerecord_independent.py: windows recorded by a pool of workers and windows copied from an earlier
re-recording (--reuse) are the ones a sequential run records, to the bit; a re-recording of another source is
refused."""
import numpy as np
import pytest

pytest.importorskip('rir_generator')

from audio_vision.dataset import DatasetReader  # noqa: E402
from audio_vision.simulation.dataset import generate_dataset  # noqa: E402

from helpers import load_script  # noqa: E402


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    """A small simulated dataset and one of its splits with at least two windows."""
    out = tmp_path_factory.mktemp('source')
    generate_dataset(out, 8, seed=5, progress=False)
    card = DatasetReader(out, 'train').card
    split = next(s for s, v in card['splits'].items() if v['count'] >= 2)
    return out, split


@pytest.fixture(scope='module')
def first_window(source, tmp_path_factory):
    """The split's first window re-recorded by a sequential run."""
    out = tmp_path_factory.mktemp('rerecorded') / 'one'
    first = load_script('rerecord_independent').rerecord(*source, out, limit=1, progress=False)
    assert first['reused'] == 0 and len(first['seconds']) == 1
    return out


def test_pooled_and_reused_windows_are_the_sequential_recording(source, first_window, tmp_path):
    rerecord = load_script('rerecord_independent')
    data, split = source
    both = rerecord.rerecord(data, split, tmp_path / 'two', limit=2, progress=False, workers=2, reuse=first_window)
    assert both['reused'] == 1 and both['seconds'] == []        # the second window came from the pool
    one, two, src = (DatasetReader(p, split) for p in (first_window, tmp_path / 'two', data))
    assert len(two) == 2
    assert all(np.array_equal(one[0][k], two[0][k]) for k in one[0]) and one.metadata(0) == two.metadata(0)
    # The pool's window: a sequential run's, bit for bit (the engine draws everything from the recorded seeds).
    alone = rerecord.rerecord(data, split, tmp_path / 'alone', limit=2, progress=False, reuse=first_window)
    assert len(alone['seconds']) == 1
    again = DatasetReader(tmp_path / 'alone', split)
    assert all(np.array_equal(again[1][k], two[1][k]) for k in again[1])
    assert again.metadata(1) == two.metadata(1)
    assert not np.array_equal(two[1]['audio'], src[1]['audio'])         # re-recorded, not copied from the source
    assert np.array_equal(two[1]['depth'], src[1]['depth'])


def test_a_reuse_of_another_source_is_refused(source, first_window, tmp_path):
    rerecord = load_script('rerecord_independent')
    split = source[1]
    other = tmp_path / 'other_source'
    generate_dataset(other, 8, seed=6, progress=False)
    with pytest.raises(SystemExit, match='source content hash'):
        rerecord.rerecord(other, split, tmp_path / 'two', limit=1, progress=False, reuse=first_window)
    with pytest.raises(SystemExit, match='not a dataset directory'):
        rerecord.rerecord(source[0], split, tmp_path / 'three', limit=1, progress=False, reuse=tmp_path / 'nothing')
