"""``fastgen train rbm DATA``: trains (or, with --resume, continues) a Bernoulli RBM on a .npy /
.npz / MNIST-IDX file, reports the exact pseudo-likelihood, saves the model and writes sample and
filter PNGs."""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from .. import _argtypes
from ..models.schedules import ANNEALED_PCD, learning_rate_for_pass
from .common import CommandError, fit_timed, load_kernels, out_dir
from .options import add_old_spelling, add_threads_option
from .plots import write_rbm_pngs

# Training options of `train rbm`: argparse default None means "not given"; these are the
# values a new model gets, by --recipe. "annealed" (the default) is BernoulliRBM.annealed_pcd's
# (its rate decays linearly to 0 and the visible biases start at the data's log-odds);
# "scikit-learn" is scikit-learn's BernoulliRBM's defaults (a constant rate).
SCIKIT_LEARN_DEFAULTS = dict(n_components=256, learning_rate=0.1, batch_size=10, n_iter=10, cd_k=1,
                             momentum=0.0, weight_decay=0.0, n_chains=None, dtype="float32")
TRAIN_DEFAULTS = dict(SCIKIT_LEARN_DEFAULTS, n_components=500,
                      **{k: ANNEALED_PCD[k] for k in ("learning_rate", "batch_size", "n_iter", "n_chains", "cd_k")})
RECIPE_DEFAULTS = {"annealed": TRAIN_DEFAULTS, "scikit-learn": SCIKIT_LEARN_DEFAULTS}
# What the annealed recipe sets beyond the options above.
ANNEALED_EXTRA = {k: ANNEALED_PCD[k] for k in ("learning_rate_schedule", "final_learning_rate", "visible_bias_init")}
# Options that may change when continuing a saved model.
CONTINUE_OVERRIDABLE = ("learning_rate", "batch_size", "cd_k", "momentum", "weight_decay")


def _load_model(path):
    """The BernoulliRBM saved at ``path`` by ``--save`` (an .npz archive of arrays and a JSON
    settings record, read without unpickling anything; see fastgen.serialization)."""
    from ..serialization import load_rbm

    try:
        return load_rbm(path)
    except ValueError as exc:
        raise CommandError(f"{exc} (--resume)") from None


def memory_bytes():
    """This machine's physical memory in bytes (None when unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _check_rbm_size(n_visible: int, n_hidden: int, n_chains: int, dtype) -> None:
    """Refuse, before anything is allocated, an RBM whose arrays cannot fit in memory: the
    weights (with their momentum buffer) and the persistent chains."""
    itemsize = np.dtype(dtype).itemsize
    weights = 2 * n_hidden * n_visible * itemsize
    chains = n_chains * (n_hidden + n_visible) * itemsize
    memory = memory_bytes()
    if memory is None or weights + chains <= memory:
        return
    if weights > memory:
        raise CommandError(f"--n-components {n_hidden}: {n_visible} visible x {n_hidden} hidden units need "
                           f"{weights:,} bytes of weights, more than this machine's memory ({memory:,} bytes)")
    raise CommandError(f"--n-chains/--batch-size {n_chains}: the persistent chains need {chains:,} bytes, more "
                       f"than this machine's memory ({memory:,} bytes)")


def _continue_training(estimator, X, done: int, n_epochs: int, job) -> None:
    """``n_epochs`` more passes of estimator's own CD/PCD procedure, from its saved parameters,
    chains, momentum buffers and random stream (``fit`` would start over). A learning-rate
    schedule runs over all ``done + n_epochs`` passes: pass ``done + i`` gets the rate the
    schedule gives it for that total. Under torchrun, as one rank of ``job``."""
    from tqdm.auto import tqdm

    from ..models.data_parallel import ShardedContrastiveDivergence

    estimator._check_params()
    X = estimator._validate_X(X, reset=False)
    if not hasattr(estimator, "_generator"):
        estimator._generator = estimator._generator_from(estimator.random_state)
    rbm, trainer = estimator._model(), estimator._trainer()
    batch_size = estimator.batch_size
    if job is not None:
        trainer, batch_size = ShardedContrastiveDivergence(trainer, job), batch_size * job.world_size
    for i in tqdm(range(n_epochs), desc="BernoulliRBM", unit="epoch", disable=job is not None and not job.is_main):
        trainer.learning_rate = learning_rate_for_pass(estimator.learning_rate_schedule, estimator.learning_rate,
                                                       estimator.final_learning_rate, done + i, done + n_epochs)
        trainer.run(rbm, X, batch_size, estimator._generator)
    estimator._store_trainer_state(trainer)


def _schedule_line(estimator, done: int, n_epochs: int) -> str | None:
    """What a resumed run does to a learning-rate schedule (None for a constant rate)."""
    if estimator.learning_rate_schedule == "constant":
        return None
    total = done + n_epochs
    first, last = (learning_rate_for_pass(estimator.learning_rate_schedule, estimator.learning_rate,
                                          estimator.final_learning_rate, i, total) for i in (done, total - 1))
    return (f"the {estimator.learning_rate_schedule} learning-rate schedule now runs over {total} epochs: epochs "
            f"{done + 1} to {total} get rates {first:.4g} down to {last:.4g}")


def _recipe_line(recipe: str, e) -> str:
    """One line saying how the new model ``e`` will be trained."""
    negative = f"{e.n_chains or e.batch_size} persistent chains" if e.persistent else f"CD-{e.cd_k}"
    if recipe == "annealed":
        return (f"recipe: annealed PCD (learning rate {e.learning_rate:g} decayed linearly to "
                f"{e.final_learning_rate:g} over {e.n_iter} epochs, visible biases at the data's log-odds, "
                f"{negative}, batch {e.batch_size}); --recipe scikit-learn for scikit-learn's constant rate")
    return f"recipe: scikit-learn's (constant learning rate {e.learning_rate:g}, {negative}, batch {e.batch_size})"


def run(args) -> int:
    """Run ``fastgen train rbm``; returns the exit code. Under ``torchrun --nproc-per-node N``,
    as N data-parallel ranks (gloo): ``--batch-size`` and ``--n-chains`` per rank, rank 0 alone
    prints, saves and draws (:func:`fastgen.sklearn.data_parallel`)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from ..torch.train.distributed import run_command

        return run_command(_run, args)
    return _run(args, None)


