"""Data for the GANs: the standard 2-D Gaussian mixtures with their mode-coverage metrics, and
images for ``fastgen train gan`` (scikit-learn's digits by default, or a file)."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..._checks import positive_int
from ._checks import positive_float
from .dcgan import IMAGE_SIZES

# The synthetic benchmarks of Metz et al. 2017 / Srivastava et al. 2017 (VEEGAN) / Lin et al.
# 2018 (PacGAN): 8 modes on a circle of radius 2 (sd 0.02), 25 modes on the grid {-4,-2,0,2,4}^2
# (sd 0.05).
RING_RADIUS, RING_STD = 2.0, 0.02
GRID_SPACING, GRID_STD = 2.0, 0.05
HIGH_QUALITY_SDS = 3.0
MIN_SAMPLES_PER_MODE = 20   # PacGAN's rule: a mode with fewer than 20 of 2,500 samples within 3 sd is lost


def ring_centres(n_modes: int = 8, radius: float = RING_RADIUS) -> torch.Tensor:
    """(n_modes, 2) centres on a circle."""
    angle = 2 * math.pi * torch.arange(positive_int(n_modes, "n_modes"), dtype=torch.float64) / n_modes
    return positive_float(radius, "radius") * torch.stack([angle.cos(), angle.sin()], dim=1)


def grid_centres(side: int = 5, spacing: float = GRID_SPACING) -> torch.Tensor:
    """(side^2, 2) centres on a square grid centred at 0."""
    side = positive_int(side, "side")
    axis = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * positive_float(spacing, "spacing")
    return torch.cartesian_prod(axis, axis)


def sample_mixture(centres: torch.Tensor, std: float, n: int, generator: torch.Generator | None = None,
                   dtype=torch.float32) -> torch.Tensor:
    """n samples (n, 2) of the equal-weight mixture of isotropic Gaussians at ``centres``."""
    n, std = positive_int(n, "n"), positive_float(std, "std")
    which = torch.randint(0, centres.shape[0], (n,), generator=generator)
    noise = torch.randn(n, centres.shape[1], generator=generator, dtype=torch.float64)
    return (centres[which] + std * noise).to(dtype)


def mode_coverage(samples: torch.Tensor, centres: torch.Tensor, std: float, *,
                  n_sds: float = HIGH_QUALITY_SDS, min_samples: int = MIN_SAMPLES_PER_MODE) -> dict:
    """Mode coverage of generated 2-D samples.

    A sample is *high quality* when it lies within ``n_sds`` standard deviations (Euclidean
    distance) of its nearest centre; a mode is *covered* when at least ``min_samples``
    high-quality samples have it as their nearest centre.

    Parameters
    ----------
    samples : Tensor (N, 2)
    centres : Tensor (K, 2)
    std : float
        The modes' standard deviation.

    Returns
    -------
    dict with ``modes_covered`` (int), ``n_modes``, ``high_quality_share`` (fraction of the N
    samples), ``per_mode`` (list of K high-quality counts), and the rule's settings.
    """
    if samples.dim() != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(f"samples must have shape (N, {centres.shape[1]}), got {tuple(samples.shape)}")
    d = torch.cdist(samples.double(), centres.double())
    dist, nearest = d.min(dim=1)
    good = dist <= n_sds * std
    per_mode = torch.bincount(nearest[good], minlength=centres.shape[0])
    return {"modes_covered": int((per_mode >= min_samples).sum()), "n_modes": int(centres.shape[0]),
            "high_quality_share": float(good.double().mean()), "per_mode": per_mode.tolist(),
            "n_samples": int(samples.shape[0]), "rule": f"high quality: within {n_sds:g} sd of the nearest mode; "
            f"covered: >= {min_samples} high-quality samples"}


# ---- images for the command line -------------------------------------------------------------------
def _to_nchw(array: np.ndarray, what: str) -> np.ndarray:
    if array.ndim == 2:
        side = math.isqrt(array.shape[1])
        if side * side != array.shape[1]:
            raise ValueError(f"{what}: {array.shape[1]} features per sample is not a square image; give images "
                             "as (N, H, W) or (N, C, H, W)")
        return array.reshape(-1, 1, side, side)
    if array.ndim == 3:
        return array[:, None]
    if array.ndim == 4:
        return array
    raise ValueError(f"{what}: expected images of shape (N, H, W) or (N, C, H, W), got {array.shape}")


def load_images(source: str = "digits", image_size: int | None = None, *, key: str | None = None,
                labels_key: str | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images in [-1, 1] as float32 (N, C, S, S) for the DCGAN, and their labels when known.

    Parameters
    ----------
    source : "digits" or a path
        ``"digits"``: scikit-learn's 1,797 8x8 digits (labels included), resized to
        ``image_size`` (default 32) bilinearly. A path: a .npy / .npz / MNIST-IDX file (see
        :func:`fastgen.datasets.load_array`) holding (N, H, W), (N, C, H, W) or (N, H*W) images;
        integers are divided by their type's maximum, floats must lie in [0, 1].
    image_size : {28, 32, 64}, optional
        Resize to this size; without it a file's images must already be 28, 32 or 64 pixels
        square.
    key, labels_key : str, optional
        Arrays of a .npz archive (default: 'data' / the first array, and 'labels' or 'y' if present).

    Returns
    -------
    images : Tensor (N, C, S, S) in [-1, 1]
    labels : LongTensor (N,) or None
    """
    from ...datasets import existing_file, read_labels, read_raw_array

    if image_size is not None and image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {', '.join(map(str, IMAGE_SIZES))}, got {image_size!r}")
    labels = None
    if source == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        array = (digits.images / 16.0).astype(np.float32)[:, None]
        labels = torch.from_numpy(digits.target.astype(np.int64))
        image_size = image_size or 32
        what = "scikit-learn's digits"
    else:
        path = existing_file(source)
        array, used = read_raw_array(path, key)
        what = f"{path}"
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{what}: expected numeric images, got dtype {array.dtype}")
        array = _to_nchw(np.asarray(array), what)
        if array.dtype.kind in "iu":
            array = array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max)
        else:
            array = array.astype(np.float32)
            if not np.isfinite(array).all():
                raise ValueError(f"{what}: holds NaN or infinite values")
            if array.min() < 0 or array.max() > 1:
                raise ValueError(f"{what}: float images must lie in [0, 1], got {array.min():g} .. {array.max():g}")
        found = read_labels(path, labels_key)  # checked like the images: no pickles, sizes before allocation
        if found is not None:
            if found.dtype.kind not in "biu":
                raise ValueError(f"{what}: labels must be integers, got dtype {found.dtype}")
            labels = torch.from_numpy(np.asarray(found).astype(np.int64).reshape(-1))
            if labels.numel() and int(labels.min()) < 0:
                raise ValueError(f"{what}: labels must be >= 0, got {int(labels.min())}")
    if array.shape[0] == 0:
        raise ValueError(f"{what}: no images")
    if array.shape[1] not in (1, 3):
        raise ValueError(f"{what}: images with {array.shape[1]} channels; expected 1 (grey) or 3 (RGB), channels "
                         "first")
    images = torch.from_numpy(np.ascontiguousarray(array))
    h, w = images.shape[2:]
    if image_size is None:
        if h != w or h not in IMAGE_SIZES:
            raise ValueError(f"{what}: images are {h}x{w}; the DCGAN architectures take 28x28, 32x32 or 64x64 "
                             "images (pass an image size to resize)")
    elif (h, w) != (image_size, image_size):
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False,
                               antialias=image_size < max(h, w))
    return (images.clamp(0, 1) * 2 - 1).contiguous(), labels


__all__ = ["ring_centres", "grid_centres", "sample_mixture", "mode_coverage", "load_images", "RING_STD", "GRID_STD"]
