"""CD/PCD with each mini-batch's gradient summed over shards: the ranks of a data-parallel job,
and the chunks of a batch too large for memory (out of core).

The layout, for a job of N ranks and global batches of G rows (``batch_size`` rows per rank in
:meth:`fastgen.sklearn.BernoulliRBM.fit`, G = N * batch_size):

* batch i is rows ``[i G, (i + 1) G)`` of the data, in order (the last may be shorter); rank k
  takes rows :func:`share` of it and the persistent chains :func:`share` of all of them;
* every row and chain draws from the Philox counters of its place in the whole batch
  (``first_row`` / ``first_chain`` of :func:`fastgen.ops.cd.cd_statistics_numpy`), so the
  states are those the one-process run with batch G draws from the same parameters;
* each rank adds its rows' statistics, divided by the whole batch's row and chain counts, into
  one flat buffer (``n_hidden * n_visible + n_visible + n_hidden`` values); one all-reduce per
  batch sums it and every rank applies the same momentum / weight-decay step, so all ranks hold
  the same parameters;
* within a rank, more than ``chunk_rows`` rows are read and computed ``chunk_rows`` at a time
  (from a memory-mapped file, only those rows are read).

What is bitwise and what is not: the draws are (given equal parameters); the sums are not, since
the one-process run adds its rows in another order, so the parameters agree to rounding, and
rounding can flip a draw whose uniform lies within it of its probability (float32: rarely over
an epoch; float64: practically never). The ranks agree bit for bit with each other: they apply
the one all-reduced gradient.

A job is any object with ``rank``, ``world_size``, ``all_reduce(array)`` (in-place sum over the
ranks of a NumPy array) and ``broadcast(array, root)`` (in place);
:class:`fastgen.torch.train.distributed.Distributed` is one, on torch.distributed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ops.cd import cd_statistics_numpy, offsets_per_epoch
from ..ops.sgd import sgd_momentum_update_numpy
from ._divergence import guarded_pass
from .rbm import RBM, ContrastiveDivergence, diverged_message

# Rows a rank reads and computes at once (its share of a batch can be larger: partial_fit of a
# memory-mapped file is one batch).
DEFAULT_CHUNK_ROWS = 4096


class OneProcess:
    """The job of a single process: nothing to reduce (for out-of-core batches)."""

    rank = 0
    world_size = 1

    def all_reduce(self, array: np.ndarray) -> None:
        pass

    def broadcast(self, array: np.ndarray, root: int = 0) -> None:
        pass


def share(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of ``n`` that ``rank`` takes: consecutive, in rank order, sizes
    differing by at most one (a rank may get none)."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def gather_rows(job, rows: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` rows every rank holds a :func:`share` of, on every rank (an all-reduce of the
    rows placed among zeros: exact, since x + 0 = x)."""
    start, stop = share(n, job.rank, job.world_size)
    out = np.zeros((n, *rows.shape[1:]), rows.dtype)
    out[start:stop] = rows
    job.all_reduce(out)
    return out


def check_agreement(job, **values) -> None:
    """ValueError on every rank, naming the first setting the ranks disagree on (they must pass
    the same X and parameters; otherwise the first all-reduce of unequal buffers would abort
    inside gloo): one all-reduce of every rank's values, placed among zeros."""
    if job.world_size == 1:
        return
    local = np.array([float(v) for v in values.values()], np.float64)
    every = gather_rows(job, local[None, :], job.world_size)
    for column, name in enumerate(values):
        seen = every[:, column]
        if (seen != seen[0]).any():
            ranks = ", ".join(f"rank {r}: {v:g}" for r, v in enumerate(seen))
            raise ValueError(f"the ranks of the data-parallel job disagree on {name} ({ranks}): every rank must "
                             "pass the same X and the same settings")


