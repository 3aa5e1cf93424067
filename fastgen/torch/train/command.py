"""The body of the ``fastgen train vae|ae`` commands (:func:`train_from_cli`, imported by
:mod:`fastgen.cli` as ``fastgen.torch.training``, this module's older name): data, model,
training with checkpoints, the PCA baseline and the PNGs. The options themselves are defined in
:mod:`fastgen.cli`, which needs no torch for them.

The command stores its run's target epoch count, seed and data (source and content hash) in the
checkpoint, so ``--resume`` without ``--epochs`` finishes the original run on the same data.
The names of :mod:`.loop` and :mod:`.checkpoints` are re-exported here, where they have always
been importable (as ``fastgen.torch.training.fit``, ...).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from ... import _argtypes
from ..nn.autoencoders import (Autoencoder, ContractiveAutoencoder, ConvAutoencoder, DenoisingAutoencoder,
                               pretrain_stacked)
from ..nn.vae import VAE, ConvVAE
from ..optim import adam
from .checkpoints import CHECKPOINT_FORMAT, MODEL_KINDS, load_checkpoint, read_checkpoint, save_checkpoint
from .loop import (PCA_EXACT_MAX_SIZE, NonFiniteLoss, evaluate, fit, pca_reconstruction_mse,
                   reconstruction_mse)

__all__ = ["train_from_cli", "load_training_data", "interpolation_pair", "DEFAULT_EPOCHS", "DEFAULT_LR", "CAE_LR",
           "fit", "evaluate", "reconstruction_mse", "pca_reconstruction_mse", "PCA_EXACT_MAX_SIZE", "NonFiniteLoss",
           "save_checkpoint", "read_checkpoint", "load_checkpoint", "MODEL_KINDS", "CHECKPOINT_FORMAT"]

DEFAULT_LR = 1e-3   # Adam's rate for `fastgen train vae|ae`
CAE_LR = 1e-2       # for --kind cae (see train_from_cli)


def load_training_data(data, *, binarize, key, seed: int, test_fraction: float = 0.1, return_labels: bool = False):
    """(X_train, X_test, image_shape, name) as float32 NumPy arrays in [0, 1]. ``data`` None
    means scikit-learn's digits (8x8, values / 16). ``return_labels``: a fifth item, the test
    samples' labels (the digits' classes), or None for data files (which hold no labels)."""
    from ...datasets import load_array, load_digits_binary

    y = None
    if data is None:
        (X, y), name = load_digits_binary(return_y=True, dtype=np.float32), "scikit-learn digits"
        if binarize is not None:
            X = (X > binarize).astype(np.float32)
    else:
        X, name = load_array(data, binarize=binarize, key=key, dtype=np.float32), str(data)
    side = math.isqrt(X.shape[1])
    image_shape = (side, side) if side * side == X.shape[1] else None
    if X.shape[0] < 2:
        raise ValueError(f"{name}: at least 2 samples are needed (one to train, one to test), got {X.shape[0]}")
    order = np.random.default_rng(seed).permutation(X.shape[0])
    n_test = max(1, int(round(test_fraction * X.shape[0])))
    split = X[order[n_test:]], X[order[:n_test]], image_shape, name
    if return_labels:
        return (*split, None if y is None else np.asarray(y)[order[:n_test]])
    return split


FARTHEST_PAIR_CANDIDATES = 1000  # unlabelled data: the farthest pair among this many test images


def interpolation_pair(X_test: np.ndarray, y_test=None, seed: int = 0) -> tuple[int, int, str]:
    """``(i, j, description)``: the test images that ``interpolation.png`` runs between.

    With labels: a random test image (drawn with ``seed``) and a random one of another class,
    so the path crosses classes ("from 6 to 1"). Without labels (or with a single class): the
    two of the first ``FARTHEST_PAIR_CANDIDATES`` test images farthest apart in input space
    (Euclidean; the first such pair in index order). One test image: (0, 0)."""
    n = X_test.shape[0]
    if n < 2:
        return 0, 0, "one test image"
    if y_test is not None:
        y_test = np.asarray(y_test)
        rng = np.random.default_rng(seed)
        i = int(rng.integers(n))
        others = np.flatnonzero(y_test != y_test[i])
        if others.size:
            j = int(others[rng.integers(others.size)])
            return i, j, f"from {y_test[i]} to {y_test[j]}"
    X = np.asarray(X_test[:FARTHEST_PAIR_CANDIDATES], np.float64).reshape(min(n, FARTHEST_PAIR_CANDIDATES), -1)
    sq = (X * X).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    return int(min(i, j)), int(max(i, j)), "farthest pair"


def _as_model_input(model, X: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(X))
    if isinstance(model, (ConvAutoencoder, ConvVAE)):
        return t.reshape(t.shape[0], 1, *model.image_size)
    return t


def _write_pngs(model, X_test: np.ndarray, image_shape, out: Path, *, is_vae: bool, seed: int,
                y_test=None) -> list[Path]:
    """reconstructions.png (rows of 8 test images, labelled "input", each above its row of
    reconstructions, labelled "reconstruction"), interpolation.png (10 decoded steps between
    the codes of :func:`interpolation_pair`'s two test images, labelled with their classes)
    and, for VAEs, samples.png (64 decoded draws from the prior)."""
    from ..._png import save_image_grid

    out.mkdir(parents=True, exist_ok=True)
    written = []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        n = min(16, X_test.shape[0])
        per_row = 8 if n >= 8 else n
        n -= n % per_row
        originals = X_test[:n]
        recon = model.reconstruct(_as_model_input(model, originals)).reshape(n, -1).numpy()
        rows = [block[start:start + per_row] for start in range(0, n, per_row) for block in (originals, recon)]
        written.append(save_image_grid(np.concatenate(rows), out / "reconstructions.png", image_shape, ncols=per_row,
                                       row_labels=("input", "reconstruction")))
        if getattr(model, "needs_indices", False):  # a pooling autoencoder of an older checkpoint
            print("no interpolation.png: this pooling autoencoder decodes with the argmax positions of an encoding "
                  "pass, which codes between two images do not have")
        else:
            i, j, description = interpolation_pair(X_test, y_test, seed)
            ends = _as_model_input(model, X_test[[i, j]])
            strip = model.interpolate(ends[0], ends[1], steps=10).reshape(10, -1).numpy()
            written.append(save_image_grid(strip, out / "interpolation.png", image_shape, ncols=10,
                                           row_labels=(description,)))
        if is_vae:
            samples = model.sample(64, generator=seed).reshape(64, -1).numpy()
            written.append(save_image_grid(samples, out / "samples.png", image_shape, ncols=8))
    model.train(was_training)
    return written


def _build_ae(kind: str, n_features: int, image_shape, args):
    latent = args.latent
    hidden = tuple(args.hidden)
    if kind == "ae":
        return Autoencoder(n_features, hidden, latent, likelihood=args.likelihood)
    if kind == "dae":
        noise = "masking" if args.likelihood == "bernoulli" else "gaussian"
        return DenoisingAutoencoder(n_features, hidden, latent, likelihood=args.likelihood, noise=noise,
                                    noise_level=args.noise_level)
    if kind == "cae":
        return ContractiveAutoencoder(n_features, latent, likelihood=args.likelihood, contraction=args.contraction)
    if kind in ("conv", "conv-pool"):
        if image_shape is None:
            raise ValueError(f"--kind {kind} needs square images; {n_features} features is not a square")
        # a linear --latent code after the convolutions, so the code is a bottleneck as in the other
        # kinds; conv-pool unpools in blocks: the encoder's argmax positions would hand the decoder
        # most of the image past the code (see ConvAutoencoder's ``unpool``)
        return ConvAutoencoder(1, image_shape, tuple(args.channels), pooling=kind == "conv-pool",
                               likelihood=args.likelihood, n_latent=latent,
                               unpool="block" if kind == "conv-pool" else "argmax")
    raise ValueError(f"unknown autoencoder kind {kind!r}")


def _build_vae(n_features: int, image_shape, args, seed: int):
    if args.conv:
        if image_shape is None:
            raise ValueError(f"--conv needs square images; {n_features} features is not a square")
        return ConvVAE(1, image_shape, tuple(args.channels), args.latent, args.likelihood, seed=seed)
    return VAE(n_features, tuple(args.hidden), args.latent, args.likelihood, seed=seed)


DEFAULT_EPOCHS = 30


def _build_checked(build, what: str):
    """``build()``, with an allocation that cannot succeed (sizes far too large) reported as a
    ValueError naming the options instead of a traceback."""
    try:
        return build()
    except MemoryError as exc:
        raise ValueError(f"cannot build the model: not enough memory for these sizes ({what}; "
                         f"{exc or type(exc).__name__})") from None
    except (RuntimeError, OverflowError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"cannot build the model with these sizes ({what}): {first}") from None


def _run_record(state, path) -> dict:
    """The command's record of the run a checkpoint belongs to (empty for checkpoints written
    before it was kept, or by :func:`save_checkpoint` directly)."""
    run = state["extra"].get("run", {})
    if not isinstance(run, dict):
        raise ValueError(f"{path}: not a fastgen autoencoder/VAE checkpoint (bad run record)")
    return run


def train_from_cli(args, family: str) -> int:
    """:func:`_train` in this process, or as one rank of a torchrun job (:mod:`.distributed`):
    every rank trains its share of each batch; rank 0 prints and writes."""
    from .distributed import run_command

    return run_command(_train, args, family)


def _train(args, family: str, job) -> int:
    """The body of ``fastgen train vae`` (family "vae") and ``fastgen train ae`` ("ae").

    A new run trains ``--epochs`` epochs (default 30). With ``--resume``, ``--epochs N`` trains up
    to N epochs in all (the deprecated ``--load`` spelling keeps its old meaning: N more); without
    it the run continues to the target epoch count stored in the checkpoint (and says so when that
    is already reached). The checkpoint also keeps the run's seed and data
    (source, ``--key``, ``--binarize`` and a content hash): without DATA the checkpoint's data is
    used, and other data or another ``--seed`` is refused."""
    from ...serialization import fingerprint

    if args.save and Path(args.save).is_dir():
        raise ValueError(f"{args.save}: is a directory (--save needs a file name)")
    if args.threads:
        torch.set_num_threads(args.threads)
    resume = args.resume
    run, data, key, binarize = {}, args.data, args.key, args.binarize
    likelihood = args.likelihood
    if resume:
        saved = read_checkpoint(resume)
        run = _run_record(saved, resume)
        likelihood = saved["config"].get("likelihood", likelihood)
        if args.seed is not None and "seed" in run and args.seed != run["seed"]:
            raise ValueError(f"--seed {args.seed} differs from the checkpoint's {run['seed']} (the seed fixes the "
                             "train/test split and the batch order of the run being continued)")
        seed = run.get("seed", 0) if args.seed is None else args.seed
        recorded = run.get("data")
        if data is None and isinstance(recorded, dict):
            data = recorded.get("source")
            if key is None:
                key = recorded.get("key")
            if binarize is None:
                binarize = recorded.get("binarize")
            if data is not None and not Path(data).is_file():
                raise ValueError(f"{resume}: was trained on {data}, which no longer exists; give DATA")
        elif isinstance(recorded, dict) and data is not None and str(Path(data).resolve()) == recorded.get("source"):
            # the same file: the same array of it, prepared the same way, unless told otherwise
            key = recorded.get("key") if key is None else key
            binarize = recorded.get("binarize") if binarize is None else binarize
    else:
        seed = 0 if args.seed is None else args.seed
    torch.manual_seed(seed)
    X_train, X_test, image_shape, name, y_test = load_training_data(data, binarize=binarize, key=key, seed=seed,
                                                                    return_labels=True)
    data_hash = fingerprint(X_train, X_test)
    recorded = run.get("data")
    if isinstance(recorded, dict) and recorded.get("fingerprint") not in (None, data_hash):
        was = recorded.get("source") or "scikit-learn digits"
        raise ValueError(f"{name}: not the data {resume} was trained on ({was}"
                         + (f", key {recorded['key']!r}" if recorded.get("key") else "")
                         + (f", binarized at {recorded['binarize']}" if recorded.get("binarize") is not None else "")
                         + "); resume on the same data, or start a new run")
    n_features = X_train.shape[1]
    print(f"data: {name}: {X_train.shape[0]} training and {X_test.shape[0]} test samples x {n_features} features")
    if likelihood == "bernoulli" and (X_train.min() < 0 or X_train.max() > 1):
        raise ValueError(f"{name}: values outside [0, 1] ({X_train.min():g} .. {X_train.max():g}); "
                         "use --likelihood gaussian for unbounded data")
    start_epoch = 0
    # A single sigmoid layer (cae) barely leaves the mean image at 1e-3: it starts from a larger rate.
    lr = args.lr if args.lr is not None else (CAE_LR if family == "ae" and args.kind == "cae" else DEFAULT_LR)
    if resume:
        model, optimizer, start_epoch, _ = load_checkpoint(resume, lr=lr)
        expected = (VAE, ConvVAE) if family == "vae" else (Autoencoder, ContractiveAutoencoder, ConvAutoencoder)
        if not isinstance(model, expected):
            raise ValueError(f"{resume}: holds a {type(model).__name__}, not a model for 'fastgen train {family}'")
        if args.lr is not None:  # otherwise the checkpoint's own rate
            for param_group in optimizer.param_groups:
                param_group["lr"] = args.lr
        if args.epochs is not None and _argtypes.used_old_spelling(args, "--load"):
            epochs, target = args.epochs, start_epoch + args.epochs  # the deprecated --load: N more
        elif args.epochs is not None:
            target = args.epochs  # the total to reach
            epochs = max(0, target - start_epoch)
        elif isinstance(run.get("target_epochs"), int):
            target = run["target_epochs"]
            epochs = max(0, target - start_epoch)
        else:
            raise ValueError(f"{resume}: the checkpoint does not record how many epochs its run was to train; "
                             "give --epochs N (the total to reach)")
        print(f"loaded {resume}: {type(model).__name__} after {start_epoch} epochs"
              + (f", continuing to epoch {target}" if epochs else ""))
    else:
        epochs = DEFAULT_EPOCHS if args.epochs is None else args.epochs
        target = epochs
        sizes = "--hidden, --latent, --channels"
        if family == "vae":
            model = _build_checked(lambda: _build_vae(n_features, image_shape, args, seed), sizes)
        elif args.kind == "stacked":
            layer_sizes = (*args.hidden, args.latent)
            print(f"greedy pretraining of {len(layer_sizes)} layers {layer_sizes}, {args.pretrain_epochs} epochs each")
            model = _build_checked(lambda: pretrain_stacked(
                torch.from_numpy(X_train), layer_sizes, epochs=args.pretrain_epochs, batch_size=args.batch_size,
                lr=lr, likelihood=args.likelihood, seed=seed, progress=True), sizes)
        else:
            model = _build_checked(lambda: _build_ae(args.kind, n_features, image_shape, args), sizes)
        optimizer = adam(model.parameters(), lr=lr)
    run = {"target_epochs": int(target), "seed": int(seed),
           "data": {"source": None if data is None else str(Path(data).resolve()), "key": key,
                    "binarize": binarize, "fingerprint": data_hash}}
    extra = {"run": run}
    model.check_input(_as_model_input(model, X_train[:1]))
    x_train, x_test = _as_model_input(model, X_train), _as_model_input(model, X_test)
    print(f"model: {type(model).__name__} {model.config()}")

    main = job is None or job.is_main
    if job is not None:
        print(f"data parallel: {job.world_size} processes x batch {args.batch_size} (torchrun, gloo)")

    def on_epoch(epoch, train_loss):
        if not main:  # rank 0 evaluates and writes; a VAE's stream reaches the others at their next step
            return
        test_loss = evaluate(model, x_test)
        print(f"epoch {epoch}: train loss {train_loss:.3f}, test loss {test_loss:.3f}", flush=True)
        if args.save:
            save_checkpoint(args.save, model, optimizer, epoch, extra)

    began = time.perf_counter()
    if epochs:
        try:
            fit(model, x_train, epochs=epochs, batch_size=args.batch_size, optimizer=optimizer,
                seed=seed, progress=True, start_epoch=start_epoch, on_epoch=on_epoch, job=job)
        except NonFiniteLoss as exc:
            kept = f"; the last good checkpoint is {args.save}" if args.save and Path(args.save).is_file() else ""
            raise ValueError(f"{exc}{kept}") from None
        print(f"trained {epochs} epochs in {time.perf_counter() - began:.1f} s")
    elif resume:
        print(f"nothing to train: the checkpoint has {start_epoch} of its run's {target} epochs done "
              f"(--epochs N with N > {start_epoch} trains more)")
    if not main:
        return 0
    if args.save:
        print(f"checkpoint: {save_checkpoint(args.save, model, optimizer, start_epoch + epochs, extra)}")
    latent = getattr(model, "n_latent", None) or int(np.prod(model.encode(x_test[:1]).shape[1:]))
    mse = reconstruction_mse(model, x_test)
    if latent <= min(X_train.shape):
        pca = pca_reconstruction_mse(X_train, X_test, latent, seed=seed)
        print(f"test reconstruction MSE per feature: {mse:.5f}; PCA with {latent} components: {pca:.5f}")
        if family == "vae":
            print("  (a VAE's reconstruction trades off against its KL term, which pulls the codes towards the "
                  "N(0, I) prior, and against the sampling noise in z it is trained with; PCA is the best linear "
                  "reconstruction at that size, with no prior to fit, so a VAE usually reconstructs worse)")
    else:
        print(f"test reconstruction MSE per feature: {mse:.5f} (code size {latent}: no PCA baseline of that size)")
    if image_shape is not None:
        for path in _write_pngs(model, X_test, image_shape, Path(args.out), is_vae=family == "vae", seed=seed,
                                y_test=y_test):
            print(f"wrote {path}")
    else:
        print(f"no images written: {n_features} features is not a square image")
    return 0
