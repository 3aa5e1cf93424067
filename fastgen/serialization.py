"""Safe model files: what the ``fastgen`` command writes and reads back.

Nothing here unpickles. A :class:`~fastgen.BernoulliRBM` is saved as a NumPy ``.npz`` archive of
its fitted arrays plus one JSON string (its ``get_params()``, its random stream's state and the
archive's format), and read back with ``allow_pickle=False``: a file can hold numbers and text,
never code. Torch checkpoints are read with ``torch.load(weights_only=True)`` (tensors and plain
containers only), see :func:`torch_load`.

Every file is written atomically (:func:`atomic_write`, from :mod:`fastgen._files`): into a temporary file in the target's
folder, flushed and fsync-ed, then renamed over the target, so a crash or a kill mid-write leaves
the previous file as it was and no partial file behind.

Pickling a fitted estimator yourself (``pickle.dump(rbm, fh)``) keeps working as scikit-learn
documents; only load pickles you trust.
"""
from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ._files import atomic_write, existing_file, read_npz_members

__all__ = ["atomic_write", "save_rbm", "load_rbm", "torch_load", "RBM_FORMAT"]

RBM_FORMAT = "fastgen.BernoulliRBM/1"

# Arrays of a saved BernoulliRBM (attribute name -> archive key). The three parameters are
# required; the others exist when the fitted estimator has them.
_REQUIRED = ("components_", "intercept_hidden_", "intercept_visible_")
_VELOCITY_KEYS = ("velocity_weights", "velocity_visible_bias", "velocity_hidden_bias")
_TEMPERING_KEYS = ("tempering_betas", "tempering_visible", "tempering_swap_attempts", "tempering_swap_accepts")
# A saved model's JSON header is small; a larger one is not ours.
_MAX_META_CHARS = 1 << 20


# ---- BernoulliRBM -----------------------------------------------------------------------------------
def _json_param(name, value):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    raise ValueError(f"cannot save parameter {name}={value!r}: only None, bools, numbers and strings are "
                     "stored (pass an int random_state, for instance)")


def save_rbm(estimator, path) -> Path:
    """Write a fitted :class:`fastgen.BernoulliRBM` to ``path`` (a ``.npz`` archive), atomically.

    The archive holds ``components_``, ``intercept_hidden_``, ``intercept_visible_``, the
    persistent chains ``h_samples_``, the momentum buffers, the running column sums of the
    training data, the parallel-tempering replicas (when there are any) and a JSON string with
    ``get_params()`` and the random stream's state: everything :func:`load_rbm` needs to give an
    estimator that transforms, scores and continues training exactly like this one.
    """
    from .sklearn import BernoulliRBM

    if not isinstance(estimator, BernoulliRBM):
        raise TypeError(f"save_rbm saves a fastgen BernoulliRBM, got {type(estimator).__name__}")
    if not hasattr(estimator, "components_"):
        raise ValueError("save_rbm needs a fitted BernoulliRBM (call fit or partial_fit first)")
    params = {name: _json_param(name, value) for name, value in estimator.get_params(deep=False).items()}
    arrays = {name: np.ascontiguousarray(getattr(estimator, name)) for name in _REQUIRED}
    if getattr(estimator, "h_samples_", None) is not None:
        arrays["h_samples_"] = np.ascontiguousarray(estimator.h_samples_)
    velocities = getattr(estimator, "_velocities", None)
    if velocities is not None:
        for key, value in zip(_VELOCITY_KEYS, velocities):
            arrays[key] = np.ascontiguousarray(value)
    sums = getattr(estimator, "_visible_sums", None)
    if sums is not None:
        arrays["visible_sums"] = np.asarray(sums[0], np.float64)
    tempering = getattr(estimator, "tempering_", None)
    if tempering is not None:
        for key, attr in zip(_TEMPERING_KEYS, ("betas", "visible", "swap_attempts", "swap_accepts")):
            arrays[key] = np.ascontiguousarray(getattr(tempering, attr))
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        arrays["feature_names_in_"] = np.asarray([str(n) for n in names], dtype=str)
    generator = getattr(estimator, "_generator", None)
    meta = {
        "format": RBM_FORMAT,
        "class": type(estimator).__name__,
        "params": params,
        "generator": None if generator is None else {k: int(v) for k, v in generator.get_state().items()},
        "visible_count": None if sums is None else int(sums[1]),
        "tempering_steps": None if tempering is None else int(tempering.steps),
    }
    arrays["meta"] = np.array(json.dumps(meta))

    def write(fh):
        np.savez(fh, **arrays)

    return atomic_write(path, write)


