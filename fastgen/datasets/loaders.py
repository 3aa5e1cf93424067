"""Data loaders: user files (.npy, .npz, MNIST IDX, any of them gzip-compressed), scikit-learn's
digits (embedded, no network) and the shared MNIST test set beside a checkout.

:func:`load_array` reads what a user is likely to have on disk and returns what the RBM
estimators take: a float array of shape (n_samples, n_features) with values in [0, 1]. The
format is recognised from the file's first bytes, not its name.
"""
from __future__ import annotations

import gzip
import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from .._checks import is_finite_real
from .._files import (existing_file, max_decompressed_bytes, npy_header, npy_nbytes, npz_member, open_npz,
                      read_bytes, read_npz_members, too_big)

# IDX type codes (third byte of the magic number) -> big-endian NumPy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_GZIP_MAGIC = b"\x1f\x8b"

# ``../shared/data/mnist_test_10k.npz`` beside the repository checkout (tests and benchmarks).
SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist_test_10k.npz"
# gzip data is decompressed in chunks of this size (see gunzip)
_CHUNK = 1 << 20


def load_digits_binary(*, return_y: bool = False, dtype=np.float64):
    """scikit-learn's 8x8 handwritten digits as RBM input: ``X = data / 16``.

    Embedded in scikit-learn (no download). Values are the 17 grey levels 0, 1/16, ..., 1
    (probabilities, as in scikit-learn's RBM example), not thresholded to 0/1.

    Returns
    -------
    X : ndarray of shape (1797, 64), values in [0, 1]
    y : ndarray of shape (1797,), only with ``return_y=True``
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = np.ascontiguousarray(digits.data / 16.0, dtype=dtype)
    return (X, digits.target) if return_y else X


# ---- IDX ------------------------------------------------------------------------------------------
def _idx_header(raw: bytes, name):
    """(header length, dims, dtype) of an IDX file's first bytes; ValueError when they are not one."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{name}: not an MNIST IDX file (bad magic number {raw[:4].hex() or 'none'})")
    if raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{name}: unknown IDX data type code 0x{raw[2]:02x} "
                         f"(known: {', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)})")
    ndim = raw[3]
    if ndim == 0:
        raise ValueError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions need {header})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    return header, dims, np.dtype(_IDX_DTYPES[raw[2]])


def _parse_idx(raw: bytes, name) -> np.ndarray:
    """Parse the bytes of an IDX file: magic ``00 00 <type> <ndim>``, ``ndim`` big-endian uint32
    dimensions, then the values in C order, big-endian."""
    header, dims, dtype = _idx_header(raw, name)
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow, however large the dims
    if len(raw) - header != expected:
        raise ValueError(f"{name}: IDX header declares shape {dims} of {dtype.name} ({expected:,} bytes) "
                         f"but the file holds {len(raw) - header:,} bytes of data")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))  # native byte order (and a writable copy)


def read_idx(path) -> np.ndarray:
    """Read an MNIST IDX file (optionally gzip-compressed) as an array of its stored type and shape."""
    path = existing_file(path)
    raw = read_bytes(path)
    if raw[:2] == _GZIP_MAGIC:
        raw = gunzip(raw, path, array=True)
    return _parse_idx(raw, path)


# ---- generic loader -------------------------------------------------------------------------------
def _declared_size(prefix: bytes, name="data", *, strict: bool = False):
    """Total bytes the data whose first bytes are ``prefix`` declares (header included), for a
    .npy or IDX header; None for other formats. ``strict``: the data must be a .npy array, an
    .npz archive or an IDX file (ValueError naming ``name`` otherwise, or for a bad header)."""
    try:
        if prefix.startswith(_NPY_MAGIC):
            fh = io.BytesIO(prefix)
            shape, _, dtype, consumed = npy_header(fh, name)
            return consumed + npy_nbytes(shape, dtype)
        if prefix[:2] == b"\x00\x00":
            header, dims, dtype = _idx_header(prefix, name)
            return header + math.prod(dims) * dtype.itemsize
    except ValueError:
        if strict:
            raise
        return None
    if strict and not (prefix.startswith(_ZIP_MAGIC) or prefix.startswith(_EMPTY_ZIP_MAGIC)):
        raise _unrecognised(name)
    return None


