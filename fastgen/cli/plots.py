"""Every picture the commands draw: RBM samples and filters (samples.png, filters.png) and the
waveform repairs (waveforms.png). Image grids themselves are :mod:`fastgen._png`."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .._files import atomic_write
from .._png import default_font, save_image_grid

N_IMAGES = 100       # samples in samples.png
SAMPLE_STEPS = 1000  # Gibbs steps from noise to each sample
MAX_FILTERS = 256    # rows of W in filters.png


def _samples_for_display(model, n: int, steps: int, seed: int) -> np.ndarray:
    """``n`` chains run ``steps`` block-Gibbs steps from uniform noise (Generator(seed)); shown as
    the mean of the last visible step, P(v | h), which reads better than binary states."""
    from ..random import Generator

    gen = Generator(seed)
    states = model.sample(n, steps=steps, generator=gen)
    return model.visible_probs(model.sample_hidden(states, generator=gen))


def tempering_samples_for_display(model, n: int, steps: int, n_temperatures: int, seed: int) -> np.ndarray:
    """``n`` chains of parallel tempering (``n_temperatures`` replicas from beta = 1 down to 0,
    ``steps`` steps, Generator(seed)); the beta = 1 replica shown as P(v | h) of its last step.
    Tempering mixes between modes where plain Gibbs from noise settles in one or two."""
    from ..models.tempering import ParallelTempering, temperature_ladder
    from ..random import Generator

    gen = Generator(seed)
    sampler = ParallelTempering.start(model.n_visible, n, temperature_ladder(n_temperatures), dtype=model.dtype)
    states = sampler.step(model, generator=gen, n_steps=steps)
    return model.visible_probs(model.sample_hidden(states, generator=gen))


def write_rbm_pngs(model, out_dir: Path, image_shape, seed: int, *, steps: int = SAMPLE_STEPS,
                   n_samples: int = N_IMAGES, samples: np.ndarray | None = None) -> list[Path]:
    """samples.png (model samples: ``samples`` if given, else Gibbs chains from noise) and
    filters.png (rows of W, each normalised to [0, 1]) in ``out_dir``; returns their paths."""
    if samples is None:
        samples = _samples_for_display(model, n_samples, steps, seed)
    filters = model.weights[:MAX_FILTERS]
    return [
        save_image_grid(samples, out_dir / "samples.png", image_shape, ncols=10),
        save_image_grid(filters, out_dir / "filters.png", image_shape,
                        ncols=math.ceil(math.sqrt(filters.shape[0])), normalize=True),
    ]


# Colours of waveforms.png (RGB).
_ORIGINAL, _CORRUPTED, _LINEAR, _REPAIRED = (0, 0, 0), (214, 39, 40), (255, 160, 40), (31, 90, 200)


def write_waveform_png(path: Path, rows, full_scale: int) -> Path:
    """Line plots, one panel a test signal: the original (black), the corrupted input (red,
    dropping to 0 on the lost stretch, which is shaded), linear interpolation (orange) and the
    RBM repair (blue) across the lost stretch. ``rows``: (title, original, corrupted, linear,
    repaired, lost mask) per panel."""
    from PIL import Image, ImageDraw

    width, left, right, panel_h, plot_h, legend_h = 760, 44, 16, 150, 112, 34
    plot_w = width - left - right
    image = Image.new("RGB", (width, legend_h + panel_h * len(rows) + 6), "white")
    draw = ImageDraw.Draw(image)
    font, small = default_font(13), default_font(11)

    x = left
    for label, colour, line_width in (("original", _ORIGINAL, 2), ("corrupted input", _CORRUPTED, 1),
                                      ("linear interpolation", _LINEAR, 2), ("RBM repair", _REPAIRED, 2)):
        draw.line([(x, 17), (x + 26, 17)], fill=colour, width=line_width + 1)
        draw.text((x + 32, 9), label, fill=(0, 0, 0), font=font)
        x += 32 + int(draw.textlength(label, font=font)) + 24
    draw.rectangle([x, 10, x + 26, 24], fill=(228, 228, 228))
    draw.text((x + 32, 9), "lost stretch", fill=(0, 0, 0), font=font)

    for index, (title, original, corrupted, linear, repaired, lost) in enumerate(rows):
        top = legend_h + index * panel_h + 22
        n_points = original.shape[0]

        def xy(t, level):
            return (left + t * plot_w / (n_points - 1), top + (1.0 - level / full_scale) * plot_h)

        draw.text((left, top - 19), title, fill=(0, 0, 0), font=font)
        gap = np.flatnonzero(lost)
        x0, x1 = xy(gap[0] - 0.5, 0)[0], xy(gap[-1] + 0.5, 0)[0]
        draw.rectangle([x0, top, x1, top + plot_h], fill=(228, 228, 228))
        draw.rectangle([left, top, left + plot_w, top + plot_h], outline=(170, 170, 170))
        for level in (0, full_scale // 2 + 1, full_scale):
            y = xy(0, level)[1]
            draw.text((left - 6, y), str(level), fill=(90, 90, 90), font=small, anchor="rm")
        span = slice(max(gap[0] - 1, 0), min(gap[-1] + 2, n_points))   # the gap and its known ends
        t = np.arange(n_points)
        draw.line([xy(i, c) for i, c in zip(t, corrupted)], fill=_CORRUPTED, width=1)
        draw.line([xy(i, o) for i, o in zip(t, original)], fill=_ORIGINAL, width=2)
        draw.line([xy(i, s) for i, s in zip(t[span], linear[span])], fill=_LINEAR, width=2)
        draw.line([xy(i, s) for i, s in zip(t[span], repaired[span])], fill=_REPAIRED, width=3)
    return atomic_write(path, lambda fh: image.save(fh, format="PNG"))  # never a half-written PNG
