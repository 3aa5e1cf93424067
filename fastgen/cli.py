"""The ``fastgen`` command (also ``python -m fastgen``).

Subcommands:

``fastgen demo``
    Trains a PCD RBM on scikit-learn's digits with fastgen and with scikit-learn, prints fit
    times and held-out exact pseudo-likelihoods, writes ``samples.png`` and ``filters.png``.
``fastgen train rbm DATA``
    Trains (or continues) a Bernoulli RBM on a .npy / .npz / MNIST-IDX file.
``fastgen bench ...``
    Runs the repository's benchmark harness (``python -m bench ...``).

:func:`main` returns the exit code: 0 on success, 2 on a usage or input error (one line on
stderr, ``fastgen: error: ...``, no traceback).
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import pickle
import sys
import time
from pathlib import Path

import numpy as np

DEMO_SETTINGS = dict(n_components=256, learning_rate=0.06, batch_size=10)
DEMO_N_TRAIN = 1500
N_IMAGES = 100
SAMPLE_STEPS = 1000
MAX_FILTERS = 256


class CommandError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


# ---- shared helpers ---------------------------------------------------------------------------
def _fit_timed(estimator, X) -> float:
    start = time.perf_counter()
    estimator.fit(X)
    return time.perf_counter() - start


def _samples_for_display(model, n: int, steps: int, seed: int) -> np.ndarray:
    """``n`` chains run ``steps`` block-Gibbs steps from uniform noise (Generator(seed)); shown as
    the mean of the last visible step, P(v | h), which reads better than binary states."""
    from .random import Generator

    gen = Generator(seed)
    states = model.sample(n, steps=steps, generator=gen)
    return model.visible_probs(model.sample_hidden(states, generator=gen))


def _write_pngs(model, out_dir: Path, image_shape, seed: int, *, steps: int = SAMPLE_STEPS,
                n_samples: int = N_IMAGES) -> list[Path]:
    """samples.png (model samples) and filters.png (rows of W, each normalised to [0, 1])."""
    from ._png import save_image_grid

    samples = _samples_for_display(model, n_samples, steps, seed)
    filters = model.weights[:MAX_FILTERS]
    return [
        save_image_grid(samples, out_dir / "samples.png", image_shape, ncols=10),
        save_image_grid(filters, out_dir / "filters.png", image_shape,
                        ncols=math.ceil(math.sqrt(filters.shape[0])), normalize=True),
    ]


def _out_dir(path) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CommandError(f"{out}: exists and is not a directory (--out)")
    return out


def _warm_up() -> None:
    """Load the compiled module and BLAS before anything is timed."""
    from . import _cpu  # noqa: F401


# ---- demo -------------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    from .datasets import load_digits_binary
    from .models.rbm import RBM
    from .sklearn import BernoulliRBM

    if args.n_iter < 1:
        raise CommandError(f"--n-iter must be >= 1, got {args.n_iter}")
    out = _out_dir(args.out)
    X = load_digits_binary()
    train, test = X[:DEMO_N_TRAIN], X[DEMO_N_TRAIN:]
    params = dict(DEMO_SETTINGS, n_iter=args.n_iter, random_state=args.seed)
    print(f"PCD-1 RBM, {X.shape[1]} visible x {params['n_components']} hidden units, on scikit-learn's digits "
          f"({train.shape[0]} train / {test.shape[0]} held out)")
    print(f"settings: learning_rate={params['learning_rate']}, batch_size={params['batch_size']}, "
          f"n_iter={params['n_iter']}, random_state={args.seed}, float64", flush=True)
    _warm_up()
    ours = BernoulliRBM(progress=True, **params)
    t_ours = _fit_timed(ours, train)
    rows = [("fastgen", t_ours, float(ours.score_samples(test).mean()))]
    if not args.no_compare:
        from sklearn.neural_network import BernoulliRBM as SkBernoulliRBM

        theirs = SkBernoulliRBM(**params)
        t_theirs = _fit_timed(theirs, train)
        # Same exact pseudo-likelihood for both (scikit-learn's score_samples is a one-bit
        # random estimate of it): evaluate scikit-learn's parameters with fastgen's RBM.
        twin = RBM(np.array(theirs.components_, np.float64, order="C"),
                   np.array(theirs.intercept_visible_, np.float64), np.array(theirs.intercept_hidden_, np.float64))
        rows.append(("scikit-learn", t_theirs, float(twin.pseudo_likelihood(test).mean())))

    print()
    print(f"{'implementation':<16}{'fit time (s)':>13}{'speed':>10}{'held-out pseudo-likelihood':>30}")
    reference = rows[-1][1]
    for name, seconds, pl in rows:
        speed = f"{reference / seconds:.1f}x" if len(rows) > 1 else "-"
        print(f"{name:<16}{seconds:>13.3f}{speed:>10}{pl:>30.2f}")
    if len(rows) > 1:
        print(f"\nfastgen fits {rows[1][1] / rows[0][1]:.1f}x faster than scikit-learn with the same settings.")
    print(f"pseudo-likelihood: exact sum over the {X.shape[1]} pixels of log P(v_i | v_-i), mean over the "
          f"{test.shape[0]} held-out digits (higher is better)")
    for path in _write_pngs(ours._model(), out, (8, 8), args.seed):
        print(f"wrote {path}")
    return 0


# ---- train rbm --------------------------------------------------------------------------------
# Training options of `train rbm`: argparse default None means "not given"; these are the
# values a new model gets.
_TRAIN_DEFAULTS = dict(n_components=256, learning_rate=0.1, batch_size=10, n_iter=10, cd_k=1,
                       momentum=0.0, weight_decay=0.0, n_chains=None, dtype="float32")
# Options that may change when continuing a saved model.
_CONTINUE_OVERRIDABLE = ("learning_rate", "batch_size", "cd_k", "momentum", "weight_decay")


def _load_model(path):
    from .sklearn import BernoulliRBM

    path = Path(path)
    if not path.is_file():
        raise CommandError(f"{path}: no such file (--load)")
    try:
        with open(path, "rb") as fh:
            estimator = pickle.load(fh)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, ValueError, TypeError) as exc:
        raise CommandError(f"{path}: not a saved fastgen model ({type(exc).__name__}: {exc})") from exc
    if not isinstance(estimator, BernoulliRBM) or not hasattr(estimator, "components_"):
        raise CommandError(f"{path}: not a saved (fitted) fastgen BernoulliRBM, got {type(estimator).__name__}")
    return estimator


def _continue_training(estimator, X, n_epochs: int) -> None:
    """``n_epochs`` more passes of estimator's own CD/PCD procedure, from its saved parameters,
    chains, momentum buffers and random stream (``fit`` would start over)."""
    from tqdm.auto import tqdm

    estimator._check_params()
    X = estimator._validate_X(X, reset=False)
    if not hasattr(estimator, "_generator"):
        estimator._generator = estimator._generator_from(estimator.random_state)
    rbm, trainer = estimator._model(), estimator._trainer()
    for _ in tqdm(range(n_epochs), desc="BernoulliRBM", unit="epoch"):
        trainer.run(rbm, X, estimator.batch_size, estimator._generator)
    estimator._store_trainer_state(trainer)


def cmd_train_rbm(args) -> int:
    from .datasets import load_array
    from .sklearn import BernoulliRBM

    given = {name: getattr(args, name) for name in _TRAIN_DEFAULTS if getattr(args, name) is not None}
    out = _out_dir(args.out)
    if args.save:
        save = Path(args.save)
        if save.is_dir():
            raise CommandError(f"{save}: is a directory (--save needs a file name)")

    if args.load:
        estimator = _load_model(args.load)
        model_dtype = estimator.components_.dtype.name
        for name, value in (("n_components", estimator.n_components), ("dtype", model_dtype)):
            if name in given and given[name] != value:
                raise CommandError(f"--{name.replace('_', '-')} {given[name]} differs from the loaded model's {value}")
        if "n_chains" in given and estimator.persistent and given["n_chains"] != estimator.h_samples_.shape[0]:
            raise CommandError(f"--n-chains {given['n_chains']} differs from the loaded model's "
                               f"{estimator.h_samples_.shape[0]} persistent chains")
        if args.no_persistent:
            given["persistent"] = False
        estimator.set_params(**{k: given[k] for k in (*_CONTINUE_OVERRIDABLE, "persistent") if k in given})
        n_iter = given.get("n_iter", 0)
        X = load_array(args.data, binarize=args.binarize, key=args.key, dtype=model_dtype)
        if X.shape[1] != estimator.n_features_in_:
            raise CommandError(f"{args.data}: {X.shape[1]} features, the loaded model has {estimator.n_features_in_}")
        print(f"loaded {args.load}: {estimator.n_features_in_} visible x {estimator.n_components} hidden, {model_dtype}")
    else:
        settings = {**_TRAIN_DEFAULTS, **given}
        n_iter = settings["n_iter"]
        X = load_array(args.data, binarize=args.binarize, key=args.key, dtype=settings["dtype"])
        estimator = BernoulliRBM(
            n_components=settings["n_components"], learning_rate=settings["learning_rate"],
            batch_size=settings["batch_size"], n_iter=n_iter, random_state=args.seed, cd_k=settings["cd_k"],
            persistent=not args.no_persistent, n_chains=settings["n_chains"], momentum=settings["momentum"],
            weight_decay=settings["weight_decay"], dtype=settings["dtype"], progress=True,
        )
        estimator._check_params()
    if X.min() < 0 or X.max() > 1:
        print(f"warning: {args.data} has values outside [0, 1] ({X.min():g} .. {X.max():g}); "
              "a Bernoulli RBM expects binary data or probabilities", file=sys.stderr)

    print(f"data: {args.data}: {X.shape[0]} samples x {X.shape[1]} features", flush=True)
    _warm_up()
    if args.load:
        if n_iter > 0:
            start = time.perf_counter()
            _continue_training(estimator, X, n_iter)
            print(f"continued training for {n_iter} epochs in {time.perf_counter() - start:.2f} s")
    else:
        seconds = _fit_timed(estimator, X)
        print(f"trained {n_iter} epochs in {seconds:.2f} s")
    start = time.perf_counter()
    pl = float(estimator.score_samples(X).mean())
    print(f"mean exact pseudo-likelihood: {pl:.3f} (over the {X.shape[0]} training samples, "
          f"{time.perf_counter() - start:.2f} s)")

    if args.save:
        save.parent.mkdir(parents=True, exist_ok=True)
        estimator.set_params(progress=False)  # the bar is the command's choice, not the model's
        with open(save, "wb") as fh:
            pickle.dump(estimator, fh, protocol=pickle.HIGHEST_PROTOCOL)
        print(f"saved model to {save}")
    side = math.isqrt(X.shape[1])
    if side * side == X.shape[1]:
        for path in _write_pngs(estimator._model(), out, (side, side), args.seed):
            print(f"wrote {path}")
    else:
        print(f"no images written: {X.shape[1]} features is not a square image")
    return 0


# ---- bench ------------------------------------------------------------------------------------
def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _find_bench():
    """The repository's ``bench`` package: from the checkout fastgen was imported from when it
    has one (editable installs), else whatever ``import bench`` finds."""
    root = _repo_root()
    if (root / "bench" / "__main__.py").is_file() and (root / "fastgen").is_dir():
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
    try:
        spec = importlib.util.find_spec("bench")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise CommandError(
            "the benchmark harness is not importable: 'fastgen bench' runs the bench/ package of "
            "fastgen's source repository; install fastgen from a checkout (pip install -e .) or run "
            "'python -m bench' from the repository root"
        )
    return spec


def cmd_bench(rest: list[str]) -> int:
    import runpy

    saved_argv = sys.argv
    sys.argv = ["python -m bench", *rest]
    try:
        runpy.run_module("bench", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    finally:
        sys.argv = saved_argv
    return 0


# ---- parser and entry point -------------------------------------------------------------------
def _nonnegative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="fastgen", description="Compiled kernels for classic generative models (RBMs: CD-k, PCD).")
    parser.add_argument("--version", action="version", version=f"fastgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,train,bench}")

    demo = sub.add_parser(
        "demo", help="train an RBM on scikit-learn's digits beside scikit-learn's own, write sample/filter PNGs",
        description="Train a PCD-1 RBM (256 hidden units, learning rate 0.06, batch 10) on the first 1500 of "
                    "scikit-learn's digits with fastgen and with scikit-learn, compare fit times and exact "
                    "held-out pseudo-likelihoods, and write samples.png and filters.png. No network needed.")
    demo.add_argument("--out", default="fastgen_output", help="folder for samples.png and filters.png "
                                                              "(default: %(default)s)")
    demo.add_argument("--n-iter", type=_positive_int, default=20, help="epochs (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random_state of both models and sampling seed "
                                                          "(default: %(default)s)")
    demo.add_argument("--no-compare", action="store_true", help="skip scikit-learn")
    demo.set_defaults(func=cmd_demo)

    train = sub.add_parser("train", help="train a model on a data file")
    train_sub = train.add_subparsers(dest="model", required=True, metavar="{rbm}")
    d = _TRAIN_DEFAULTS
    rbm = train_sub.add_parser(
        "rbm", help="Bernoulli RBM (PCD by default) on a .npy/.npz/MNIST-IDX file",
        description="Train a Bernoulli RBM on DATA and report the mean exact pseudo-likelihood. DATA is a "
                    ".npy array, a .npz archive (array 'data', else the first) or an MNIST IDX file, "
                    "optionally gzip-compressed; the first axis indexes samples, the rest are flattened. "
                    "Integer data is divided by its type's maximum (uint8: 255). When the feature count is "
                    "a square, samples.png and filters.png are written to --out. With --load, training "
                    "continues from a saved model for --n-iter more epochs (default 0: evaluate only).")
    rbm.add_argument("data", metavar="DATA")
    rbm.add_argument("--key", help="array to read from a .npz archive")
    rbm.add_argument("--binarize", type=float, metavar="T",
                     help="set scaled values > T to 1, the rest to 0 (0.5 on MNIST: pixel > 127)")
    rbm.add_argument("--n-components", type=_positive_int, help=f"hidden units (default: {d['n_components']})")
    rbm.add_argument("--learning-rate", type=float, help=f"(default: {d['learning_rate']})")
    rbm.add_argument("--batch-size", type=_positive_int, help=f"(default: {d['batch_size']})")
    rbm.add_argument("--n-iter", type=_nonnegative_int,
                     help=f"epochs (default: {d['n_iter']}; with --load: 0, evaluate only)")
    rbm.add_argument("--cd-k", type=_positive_int, help=f"Gibbs steps per update (default: {d['cd_k']})")
    rbm.add_argument("--momentum", type=float, help=f"(default: {d['momentum']})")
    rbm.add_argument("--weight-decay", type=float, help=f"L2 penalty on the weights (default: {d['weight_decay']})")
    rbm.add_argument("--n-chains", type=_positive_int, help="persistent chains (default: the batch size)")
    rbm.add_argument("--no-persistent", action="store_true", help="CD-k (chains restart at the data) instead of PCD")
    rbm.add_argument("--dtype", choices=["float32", "float64"], help=f"compute dtype (default: {d['dtype']})")
    rbm.add_argument("--seed", type=int, default=0, help="random_state and sampling seed (default: %(default)s)")
    rbm.add_argument("--save", metavar="MODEL", help="pickle the trained BernoulliRBM to this file")
    rbm.add_argument("--load", metavar="MODEL",
                     help="start from a model saved with --save (a pickle: load only files you trust)")
    rbm.add_argument("--out", default="fastgen_output", help="folder for the PNGs (default: %(default)s)")
    rbm.set_defaults(func=cmd_train_rbm)

    # Parsed by bench itself: everything after 'bench' is forwarded (see main).
    sub.add_parser("bench", help="run the benchmark harness: fastgen bench ARGS == python -m bench ARGS "
                                 "(needs the source repository)", add_help=False)
    return parser


def _error(message) -> int:
    print(f"fastgen: error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    """Run the ``fastgen`` command with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        try:
            _find_bench()
        except CommandError as exc:
            return _error(exc)
        # bench's own failures keep their tracebacks: they are bugs to see, not input errors
        try:
            return cmd_bench(argv[1:])
        except KeyboardInterrupt:
            print("fastgen: interrupted", file=sys.stderr)
            return 130
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error argparse already printed
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        return args.func(args)
    except (CommandError, ValueError, OSError) as exc:
        return _error(exc)
    except KeyboardInterrupt:
        print("fastgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