def _run(args, job) -> int:
    from ..sklearn import data_parallel

    with data_parallel(job):
        return _train(args, job)


def _train(args, job) -> int:
    from ..datasets import load_array
    from ..sklearn import BernoulliRBM

    given = {name: getattr(args, name) for name in TRAIN_DEFAULTS if getattr(args, name) is not None}
    # --epochs N: N in all (with --resume: up to N); the deprecated --n-iter N: N (with --resume: N more)
    if args.epochs is not None and args.n_iter is not None:
        raise CommandError("give --epochs (the total) or the deprecated --n-iter (with --resume: epochs to add), "
                           "not both")
    if args.epochs is not None:
        given["n_iter"] = args.epochs
    out = out_dir(args.out)
    if args.save:
        save = Path(args.save)
        if save.is_dir():
            raise CommandError(f"{save}: is a directory (--save needs a file name)")
        try:  # before training, so a bad --save does not throw the trained model away
            save.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"{save.parent}: cannot create the folder for --save ({exc.strerror or exc})") from None

    resume = args.resume
    if resume:
        estimator = _load_model(resume)
        model_dtype = estimator.components_.dtype.name
        for name, value in (("n_components", estimator.n_components), ("dtype", model_dtype)):
            if name in given and given[name] != value:
                raise CommandError(f"--{name.replace('_', '-')} {given[name]} differs from the loaded model's {value}")
        if args.recipe is not None:
            raise CommandError("--recipe sets up a new model; a resumed model keeps the settings it was saved with")
        # --n-chains is per process; the saved model holds every process's chains
        world = 1 if job is None else job.world_size
        saved_chains = estimator.h_samples_.shape[0]
        if "n_chains" in given and estimator.persistent and given["n_chains"] * world != saved_chains:
            per_process = f" ({world} processes x {given['n_chains']})" if world > 1 else ""
            raise CommandError(f"--n-chains {given['n_chains']}{per_process} differs from the loaded model's "
                               f"{saved_chains} persistent chains")
        if args.no_persistent:
            given["persistent"] = False
        if estimator.persistent and not args.no_persistent and "batch_size" in given and estimator.n_chains is None \
                and given["batch_size"] * world != saved_chains and saved_chains % world == 0:
            # the chains stay as many as they were (n_chains defaulted to the old batch size)
            given["n_chains"] = saved_chains // world
        estimator.set_params(**{k: given[k] for k in (*CONTINUE_OVERRIDABLE, "persistent", "n_chains")
                                if k in given})
        try:
            estimator._check_params()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        # the epochs the model has: its n_iter (fit trains n_iter epochs; this command stores the count)
        done = int(estimator.n_iter)
        if args.epochs is not None:
            n_iter = max(0, args.epochs - done)
        else:
            n_iter = given.get("n_iter", 0)  # the deprecated --n-iter: epochs to add; neither: evaluate only
        X = load_array(args.data, binarize=args.binarize, key=args.key, dtype=model_dtype)
        if X.shape[1] != estimator.n_features_in_:
            raise CommandError(f"{args.data}: {X.shape[1]} features, the loaded model has {estimator.n_features_in_}")
        print(f"loaded {resume}: {estimator.n_features_in_} visible x {estimator.n_components} hidden, {model_dtype}, "
              f"{done} epochs done")
    else:
        recipe = args.recipe or "annealed"
        settings = {**RECIPE_DEFAULTS[recipe], **given}
        if args.no_persistent and "n_chains" not in given:
            settings["n_chains"] = None  # CD-k has no chains to keep
        n_iter = settings["n_iter"]
        X = load_array(args.data, binarize=args.binarize, key=args.key, dtype=settings["dtype"])
        _check_rbm_size(X.shape[1], settings["n_components"], settings["n_chains"] or settings["batch_size"],
                        settings["dtype"])
        estimator = BernoulliRBM(
            n_components=settings["n_components"], learning_rate=settings["learning_rate"],
            batch_size=settings["batch_size"], n_iter=n_iter, random_state=args.seed, cd_k=settings["cd_k"],
            persistent=not args.no_persistent, n_chains=settings["n_chains"], momentum=settings["momentum"],
            weight_decay=settings["weight_decay"], dtype=settings["dtype"], progress=True,
            **(ANNEALED_EXTRA if recipe == "annealed" else {}),
        )
        estimator._check_params()
    if X.min() < 0 or X.max() > 1:
        print(f"warning: {args.data} has values outside [0, 1] ({X.min():g} .. {X.max():g}); "
              "a Bernoulli RBM expects binary data or probabilities", file=sys.stderr)

    print(f"data: {args.data}: {X.shape[0]} samples x {X.shape[1]} features", flush=True)
    if job is not None:
        chains = f", {estimator.n_chains or estimator.batch_size} persistent chains each" if estimator.persistent else ""
        print(f"data parallel: {job.world_size} processes x batch {estimator.batch_size} (torchrun, gloo; a step "
              f"takes {job.world_size * estimator.batch_size} rows{chains})")
    main = job is None or job.is_main
    if not main:
        estimator.set_params(progress=False)
    load_kernels()
    if resume:
        if n_iter > 0:
            schedule = _schedule_line(estimator, done, n_iter)
            if schedule:
                print(schedule)
            start = time.perf_counter()
            _continue_training(estimator, X, done, n_iter, job)
            print(f"continued training for {n_iter} epochs in {time.perf_counter() - start:.2f} s "
                  f"(epochs {done + 1} to {done + n_iter})")
        elif args.epochs is not None:
            print(f"nothing to train: the model has {done} epochs, --epochs {args.epochs} asks for {args.epochs} "
                  "in all")
        estimator.set_params(n_iter=done + n_iter)  # the epoch count a later --resume starts from
    else:
        print(_recipe_line(recipe, estimator))
        seconds = fit_timed(estimator, X)
        print(f"trained {n_iter} epochs in {seconds:.2f} s")
    if not main:  # every rank holds the same model: rank 0 reports and writes it
        return 0
    start = time.perf_counter()
    pl = float(estimator.score_samples(X).mean())
    print(f"mean exact pseudo-likelihood: {pl:.3f} (over the {X.shape[0]} training samples, "
          f"{time.perf_counter() - start:.2f} s)")

    if args.save:
        from ..serialization import save_rbm

        estimator.set_params(progress=False)  # the bar is the command's choice, not the model's
        save_rbm(estimator, save)  # atomic: a failure mid-write keeps the previous file whole
        print(f"saved model to {save}")
    side = math.isqrt(X.shape[1])
    if side * side == X.shape[1]:
        for path in write_rbm_pngs(estimator._model(), out, (side, side), args.seed):
            print(f"wrote {path}")
    else:
        print(f"no images written: {X.shape[1]} features is not a square image")
    return 0


