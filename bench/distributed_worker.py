"""One timed run of ``python -m bench distributed``: PCD-1 epochs of a BernoulliRBM, in this
process or as one rank of the torchrun job that started it. Rank 0 writes a JSON record: the
seconds of the timed epochs, the seconds spent in the all-reduce and the bytes each one sums.

``python -m bench.distributed_worker DATA.npy OUT.json --mode {compiled,per-batch,ranks}
--batch-size B --epochs E --n-components H`` (``ranks``: under torchrun; B is then per rank)."""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--mode", choices=["compiled", "per-batch", "ranks"], required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--n-components", type=int, required=True)
    args = parser.parse_args()

    from fastgen import BernoulliRBM
    from fastgen.models.data_parallel import OneProcess
    from fastgen.sklearn import data_parallel

    job = None
    if args.mode == "ranks":
        from fastgen.torch.train.distributed import from_environment

        job = from_environment()
    elif args.mode == "per-batch":
        job = OneProcess()  # the path each rank runs, with nothing to reduce
    reduce_seconds, reduce_calls = [0.0], [0]
    if args.mode == "ranks":
        all_reduce = job.all_reduce

        def timed_all_reduce(array):
            start = time.perf_counter()
            all_reduce(array)
            reduce_seconds[0] += time.perf_counter() - start
            reduce_calls[0] += 1

        object.__setattr__(job, "all_reduce", timed_all_reduce)  # Distributed is a frozen dataclass

    X = np.load(args.data, mmap_mode="r")
    settings = dict(n_components=args.n_components, batch_size=args.batch_size, learning_rate=0.05,
                    random_state=0)
    with data_parallel(job):
        BernoulliRBM(n_iter=1, **settings).fit(X[:2000])  # warm-up: kernels, BLAS threads, gloo buffers
        if job is not None and job.world_size > 1:
            job.barrier()
        reduce_seconds[0], reduce_calls[0] = 0.0, 0
        start = time.perf_counter()
        BernoulliRBM(n_iter=args.epochs, **settings).fit(X)
        if job is not None and job.world_size > 1:
            job.barrier()
        seconds = time.perf_counter() - start
    if job is None or job.rank == 0:
        record = {"seconds": seconds, "all_reduce_seconds": reduce_seconds[0], "all_reduce_calls": reduce_calls[0],
                  "all_reduce_bytes": (args.n_components + 1) * X.shape[1] * 4 + args.n_components * 4}
        with open(args.out, "w") as f:
            json.dump(record, f)
    if args.mode == "ranks":
        from fastgen.torch.train.distributed import close

        close(job)


if __name__ == "__main__":
    main()
