"""Image grids as PNG files (Pillow), for samples and learned filters."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._checks import positive_int
from ._files import atomic_write


def normalize_per_image(images: np.ndarray) -> np.ndarray:
    """Scale each image (axis 0 indexes images) linearly to [0, 1]; a constant image becomes 0.5."""
    images = np.asarray(images, dtype=np.float64)
    axes = tuple(range(1, images.ndim))
    lo = images.min(axis=axes, keepdims=True)
    hi = images.max(axis=axes, keepdims=True)
    span = hi - lo
    return np.where(span > 0, (images - lo) / np.where(span > 0, span, 1.0), 0.5)


def tile_images(images, image_shape, *, ncols: int | None = None, padding: int = 1,
                background: float = 0.5, normalize: bool = False) -> np.ndarray:
    """Tile rows of ``images`` (each reshaped to ``image_shape`` = (height, width)) into one
    2-D float array in [0, 1], row-major, ``ncols`` images a row (default: a square-ish grid),
    separated by ``padding`` pixels of ``background``."""
    images = np.asarray(images)
    if images.dtype.kind not in "biuf":
        raise TypeError(f"images must be numeric, got dtype {images.dtype}")
    if len(image_shape) != 2:
        raise ValueError(f"image_shape must be (height, width), got {image_shape!r}")
    h, w = (positive_int(s, "image_shape") for s in image_shape)
    if images.ndim == 0 or images.size % (h * w) or images.size == 0:
        raise ValueError(f"images of shape {images.shape} cannot be cut into {h}x{w} images")
    images = images.reshape(-1, h, w).astype(np.float64)
    if not np.isfinite(images).all():
        raise ValueError("images contain NaN or infinity")
    if normalize:
        images = normalize_per_image(images)
    n = images.shape[0]
    if ncols is None:
        ncols = math.ceil(math.sqrt(n))
    ncols = min(positive_int(ncols, "ncols"), n)
    positive_int(padding, "padding", minimum=0)
    nrows = -(-n // ncols)
    grid = np.full((nrows * (h + padding) + padding, ncols * (w + padding) + padding), float(background))
    for k in range(n):
        r, c = divmod(k, ncols)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top:top + h, left:left + w] = images[k]
    return np.clip(grid, 0.0, 1.0)


def default_font(size: int):
    """Pillow's default font at ``size`` pixels (a fixed bitmap font on Pillow < 10.1)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def _label_rows(pixels: np.ndarray, row_labels, tile_height: int, pitch: int, first_top: int) -> np.ndarray:
    """``pixels`` (a uint8 grid) with a white margin at the left holding ``row_labels[r %
    len(row_labels)]`` in black beside each grid row r (rows ``pitch`` pixels apart, the first
    image's top at ``first_top``, each ``tile_height`` tall)."""
    from PIL import Image, ImageDraw

    labels = [str(label) for label in row_labels]
    font = default_font(max(11, min(22, tile_height // 3)))
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    margin = max(int(np.ceil(measure.textlength(label, font=font))) for label in labels) + 12
    image = Image.new("L", (pixels.shape[1] + margin, pixels.shape[0]), 255)
    image.paste(Image.fromarray(pixels), (margin, 0))
    draw = ImageDraw.Draw(image)
    n_rows = max(1, (pixels.shape[0] - first_top) // pitch)
    for r in range(n_rows):
        middle = first_top + r * pitch + tile_height / 2
        draw.text((margin - 6, middle), labels[r % len(labels)], fill=0, font=font, anchor="rm")
    return np.asarray(image)


def save_image_grid(images, path, image_shape, ncols: int | None = None, scale: int = 4, *,
                    normalize: bool = False, padding: int = 1, row_labels=None) -> Path:
    """Tile ``images`` (one image a row, values in [0, 1]) into a grayscale grid PNG at ``path``.

    Parameters
    ----------
    images : array of shape (n, height * width) or (n, height, width)
        Values outside [0, 1] are clipped (unless ``normalize``).
    path : str or Path
        Output file; missing parent folders are created.
    image_shape : (height, width)
    ncols : int, optional
        Images per grid row; default ``ceil(sqrt(n))``.
    scale : int, default=4
        Each pixel becomes a ``scale`` x ``scale`` block (nearest neighbour), so 8x8 digits stay
        visible.
    normalize : bool, default=False
        Scale each image to [0, 1] by its own minimum and maximum first (for filters / weights).
    padding : int, default=1
        Grey pixels between images (before scaling).
    row_labels : sequence of str, optional
        Text at the left of the grid's rows (black on a white margin), ``row_labels[r %
        len(row_labels)]`` beside row r: ("input", "reconstruction") labels alternate rows.

    Returns
    -------
    Path of the written file.
    """
    from PIL import Image

    scale = positive_int(scale, "scale")
    grid = tile_images(images, image_shape, ncols=ncols, padding=padding, normalize=normalize)
    pixels = np.rint(grid * 255.0).astype(np.uint8)
    if scale > 1:
        pixels = np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
    if row_labels is not None and len(row_labels):
        height = positive_int(image_shape[0], "image_shape")
        pixels = _label_rows(pixels, row_labels, height * scale, (height + padding) * scale, padding * scale)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # atomically: a kill mid-write keeps the previous picture
    atomic_write(path, lambda fh: Image.fromarray(pixels).save(fh, format="PNG"))
    return path