def _unrecognised(path) -> ValueError:
    return ValueError(f"{path}: unrecognised format (expected a .npy array, a .npz archive or an "
                      "MNIST IDX file, optionally gzip-compressed)")


def gunzip(raw: bytes, path, *, limit: int | None = None, array: bool = False) -> bytes:
    """Decompress gzip data in chunks, refusing (ValueError naming ``path``) corrupt data and
    more than ``limit`` bytes (default: :func:`max_decompressed_bytes`). When the decompressed
    data starts with a .npy or IDX header, it is also refused past the size that header declares,
    and the header's size against the limit is checked before the rest is decompressed.
    ``array``: the data must be a .npy array, an .npz archive or an IDX file, which is checked
    on the first chunk (so a bomb of anything else stops there)."""
    limit = max_decompressed_bytes() if limit is None else int(limit)
    out = bytearray()
    declared, sniffed = None, False
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw), mode="rb") as fh:
            while True:
                bound = limit if declared is None else declared
                chunk = fh.read(min(_CHUNK, bound + 1 - len(out)))
                if not chunk:
                    break
                out += chunk
                if declared is None and not sniffed and len(out) >= min(_CHUNK, 64 * 1024):
                    sniffed = True
                    declared = _declared_size(bytes(out[:_CHUNK]), path, strict=array)
                    if declared is not None and declared > limit:
                        raise too_big(path, declared, limit, "its header declares data")
                if len(out) > (limit if declared is None else declared):
                    if declared is not None:
                        raise ValueError(f"{path}: the decompressed data runs past the {declared:,} bytes its "
                                         "header declares (a corrupt or crafted file)")
                    raise too_big(path, len(out), limit, "decompressed data of more than")
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt gzip data ({exc})") from None
    if not out:
        raise ValueError(f"{path}: empty file (after gzip decompression)")
    return bytes(out)


def _from_npz(raw: bytes, path, key):
    archive, members = open_npz(raw, path)
    with archive:
        names = list(members)
        if not names:
            raise ValueError(f"{path}: the .npz archive holds no arrays")
        if key is None:
            key = "data" if "data" in names else names[0]
        elif key not in names:
            raise ValueError(f"{path}: no array {key!r} in the archive (it holds {', '.join(names)})")
        return npz_member(archive, members[key], path, key, max_decompressed_bytes()), key


def _from_npy(raw: bytes, path):
    fh = io.BytesIO(raw)
    shape, fortran, dtype, consumed = npy_header(fh, path)
    declared = npy_nbytes(shape, dtype)
    if declared > len(raw) - consumed:
        raise ValueError(f"{path}: .npy header declares shape {shape} of {dtype} ({declared:,} bytes) but the "
                         f"file holds {len(raw) - consumed:,} bytes of data")
    array = np.frombuffer(raw, dtype=dtype, count=math.prod(int(d) for d in shape), offset=consumed)
    if fortran:
        return array.reshape(shape[::-1]).T.copy()
    return array.reshape(shape).copy()


def read_raw_array(path: Path, key=None):
    """(array, key) of a data file as stored (its dtype and shape, nothing scaled): a .npy
    array, an .npz archive's ``key`` (default: 'data' if present, else the first array; the key
    used is returned, None for the other formats) or an MNIST IDX file, optionally
    gzip-compressed; read without pickles, every size checked before anything is allocated."""
    raw = read_bytes(path)
    if raw[:2] == _GZIP_MAGIC:
        raw = gunzip(raw, path, array=True)
    if raw.startswith(_ZIP_MAGIC) or raw.startswith(_EMPTY_ZIP_MAGIC):
        return _from_npz(raw, path, key)
    if key is not None and (raw.startswith(_NPY_MAGIC) or raw[:2] == b"\x00\x00"):
        kind = ".npy array" if raw.startswith(_NPY_MAGIC) else "MNIST IDX file"
        raise ValueError(f"{path}: a {kind} holds one array; key {key!r} applies to .npz archives only")
    if raw.startswith(_NPY_MAGIC):
        return _from_npy(raw, path), None
    if raw[:2] == b"\x00\x00":
        return _parse_idx(raw, path), None
    raise _unrecognised(path)


