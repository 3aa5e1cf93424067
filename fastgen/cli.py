"""The ``fastgen`` command (also ``python -m fastgen``).

Subcommands:

``fastgen demo [digits]``
    Trains a PCD RBM on scikit-learn's digits with fastgen and with scikit-learn, prints fit
    times and held-out exact pseudo-likelihoods, writes ``samples.png`` and ``filters.png``.
``fastgen demo waveforms``
    Trains an RBM on generated periodic waveforms, repairs fresh ones that lost a stretch of
    samples by clamped Gibbs sampling, prints the error beside linear interpolation's, writes
    ``waveforms.png``.
``fastgen train rbm DATA``
    Trains (or continues) a Bernoulli RBM on a .npy / .npz / MNIST-IDX file.
``fastgen train smiles DATA``
    Trains (or resumes) a character-level LSTM/GRU language model on a MOSES-style SMILES CSV.
``fastgen train gan [DATA]``
    Trains (or resumes) a DCGAN on images (default: scikit-learn's digits at 32x32), writing
    checkpoints and sample grids.
``fastgen train vae [DATA]`` / ``fastgen train ae [DATA]``
    Trains (or resumes) a VAE (MLP or convolutional) or an autoencoder (plain, denoising,
    contractive, greedy stacked, convolutional) on images (default: scikit-learn's digits), with
    checkpoints, a PCA baseline and sample / reconstruction / interpolation PNGs.
``fastgen sample smiles MODEL``
    Samples SMILES strings from a trained model, writes them to a file, prints the MOSES
    metrics (validity, uniqueness, novelty).
``fastgen bench ...``
    Runs the repository's benchmark harness (``python -m bench ...``).

:func:`main` returns the exit code: 0 on success, 2 on a usage or input error (one line on
stderr, ``fastgen: error: ...``, no traceback).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import _argtypes

DEMO_SETTINGS = dict(n_components=256, learning_rate=0.06, batch_size=10)
DEMO_N_TRAIN = 1500
N_IMAGES = 100
SAMPLE_STEPS = 1000
MAX_FILTERS = 256

# `demo waveforms`: CD-1 repairs better than PCD here (chains that restart at the data keep the
# model accurate near the data, which is where repair starts; measured with plain binary code and
# momentum 0.5: RMS error 36 levels with CD-1 against 47 with PCD-1); 256 hidden units, no
# momentum (slightly better than 0.5), 30 epochs over 3000 waveforms (more of either helps little).
WAVE_SETTINGS = dict(n_components=256, learning_rate=0.05, batch_size=20, persistent=False)
WAVE_N_POINTS = 60
WAVE_N_BITS = 8
WAVE_AVERAGED_STEPS = 10     # the repair averages P(v | h) over (at most) the last 10 Gibbs steps
WAVE_PLOTTED_PER_KIND = 2    # test signals drawn in waveforms.png, per kind


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
    from ._native import cpu as _cpu  # noqa: F401


# ---- demo -------------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    from .datasets import load_digits_binary
    from .models.rbm import RBM
    from .sklearn import BernoulliRBM

    if args.epochs < 1:
        raise CommandError(f"--epochs must be >= 1, got {args.epochs}")
    out = _out_dir(args.out)
    X = load_digits_binary()
    train, test = X[:DEMO_N_TRAIN], X[DEMO_N_TRAIN:]
    params = dict(DEMO_SETTINGS, n_iter=args.epochs, random_state=args.seed)
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


# ---- demo waveforms ---------------------------------------------------------------------------
def _repair_waveforms(model, corrupted, known, *, chains: int, steps: int, seed: int, code: str) -> np.ndarray:
    """Fill the unknown units of ``corrupted`` by block-Gibbs sampling with the known ones clamped.

    Each waveform runs ``chains`` chains from its corrupted units for ``steps`` steps
    (Generator(seed)). Over the last (at most) ``WAVE_AVERAGED_STEPS`` steps, the mean-field
    reconstruction P(v | P(h | v_k)) of each chain, with the known units kept, is decoded to its
    expected levels; the repair is the mean of those over the steps and chains (an estimate of
    the posterior mean, which is what minimises the squared error)."""
    from .datasets import decode_waveforms
    from .ops import gibbs
    from .random import Generator

    gen = Generator(seed)
    n = corrupted.shape[0]
    v = np.repeat(corrupted, chains, axis=0)
    clamp = np.repeat(known, chains, axis=0)
    averaged = min(steps, WAVE_AVERAGED_STEPS)
    v = model.gibbs(v, steps - averaged, generator=gen, clamp=clamp)
    total = np.zeros((v.shape[0], v.shape[1] // WAVE_N_BITS))
    for _ in range(averaged):
        v, hidden = gibbs(v, model.weights, model.visible_bias, model.hidden_bias, 1, generator=gen,
                          clamp=clamp, return_hidden=True)
        probs = np.where(clamp, v, model.visible_probs(hidden))
        total += decode_waveforms(probs, n_bits=WAVE_N_BITS, code=code)
    return (total / averaged).reshape(n, chains, -1).mean(axis=1)


def _interpolate_gaps(signals: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """The baseline: each lost stretch replaced by the straight line between its two known
    neighbours."""
    out = np.array(signals, np.float64)
    t = np.arange(out.shape[1])
    for row, gap in zip(out, lost):
        row[gap] = np.interp(t[gap], t[~gap], row[~gap])
    return out


def _rms(estimate, truth, where) -> float:
    return float(np.sqrt(np.mean((estimate - truth)[where] ** 2))) if where.any() else float("nan")


def _compare(error: float, reference: float) -> str:
    """How ``error`` compares with ``reference``: '2.6x below', '1.3x above', 'equal to'."""
    if error == reference:
        return "equal to"
    if error < reference:
        return f"{reference / error:.1f}x below" if error > 0 else "zero, below"
    return f"{error / reference:.1f}x above" if reference > 0 else "above"


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


# Colours of waveforms.png (RGB).
_ORIGINAL, _CORRUPTED, _LINEAR, _REPAIRED = (0, 0, 0), (214, 39, 40), (255, 160, 40), (31, 90, 200)


def _write_waveform_png(path: Path, rows, full_scale: int) -> Path:
    """Line plots, one panel a test signal: the original (black), the corrupted input (red,
    dropping to 0 on the lost stretch, which is shaded), linear interpolation (orange) and the
    RBM repair (blue) across the lost stretch. ``rows``: (title, original, corrupted, linear,
    repaired, lost mask) per panel."""
    from PIL import Image, ImageDraw

    width, left, right, panel_h, plot_h, legend_h = 760, 44, 16, 150, 112, 34
    plot_w = width - left - right
    image = Image.new("RGB", (width, legend_h + panel_h * len(rows) + 6), "white")
    draw = ImageDraw.Draw(image)
    font, small = _font(13), _font(11)

    x = left
    for label, colour, line_width in (("original", _ORIGINAL, 2), ("corrupted input", _CORRUPTED, 1),
                                      ("linear interpolation", _LINEAR, 2), ("RBM repair", _REPAIRED, 2)):
        draw.line([(x, 17), (x + 26, 17)], fill=colour, width=line_width + 1)
        draw.text((x + 32, 9), label, fill=(0, 0, 0), font=font)
        x += 32 + int(draw.textlength(label, font=font)) + 24
    draw.rectangle([x, 10, x + 26, 24], fill=(228, 228, 228))
    draw.text((x + 32, 9), "lost stretch", fill=(0, 0, 0), font=font)

    for index, (title, original, corrupted, linear, repaired, lost) in enumerate(rows):
        top = legend_h + index * panel_h + 22
        n_points = original.shape[0]

        def xy(t, level):
            return (left + t * plot_w / (n_points - 1), top + (1.0 - level / full_scale) * plot_h)

        draw.text((left, top - 19), title, fill=(0, 0, 0), font=font)
        gap = np.flatnonzero(lost)
        x0, x1 = xy(gap[0] - 0.5, 0)[0], xy(gap[-1] + 0.5, 0)[0]
        draw.rectangle([x0, top, x1, top + plot_h], fill=(228, 228, 228))
        draw.rectangle([left, top, left + plot_w, top + plot_h], outline=(170, 170, 170))
        for level in (0, full_scale // 2 + 1, full_scale):
            y = xy(0, level)[1]
            draw.text((left - 6, y), str(level), fill=(90, 90, 90), font=small, anchor="rm")
        span = slice(max(gap[0] - 1, 0), min(gap[-1] + 2, n_points))   # the gap and its known ends
        t = np.arange(n_points)
        draw.line([xy(i, c) for i, c in zip(t, corrupted)], fill=_CORRUPTED, width=1)
        draw.line([xy(i, o) for i, o in zip(t, original)], fill=_ORIGINAL, width=2)
        draw.line([xy(i, s) for i, s in zip(t[span], linear[span])], fill=_LINEAR, width=2)
        draw.line([xy(i, s) for i, s in zip(t[span], repaired[span])], fill=_REPAIRED, width=3)
    from .serialization import atomic_write

    return atomic_write(path, lambda fh: image.save(fh, format="PNG"))  # never a half-written PNG


def cmd_demo_waveforms(args) -> int:
    from .datasets import corrupt_waveforms, decode_waveforms, make_waveforms
    from .sklearn import BernoulliRBM

    if not 1 <= args.lost <= WAVE_N_POINTS - 2:
        raise CommandError(f"--lost must be between 1 and {WAVE_N_POINTS - 2} (the lost stretch lies inside the "
                           f"{WAVE_N_POINTS}-sample signal, with a known sample on each side), got {args.lost}")
    out = _out_dir(args.out)
    full_scale = 2 ** WAVE_N_BITS - 1
    n_visible = WAVE_N_POINTS * WAVE_N_BITS
    # Separate streams: training set (seed), test set (seed + 1), lost stretches (seed + 2).
    train = make_waveforms(args.n_train, n_points=WAVE_N_POINTS, n_bits=WAVE_N_BITS, code=args.code, seed=args.seed)
    test, signals, kinds = make_waveforms(args.n_test, n_points=WAVE_N_POINTS, n_bits=WAVE_N_BITS, code=args.code,
                                          seed=args.seed + 1, return_signals=True)
    corrupted, known = corrupt_waveforms(test, args.lost, n_bits=WAVE_N_BITS, seed=args.seed + 2)
    lost = ~known[:, ::WAVE_N_BITS]
    params = dict(WAVE_SETTINGS, n_iter=args.epochs, random_state=args.seed)
    code_name = {"gray": "Gray code", "binary": "plain binary"}[args.code]
    print(f"CD-1 RBM, {n_visible} visible ({WAVE_N_POINTS} samples x {WAVE_N_BITS} bits, {code_name}, "
          f"MSB first) x {params['n_components']} hidden units, on {args.n_train} generated waveforms "
          f"(sawtooth, sine, square; random amplitude, period, centre and phase)")
    print(f"settings: learning_rate={params['learning_rate']}, batch_size={params['batch_size']}, "
          f"n_iter={params['n_iter']}, random_state={args.seed}, float64", flush=True)
    _warm_up()
    estimator = BernoulliRBM(progress=True, **params)
    print(f"trained in {_fit_timed(estimator, train):.2f} s")

    print(f"\nrepairing {args.n_test} fresh waveforms, each with a stretch of {args.lost} of its {WAVE_N_POINTS} "
          f"samples lost (set to 0): {args.chains} Gibbs chains x {args.steps} steps per waveform with the known "
          f"bits clamped, expected level under P(v | h) averaged over the last "
          f"{min(args.steps, WAVE_AVERAGED_STEPS)} steps and the chains", flush=True)
    start = time.perf_counter()
    repaired = _repair_waveforms(estimator._model(), corrupted, known, chains=args.chains, steps=args.steps,
                                 seed=args.seed, code=args.code)
    seconds = time.perf_counter() - start
    # Known samples are exact in the repair (their bits are clamped); only the lost ones differ.
    repaired = np.where(lost, repaired, signals)
    corrupted_signals = decode_waveforms(corrupted, n_bits=WAVE_N_BITS, code=args.code)
    linear = _interpolate_gaps(signals, lost)
    print(f"repaired in {seconds:.2f} s")

    present = [kind for kind in ("sawtooth", "sine", "square") if (kinds == kind).any()]
    columns = [("all", np.ones(len(kinds), bool))] + [(kind, kinds == kind) for kind in present]
    print(f"\nRMS error over the lost samples, in levels 0..{full_scale} (lower is better)")
    print(f"{'':<22}" + "".join(f"{name:>10}" for name, _ in columns))
    table = {}
    for name, estimate in (("corrupted input", corrupted_signals), ("linear interpolation", linear),
                           ("RBM repair", repaired)):
        table[name] = [_rms(estimate, signals, lost & rows[:, None]) for _, rows in columns]
        print(f"{name:<22}" + "".join(f"{value:>10.1f}" for value in table[name]))
    rbm_error = table["RBM repair"][0]
    print(f"\nThe RBM repair's error is {_compare(rbm_error, table['corrupted input'][0])} the corrupted input's "
          f"and {_compare(rbm_error, table['linear interpolation'][0])} linear interpolation's.")

    rows = []
    for kind in present:
        for i in np.flatnonzero(kinds == kind)[:WAVE_PLOTTED_PER_KIND]:
            errors = [_rms(e[i], signals[i], lost[i]) for e in (corrupted_signals, linear, repaired)]
            title = (f"test waveform {i} ({kind}): RMS error on the lost stretch: corrupted {errors[0]:.0f}, "
                     f"linear {errors[1]:.0f}, RBM {errors[2]:.0f}")
            rows.append((title, signals[i], corrupted_signals[i], linear[i], repaired[i], lost[i]))
    print(f"wrote {_write_waveform_png(out / 'waveforms.png', rows, full_scale)}")
    return 0


# ---- train rbm --------------------------------------------------------------------------------
# Training options of `train rbm`: argparse default None means "not given"; these are the
# values a new model gets.
_TRAIN_DEFAULTS = dict(n_components=256, learning_rate=0.1, batch_size=10, n_iter=10, cd_k=1,
                       momentum=0.0, weight_decay=0.0, n_chains=None, dtype="float32")
# Options that may change when continuing a saved model.
_CONTINUE_OVERRIDABLE = ("learning_rate", "batch_size", "cd_k", "momentum", "weight_decay")


def _load_model(path):
    """The BernoulliRBM saved at ``path`` by ``--save`` (an .npz archive of arrays and a JSON
    settings record, read without unpickling anything; see fastgen.serialization)."""
    from .serialization import load_rbm

    try:
        return load_rbm(path)
    except ValueError as exc:
        raise CommandError(f"{exc} (--resume)") from None


def _memory_bytes():
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
    memory = _memory_bytes()
    if memory is None or weights + chains <= memory:
        return
    if weights > memory:
        raise CommandError(f"--n-components {n_hidden}: {n_visible} visible x {n_hidden} hidden units need "
                           f"{weights:,} bytes of weights, more than this machine's memory ({memory:,} bytes)")
    raise CommandError(f"--n-chains/--batch-size {n_chains}: the persistent chains need {chains:,} bytes, more "
                       f"than this machine's memory ({memory:,} bytes)")


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
    # --epochs N: N in all (with --resume: up to N); the deprecated --n-iter N: N (with --resume: N more)
    if args.epochs is not None and args.n_iter is not None:
        raise CommandError("give --epochs (the total) or the deprecated --n-iter (with --resume: epochs to add), "
                           "not both")
    if args.epochs is not None:
        given["n_iter"] = args.epochs
    out = _out_dir(args.out)
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
        if "n_chains" in given and estimator.persistent and given["n_chains"] != estimator.h_samples_.shape[0]:
            raise CommandError(f"--n-chains {given['n_chains']} differs from the loaded model's "
                               f"{estimator.h_samples_.shape[0]} persistent chains")
        if args.no_persistent:
            given["persistent"] = False
        if estimator.persistent and not args.no_persistent and "batch_size" in given and estimator.n_chains is None \
                and given["batch_size"] != estimator.h_samples_.shape[0]:
            # the chains stay as many as they were (n_chains defaulted to the old batch size)
            given["n_chains"] = estimator.h_samples_.shape[0]
        estimator.set_params(**{k: given[k] for k in (*_CONTINUE_OVERRIDABLE, "persistent", "n_chains")
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
        settings = {**_TRAIN_DEFAULTS, **given}
        n_iter = settings["n_iter"]
        X = load_array(args.data, binarize=args.binarize, key=args.key, dtype=settings["dtype"])
        _check_rbm_size(X.shape[1], settings["n_components"], settings["n_chains"] or settings["batch_size"],
                        settings["dtype"])
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
    if resume:
        if n_iter > 0:
            start = time.perf_counter()
            _continue_training(estimator, X, n_iter)
            print(f"continued training for {n_iter} epochs in {time.perf_counter() - start:.2f} s "
                  f"(epochs {done + 1} to {done + n_iter})")
        elif args.epochs is not None:
            print(f"nothing to train: the model has {done} epochs, --epochs {args.epochs} asks for {args.epochs} "
                  "in all")
        estimator.set_params(n_iter=done + n_iter)  # the epoch count a later --resume starts from
    else:
        seconds = _fit_timed(estimator, X)
        print(f"trained {n_iter} epochs in {seconds:.2f} s")
    start = time.perf_counter()
    pl = float(estimator.score_samples(X).mean())
    print(f"mean exact pseudo-likelihood: {pl:.3f} (over the {X.shape[0]} training samples, "
          f"{time.perf_counter() - start:.2f} s)")

    if args.save:
        from .serialization import save_rbm

        estimator.set_params(progress=False)  # the bar is the command's choice, not the model's
        save_rbm(estimator, save)  # atomic: a failure mid-write keeps the previous file whole
        print(f"saved model to {save}")
    side = math.isqrt(X.shape[1])
    if side * side == X.shape[1]:
        for path in _write_pngs(estimator._model(), out, (side, side), args.seed):
            print(f"wrote {path}")
    else:
        print(f"no images written: {X.shape[1]} features is not a square image")
    return 0


# ---- SMILES language model --------------------------------------------------------------------
# The few-minute recipe (README, "SMILES"): 7 epochs of batches of similar length, Adam peaking at
# 4e-3 after 100 warm-up batches and decaying on a cosine to 0, no dropout (the model underfits
# in this budget).
SMILES_DEFAULTS = dict(epochs=7, hidden=256, layers=2, embedding=64, dropout=0.0, cell="lstm", batch_size=64,
                       lr=4e-3, clip=1.0, val_fraction=0.05, lr_schedule="cosine", warmup=100)


def _import_torch(command: str = "train smiles"):
    try:
        import torch
    except ImportError:
        raise CommandError(f"'fastgen {command}' needs PyTorch: pip install 'fastgen[torch]'") from None
    return torch


def _set_threads(torch, threads) -> None:
    if threads is not None:
        torch.set_num_threads(threads)


def _split_smiles(strings, val_fraction: float, seed: int):
    """(train, val): a seeded random val_fraction of the strings held out."""
    n_val = int(round(len(strings) * val_fraction))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if n_val >= len(strings):
        raise CommandError(f"--val-fraction {val_fraction} leaves no training strings out of {len(strings)}")
    order = np.random.default_rng(seed).permutation(len(strings))
    val = set(order[:n_val].tolist())
    return [s for i, s in enumerate(strings) if i not in val], [s for i, s in enumerate(strings) if i in val]


def _smiles_checkpoint_path(args, resumed) -> Path:
    """The checkpoint file: --save, else the resumed file, else OUT/smiles_lm.pt. ``--out FILE``
    (ending in .pt, or an existing file) is the old spelling of ``--save FILE``."""
    if args.out and (args.out.endswith(".pt") or Path(args.out).is_file()):
        if args.save:
            raise CommandError(f"--out {args.out} names the checkpoint file, like --save {args.save}: give --save "
                               "only (--out is the output folder)")
        _argtypes.note_deprecated(args, "--out FILE", "use --save FILE for the checkpoint (--out is the output "
                                        "folder)")
        return Path(args.out)
    if args.save:
        return Path(args.save)
    if resumed is not None:
        return resumed
    return _out_dir(args.out or "fastgen_output") / "smiles_lm.pt"


def cmd_train_smiles(args) -> int:
    torch = _import_torch()
    from .smiles import Vocabulary, load_smiles_csv
    from .torch.smiles import SmilesLM, SmilesTrainer, TrainConfig, load_checkpoint, trainer_from_checkpoint

    _set_threads(torch, args.threads)
    from .serialization import fingerprint

    if args.resume:
        state = load_checkpoint(args.resume)  # first: a bad checkpoint is reported before the data is read
    strings = load_smiles_csv(args.data)
    data_hash = fingerprint("\n".join(strings))
    if args.resume:
        extra = state.get("extra", {})
        recorded = extra.get("data_fingerprint")
        if recorded is not None and recorded != data_hash:
            raise CommandError(f"{args.data}: not the data {args.resume} was trained on ({extra.get('data')}); "
                               "resume on the same data, or start a new run")
        val_fraction, seed = extra.get("val_fraction", 0.0), state["train_config"].get("seed", 0)
        if not isinstance(val_fraction, float) or not 0.0 <= val_fraction < 1.0:
            raise CommandError(f"{args.resume}: not a usable SMILES checkpoint (val_fraction {val_fraction!r})")
        train, val = _split_smiles(strings, val_fraction, seed)
        trainer = trainer_from_checkpoint(state, train, val)
        # the run's target: stored by this command; older checkpoints: the cosine schedule's length,
        # which the first run set to its --epochs
        target = extra.get("target_epochs", trainer.config.schedule_epochs)
        if args.epochs is not None:
            epochs = args.epochs
        elif isinstance(target, int) and not isinstance(target, bool):
            epochs = target
        else:
            raise CommandError(f"{args.resume}: the checkpoint does not record its run's epoch count; give --epochs "
                               "(the total to reach)")
        out = _smiles_checkpoint_path(args, Path(args.resume))
        c = trainer.config
        if c.lr_schedule == "cosine" and c.schedule_epochs is not None and epochs > c.schedule_epochs:
            print(f"the cosine learning-rate schedule ended at epoch {c.schedule_epochs}; it now runs to epoch "
                  f"{epochs} (the learning rate goes back up)")
            c.schedule_epochs = epochs
        print(f"resumed {args.resume}: {trainer.epoch} epochs done"
              + (f" and {trainer.step} batches of the next" if trainer.step else "") + f"; training to epoch {epochs}")
    else:
        d = SMILES_DEFAULTS
        val_fraction = d["val_fraction"] if args.val_fraction is None else args.val_fraction
        if not 0.0 <= val_fraction < 1.0:
            raise CommandError(f"--val-fraction must be in [0, 1), got {val_fraction}")
        train, val = _split_smiles(strings, val_fraction, args.seed)
        vocab = Vocabulary.from_strings(strings)  # all of them: a held-out string may hold a rare character
        torch.manual_seed(args.seed)  # the initial weights
        try:
            model = SmilesLM(len(vocab), embedding_dim=args.embedding or d["embedding"], hidden_size=args.hidden or
                             d["hidden"], num_layers=args.layers or d["layers"],
                             dropout=d["dropout"] if args.dropout is None else args.dropout,
                             cell=args.cell or d["cell"])
        except (MemoryError, RuntimeError, OverflowError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise CommandError(f"cannot build the model with these sizes (--hidden, --layers, --embedding): "
                               f"{first}") from None
        epochs = args.epochs if args.epochs is not None else d["epochs"]
        config = TrainConfig(learning_rate=args.lr or d["lr"], batch_size=args.batch_size or d["batch_size"],
                             clip_norm=d["clip"] if args.clip is None else args.clip, seed=args.seed,
                             lr_schedule=args.lr_schedule or d["lr_schedule"],
                             warmup_steps=d["warmup"] if args.warmup is None else args.warmup,
                             schedule_epochs=epochs, bucket_by_length=not args.no_bucketing)
        trainer = SmilesTrainer(model, vocab, train, val, config)
        out = _smiles_checkpoint_path(args, None)
        extra = {}
    if out.is_dir():
        raise CommandError(f"{out}: is a directory (the checkpoint needs a file name)")
    extra = {**extra, "data": str(Path(args.data).resolve()), "val_fraction": val_fraction,
             "data_fingerprint": data_hash, "target_epochs": int(epochs)}
    c, m = trainer.config, trainer.model.config
    print(f"data: {args.data}: {len(train)} training / {len(val)} validation strings, {len(trainer.vocab)} tokens")
    print(f"model: {m.num_layers}-layer {m.cell.upper()}, hidden {m.hidden_size}, embedding {m.embedding_dim}, "
          f"dropout {m.dropout}; Adam lr {c.learning_rate} ({c.lr_schedule}, {c.warmup_steps} warm-up batches), "
          f"batch {c.batch_size}{' by length' if c.bucket_by_length else ''}, clip {c.clip_norm}, "
          f"seed {c.seed}; {torch.get_num_threads()} threads", flush=True)
    start = time.perf_counter()
    first_epoch = trainer.epoch
    history = trainer.train(epochs, checkpoint=out, checkpoint_every=args.checkpoint_every, extra=extra)
    seconds = time.perf_counter() - start
    trained = trainer.epoch > first_epoch
    if not trained and not args.resume:
        trainer.save(out, extra)  # --epochs 0: the untrained model
    for h in history:
        val_text = "-" if h["val_loss"] is None else f"{h['val_loss']:.4f}"
        print(f"epoch {h['epoch']}: train loss {h['train_loss']:.4f}, validation loss {val_text} (nats/token), "
              f"{h['seconds']:.0f} s")
    if trained:
        print(f"trained epochs {first_epoch + 1} to {trainer.epoch} in {seconds:.1f} s; saved {out}")
    else:
        print(f"nothing to train: the model has {trainer.epoch} of {epochs} epochs done"
              + (" (the run's target is reached; --epochs N with a larger N trains more)" if args.resume
                 else f"; saved {out}"))
    return 0


def cmd_train_gan(args) -> int:
    _import_torch("train gan")
    from .torch.gan.cli import train_from_cli

    return train_from_cli(args)


def cmd_train_vae(args) -> int:
    _import_torch("train vae")
    from .torch.training import train_from_cli

    return train_from_cli(args, "vae")


def cmd_train_ae(args) -> int:
    _import_torch("train ae")
    from .torch.training import train_from_cli

    return train_from_cli(args, "ae")


def cmd_sample_smiles(args) -> int:
    torch = _import_torch("sample smiles")
    from .random import Generator
    from .smiles import evaluate_samples, format_metrics, load_smiles_csv, save_smiles
    from .torch.smiles import generate, load_checkpoint, model_from_checkpoint

    _set_threads(torch, args.threads)
    state = load_checkpoint(args.model)
    model, vocab = model_from_checkpoint(state)
    train_path = args.train or state.get("extra", {}).get("data")
    if args.train and Path(args.train).is_dir():
        raise CommandError(f"{args.train}: is a directory, expected a SMILES CSV file (--train)")
    training = None
    if train_path and Path(train_path).is_file():
        training = load_smiles_csv(train_path)
    elif args.train:
        raise CommandError(f"{args.train}: no such file (--train)")
    start = time.perf_counter()
    strings = generate(model, vocab, args.n, max_length=args.max_length, temperature=args.temperature,
                       top_k=args.top_k, generator=Generator(args.seed), prefix=args.prefix)
    seconds = time.perf_counter() - start
    path = save_smiles(strings, args.out)
    print(f"sampled {len(strings)} strings in {seconds:.1f} s (temperature {args.temperature}, top_k "
          f"{args.top_k or 'all'}, seed {args.seed}); wrote {path}")
    metrics = evaluate_samples(strings, training)
    print(format_metrics(metrics))
    if training is None:
        print("novelty unavailable: no training data (--train DATA)")
    return 0


# ---- bench ------------------------------------------------------------------------------------
def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _bench_checkouts() -> list[Path]:
    """Where to look for the repository's bench/: the checkout fastgen was imported from
    (editable installs), then the current directory (a plain ``pip install .`` puts fastgen in
    site-packages, without bench/, and the command is run from the repository root)."""
    return [_repo_root(), Path.cwd()]


def _find_bench():
    """The repository's ``bench`` package: from the first of :func:`_bench_checkouts` that is a
    fastgen checkout, else whatever ``import bench`` finds. fastgen itself is already imported
    (the installed package), so adding a checkout to sys.path cannot shadow it."""
    for root in _bench_checkouts():
        if (root / "bench" / "__main__.py").is_file() and (root / "fastgen").is_dir():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            break
    try:
        spec = importlib.util.find_spec("bench")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise CommandError(
            "the benchmark harness is not importable: 'fastgen bench' runs the bench/ package of "
            "fastgen's source repository; run it from the repository root (after 'pip install .' or "
            "'pip install -e .')"
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
# `train vae` / `train ae`: a new run's epochs (fastgen.torch.training.DEFAULT_EPOCHS, which a test keeps equal)
AUTOENCODER_EPOCHS = 30


def _add_autoencoder_arguments(parser, family: str) -> None:
    """The options of ``fastgen train vae`` (family "vae") / ``fastgen train ae`` ("ae"), defined
    without importing torch, so ``--help`` lists them where torch is missing (running the command
    then says that it needs torch)."""
    parser.add_argument("data", metavar="DATA", nargs="?", default=None,
                        help="a .npy/.npz/MNIST-IDX file (values scaled to [0, 1]); default: scikit-learn's digits, "
                             "or with --resume the checkpoint's data")
    parser.add_argument("--key", help="array to read from a .npz archive")
    parser.add_argument("--binarize", type=_argtypes.finite_float, metavar="T", help="set values > T to 1, the rest to 0")
    if family == "ae":
        parser.add_argument("--kind", choices=["ae", "dae", "cae", "stacked", "conv", "conv-pool"], default="ae",
                            help="MLP, denoising, contractive, greedy stacked, strided-convolution or "
                                 "pooling/unpooling convolutional autoencoder (default: %(default)s)")
        parser.add_argument("--noise-level", type=_argtypes.finite_float, default=0.25,
                            help="dae: masking probability, or the Gaussian noise's sd (default: %(default)s)")
        parser.add_argument("--contraction", type=_argtypes.finite_float, default=0.1,
                            help="cae: weight of the Jacobian penalty (default: %(default)s)")
        parser.add_argument("--pretrain-epochs", type=_argtypes.nonnegative_int, default=5,
                            help="stacked: epochs per layer of greedy pretraining (default: %(default)s)")
    else:
        parser.add_argument("--conv", action="store_true", help="the convolutional VAE (square images)")
    parser.add_argument("--hidden", type=_argtypes.positive_int, nargs="+", default=[256] if family == "ae" else [400],
                        help="MLP hidden layer sizes (default: %(default)s)")
    parser.add_argument("--channels", type=_argtypes.positive_int, nargs="+", default=[32, 64],
                        help="convolutional models: feature maps per stride-2 stage (default: %(default)s)")
    parser.add_argument("--latent", type=_argtypes.positive_int, default=32 if family == "ae" else 20,
                        help="code / latent size (default: %(default)s)")
    parser.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default="bernoulli",
                        help="decoder distribution (default: %(default)s)")
    parser.add_argument("--epochs", type=_argtypes.nonnegative_int, default=None,
                        help=f"total epochs (default: {AUTOENCODER_EPOCHS}); with --resume: the total to reach, "
                             "counting the checkpoint's (default: the target of the run it belongs to)")
    parser.add_argument("--batch-size", type=_argtypes.positive_int, default=128, help="(default: %(default)s)")
    parser.add_argument("--lr", type=_argtypes.positive_float, default=None,
                        help="Adam learning rate (default: 1e-3, 1e-2 for --kind cae; with --resume: the checkpoint's)")
    parser.add_argument("--seed", type=_argtypes.seed, default=None,
                        help="train/test split, initial weights, batch order (default: 0; with --resume: the "
                             "checkpoint's)")
    parser.add_argument("--threads", type=_argtypes.threads, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--save", metavar="CKPT", help="write a checkpoint after every epoch and at the end "
                                                       "(atomically)")
    parser.add_argument("--resume", metavar="CKPT", help="continue a checkpoint written with --save (only tensors "
                                                         "and settings are read from it, never code)")
    _add_old_spelling(parser, "--load", "resume", "use --resume, with which --epochs is the total to reach "
                                                  "(with --load, --epochs N still trains N more)", metavar="CKPT")
    parser.add_argument("--out", default="fastgen_output", help="folder for the PNGs (default: %(default)s)")


def _add_old_spelling(parser, option: str, dest: str, replacement: str, type=None, metavar=None) -> None:
    """``option``, an old spelling of the option stored in ``dest``: still accepted, with a
    one-line note on stderr saying what replaced it (see _argtypes.DeprecatedAlias)."""
    parser.add_argument(option, dest=dest, action=_argtypes.DeprecatedAlias, replacement=replacement, type=type,
                        metavar=metavar, default=argparse.SUPPRESS)


def _add_threads_option(parser) -> None:
    """``--threads N`` of the commands that run fastgen's compiled (OpenMP) loops and BLAS."""
    parser.add_argument("--threads", type=_argtypes.threads, metavar="N",
                        help="limit fastgen's OpenMP threads and the BLAS threads to N (default: all cores)")
    parser.set_defaults(limit_threads=True)


