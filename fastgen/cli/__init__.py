"""The ``fastgen`` command (also ``python -m fastgen``), one module per command.

``fastgen demo [digits]`` (:mod:`.demo_digits`)
    Trains a PCD RBM on scikit-learn's digits with fastgen and with scikit-learn, prints fit
    times and held-out exact pseudo-likelihoods, writes ``samples.png`` and ``filters.png``.
``fastgen demo waveforms`` (:mod:`.demo_waveforms`)
    Trains an RBM on generated periodic waveforms, repairs fresh ones that lost a stretch of
    samples by clamped Gibbs sampling, prints the error beside linear interpolation's, writes
    ``waveforms.png``.
``fastgen train rbm DATA`` (:mod:`.train_rbm`)
    Trains (or continues) a Bernoulli RBM on a .npy / .npz / MNIST-IDX file.
``fastgen train smiles DATA``, ``fastgen sample smiles MODEL`` (:mod:`.smiles`)
    Trains (or resumes) a character-level LSTM/GRU language model on a MOSES-style SMILES CSV;
    samples SMILES strings from a trained model, writes them to a file, prints the MOSES metrics
    (validity, uniqueness, novelty).
``fastgen train gan [DATA]`` (:mod:`.train_gan`)
    Trains (or resumes) a DCGAN on images (default: scikit-learn's digits at 32x32), writing
    checkpoints and sample grids.
``fastgen train vae [DATA]`` / ``fastgen train ae [DATA]`` (:mod:`.train_autoencoders`)
    Trains (or resumes) a VAE (MLP or convolutional) or an autoencoder (plain, denoising,
    contractive, greedy stacked, convolutional) on images (default: scikit-learn's digits), with
    checkpoints, a PCA baseline and sample / reconstruction / interpolation PNGs.
``fastgen bench ...`` (:mod:`.bench`)
    Runs the repository's benchmark harness (``python -m bench ...``).

The pictures are drawn in :mod:`.plots`; options several commands share are in :mod:`.options`.
:func:`main` returns the exit code: 0 on success, 2 on a usage or input error (one line on
stderr, ``fastgen: error: ...``, no traceback).
"""
from __future__ import annotations

import argparse
import sys

from .. import _argtypes
from . import bench, demo_digits, demo_waveforms, smiles, train_autoencoders, train_gan, train_rbm
from .common import CommandError
from .options import thread_limit

__all__ = ["main", "build_parser", "CommandError"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command but ``bench`` (whose arguments bench parses itself)."""
    from .. import __version__

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
    demo_digits.add_parser(demos)
    demo_waveforms.add_parser(demos)

    train = sub.add_parser("train", help="train a model on a data file")
    train_sub = train.add_subparsers(dest="model", required=True, metavar="{rbm,smiles,gan,vae,ae}")
    train_rbm.add_parser(train_sub)
    smiles.add_train_parser(train_sub)
    train_gan.add_parser(train_sub)
    train_autoencoders.add_parsers(train_sub)

    sample = sub.add_parser("sample", help="sample from a trained model")
    sample_sub = sample.add_subparsers(dest="model", required=True, metavar="{smiles}")
    smiles.add_sample_parser(sample_sub)

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
            bench.find_bench()
        except CommandError as exc:
            return _error(exc)
        # bench's own failures keep their tracebacks: they are bugs to see, not input errors
        try:
            return bench.run(argv[1:])
        except KeyboardInterrupt:
            print("fastgen: interrupted", file=sys.stderr)
            return 130
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error argparse already printed
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        with thread_limit(args.threads if getattr(args, "limit_threads", False) else None):
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
