"""``fastgen demo [digits]``: a PCD RBM on scikit-learn's digits, trained with fastgen and with
scikit-learn; prints fit times and held-out exact pseudo-likelihoods, writes samples.png and
filters.png."""
from __future__ import annotations

import numpy as np

from .. import _argtypes
from .common import CommandError, fit_timed, load_kernels, out_dir
from .options import add_old_spelling, add_threads_option
from .plots import tempering_samples_for_display, write_rbm_pngs

DEMO_SETTINGS = dict(n_components=256, learning_rate=0.06, batch_size=10)
# BernoulliRBM.annealed_pcd (the rate decayed linearly to 0, visible biases from the data's
# log-odds, persistent chains independent of the batch) at the demo's settings, with 50 chains
# for the small data set.
RECIPE_CHAINS = 50
DEMO_N_TRAIN = 1500
SAMPLE_TEMPERATURES, SAMPLE_STEPS = 10, 1000


def run(args) -> int:
    """Run ``fastgen demo digits``; returns the exit code."""
    from ..datasets import load_digits_binary
    from ..models.rbm import RBM
    from ..sklearn import BernoulliRBM

    if args.epochs < 1:
        raise CommandError(f"--epochs must be >= 1, got {args.epochs}")
    out = out_dir(args.out)
    X = load_digits_binary()
    train, test = X[:DEMO_N_TRAIN], X[DEMO_N_TRAIN:]
    params = dict(DEMO_SETTINGS, n_iter=args.epochs, random_state=args.seed)
    print(f"PCD-1 RBM, {X.shape[1]} visible x {params['n_components']} hidden units, on scikit-learn's digits "
          f"({train.shape[0]} train / {test.shape[0]} held out)")
    print(f"settings: learning_rate={params['learning_rate']}, batch_size={params['batch_size']}, "
          f"n_iter={params['n_iter']}, random_state={args.seed}, float64", flush=True)
    load_kernels()
    ours = BernoulliRBM(progress=True, **params)
    t_ours = fit_timed(ours, train)
    rows = [("fastgen", t_ours, float(ours.score_samples(test).mean()))]
    if not args.no_compare:
        from sklearn.neural_network import BernoulliRBM as SkBernoulliRBM

        theirs = SkBernoulliRBM(**params)
        t_theirs = fit_timed(theirs, train)
        # Same exact pseudo-likelihood for both (scikit-learn's score_samples is a one-bit
        # random estimate of it): evaluate scikit-learn's parameters with fastgen's RBM.
        twin = RBM(np.array(theirs.components_, np.float64, order="C"),
                   np.array(theirs.intercept_visible_, np.float64), np.array(theirs.intercept_hidden_, np.float64))
        rows.append(("scikit-learn", t_theirs, float(twin.pseudo_likelihood(test).mean())))

    recipe = BernoulliRBM.annealed_pcd(**params, n_chains=RECIPE_CHAINS)
    t_recipe = fit_timed(recipe, train)
    recipe_row = ("fastgen, recipe", t_recipe, float(recipe.score_samples(test).mean()))

    print()
    print(f"{'implementation':<16}{'fit time (s)':>13}{'speed':>10}{'held-out pseudo-likelihood':>30}")
    reference = rows[-1][1]
    for name, seconds, pl in rows:
        speed = f"{reference / seconds:.1f}x" if len(rows) > 1 else "-"
        print(f"{name:<16}{seconds:>13.3f}{speed:>10}{pl:>30.2f}")
    print(f"{recipe_row[0]:<16}{recipe_row[1]:>13.3f}{'-':>10}{recipe_row[2]:>30.2f}")
    if len(rows) > 1:
        ratio = rows[1][1] / rows[0][1]
        comparison = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
        print(f"\nfastgen fit {comparison} than scikit-learn with the same settings, in this run.")
    print("recipe: BernoulliRBM.annealed_pcd with the same settings: the learning rate decayed linearly to 0, "
          f"visible biases from the data's log-odds and {RECIPE_CHAINS} persistent chains")
    print(f"pseudo-likelihood: exact sum over the {X.shape[1]} pixels of log P(v_i | v_-i), mean over the "
          f"{test.shape[0]} held-out digits (higher is better)")
    samples = tempering_samples_for_display(recipe._model(), 100, SAMPLE_STEPS, SAMPLE_TEMPERATURES, args.seed)
    for path in write_rbm_pngs(recipe._model(), out, (8, 8), args.seed, samples=samples):
        print(f"wrote {path}")
    print(f"samples.png: 100 chains of parallel tempering in the recipe's model ({SAMPLE_TEMPERATURES} "
          f"temperatures from 1 down to 0, {SAMPLE_STEPS} steps from v = 0), each shown as P(v | h) of its "
          "beta = 1 replica's last step; filters.png: the recipe model's first 256 rows of W")
    return 0


def add_parser(demos) -> None:
    """``digits`` among the demos (``demos``: the subparsers of ``fastgen demo``)."""
    digits = demos.add_parser(
        "digits", help="train an RBM on scikit-learn's digits beside scikit-learn's own, write sample/filter PNGs "
                       "(the default)",
        description="Train a PCD-1 RBM (256 hidden units, learning rate 0.06, batch 10) on the first 1500 of "
                    "scikit-learn's digits with fastgen and with scikit-learn, compare fit times and exact "
                    "held-out pseudo-likelihoods, train the same RBM with fastgen's annealed recipe, and write "
                    "its parallel-tempering samples (samples.png) and filters (filters.png). No network needed.")
    digits.add_argument("--out", default="fastgen_output", help="folder for samples.png and filters.png "
                                                                "(default: %(default)s)")
    digits.add_argument("--epochs", type=_argtypes.positive_int, default=20, help="epochs (default: %(default)s)")
    add_old_spelling(digits, "--n-iter", "epochs", "use --epochs (same meaning)", _argtypes.positive_int)
    digits.add_argument("--seed", type=_argtypes.seed, default=0,
                        help="random_state of both models and sampling seed (default: %(default)s)")
    digits.add_argument("--no-compare", action="store_true", help="skip scikit-learn")
    add_threads_option(digits)
    digits.set_defaults(func=run)
