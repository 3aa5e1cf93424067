"""Out-of-core training on one machine: BernoulliRBM.partial_fit of a memory-mapped file larger
than the chunk size reads and computes it a chunk at a time and gives the one update on all of X
that scikit-learn's partial_fit defines; an iterator of chunks is a partial_fit per chunk."""
from __future__ import annotations

import numpy as np
import pytest

from fastgen import BernoulliRBM
from fastgen.models.data_parallel import OneProcess, ShardedContrastiveDivergence
from fastgen.models.rbm import RBM, ContrastiveDivergence
from fastgen.random import Generator
from fastgen.sklearn import _base

CHUNK_ROWS = 64


@pytest.fixture
def memmapped(tmp_path):
    X = (np.random.default_rng(0).random((1000, 30)) < 0.3).astype(np.float64)
    path = tmp_path / "X.npy"
    np.save(path, X)
    return X, np.load(path, mmap_mode="r")


@pytest.mark.parametrize("persistent", [True, False], ids=["PCD", "CD"])
def test_partial_fit_of_a_memmap_larger_than_a_chunk_is_one_update_on_all_of_it(memmapped, monkeypatch,
                                                                                persistent):
    X, mm = memmapped
    params = dict(n_components=12, random_state=2, persistent=persistent, learning_rate=0.05)
    in_memory = BernoulliRBM(**params).partial_fit(X)  # one batch of 1000 rows, the compiled epoch
    monkeypatch.setattr(_base, "SPARSE_CHUNK_ROWS", CHUNK_ROWS)
    chunked = BernoulliRBM(**params).partial_fit(mm)
    np.testing.assert_allclose(chunked.components_, in_memory.components_, rtol=0, atol=1e-13)
    np.testing.assert_allclose(chunked.intercept_hidden_, in_memory.intercept_hidden_, rtol=0, atol=1e-13)
    np.testing.assert_array_equal(chunked.h_samples_, in_memory.h_samples_)
    assert not mm.flags.writeable and mm.filename  # the file is read, never written


class RecordedRows(np.ndarray):
    """An array that records how many rows each slice of it asks for."""

    reads: list

    def __getitem__(self, key):
        if isinstance(key, slice):
            self.reads.append(len(range(*key.indices(self.shape[0]))))
        return np.asarray(super().__getitem__(key))


def test_the_sharded_trainer_reads_at_most_a_chunk_of_rows_at_a_time(memmapped):
    _, mm = memmapped
    data = mm.view(RecordedRows)
    data.reads = []
    trainer = ShardedContrastiveDivergence(ContrastiveDivergence(learning_rate=0.05), OneProcess(), CHUNK_ROWS)
    trainer.run(RBM.initialize(30, 12, generator=Generator(1)), data, 1000, Generator(2))
    assert data.reads and max(data.reads) <= CHUNK_ROWS and sum(data.reads) == 1000


def test_fit_reads_a_memmap_of_the_training_dtype_in_place(memmapped):
    X, mm = memmapped
    a = BernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(X)
    b = BernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(mm)
    np.testing.assert_array_equal(b.components_, a.components_)


def test_an_iterator_of_chunks_is_one_partial_fit_per_chunk(memmapped):
    X, mm = memmapped

    def chunks(array, rows):  # e.g. rows streamed from a database or a set of files
        for start in range(0, array.shape[0], rows):
            yield array[start:start + rows]

    streamed, sliced = (BernoulliRBM(n_components=8, random_state=5) for _ in range(2))
    for chunk in chunks(mm, 100):
        streamed.partial_fit(chunk)
    for start in range(0, 1000, 100):
        sliced.partial_fit(X[start:start + 100])
    np.testing.assert_array_equal(streamed.components_, sliced.components_)


def test_an_iterator_passed_as_x_is_refused_with_what_to_do():
    chunks = (np.zeros((5, 4)) for _ in range(3))
    with pytest.raises(TypeError, match="call partial_fit once per chunk"):
        BernoulliRBM(n_components=2).partial_fit(chunks)
    with pytest.raises(TypeError, match="got an iterator"):
        BernoulliRBM(n_components=2).fit(iter([np.zeros(4)]))
    from fastgen import DBN, GaussianBernoulliRBM

    with pytest.raises(TypeError, match="call partial_fit once per chunk"):
        GaussianBernoulliRBM(n_components=2).fit(np.zeros((5, 4)) for _ in range(2))
    with pytest.raises(TypeError, match="stack the chunks into one array"):  # DBN has no partial_fit
        DBN(hidden_layer_sizes=(2,)).fit(np.zeros((5, 4)) for _ in range(2))
