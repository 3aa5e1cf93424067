"""The training loop of the autoencoder family (:mod:`fastgen.torch.nn.autoencoders`,
:mod:`fastgen.torch.nn.vae`): Adam over shuffled minibatches with an exact resume point, the
evaluation passes, and the linear (PCA) baseline the command reports against.
"""
from __future__ import annotations

import numpy as np
import torch

from ..._checks import positive_int
from ..optim import adam


class NonFiniteLoss(FloatingPointError):
    """Training produced a NaN or infinite loss (the message says at which step)."""


def _progress_bar(total: int, description: str, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="batch", leave=False)


def fit(model, X: torch.Tensor, *, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
        optimizer: torch.optim.Optimizer | None = None, progress=None, description: str = "train",
        start_epoch: int = 0, on_epoch=None, job=None) -> list[float]:
    """Adam (fused, :func:`.optim.adam`; or ``optimizer``) on ``model.loss`` over shuffled minibatches of X.

    Parameters
    ----------
    model : a module of this package (anything with ``loss(batch)``)
    X : tensor of shape (n, ...) in the model's input layout
    epochs, batch_size : int
    lr : float
        Adam's learning rate (ignored when ``optimizer`` is given).
    seed : int
        Seeds the minibatch order of each epoch: epoch e shuffles with ``seed + e``, so a
        resumed run (``start_epoch``) sees the same batches as an uninterrupted one.
    progress : bool or None
        A tqdm bar per epoch.
    start_epoch : int
        Epochs already done (resuming).
    on_epoch : callable(epoch, mean_loss) or None
        Called after each epoch (checkpoints, PNGs).
    job : fastgen.torch.train.distributed.Distributed or None
        Data-parallel training (torchrun): ``batch_size`` rows per rank, each step's global batch
        shared out as :mod:`.distributed` describes; the result is the single process's run
        with ``batch_size * world_size`` rows a batch, to rounding.

    Returns
    -------
    list of float: the mean training loss of each epoch run.

    Raises
    ------
    NonFiniteLoss
        When a batch's loss is NaN or infinite; the parameters are left as they were before
        that batch's update.
    """
    epochs = positive_int(epochs, "epochs") if epochs else 0
    batch_size = positive_int(batch_size, "batch_size")
    if not isinstance(X, torch.Tensor) or X.dim() < 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty tensor of shape (n, ...), got {getattr(X, 'shape', type(X))}")
    model.check_input(X[:1])
    if not torch.isfinite(X).all():
        raise ValueError("X contains NaN or infinity")
    opt = optimizer if optimizer is not None else adam(model.parameters(), lr=lr)
    n = X.shape[0]
    history = []
    model.train()
    world = 1 if job is None else job.world_size
    step_rows = batch_size * world  # a step's global batch
    runner = None
    if job is not None:
        from .distributed import data_parallel

        runner = data_parallel(model)
    for epoch in range(start_epoch, start_epoch + epochs):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
        bar = _progress_bar(-(-n // step_rows), f"{description} epoch {epoch + 1}",
                            progress and (job is None or job.is_main))
        total, count = 0.0, 0
        for start in range(0, n, step_rows):
            rows = order[start:start + step_rows]
            where = f"at epoch {epoch + 1}, batch {start // step_rows + 1}: lower the learning rate"
            if job is None:
                batch, weight = X[rows], 1.0
            else:  # this rank's share; a rank without rows still joins the gradient average, with weight 0
                first, stop = job.share(len(rows))
                batch = X[rows[first:stop]] if stop > first else X[rows[:1]]
                weight = (stop - first) * world / len(rows)
            try:
                loss = model.loss(batch) if runner is None else runner(batch, first_row=first)
            except ValueError as exc:
                # X is finite (checked above), so a NaN/inf that an op refuses grew inside the model
                if "NaN or infinity" in str(exc):
                    raise NonFiniteLoss(f"the loss became non-finite ({exc}) {where}") from exc
                raise
            if not torch.isfinite(loss):
                raise NonFiniteLoss(f"the loss became {loss.item()} {where}")
            opt.zero_grad(set_to_none=True)
            (loss if weight == 1.0 else loss * weight).backward()
            opt.step()
            kept = batch.shape[0] if weight else 0
            total += loss.item() * kept
            count += kept
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total / max(count, 1):.3f}")
        if bar is not None:
            bar.close()
        if job is not None:
            total, count = job.sum(total), job.sum(count)
        history.append(total / count)
        if on_epoch is not None:
            on_epoch(epoch + 1, history[-1])
            if job is not None:  # on_epoch may have drawn from rank 0's stream alone (evaluation)
                job.sync_buffers(model)
    return history


@torch.no_grad()
def evaluate(model, X: torch.Tensor, batch_size: int = 1000) -> float:
    """Mean ``model.loss`` over X (evaluation mode; a VAE's loss still draws one z a sample)."""
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, X.shape[0], batch_size):
        batch = X[start:start + batch_size]
        total += model.loss(batch).item() * batch.shape[0]
    model.train(was_training)
    return total / X.shape[0]


@torch.no_grad()
def reconstruction_mse(model, X: torch.Tensor, batch_size: int = 1000) -> float:
    """Mean squared error per feature between X and ``model.reconstruct(X)``."""
    err, count = 0.0, 0
    for start in range(0, X.shape[0], batch_size):
        batch = X[start:start + batch_size]
        err += (model.reconstruct(batch) - batch).pow(2).sum().item()
        count += batch.numel()
    return err / count


PCA_EXACT_MAX_SIZE = 2_000_000  # training arrays up to this many values get the exact SVD


def pca_reconstruction_mse(X_train: np.ndarray, X_test: np.ndarray, n_components: int, *, solver: str = "auto",
                           seed: int = 0) -> float:
    """The linear baseline: mean squared error per feature of PCA with ``n_components``
    components fitted on X_train, reconstructing X_test (both (n, features)).

    ``solver``: "full" (the exact SVD), "randomized" (scikit-learn's randomized SVD with
    ``random_state=seed``: faster than "full" on large data, with an error within about 1e-5 of
    the exact one, relatively), or "auto": "full" for training arrays of at most
    ``PCA_EXACT_MAX_SIZE`` values or when n_components is over 80 % of min(n_samples,
    n_features), "randomized" otherwise."""
    from sklearn.decomposition import PCA

    n_components = positive_int(n_components, "n_components")
    if solver not in ("auto", "full", "randomized"):
        raise ValueError(f"solver must be 'auto', 'full' or 'randomized', got {solver!r}")
    X_train = np.asarray(X_train, np.float64).reshape(len(X_train), -1)
    X_test = np.asarray(X_test, np.float64).reshape(len(X_test), -1)
    limit = min(X_train.shape)
    if n_components > limit:
        raise ValueError(f"n_components must be at most min(n_samples, n_features) = {limit}, got {n_components}")
    if solver == "auto":
        small = X_train.size <= PCA_EXACT_MAX_SIZE or n_components > 0.8 * limit
        solver = "full" if small else "randomized"
    if solver == "randomized":
        pca = PCA(n_components=n_components, svd_solver="randomized", random_state=seed).fit(X_train)
    else:
        pca = PCA(n_components=n_components, svd_solver="full").fit(X_train)
    return float(((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2).mean())
