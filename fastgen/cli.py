"""The ``fastgen`` command: demo, train, bench."""
from __future__ import annotations

import argparse
import math
import pickle
import sys
import time
from pathlib import Path

import numpy as np


def _write_pngs(estimator, out_dir: Path, side: int, seed: int) -> list[Path]:
    from .datasets import save_image_grid
    from .random import Generator

    model = estimator._model()
    samples = model.sample(100, steps=1000, generator=Generator(seed))
    return [
        save_image_grid(samples, out_dir / "samples.png", (side, side)),
        save_image_grid(estimator.components_[:100], out_dir / "filters.png", (side, side), normalize=True),
    ]


def _fit_timed(estimator, X):
    start = time.perf_counter()
    estimator.fit(X)
    return time.perf_counter() - start


def cmd_demo(args) -> int:
    from .datasets import load_digits_binary
    from .models.rbm import RBM
    from .sklearn import BernoulliRBM

    X, _ = load_digits_binary()
    train, test = X[:1500], X[1500:]
    params = dict(n_components=args.n_components, learning_rate=0.06, batch_size=10, n_iter=args.n_iter,
                  random_state=args.seed)
    print(f"Training a PCD-1 RBM (64 visible, {args.n_components} hidden) on scikit-learn's digits "
          f"({train.shape[0]} train / {test.shape[0]} held out), {args.n_iter} epochs")
    ours = BernoulliRBM(progress=True, **params)
    t_ours = _fit_timed(ours, train)
    rows = [("fastgen", t_ours, ours.score_samples(test).mean())]
    if not args.no_compare:
        from sklearn.neural_network import BernoulliRBM as SkBernoulliRBM

        theirs = SkBernoulliRBM(**params)
        t_theirs = _fit_timed(theirs, train)
        model = RBM(np.ascontiguousarray(theirs.components_), theirs.intercept_visible_.copy(),
                    theirs.intercept_hidden_.copy())
        rows.append(("scikit-learn", t_theirs, model.pseudo_likelihood(test).mean()))
    print(f"\n{'implementation':<15}{'fit time (s)':>14}{'held-out pseudo-likelihood':>30}")
    for name, seconds, pl in rows:
        print(f"{name:<15}{seconds:>14.3f}{pl:>30.3f}")
    if len(rows) == 2:
        print(f"\nfastgen fit is {rows[1][1] / rows[0][1]:.1f}x faster than scikit-learn's (same settings, "
              "exact pseudo-likelihood for both)")
    for path in _write_pngs(ours, Path(args.out), 8, args.seed):
        print(f"wrote {path}")
    return 0


def cmd_train_rbm(args) -> int:
    from .datasets import load_array
    from .sklearn import BernoulliRBM

    X = load_array(args.data, binarize=args.binarize)
    if args.dtype:
        X = X.astype(args.dtype)
    if args.load:
        with open(args.load, "rb") as fh:
            estimator = pickle.load(fh)
        if not isinstance(estimator, BernoulliRBM):
            raise ValueError(f"{args.load}: not a saved fastgen BernoulliRBM")
    else:
        estimator = BernoulliRBM(
            n_components=args.n_components, learning_rate=args.learning_rate, batch_size=args.batch_size,
            n_iter=args.n_iter, random_state=args.seed, cd_k=args.cd_k, persistent=not args.no_persistent,
            n_chains=args.n_chains, momentum=args.momentum, weight_decay=args.weight_decay, progress=True,
        )
    if args.n_iter > 0 and not args.load:
        seconds = _fit_timed(estimator, X)
        print(f"trained on {X.shape[0]} x {X.shape[1]} in {seconds:.2f} s")
    elif args.n_iter > 0:
        start = time.perf_counter()
        for _ in range(args.n_iter):
            estimator.partial_fit(X)
        print(f"continued training for {args.n_iter} full-batch updates in {time.perf_counter() - start:.2f} s")
    print(f"mean exact pseudo-likelihood: {estimator.score_samples(X).mean():.3f}")
    if args.save:
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        with open(args.save, "wb") as fh:
            pickle.dump(estimator, fh)
        print(f"saved model to {args.save}")
    side = math.isqrt(X.shape[1])
    if side * side == X.shape[1]:
        for path in _write_pngs(estimator, Path(args.out), side, args.seed):
            print(f"wrote {path}")
    return 0


def cmd_bench(args, rest) -> int:
    import runpy

    try:
        import bench  # noqa: F401  (the repository's bench/ package)
    except ImportError:
        raise ValueError("the benchmark harness (bench/) is not importable: run from the fastgen repository root")
    sys.argv = ["bench", *rest]
    runpy.run_module("bench", run_name="__main__", alter_sys=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastgen", description="Compiled kernels for classic generative models")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train an RBM on scikit-learn's digits beside scikit-learn's, write PNGs")
    demo.add_argument("--out", default="fastgen_output", help="folder for samples.png and filters.png")
    demo.add_argument("--n-iter", type=int, default=20)
    demo.add_argument("--n-components", type=int, default=256)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-compare", action="store_true", help="skip scikit-learn")
    demo.set_defaults(func=cmd_demo)

    train = sub.add_parser("train", help="train a model on a data file")
    train_sub = train.add_subparsers(dest="model", required=True)
    rbm = train_sub.add_parser("rbm", help="Bernoulli RBM on a .npy/.npz/MNIST-IDX file")
    rbm.add_argument("data")
    rbm.add_argument("--n-components", type=int, default=256)
    rbm.add_argument("--learning-rate", type=float, default=0.1)
    rbm.add_argument("--batch-size", type=int, default=10)
    rbm.add_argument("--n-iter", type=int, default=10)
    rbm.add_argument("--cd-k", type=int, default=1)
    rbm.add_argument("--momentum", type=float, default=0.0)
    rbm.add_argument("--weight-decay", type=float, default=0.0)
    rbm.add_argument("--n-chains", type=int, default=None)
    rbm.add_argument("--no-persistent", action="store_true", help="CD-k instead of PCD")
    rbm.add_argument("--dtype", choices=["float32", "float64"], default=None)
    rbm.add_argument("--binarize", type=float, default=None, help="threshold the scaled data to 0/1")
    rbm.add_argument("--seed", type=int, default=0)
    rbm.add_argument("--save", help="pickle the trained model here")
    rbm.add_argument("--load", help="continue from a saved model")
    rbm.add_argument("--out", default="fastgen_output")
    rbm.set_defaults(func=cmd_train_rbm)

    bench = sub.add_parser("bench", help="run the benchmarks (same as python -m bench)", add_help=False)
    bench.set_defaults(func=None)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        try:
            return cmd_bench(None, argv[1:])
        except ValueError as exc:
            print(f"fastgen: error: {exc}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"fastgen: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