@dataclass
class ShardedContrastiveDivergence:
    """:class:`ContrastiveDivergence` (its settings and state) run as one rank of ``job``.

    ``run(rbm, data, batch_size, generator)`` takes the *global* batch size and the whole data
    (every rank passes the same rows, e.g. the same memory-mapped file); the trainer's
    ``chains`` and ``velocities`` are whole arrays, equal on every rank before and after a pass.
    """

    trainer: ContrastiveDivergence
    job: object
    chunk_rows: int = DEFAULT_CHUNK_ROWS

    @property
    def chains(self):
        return self.trainer.chains

    @property
    def velocities(self):
        return self.trainer.velocities

    @property
    def learning_rate(self):
        return self.trainer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.trainer.learning_rate = value

    def run(self, rbm: RBM, data, batch_size: int, generator) -> None:
        t = self.trainer
        t.prepare(rbm, batch_size)
        n = data.shape[0]
        check_agreement(self.job, **{"the rows of X": n, "the columns of X": data.shape[1],
                                     "n_components": rbm.n_hidden, "the rows of a step": batch_size,
                                     "the persistent chains": t.chains.shape[0] if t.persistent else 0,
                                     "cd_k": t.cd_k, "learning_rate": t.learning_rate, "momentum": t.momentum,
                                     "weight_decay": t.weight_decay, "the dtype's size": rbm.dtype.itemsize,
                                     "the stream's offset": generator.offset})
        first = generator.take(offsets_per_epoch(n, batch_size, t.cd_k))
        chains = None
        if t.persistent:
            c_start, c_stop = share(t.chains.shape[0], self.job.rank, self.job.world_size)
            # a copy: the trainer's chains change only after a pass that succeeded (guarded_pass
            # undoes the parameters and velocities of one that diverged or raised)
            chains = t.chains[c_start:c_stop].copy()

        def run():
            for i, start in enumerate(range(0, n, batch_size)):
                self._batch(rbm, data, start, min(batch_size, n - start), chains, generator.seed,
                            first + i * (2 * t.cd_k + 1))

        guarded_pass(run, (rbm.weights, rbm.visible_bias, rbm.hidden_bias), tuple(t.velocities or ()),
                     message=diverged_message(t))
        if t.persistent:  # every rank takes every rank's advanced chains
            t.chains[...] = gather_rows(self.job, chains, t.chains.shape[0])

    def _batch(self, rbm, data, start, rows, chains, seed, first) -> None:
        """One global batch (rows [start, start + rows) of data): this rank's statistics, the sum
        over the ranks, the step."""
        t, W = self.trainer, rbm.weights
        nh, nv = W.shape
        flat = np.zeros(nh * nv + nv + nh, W.dtype)
        grads = (flat[:nh * nv].reshape(nh, nv), flat[nh * nv:nh * nv + nv], flat[nh * nv + nv:])
        lo, hi = share(rows, self.job.rank, self.job.world_size)
        n_chains = t.chains.shape[0] if t.persistent else rows
        c_first = share(n_chains, self.job.rank, self.job.world_size)[0]
        common = dict(k=t.cd_k, seed=seed, first=first, out=grads, data_scale=1.0 / rows,
                      chains_scale=1.0 / n_chains, binary_products=t.binary_products)
        chunk_starts = range(lo, hi, self.chunk_rows) if hi > lo else [lo]
        for j, a in enumerate(chunk_starts):
            b = min(hi, a + self.chunk_rows)
            v = data[start + a:start + b]
            v = np.ascontiguousarray(v.toarray() if hasattr(v, "toarray") else v, dtype=W.dtype)  # CSR rows
            if t.persistent:
                cd_statistics_numpy(v, W, rbm.visible_bias, rbm.hidden_bias, persistent_chains=chains,
                                    first_row=a, first_chain=c_first, model_term=j == 0, **common)
            else:
                cd_statistics_numpy(v, W, rbm.visible_bias, rbm.hidden_bias, first_row=a, **common)
        self.job.all_reduce(flat)
        velocities = t.velocities if t.momentum > 0 else (None, None, None)
        for param, grad, velocity, decay in zip((W, rbm.visible_bias, rbm.hidden_bias), grads, velocities,
                                                (t.weight_decay, 0.0, 0.0)):
            sgd_momentum_update_numpy(param, grad, velocity=velocity, learning_rate=float(t.learning_rate),
                                      momentum=float(t.momentum), weight_decay=float(decay))


__all__ = ["DEFAULT_CHUNK_ROWS", "OneProcess", "ShardedContrastiveDivergence", "check_agreement", "gather_rows",
           "share"]