def read_labels(path, key=None):
    """The labels array of a data file's .npz archive (``key``, else 'labels' or 'y'), or None
    when the file is not an .npz archive or holds none; read like :func:`load_array` reads data."""
    path = existing_file(path)
    raw = read_bytes(path)
    if raw[:2] == _GZIP_MAGIC:
        raw = gunzip(raw, path, array=True)
    if not (raw.startswith(_ZIP_MAGIC) or raw.startswith(_EMPTY_ZIP_MAGIC)):
        if key is not None:
            raise ValueError(f"{path}: not an .npz archive, so no array {key!r} (labels key)")
        return None
    _, members = open_npz(raw, path)
    for name in ([key] if key else ["labels", "y"]):
        if name in members:
            return read_npz_members(raw, path, [name])[name]
    if key is not None:
        raise ValueError(f"{path}: no array {key!r} (labels key)")
    return None


def load_array(path, *, binarize: float | None = None, key: str | None = None, dtype=np.float64) -> np.ndarray:
    """Load a data file as RBM input: a float array of shape (n_samples, n_features).

    Parameters
    ----------
    path : str or Path
        A ``.npy`` array, a ``.npz`` archive (array ``key``; by default ``'data'`` if present,
        else the first array stored) or an MNIST IDX file such as ``train-images-idx3-ubyte``;
        any of them may be gzip-compressed. The format is recognised from the content.
    binarize : float, optional
        Threshold: after scaling, values ``> binarize`` become 1 and the rest 0. ``0.5`` on
        MNIST's uint8 pixels is the usual ``pixel > 127`` binarisation.
    key : str, optional
        Array to read from a ``.npz`` archive.
    dtype : float32 or float64, default=float64

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The first axis is the sample axis; the others are flattened (MNIST's (n, 28, 28)
        becomes (n, 784)). Integer data is divided by its dtype's maximum (uint8 by 255, so
        unsigned data lands in [0, 1]); booleans become 0/1; floats are kept as they are.

    Raises
    ------
    ValueError
        Naming the file, when it is missing, empty, unreadable, not numeric, has no samples or
        features, or holds NaN/infinity.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if binarize is not None and not is_finite_real(binarize):
        raise ValueError(f"binarize must be a finite threshold, got {binarize!r}")
    path = existing_file(path)
    data, used_key = read_raw_array(path, key)
    what = f"{path}" + (f" (array {used_key!r})" if used_key is not None else "")
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{what}: expected numeric data, got dtype {data.dtype}")
    if data.ndim < 2:
        raise ValueError(f"{what}: expected an array of samples (2-D or more, samples first), got shape {data.shape}")
    n_samples = data.shape[0]
    n_features = int(np.prod(data.shape[1:], dtype=np.int64))
    if n_samples == 0 or n_features == 0:
        raise ValueError(f"{what}: no data (shape {data.shape})")
    X = data.reshape(n_samples, n_features)
    if X.dtype.kind in "iu":
        X = X.astype(dtype) / dtype.type(np.iinfo(X.dtype).max)
    else:
        X = X.astype(dtype)
        if X.dtype.kind == "f" and not np.isfinite(X).all():
            raise ValueError(f"{what}: holds NaN or infinite values")
    if binarize is not None:
        X = (X > binarize).astype(dtype)
    return np.ascontiguousarray(X)


def load_mnist_shared(path=None, *, binary: bool = True, dtype=np.float32) -> np.ndarray:
    """The MNIST test set from the shared data folder (``../shared/data/mnist_test_10k.npz``
    beside the checkout; key ``'data'``, uint8 of shape (10000, 28, 28)).

    ``binary=True`` applies the benchmarks' convention ``data.reshape(-1, 784) > 127``;
    ``binary=False`` gives ``data / 255``. Returns shape (10000, 784) in ``dtype``.
    """
    path = SHARED_MNIST if path is None else Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (the shared MNIST file is only beside a checkout "
                         "of the repository; pass its path)")
    data, _ = read_raw_array(path, "data")
    if data.dtype != np.uint8 or data.ndim != 3 or data.shape[1:] != (28, 28):
        raise ValueError(f"{path}: expected uint8 images of shape (n, 28, 28), got {data.dtype} {data.shape}")
    flat = data.reshape(-1, 784)
    return (flat > 127).astype(dtype) if binary else (flat / 255.0).astype(dtype)