def _bad(path, why) -> ValueError:
    return ValueError(f"{path}: not a saved fastgen BernoulliRBM ({why})")


def _read_npz(path: Path) -> dict:
    """All arrays of an .npz archive, read without pickles; each member's declared shape is
    checked against its stored size before anything is allocated."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, expected a saved model file") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not raw:
        raise _bad(path, "empty file")
    if not raw.startswith(b"PK\x03\x04"):
        hint = ("; it looks like a pickle, which fastgen never loads: models saved by earlier versions of "
                "'fastgen train rbm --save' were pickles; retrain, or convert one you trust with "
                "pickle.load + fastgen.serialization.save_rbm") \
            if raw[:1] == b"\x80" else ""
        raise _bad(path, f"not an .npz archive{hint}")
    return read_npz_members(raw, path)


def _float_array(arrays, key, path, ndim, dtype=None):
    a = arrays.get(key)
    if a is None:
        raise _bad(path, f"no array {key!r}")
    if a.dtype not in (np.float32, np.float64) or a.ndim != ndim:
        raise _bad(path, f"{key} must be a {ndim}-D float32/float64 array, got {a.dtype} of shape {a.shape}")
    if dtype is not None and a.dtype != dtype:
        raise _bad(path, f"{key} is {a.dtype}, components_ {dtype}")
    if not np.isfinite(a).all():
        raise _bad(path, f"{key} holds NaN or infinity")
    return np.ascontiguousarray(a)


def _expect_shape(a, shape, key, path):
    if a.shape != shape:
        raise _bad(path, f"{key} has shape {a.shape}, expected {shape} to match components_")
    return a


def load_rbm(path):
    """A :class:`fastgen.BernoulliRBM` from a file written by :func:`save_rbm`.

    Reads only arrays and a JSON string (``np.load(..., allow_pickle=False)`` semantics); checks
    that every array has the shape and dtype the model needs. Raises ValueError naming the file
    for anything else (a missing, empty, corrupt or foreign file, a pickle, inconsistent shapes).
    """
    from .random import Generator
    from .sklearn import BernoulliRBM

    path = existing_file(path, "saved model")
    arrays = _read_npz(path)
    meta_array = arrays.get("meta")
    if meta_array is None or meta_array.dtype.kind != "U" or meta_array.ndim != 0 \
            or len(str(meta_array)) > _MAX_META_CHARS:
        raise _bad(path, "no settings record")
    try:
        meta = json.loads(str(meta_array))
    except ValueError as exc:
        raise _bad(path, f"unreadable settings record: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != RBM_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise _bad(path, f"format {found!r}, expected {RBM_FORMAT!r}")
    params = meta.get("params")
    if not isinstance(params, dict):
        raise _bad(path, "no parameters")
    known = BernoulliRBM().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise _bad(path, f"unknown parameters {', '.join(unknown)}")
    estimator = BernoulliRBM(**params)
    try:
        estimator._check_params()
    except (TypeError, ValueError) as exc:
        raise _bad(path, f"invalid parameters: {exc}") from None

    W = _float_array(arrays, "components_", path, 2)
    n_hidden, n_visible = W.shape
    if n_hidden != estimator.n_components or n_visible == 0:
        raise _bad(path, f"components_ has shape {W.shape}, n_components is {estimator.n_components}")
    dtype = W.dtype
    fitted = {
        "components_": W,
        "intercept_hidden_": _expect_shape(_float_array(arrays, "intercept_hidden_", path, 1, dtype), (n_hidden,),
                                           "intercept_hidden_", path),
        "intercept_visible_": _expect_shape(_float_array(arrays, "intercept_visible_", path, 1, dtype),
                                            (n_visible,), "intercept_visible_", path),
    }
    n_chains = estimator.n_chains or estimator.batch_size
    if "h_samples_" in arrays:
        h = _float_array(arrays, "h_samples_", path, 2, dtype)
        if h.shape[1] != n_hidden:
            raise _bad(path, f"h_samples_ has shape {h.shape}, expected (n_chains, {n_hidden})")
        fitted["h_samples_"] = h
    else:
        fitted["h_samples_"] = np.zeros((n_chains, n_hidden), dtype)
    velocities = None
    if any(k in arrays for k in _VELOCITY_KEYS):
        velocities = tuple(_expect_shape(_float_array(arrays, k, path, a.ndim, dtype), a.shape, k, path)
                           for k, a in zip(_VELOCITY_KEYS, (W, fitted["intercept_visible_"],
                                                            fitted["intercept_hidden_"])))
    fitted["_velocities"] = velocities
    if "visible_sums" in arrays:
        sums = _expect_shape(_float_array(arrays, "visible_sums", path, 1, np.float64), (n_visible,),
                             "visible_sums", path)
        count = meta.get("visible_count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise _bad(path, f"visible_count must be an integer >= 0, got {count!r}")
        fitted["_visible_sums"] = (sums, count)
    state = meta.get("generator")
    if state is not None:
        try:
            generator = Generator(0)
            generator.set_state(state)
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(path, f"invalid random stream state {state!r}: {exc}") from None
        fitted["_generator"] = generator
    if any(k in arrays for k in _TEMPERING_KEYS):
        fitted["tempering_"] = _load_tempering(arrays, meta, path, dtype, n_visible)
    if "feature_names_in_" in arrays:
        names = arrays["feature_names_in_"]
        if names.dtype.kind != "U" or names.shape != (n_visible,):
            raise _bad(path, f"feature_names_in_ must be {n_visible} strings")
        fitted["feature_names_in_"] = names.astype(object)
    fitted["n_features_in_"] = n_visible
    fitted["_n_features_out"] = n_hidden
    for name, value in fitted.items():
        setattr(estimator, name, value)
    return estimator


def _load_tempering(arrays, meta, path, dtype, n_visible):
    from .models.tempering import ParallelTempering

    missing = [k for k in _TEMPERING_KEYS if k not in arrays]
    if missing:
        raise _bad(path, f"incomplete parallel-tempering state (no {', '.join(missing)})")
    betas = _float_array(arrays, "tempering_betas", path, 1)
    visible = _float_array(arrays, "tempering_visible", path, 3, dtype)
    counts = []
    for key in ("tempering_swap_attempts", "tempering_swap_accepts"):
        a = arrays[key]
        if a.dtype.kind not in "iu" or a.shape != (betas.shape[0] - 1,):
            raise _bad(path, f"{key} must be {betas.shape[0] - 1} integers")
        counts.append(a.astype(np.int64))
    if visible.shape[0] != betas.shape[0] or visible.shape[2] != n_visible:
        raise _bad(path, f"tempering_visible has shape {visible.shape}, expected ({betas.shape[0]}, n_chains, "
                         f"{n_visible})")
    steps = meta.get("tempering_steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise _bad(path, f"tempering_steps must be an integer >= 0, got {steps!r}")
    try:
        return ParallelTempering(betas, visible, counts[0], counts[1], steps)
    except ValueError as exc:
        raise _bad(path, str(exc)) from None


# ---- torch ----------------------------------------------------------------------------------------
def torch_load(path, what: str):
    """``torch.load(path, weights_only=True)`` on the CPU: tensors, numbers, strings and plain
    containers only, never arbitrary objects. Every failure becomes a ValueError naming the file
    and ``what`` was expected (a missing file, a directory, an empty, truncated, corrupt or
    foreign file, a pickle of other objects)."""
    import pickle

    import torch

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, expected a {what} file")
    if not path.is_file():
        raise ValueError(f"{path}: no such {what} file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise ValueError(f"{path}: empty file, not a {what}")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            raise ValueError(f"{path}: not a readable {what}: it holds objects other than tensors, numbers, "
                             "strings and plain containers, which are never loaded (no code runs from a "
                             "checkpoint)") from None
        if "weights_only" in str(exc) or "WeightsUnpickler" in str(exc):
            raise ValueError(f"{path}: not a readable {what}: corrupt, or not a torch file of tensors and plain "
                             "containers (refused; nothing in it was run)") from None
        raise ValueError(f"{path}: not a readable {what} (corrupt: {_first_line(exc)})") from None
    except MemoryError:
        raise ValueError(f"{path}: not a readable {what} (it declares more data than fits in memory)") from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, KeyError, AttributeError, IndexError,
            ImportError, UnicodeDecodeError, zipfile.BadZipFile, OverflowError) as exc:
        raise ValueError(f"{path}: not a readable {what} ({type(exc).__name__}: {_first_line(exc)})") from None


def _first_line(exc, limit: int = 200) -> str:
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    return first if len(first) <= limit else first[:limit] + "..."


def fingerprint(*arrays) -> str:
    """A short content hash (SHA-256, hex, 16 characters) of arrays (NumPy or CPU torch) or
    strings: identifies the data a checkpoint was trained on."""
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        if isinstance(a, str):
            h.update(b"s")
            h.update(a.encode("utf-8", "surrogatepass"))
            continue
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]

