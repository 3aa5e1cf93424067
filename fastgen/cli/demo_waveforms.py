"""``fastgen demo waveforms``: an RBM trained on generated periodic waveforms repairs fresh ones
that lost a stretch of samples, by Gibbs sampling with the known bits clamped; prints the error
beside linear interpolation's and writes waveforms.png."""
from __future__ import annotations

import time

import numpy as np

from .. import _argtypes
from .common import CommandError, fit_timed, load_kernels, out_dir
from .options import add_old_spelling, add_threads_option
from .plots import write_waveform_png

# CD-1, not PCD: chains that restart at the data keep the model accurate near the data, which is
# where a repair starts (the measured errors are in docs/performance.md).
WAVE_SETTINGS = dict(n_components=256, learning_rate=0.05, batch_size=20, persistent=False)
WAVE_N_POINTS = 60
WAVE_N_BITS = 8
WAVE_AVERAGED_STEPS = 10     # the repair averages P(v | h) over (at most) the last 10 Gibbs steps
WAVE_PLOTTED_PER_KIND = 2    # test signals drawn in waveforms.png, per kind


def _repair_waveforms(model, corrupted, known, *, chains: int, steps: int, seed: int, code: str) -> np.ndarray:
    """Fill the unknown units of ``corrupted`` by block-Gibbs sampling with the known ones clamped.

    Each waveform runs ``chains`` chains from its corrupted units for ``steps`` steps
    (Generator(seed)). Over the last (at most) ``WAVE_AVERAGED_STEPS`` steps, the mean-field
    reconstruction P(v | P(h | v_k)) of each chain, with the known units kept, is decoded to its
    expected levels; the repair is the mean of those over the steps and chains (an estimate of
    the posterior mean, which is what minimises the squared error)."""
    from ..datasets import decode_waveforms
    from ..ops import gibbs
    from ..random import Generator

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


def run(args) -> int:
    """Run ``fastgen demo waveforms``; returns the exit code."""
    from ..datasets import corrupt_waveforms, decode_waveforms, make_waveforms
    from ..sklearn import BernoulliRBM

    if not 1 <= args.lost <= WAVE_N_POINTS - 2:
        raise CommandError(f"--lost must be between 1 and {WAVE_N_POINTS - 2} (the lost stretch lies inside the "
                           f"{WAVE_N_POINTS}-sample signal, with a known sample on each side), got {args.lost}")
    out = out_dir(args.out)
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
    load_kernels()
    estimator = BernoulliRBM(progress=True, **params)
    print(f"trained in {fit_timed(estimator, train):.2f} s")

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
    print(f"wrote {write_waveform_png(out / 'waveforms.png', rows, full_scale)}")
    return 0


def add_parser(demos) -> None:
    """``waveforms`` among the demos (``demos``: the subparsers of ``fastgen demo``)."""
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
    add_old_spelling(waves, "--n-iter", "epochs", "use --epochs (same meaning)", _argtypes.positive_int)
    waves.add_argument("--n-train", type=_argtypes.positive_int, default=3000,
                       help="training waveforms (default: %(default)s)")
    waves.add_argument("--n-test", type=_argtypes.positive_int, default=300,
                       help="waveforms to repair (default: %(default)s)")
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
    add_threads_option(waves)
    waves.set_defaults(func=run)
