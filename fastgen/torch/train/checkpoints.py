"""Checkpoints of the autoencoder family: one ``torch.save`` file holding the model's kind and
constructor arguments, its weights, the optimizer's state, the epoch count, the model's Philox
stream (VAEs) and torch's CPU random state (the minibatch order and the autoencoders' noise), so
training resumed from it continues exactly as the uninterrupted run would.

A checkpoint holds tensors, numbers, strings and plain containers only, and is read with
``torch.load(weights_only=True)``: loading a checkpoint never runs code from the file. It is
written atomically (a temporary file, fsync-ed, renamed over the old one).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ...serialization import atomic_write, torch_load
from ..nn.autoencoders import Autoencoder, ContractiveAutoencoder, ConvAutoencoder, DenoisingAutoencoder
from ..nn.layers import SparseInputLinear
from ..optim import adam
from ..nn.vae import VAE, ConvVAE

MODEL_KINDS = {cls.__name__: cls for cls in (Autoencoder, DenoisingAutoencoder, ContractiveAutoencoder,
                                             ConvAutoencoder, VAE, ConvVAE)}
CHECKPOINT_FORMAT = 1


def save_checkpoint(path, model, optimizer=None, epoch: int = 0, extra: dict | None = None) -> Path:
    """Write model kind + config + weights (+ optimizer state, epoch, random streams) to ``path``,
    atomically (a crash mid-write leaves the previous checkpoint whole)."""
    path = Path(path)
    state = {
        "format": CHECKPOINT_FORMAT,
        "kind": type(model).__name__,
        "config": model.config(),
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "epoch": int(epoch),
        "generator": model.generator.get_state() if hasattr(model, "generator") else None,
        "torch_rng": torch.get_rng_state(),
        "extra": extra or {},
    }
    return atomic_write(path, lambda fh: torch.save(state, fh))


def read_checkpoint(path) -> dict:
    """The raw state of a checkpoint written by :func:`save_checkpoint`, read with
    ``torch.load(weights_only=True)`` and checked; ValueError naming the file otherwise."""
    state = torch_load(path, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or state.get("kind") not in MODEL_KINDS:
        raise ValueError(f"{path}: not a fastgen autoencoder/VAE checkpoint")
    missing = [k for k in ("config", "model", "optimizer", "epoch", "generator", "torch_rng", "extra")
               if k not in state]
    epoch = state.get("epoch")
    if missing or not isinstance(state["config"], dict) or isinstance(epoch, bool) or not isinstance(epoch, int) \
            or epoch < 0 or not isinstance(state["extra"], dict):
        raise ValueError(f"{path}: not a fastgen autoencoder/VAE checkpoint (incomplete or inconsistent"
                         + (f": no {', '.join(missing)})" if missing else ")"))
    return state


def load_checkpoint(path, lr: float = 1e-3):
    """``(model, optimizer, epoch, extra)`` from :func:`save_checkpoint`'s file; restores the
    model's Philox stream and torch's CPU random state too. Reads tensors and plain containers
    only (``weights_only=True``); any unreadable, foreign or inconsistent file raises ValueError
    naming it."""
    state = read_checkpoint(path)
    try:
        model = MODEL_KINDS[state["kind"]](**state["config"])
        model.load_state_dict(state["model"])
        optimizer = adam(model.parameters(), lr=lr)
        if state["optimizer"] is not None:
            optimizer.load_state_dict(state["optimizer"])
            _transpose_legacy_moments(model, state["model"], optimizer)
        if state["generator"] is not None:
            model.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError, IndexError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"{path}: not a usable {state['kind']} checkpoint ({type(exc).__name__}: {first})") from None
    return model, optimizer, state["epoch"], state["extra"]


def _transpose_legacy_moments(model, saved_model_state: dict, optimizer) -> None:
    """Checkpoints written before the VAE's first layer became a SparseInputLinear hold that
    layer's ``weight`` as (out, in) (the model loads it transposed, see SparseInputLinear) and
    the optimizer's running moments in the same layout: transpose those moments too."""
    for name, module in model.named_modules():
        if isinstance(module, SparseInputLinear) and f"{name}.weight" in saved_model_state:
            for key, value in optimizer.state.get(module.weight_t, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() == 2:
                    optimizer.state[module.weight_t][key] = value.t().contiguous()
