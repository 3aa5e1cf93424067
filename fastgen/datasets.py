"""Datasets: scikit-learn's digits (embedded default, no network) and loaders for user files."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_digits_binary():
    """scikit-learn's 8x8 digits scaled to [0, 1]: (X of shape (1797, 64), y)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data / 16.0, digits.target


def _read_idx(raw: bytes, path) -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an MNIST IDX file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=_IDX_DTYPES[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: IDX header says {dims} but holds {data.size} values")
    return data.reshape(dims)


def load_array(path, *, binarize: float | None = None) -> np.ndarray:
    """Read a .npy, .npz (key 'data', else the first array) or MNIST IDX (optionally .gz) file
    as a float array of shape (n_samples, n_features); integer data is scaled by its dtype's
    maximum (uint8 / 255); ``binarize`` thresholds the scaled values to 0/1."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    name = path.name.lower()
    try:
        if name.endswith(".npy"):
            data = np.load(path, allow_pickle=False)
        elif name.endswith(".npz"):
            with np.load(path, allow_pickle=False) as archive:
                if not archive.files:
                    raise ValueError(f"{path}: the archive holds no arrays")
                data = archive["data" if "data" in archive.files else archive.files[0]]
        else:
            raw = path.read_bytes()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            data = _read_idx(raw, path)
    except (OSError, EOFError, struct.error) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from exc
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{path}: expected numeric data, got dtype {data.dtype}")
    if data.ndim < 2 or data.shape[0] == 0:
        raise ValueError(f"{path}: expected at least one sample of 2-D or higher data, got shape {data.shape}")
    X = data.reshape(data.shape[0], -1)
    if X.dtype.kind in "iu":
        X = X.astype(np.float64) / float(np.iinfo(X.dtype).max)
    elif X.dtype.kind == "b":
        X = X.astype(np.float64)
    if binarize is not None:
        X = (X > binarize).astype(np.float64)
    return X


def save_image_grid(images, path, image_shape, *, ncols: int = 10, scale: int = 4, normalize: bool = False) -> Path:
    """Tile images (rows of ``images``, values in [0, 1]) into a grid PNG."""
    from PIL import Image

    images = np.asarray(images, dtype=np.float64).reshape(-1, *image_shape)
    if normalize:
        lo = images.min(axis=(1, 2), keepdims=True)
        hi = images.max(axis=(1, 2), keepdims=True)
        images = (images - lo) / np.where(hi > lo, hi - lo, 1.0)
    n, h, w = images.shape
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    grid = np.ones((nrows * (h + 1) + 1, ncols * (w + 1) + 1)) * 0.5
    for k in range(n):
        r, c = divmod(k, ncols)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = images[k]
    pixels = (np.clip(grid, 0, 1) * 255).astype(np.uint8)
    image = Image.fromarray(pixels, mode="L").resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