def add_parser(train_sub) -> None:
    """``rbm`` among the models of ``fastgen train`` (``train_sub``: its subparsers)."""
    d = TRAIN_DEFAULTS
    rbm = train_sub.add_parser(
        "rbm", help="Bernoulli RBM (PCD by default) on a .npy/.npz/MNIST-IDX file",
        description="Train a Bernoulli RBM on DATA and report the mean exact pseudo-likelihood. DATA is a "
                    ".npy array, a .npz archive (array 'data', else the first) or an MNIST IDX file, "
                    "optionally gzip-compressed; the first axis indexes samples, the rest are flattened. "
                    "Integer data is divided by its type's maximum (uint8: 255). When the feature count is "
                    "a square, samples.png and filters.png are written to --out; --save writes the model. "
                    "With --resume MODEL, training continues from a saved model up to --epochs epochs in all "
                    "(the model records the epochs it has; without --epochs it is only evaluated).")
    rbm.add_argument("data", metavar="DATA")
    rbm.add_argument("--key", help="array to read from a .npz archive")
    rbm.add_argument("--binarize", type=_argtypes.finite_float, metavar="T",
                     help="set scaled values > T to 1, the rest to 0 (0.5 on MNIST: pixel > 127)")
    k = SCIKIT_LEARN_DEFAULTS
    rbm.add_argument("--recipe", choices=sorted(RECIPE_DEFAULTS),
                     help="training recipe of a new model: 'annealed' (the default: BernoulliRBM.annealed_pcd, the "
                          "learning rate decayed linearly to 0, visible biases at the data's log-odds, "
                          f"{d['n_chains']} persistent chains) or 'scikit-learn' (scikit-learn's BernoulliRBM "
                          "defaults, a constant rate); the options below override either")
    rbm.add_argument("--n-components", type=_argtypes.positive_int,
                     help=f"hidden units (default: {d['n_components']}; scikit-learn recipe: {k['n_components']})")
    rbm.add_argument("--learning-rate", type=_argtypes.finite_float,
                     help=f"(default: {d['learning_rate']}; scikit-learn recipe: {k['learning_rate']})")
    rbm.add_argument("--batch-size", type=_argtypes.positive_int,
                     help=f"(default: {d['batch_size']}; scikit-learn recipe: {k['batch_size']})")
    rbm.add_argument("--epochs", type=_argtypes.nonnegative_int,
                     help=f"total epochs (default: {d['n_iter']}; scikit-learn recipe: {k['n_iter']}; with --resume: "
                          "the total to reach, counting the saved model's, a learning-rate schedule stretched to "
                          "it; none: evaluate the model only)")
    rbm.add_argument("--n-iter", type=_argtypes.nonnegative_int, metavar="N", action=_argtypes.DeprecatedAlias,
                     replacement="use --epochs, the total epoch count (with --resume: the total to reach; "
                                 "--n-iter N still trains N more)",
                     help="deprecated: N epochs, with --resume N more; use --epochs (the total)")
    rbm.add_argument("--cd-k", type=_argtypes.positive_int, help=f"Gibbs steps per update (default: {d['cd_k']})")
    rbm.add_argument("--momentum", type=_argtypes.finite_float, help=f"(default: {d['momentum']})")
    rbm.add_argument("--weight-decay", type=_argtypes.finite_float,
                     help=f"L2 penalty on the weights (default: {d['weight_decay']})")
    rbm.add_argument("--n-chains", type=_argtypes.positive_int,
                     help=f"persistent chains (default: {d['n_chains']}; scikit-learn recipe: the batch size)")
    rbm.add_argument("--no-persistent", action="store_true", help="CD-k (chains restart at the data) instead of PCD")
    rbm.add_argument("--dtype", choices=["float32", "float64"], help=f"compute dtype (default: {d['dtype']})")
    rbm.add_argument("--seed", type=_argtypes.seed, default=0,
                     help="random_state and sampling seed (default: %(default)s)")
    rbm.add_argument("--save", metavar="MODEL",
                     help="write the trained BernoulliRBM to this file (an .npz archive of its arrays and settings, "
                          "written atomically; fastgen.serialization.load_rbm reads it)")
    rbm.add_argument("--resume", metavar="MODEL",
                     help="continue a model saved with --save (only arrays and settings are read, never code)")
    add_old_spelling(rbm, "--load", "resume", "use --resume (same meaning)", metavar="MODEL")
    rbm.add_argument("--out", default="fastgen_output", help="folder for the PNGs (default: %(default)s)")
    add_threads_option(rbm)
    rbm.set_defaults(func=run)
