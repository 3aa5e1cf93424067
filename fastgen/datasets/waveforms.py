"""Generated periodic waveforms (the data of ``fastgen demo waveforms``).

:func:`make_waveforms` generates binary-coded sawtooth, sine and square waves;
:func:`encode_waveforms` / :func:`decode_waveforms` convert between signals and the RBM's binary
units, :func:`corrupt_waveforms` loses a stretch of each.
"""
from __future__ import annotations

import numbers

import numpy as np

WAVEFORM_KINDS = ("sawtooth", "sine", "square")
WAVEFORM_CODES = ("gray", "binary")
_MAX_BITS = 16

# Bit code of the quantised samples: n_bits units a sample, most significant bit first. "gray"
# (the reflected binary code, g = b ^ (b >> 1)) is the default because neighbouring levels differ
# in one bit, so a slowly varying signal changes one unit at a time, whereas in plain binary a
# small step can flip many bits at once (127 -> 128 flips all 8): the RBM repairs signals better
# with Gray code (docs/performance.md). Probabilities decode to expected levels for either code
# (see decode_waveforms). A thermometer code would need 2**n_bits - 1 units a sample, so it is
# not offered.


def _check_int(value, name, minimum, maximum=None) -> int:
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum
            or (maximum is not None and value > maximum)):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def _check_range(value, name, low, high=None, *, low_open=False) -> tuple[float, float]:
    """A (min, max) pair of finite reals with ``min <= max`` inside [low, high]."""
    try:
        lo, hi = value
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (min, max) pair of numbers, got {value!r}") from None
    below = lo <= low if low_open else lo < low
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi or below or (high is not None and hi > high):
        interval = f"{'(' if low_open else '['}{low}, {'inf)' if high is None else f'{high}]'}"
        raise ValueError(f"{name} must be a (min, max) pair with min <= max inside {interval}, got {value!r}")
    return lo, hi


def _check_kinds(kinds) -> tuple[str, ...]:
    if isinstance(kinds, str):
        kinds = (kinds,)
    try:
        kinds = tuple(kinds)
    except TypeError:
        raise ValueError(f"kinds must be a sequence of waveform names, got {kinds!r}") from None
    if not kinds:
        raise ValueError(f"kinds must name at least one waveform ({', '.join(WAVEFORM_KINDS)})")
    for kind in kinds:
        if kind not in WAVEFORM_KINDS:
            raise ValueError(f"kinds: unknown waveform {kind!r} (known: {', '.join(WAVEFORM_KINDS)})")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"kinds must not repeat a waveform, got {kinds!r}")
    return kinds


def _check_code(code) -> str:
    if code not in WAVEFORM_CODES:
        raise ValueError(f"code must be one of {', '.join(map(repr, WAVEFORM_CODES))}, got {code!r}")
    return code