@contextlib.contextmanager
def _thread_limit(threads):
    """Run the body with at most ``threads`` OpenMP threads (fastgen's compiled loops) and BLAS
    threads (SciPy's and NumPy's OpenBLAS), through threadpoolctl; ``None``: no limit."""
    if threads is None:
        yield
        return
    # threadpoolctl limits the libraries loaded when the limit starts: load _C (and its libgomp)
    # and SciPy's BLAS first
    _warm_up()
    from threadpoolctl import threadpool_limits

    from ._native.cpu import C

    with threadpool_limits(limits=threads):
        print(f"threads: {C.max_threads()} OpenMP (fastgen's compiled loops), BLAS limited to {threads}", flush=True)
        yield


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="fastgen", description="Compiled kernels for classic generative models (RBMs: CD-k, PCD).")
    parser.add_argument("--version", action="version", version=f"fastgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,train,sample,bench}")

    demo = sub.add_parser(
        "demo", help="run a demo: digits (the default: an RBM on scikit-learn's digits beside scikit-learn's own) "
                     "or waveforms (repair signals that lost a stretch of samples)",
        description="Run one of the demos; 'fastgen demo' with no demo named runs 'fastgen demo digits'. "
                    "'fastgen demo NAME --help' lists a demo's options.")
    demos = demo.add_subparsers(dest="demo", required=True, metavar="{digits,waveforms}")
    digits = demos.add_parser(
        "digits", help="train an RBM on scikit-learn's digits beside scikit-learn's own, write sample/filter PNGs "
                       "(the default)",
        description="Train a PCD-1 RBM (256 hidden units, learning rate 0.06, batch 10) on the first 1500 of "
                    "scikit-learn's digits with fastgen and with scikit-learn, compare fit times and exact "
                    "held-out pseudo-likelihoods, and write samples.png and filters.png. No network needed.")
    digits.add_argument("--out", default="fastgen_output", help="folder for samples.png and filters.png "
                                                                "(default: %(default)s)")
    digits.add_argument("--epochs", type=_argtypes.positive_int, default=20, help="epochs (default: %(default)s)")
    _add_old_spelling(digits, "--n-iter", "epochs", "use --epochs (same meaning)", _argtypes.positive_int)
    digits.add_argument("--seed", type=_argtypes.seed, default=0, help="random_state of both models and sampling seed "
                                                            "(default: %(default)s)")
    digits.add_argument("--no-compare", action="store_true", help="skip scikit-learn")
    _add_threads_option(digits)
    digits.set_defaults(func=cmd_demo)

    w = WAVE_SETTINGS
    waves = demos.add_parser(
        "waveforms", help="repair periodic signals that lost a stretch of samples, with an RBM",
        description=f"Generate periodic waveforms (sawtooth, sine, square with random amplitude, period, centre "
                    f"and phase; {WAVE_N_POINTS} samples of {WAVE_N_BITS} bits, {WAVE_N_POINTS * WAVE_N_BITS} "
                    f"binary units), train a CD-1 RBM ({w['n_components']} hidden units, learning rate "
                    f"{w['learning_rate']}, batch {w['batch_size']}) on them, lose a stretch of samples in fresh "
                    "waveforms, repair them by Gibbs sampling with the known bits clamped, print the RMS error "
                    "on the lost samples beside the corrupted input's and linear interpolation's, and write "
                    "waveforms.png. No network needed.")
    waves.add_argument("--out", default="fastgen_output", help="folder for waveforms.png (default: %(default)s)")
    waves.add_argument("--epochs", type=_argtypes.positive_int, default=30, help="epochs (default: %(default)s)")
    _add_old_spelling(waves, "--n-iter", "epochs", "use --epochs (same meaning)", _argtypes.positive_int)
    waves.add_argument("--n-train", type=_argtypes.positive_int, default=3000, help="training waveforms (default: %(default)s)")
    waves.add_argument("--n-test", type=_argtypes.positive_int, default=300, help="waveforms to repair (default: %(default)s)")
    waves.add_argument("--lost", type=int, default=12, metavar="N",
                       help=f"length of the lost stretch in samples, 1 to {WAVE_N_POINTS - 2} (default: %(default)s)")
    waves.add_argument("--chains", type=_argtypes.positive_int, default=10,
                       help="Gibbs chains per repaired waveform (default: %(default)s)")
    waves.add_argument("--steps", type=_argtypes.positive_int, default=20,
                       help="Gibbs steps per chain (default: %(default)s)")
    waves.add_argument("--code", choices=["gray", "binary"], default="gray",
                       help="bit code of each sample (default: %(default)s)")
    waves.add_argument("--seed", type=_argtypes.seed, default=0,
                       help="seeds the data (seed, seed+1, seed+2), the model and the sampling (default: %(default)s)")
    _add_threads_option(waves)
    waves.set_defaults(func=cmd_demo_waveforms)

    train = sub.add_parser("train", help="train a model on a data file")
    train_sub = train.add_subparsers(dest="model", required=True, metavar="{rbm,smiles,gan,vae,ae}")
    d = _TRAIN_DEFAULTS
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
    rbm.add_argument("--n-components", type=_argtypes.positive_int, help=f"hidden units (default: {d['n_components']})")
    rbm.add_argument("--learning-rate", type=_argtypes.finite_float, help=f"(default: {d['learning_rate']})")
    rbm.add_argument("--batch-size", type=_argtypes.positive_int, help=f"(default: {d['batch_size']})")
    rbm.add_argument("--epochs", type=_argtypes.nonnegative_int,
                     help=f"total epochs (default: {d['n_iter']}; with --resume: the total to reach, counting the "
                          "saved model's; none: evaluate the model only)")
    rbm.add_argument("--n-iter", type=_argtypes.nonnegative_int, metavar="N", action=_argtypes.DeprecatedAlias,
                     replacement="use --epochs, the total epoch count (with --resume: the total to reach; "
                                 "--n-iter N still trains N more)",
                     help="deprecated: N epochs, with --resume N more; use --epochs (the total)")
    rbm.add_argument("--cd-k", type=_argtypes.positive_int, help=f"Gibbs steps per update (default: {d['cd_k']})")
    rbm.add_argument("--momentum", type=_argtypes.finite_float, help=f"(default: {d['momentum']})")
    rbm.add_argument("--weight-decay", type=_argtypes.finite_float, help=f"L2 penalty on the weights (default: {d['weight_decay']})")
    rbm.add_argument("--n-chains", type=_argtypes.positive_int, help="persistent chains (default: the batch size)")
    rbm.add_argument("--no-persistent", action="store_true", help="CD-k (chains restart at the data) instead of PCD")
    rbm.add_argument("--dtype", choices=["float32", "float64"], help=f"compute dtype (default: {d['dtype']})")
    rbm.add_argument("--seed", type=_argtypes.seed, default=0, help="random_state and sampling seed (default: %(default)s)")
    rbm.add_argument("--save", metavar="MODEL",
                     help="write the trained BernoulliRBM to this file (an .npz archive of its arrays and settings, "
                          "written atomically; fastgen.serialization.load_rbm reads it)")
    rbm.add_argument("--resume", metavar="MODEL",
                     help="continue a model saved with --save (only arrays and settings are read, never code)")
    _add_old_spelling(rbm, "--load", "resume", "use --resume (same meaning)", metavar="MODEL")
    rbm.add_argument("--out", default="fastgen_output", help="folder for the PNGs (default: %(default)s)")
    _add_threads_option(rbm)
    rbm.set_defaults(func=cmd_train_rbm)

    sd = SMILES_DEFAULTS
    sm = train_sub.add_parser(
        "smiles", help="character-level LSTM/GRU language model on a SMILES CSV file (needs torch)",
        description="Train a character-level recurrent language model on the SMILES strings of DATA (a CSV "
                    "file with a header line 'SMILES', optionally gzipped, like the MOSES splits), holding out "
                    "a random --val-fraction for the validation loss. Checkpoints (model, optimizer, data "
                    "order, RNG) go to --save after every epoch; --resume continues one exactly.")
    sm.add_argument("data", metavar="DATA")
    sm.add_argument("--epochs", type=_argtypes.nonnegative_int,
                    help=f"total epochs (default: {sd['epochs']}; with --resume: the target of the checkpoint's run)")
    sm.add_argument("--hidden", type=_argtypes.positive_int, help=f"hidden units per layer (default: {sd['hidden']})")
    sm.add_argument("--layers", type=_argtypes.positive_int, help=f"recurrent layers (default: {sd['layers']})")
    sm.add_argument("--embedding", type=_argtypes.positive_int, help=f"embedding size (default: {sd['embedding']})")
    sm.add_argument("--dropout", type=_argtypes.finite_float, help=f"(default: {sd['dropout']})")
    sm.add_argument("--cell", choices=["lstm", "gru"], help=f"(default: {sd['cell']})")
    sm.add_argument("--batch-size", type=_argtypes.positive_int, help=f"(default: {sd['batch_size']})")
    sm.add_argument("--lr", type=_argtypes.finite_float, help=f"Adam's peak learning rate (default: {sd['lr']})")
    sm.add_argument("--lr-schedule", choices=["cosine", "constant"],
                    help=f"after the warm-up: cosine decay to 0 at the last epoch, or constant "
                         f"(default: {sd['lr_schedule']})")
    sm.add_argument("--warmup", type=_argtypes.nonnegative_int, metavar="N",
                    help=f"batches of linear learning-rate warm-up (default: {sd['warmup']})")
    sm.add_argument("--no-bucketing", action="store_true",
                    help="batches in plain random order instead of grouped by string length")
    sm.add_argument("--clip", type=_argtypes.finite_float, help=f"gradient-norm clipping, 0 for none (default: {sd['clip']})")
    sm.add_argument("--val-fraction", type=_argtypes.finite_float, help=f"held out for validation (default: {sd['val_fraction']})")
    sm.add_argument("--seed", type=_argtypes.seed, default=0,
                    help="initial weights, data split and order, dropout (default: %(default)s)")
    sm.add_argument("--save", metavar="MODEL",
                    help="checkpoint file (default: OUT/smiles_lm.pt; with --resume: the resumed file)")
    sm.add_argument("--out", metavar="OUT",
                    help="output folder (default: fastgen_output); an --out ending in .pt, or naming an "
                         "existing file, is the deprecated spelling of --save")
    sm.add_argument("--resume", metavar="MODEL", help="continue from a checkpoint (model settings come from it)")
    sm.add_argument("--checkpoint-every", type=_argtypes.positive_int, metavar="N",
                    help="also save every N batches (default: after every epoch only)")
    sm.add_argument("--threads", type=_argtypes.threads, help="torch CPU threads (default: torch's)")
    sm.set_defaults(func=cmd_train_smiles)

    gan = train_sub.add_parser(
        "gan", help="DCGAN on images (default: scikit-learn's digits at 32x32; needs torch)",
        description="Train a DCGAN (Radford et al. 2016; the generator runs fastgen's fused transposed convolution) "
                    "on DATA: 'digits' (scikit-learn's 8x8 digits resized to 32x32, the default) or a .npy/.npz/"
                    "MNIST-IDX file of (N, H, W) or (N, C, H, W) images, 28, 32 or 64 pixels square (or resized "
                    "with --image-size). Writes a checkpoint after every epoch, a fixed-noise sample grid per epoch "
                    "(samples_epochNNN.png), samples.png and interpolation.png to --out (the checkpoint to --save, "
                    "default OUT/checkpoint.pt); --resume continues a checkpoint exactly.")
    gan.add_argument("data", metavar="DATA", nargs="?", default=None,
                     help="'digits' or an image file (default: digits; with --resume: the checkpoint's data, "
                          "and other data is refused)")
    gan.add_argument("--key", help="array to read from a .npz archive")
    gan.add_argument("--image-size", type=int, choices=[28, 32, 64], help="resize the images to this size")
    gan.add_argument("--epochs", type=_argtypes.nonnegative_int, help="total epochs (default: 20; with --resume: the "
                                                              "target of the checkpoint's run)")
    gan.add_argument("--latent-dim", type=_argtypes.positive_int, help="(default: 100)")
    gan.add_argument("--width", type=_argtypes.positive_int, help="feature maps of the outermost layers (default: 32)")
    gan.add_argument("--batch-size", type=_argtypes.positive_int, help="(default: 64)")
    gan.add_argument("--loss", choices=["minimax", "nonsaturating", "lsgan"], help="(default: nonsaturating)")
    gan.add_argument("--smoothing", choices=["none", "one_sided", "two_sided"], help="label smoothing "
                                                                                      "(default: none)")
    gan.add_argument("--d-steps", type=_argtypes.positive_int, help="discriminator steps per generator step (default: 1)")
    gan.add_argument("--unrolled-steps", type=_argtypes.nonnegative_int, help="unrolled-GAN steps (default: 0)")
    gan.add_argument("--lr", type=_argtypes.finite_float, help="Adam learning rate of both networks (default: 2e-4)")
    gan.add_argument("--norm", choices=["batch", "virtual", "none"], help="(default: batch)")
    gan.add_argument("--minibatch-kernels", type=_argtypes.nonnegative_int,
                     help="minibatch discrimination kernels in the discriminator (default: 0, none)")
    gan.add_argument("--conditional", action="store_true", help="condition both networks on the labels")
    gan.add_argument("--seed", type=_argtypes.seed, default=0, help="(default: %(default)s)")
    gan.add_argument("--out", default="fastgen_output/gan", help="folder for the PNGs and the checkpoint "
                                                                 "(default: %(default)s)")
    gan.add_argument("--save", metavar="CHECKPOINT", help="checkpoint file, written after every epoch "
                                                          "(default: OUT/checkpoint.pt)")
    gan.add_argument("--resume", metavar="CHECKPOINT", help="continue a checkpoint (model settings come from it)")
    gan.add_argument("--checkpoint-every", type=_argtypes.positive_int, metavar="N",
                     help="also save every N iterations (default: after every epoch only)")
    gan.add_argument("--threads", type=_argtypes.threads, help="torch CPU threads (default: torch's)")
    gan.add_argument("--no-progress", action="store_true", help="no progress bar")
    gan.set_defaults(func=cmd_train_gan)

    vae = train_sub.add_parser(
        "vae", help="variational autoencoder (default: scikit-learn's digits; needs torch)",
        description="Train a VAE (MLP, or --conv for the convolutional one; Bernoulli or Gaussian decoder) on DATA "
                    "(default: scikit-learn's 8x8 digits) with fastgen's fused reparameterisation and likelihood ops. "
                    "Holds out 10% of the samples; prints train/test negative ELBO per epoch and the test "
                    "reconstruction error beside PCA's with as many components as latent units; writes "
                    "samples.png, reconstructions.png (input, reconstruction pairs) and interpolation.png to --out.")
    _add_autoencoder_arguments(vae, "vae")
    vae.set_defaults(func=cmd_train_vae)
    ae = train_sub.add_parser(
        "ae", help="autoencoder: plain, denoising, contractive, stacked or convolutional (needs torch)",
        description="Train an autoencoder (--kind) on DATA (default: scikit-learn's 8x8 digits). Holds out 10% of "
                    "the samples; prints train/test reconstruction loss per epoch and the test reconstruction "
                    "error beside PCA's at the same code size; writes reconstructions.png and interpolation.png.")
    _add_autoencoder_arguments(ae, "ae")
    ae.set_defaults(func=cmd_train_ae)

    sample = sub.add_parser("sample", help="sample from a trained model")
    sample_sub = sample.add_subparsers(dest="model", required=True, metavar="{smiles}")
    ss = sample_sub.add_parser(
        "smiles", help="SMILES strings from a model trained with 'fastgen train smiles' (needs torch)",
        description="Sample -n strings from MODEL, write them to --out (CSV, header SMILES) and print the MOSES "
                    "metrics: validity (RDKit parses it; needs 'fastgen[chem]'), uniqueness among the valid "
                    "ones, novelty against the training data (--train, default: the file it was trained on).")
    ss.add_argument("model", metavar="MODEL")
    ss.add_argument("-n", type=_argtypes.positive_int, default=1000, help="strings to sample (default: %(default)s)")
    ss.add_argument("--temperature", type=_argtypes.finite_float, default=1.0, help="(default: %(default)s)")
    ss.add_argument("--top-k", type=_argtypes.positive_int, help="draw among the k most likely tokens only (default: all)")
    ss.add_argument("--max-length", type=_argtypes.positive_int, default=120, help="tokens per string at most "
                                                                           "(default: %(default)s)")
    ss.add_argument("--prefix", default="", help="start every string with this (default: none)")
    ss.add_argument("--seed", type=_argtypes.seed, default=0, help="(default: %(default)s)")
    ss.add_argument("--train", metavar="DATA", help="training SMILES for novelty (default: the model's)")
    ss.add_argument("--out", default="fastgen_output/smiles_samples.csv", help="(default: %(default)s)")
    ss.add_argument("--threads", type=_argtypes.threads, help="torch CPU threads (default: torch's)")
    ss.set_defaults(func=cmd_sample_smiles)

    # Parsed by bench itself: everything after 'bench' is forwarded (see main).
    sub.add_parser("bench", help="run the benchmark harness: fastgen bench ARGS == python -m bench ARGS "
                                 "(run from the source repository's root)", add_help=False)
    return parser


def _error(message) -> int:
    print(f"fastgen: error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    """Run the ``fastgen`` command with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"] and (len(argv) == 1 or (argv[1].startswith("-") and argv[1] not in ("-h", "--help"))):
        argv.insert(1, "digits")  # `fastgen demo [options]` is the digits demo
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
        with _thread_limit(args.threads if getattr(args, "limit_threads", False) else None):
            code = args.func(args)
        if code == 0:
            _argtypes.print_deprecation_notes(args)  # last, where they are seen; not beside an error line
        return code
    except (CommandError, ValueError, OSError) as exc:
        return _error(_one_line(exc))
    except OverflowError as exc:  # a number too large for the C integers it ends up in
        return _error(f"a number is too large: {_one_line(exc)}")
    except MemoryError as exc:
        return _error(f"not enough memory{f' ({exc})' if str(exc) else ''}: try smaller data or model sizes")
    except KeyboardInterrupt:
        print("fastgen: interrupted", file=sys.stderr)
        return 130


def _one_line(exc) -> str:
    """An exception's message on one line (the command promises one-line errors)."""
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