def make_waveforms(n_samples, *, n_points=60, n_bits=8, kinds=WAVEFORM_KINDS, code="gray",
                   amplitude=(0.3, 0.4), period=(15.0, 25.0), centre=(0.45, 0.55), seed=0,
                   return_signals=False):
    """Periodic waveforms, each sample point quantised and coded as binary visible units.

    Every waveform is one of ``kinds``, chosen uniformly at random, with its own amplitude,
    period, centre (vertical offset) and phase:

    * ``sawtooth``: ramps from centre - amplitude up to centre + amplitude, then drops;
    * ``sine``: centre + amplitude * sin(2 pi (t / period + phase));
    * ``square``: centre + amplitude for the first half of each period, centre - amplitude for
      the second.

    Sample point t = 0 .. n_points - 1 is at cycle position ``t / period + phase``. The value is
    rounded to an integer *level* 0 .. 2**n_bits - 1 (0 .. 255 for 8 bits) and coded in
    ``n_bits`` binary units (see :func:`encode_waveforms`).

    Parameters
    ----------
    n_samples : int >= 1
    n_points : int >= 1, default=60
        Sample points per waveform.
    n_bits : int in [1, 16], default=8
        Bits per sample point: levels 0 .. 2**n_bits - 1.
    kinds : sequence of {"sawtooth", "sine", "square"}, default=all three
    code : {"gray", "binary"}, default="gray"
        Bit code of each level, most significant bit first (Gray code: see the comment above
        ``WAVEFORM_CODES`` for why it is the default).
    amplitude : (min, max), default=(0.3, 0.4)
        Peak deviation from the centre, as a fraction of the full scale 2**n_bits - 1; drawn
        uniformly.
    period : (min, max), default=(15, 25)
        Period in sample points, drawn uniformly (real-valued); must be > 0.
    centre : (min, max), default=(0.45, 0.55)
        Vertical offset as a fraction of the full scale, drawn uniformly. With the defaults no
        waveform leaves the range (levels 13 .. 242 of 255); otherwise values are clipped to
        [0, full scale].
    seed : int, default=0
        Seed of ``numpy.random.default_rng``: the same seed gives the same waveforms. Per
        waveform the draws are, in this order over all waveforms: kind, amplitude, period,
        centre, phase (uniform in [0, 1) cycles).
    return_signals : bool, default=False
        Also return the quantised signals and each waveform's kind.

    Returns
    -------
    X : ndarray of shape (n_samples, n_points * n_bits), float64 0/1
        Column ``t * n_bits + k`` holds bit k (k = 0 most significant) of sample point t.
    signals : ndarray of shape (n_samples, n_points), float64 (only with ``return_signals``)
        The levels, integers in [0, 2**n_bits - 1]; ``decode_waveforms(X) == signals``.
    kind : ndarray of shape (n_samples,), str (only with ``return_signals``)

    Raises
    ------
    ValueError
        Naming the argument, for a bad count, an unknown kind or code, or a bad range.
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_points = _check_int(n_points, "n_points", 1)
    n_bits = _check_int(n_bits, "n_bits", 1, _MAX_BITS)
    kinds = _check_kinds(kinds)
    code = _check_code(code)
    amp_lo, amp_hi = _check_range(amplitude, "amplitude", 0.0)
    per_lo, per_hi = _check_range(period, "period", 0.0, low_open=True)
    cen_lo, cen_hi = _check_range(centre, "centre", 0.0, 1.0)
    full = float(2 ** n_bits - 1)

    rng = np.random.default_rng(seed)
    which = rng.integers(len(kinds), size=n_samples)
    amp = rng.uniform(amp_lo, amp_hi, n_samples) * full
    per = rng.uniform(per_lo, per_hi, n_samples)
    cen = rng.uniform(cen_lo, cen_hi, n_samples) * full
    phase = rng.uniform(0.0, 1.0, n_samples)

    cycle = (np.arange(n_points) / per[:, None] + phase[:, None]) % 1.0   # position in the cycle, [0, 1)
    shape = np.empty_like(cycle)
    for index, kind in enumerate(kinds):
        rows = which == index
        u = cycle[rows]
        if kind == "sawtooth":
            shape[rows] = 2.0 * u - 1.0
        elif kind == "sine":
            shape[rows] = np.sin(2.0 * np.pi * u)
        else:  # square
            shape[rows] = np.where(u < 0.5, 1.0, -1.0)
    signals = np.clip(np.rint(cen[:, None] + amp[:, None] * shape), 0.0, full)
    X = encode_waveforms(signals, n_bits=n_bits, code=code)
    if return_signals:
        return X, signals, np.asarray(kinds)[which]
    return X


def encode_waveforms(signals, *, n_bits=8, code="gray") -> np.ndarray:
    """Code signals as binary units: ``n_bits`` units a sample point, most significant bit first.

    Parameters
    ----------
    signals : array of shape (n, n_points) or (n_points,)
        Levels in [0, 2**n_bits - 1]; non-integers are rounded to the nearest level.
    n_bits : int in [1, 16], default=8
    code : {"gray", "binary"}, default="gray"
        ``"binary"``: the plain binary digits of the level. ``"gray"``: those of its reflected
        Gray code ``level ^ (level >> 1)``, so neighbouring levels differ in one unit.

    Returns
    -------
    X : float64 0/1 array of shape (n, n_points * n_bits) (or (n_points * n_bits,) for 1-D
        input); column ``t * n_bits + k`` is bit k of point t, k = 0 the most significant.

    Raises
    ------
    ValueError
        When signals are not finite or fall outside [0, 2**n_bits - 1].
    """
    n_bits = _check_int(n_bits, "n_bits", 1, _MAX_BITS)
    code = _check_code(code)
    a = np.asarray(signals)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"signals must be numeric, got dtype {a.dtype}")
    if a.ndim not in (1, 2):
        raise ValueError(f"signals must be 1-D (one signal) or 2-D (n, n_points), got shape {a.shape}")
    levels = np.rint(a.astype(np.float64))
    full = 2 ** n_bits - 1
    if not np.isfinite(levels).all():
        raise ValueError("signals contain NaN or infinity")
    if levels.size and (levels.min() < 0 or levels.max() > full):
        raise ValueError(f"signals must lie in [0, {full}] (n_bits={n_bits}), "
                         f"got values from {a.min():g} to {a.max():g}")
    v = levels.astype(np.int64)
    if code == "gray":
        v = v ^ (v >> 1)
    bits = (v[..., None] >> np.arange(n_bits - 1, -1, -1)) & 1
    return bits.reshape(*a.shape[:-1], a.shape[-1] * n_bits).astype(np.float64)


def decode_waveforms(bits, *, n_bits=8, code="gray", method="mean") -> np.ndarray:
    """Signals (levels) from binary units or from their probabilities: the inverse of
    :func:`encode_waveforms`.

    Parameters
    ----------
    bits : array of shape (n, n_points * n_bits) or (n_points * n_bits,), values in [0, 1]
        0/1 states, or probabilities P(unit = 1) such as an RBM's P(v | h).
    n_bits : int in [1, 16], default=8
    code : {"gray", "binary"}, default="gray"
    method : {"mean", "threshold"}, default="mean"
        ``"mean"``: the expected level when each unit is an independent Bernoulli variable with
        the given probability: exact for 0/1 input, and the least-squares estimate for
        probabilities (for Gray code, binary bit k is the parity of Gray bits 0..k, whose
        probability of being 1 is ``(1 - prod_j (1 - 2 p_j)) / 2``). ``"threshold"``: each unit
        is set to ``p > 0.5`` first, giving integer levels.

    Returns
    -------
    signals : float64 array of shape (n, n_points) (or (n_points,) for 1-D input).
    """
    n_bits = _check_int(n_bits, "n_bits", 1, _MAX_BITS)
    code = _check_code(code)
    if method not in ("mean", "threshold"):
        raise ValueError(f"method must be 'mean' or 'threshold', got {method!r}")
    p = np.asarray(bits)
    if p.dtype.kind not in "biuf":
        raise ValueError(f"bits must be numeric, got dtype {p.dtype}")
    if p.ndim not in (1, 2):
        raise ValueError(f"bits must be 1-D or 2-D (n, n_points * n_bits), got shape {p.shape}")
    if p.shape[-1] % n_bits:
        raise ValueError(f"bits must have a multiple of n_bits={n_bits} columns, got shape {p.shape}")
    p = p.astype(np.float64)
    if not np.isfinite(p).all():
        raise ValueError("bits contain NaN or infinity")
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"bits must be 0/1 states or probabilities in [0, 1], "
                         f"got values from {p.min():g} to {p.max():g}")
    p = p.reshape(*p.shape[:-1], p.shape[-1] // n_bits, n_bits)
    if method == "threshold":
        p = (p > 0.5).astype(np.float64)
    if code == "gray":
        # P(binary bit k = 1) = P(odd number of ones among Gray bits 0..k); for 0/1 input this
        # is the exact XOR prefix.
        p = 0.5 * (1.0 - np.cumprod(1.0 - 2.0 * p, axis=-1))
    return p @ (2.0 ** np.arange(n_bits - 1, -1, -1))


def corrupt_waveforms(X, lost, *, n_bits=8, seed=0):
    """Lose a contiguous stretch of ``lost`` sample points in each coded waveform.

    The stretch starts at a uniformly drawn point in [1, n_points - lost - 1], so at least one
    known point remains on each side (the linear-interpolation baseline needs both ends). All
    ``n_bits`` units of a lost point are set to 0 (level 0).

    Parameters
    ----------
    X : array of shape (n, n_points * n_bits)
        Coded waveforms (from :func:`make_waveforms` or :func:`encode_waveforms`).
    lost : int in [1, n_points - 2]
    n_bits : int in [1, 16], default=8
    seed : int, default=0
        Seed of ``numpy.random.default_rng`` for the stretch positions.

    Returns
    -------
    corrupted : float64 array like X, with the lost units set to 0
    known : bool array of X's shape, False on the lost units (``clamp=known`` for Gibbs)
    """
    n_bits = _check_int(n_bits, "n_bits", 1, _MAX_BITS)
    X = np.asarray(X)
    if X.dtype.kind not in "biuf" or X.ndim != 2 or X.shape[1] % n_bits or X.shape[1] == 0:
        raise ValueError(f"X must be a 2-D numeric array with a multiple of n_bits={n_bits} columns, "
                         f"got {X.dtype} of shape {X.shape}")
    n, n_points = X.shape[0], X.shape[1] // n_bits
    if n_points < 3:
        raise ValueError(f"X holds {n_points} sample points a waveform; losing an inner stretch needs at least 3")
    lost = _check_int(lost, "lost", 1, n_points - 2)
    start = np.random.default_rng(seed).integers(1, n_points - lost, size=n)   # start + lost <= n_points - 1
    points = np.arange(n_points)
    lost_points = (points >= start[:, None]) & (points < start[:, None] + lost)
    known = ~np.repeat(lost_points, n_bits, axis=1)
    return np.where(known, X.astype(np.float64), 0.0), known
