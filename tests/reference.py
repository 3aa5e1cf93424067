"""Plain NumPy references for fastgen's kernels (the test oracle).

Everything here is computed in float64 from first principles, written for clarity rather
than speed, and shares no code with fastgen except the raw Philox words (``words``), which the
tests pin to the pure-Python Philox4x32-10 below and to the published Random123 vectors.

Conventions (the stream layout of kernels/include/fastgen/philox.h and sampling.h):

* key = (seed_lo, seed_hi); element ``i`` of a call with offset ``o`` is lane ``i % 4`` of
  Philox4x32-10(counter = (block_lo, block_hi, o_lo, o_hi)) with ``block = i // 4``;
* uniform float32 = (w >> 8) * 2**-24, uniform float64 = w * 2**-32;
* normals: elements (2p, 2p + 1) are Box-Muller of words (w[2p], w[2p + 1]):
  r = sqrt(-2 log(1 - u1)), element 2p = r cos(2 pi u2), element 2p + 1 = r sin(2 pi u2);
* Bernoulli: state = 1 iff u < p.

Draws that fall within ``tol`` of their threshold (|p - u| < tol) may legitimately differ
between a float32/float64 kernel and this float64 reference; the references report them so
that a test compares everything else exactly.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

import fastgen

MASK32 = 0xFFFFFFFF
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85

# Width of the band |p - u| < tol inside which a kernel's draw may differ from the reference:
# float32 probabilities carry a few 1e-7 of rounding (more after a float32 GEMM), float64 ~1e-15.
AMBIGUOUS_TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-9}


def ambiguous_tol(dtype) -> float:
    return AMBIGUOUS_TOL[np.dtype(dtype)]


# ---- elementary functions -----------------------------------------------------------------------
def sigmoid(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(x):
    return np.logaddexp(0.0, np.asarray(x, dtype=np.float64))


def log_sigmoid(x):
    return -softplus(-np.asarray(x, dtype=np.float64))


# ---- Philox4x32-10 --------------------------------------------------------------------------------
def _mulhilo(a: int, b: int):
    p = a * b
    return p >> 32, p & MASK32


def philox4x32_10(ctr, key):
    """Pure-Python Philox4x32-10 (Salmon et al. 2011): 4 counter words, 2 key words."""
    c0, c1, c2, c3 = (int(x) & MASK32 for x in ctr)
    k0, k1 = (int(x) & MASK32 for x in key)
    for rnd in range(10):
        if rnd:
            k0 = (k0 + PHILOX_W0) & MASK32
            k1 = (k1 + PHILOX_W1) & MASK32
        hi0, lo0 = _mulhilo(PHILOX_M0, c0)
        hi1, lo1 = _mulhilo(PHILOX_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return [c0, c1, c2, c3]


def stream_counter(offset: int, block: int):
    return [block & MASK32, block >> 32, offset & MASK32, offset >> 32]


def stream_key(seed: int):
    return [seed & MASK32, seed >> 32]


def stream_word_py(seed: int, offset: int, index: int) -> int:
    """Word of element ``index`` of the call (seed, offset), pure Python."""
    return philox4x32_10(stream_counter(offset, index // 4), stream_key(seed))[index % 4]


def philox_words_numpy(seed: int, offset: int, n: int, first: int = 0) -> np.ndarray:
    """Words of elements first .. first + n - 1, vectorised Philox in uint64 arithmetic."""
    if n == 0:
        return np.empty(0, np.uint32)
    b0, b1 = first // 4, (first + n - 1) // 4 + 1
    blocks = np.arange(b0, b1, dtype=np.uint64)
    m32 = np.uint64(MASK32)
    x0 = blocks & m32
    x1 = blocks >> np.uint64(32)
    x2 = np.full_like(x0, offset & MASK32)
    x3 = np.full_like(x0, offset >> 32)
    k0, k1 = seed & MASK32, seed >> 32
    for rnd in range(10):
        if rnd:
            k0 = (k0 + PHILOX_W0) & MASK32
            k1 = (k1 + PHILOX_W1) & MASK32
        p0 = np.uint64(PHILOX_M0) * x0
        p1 = np.uint64(PHILOX_M1) * x2
        x0, x1, x2, x3 = ((p1 >> np.uint64(32)) ^ x1 ^ np.uint64(k0), p1 & m32,
                          (p0 >> np.uint64(32)) ^ x3 ^ np.uint64(k1), p0 & m32)
    w = np.stack([x0, x1, x2, x3], axis=1).reshape(-1).astype(np.uint32)
    return w[first - 4 * b0: first - 4 * b0 + n]


def words(seed: int, offset: int, n: int) -> np.ndarray:
    """The raw words of a call, read through fastgen (pinned to the above by test_random)."""
    out = np.empty(int(n), np.uint32)
    if n:
        from fastgen._native import cpu as _cpu

        _cpu.C.fill_bits(out, int(seed), int(offset))
    return out


# ---- uniforms and normals -------------------------------------------------------------------------
def uniform_from_words(w, dtype) -> np.ndarray:
    """The documented mapping; float32 values are exact (24 bits), returned in ``dtype``."""
    w = np.asarray(w, dtype=np.uint32)
    if np.dtype(dtype) == np.float32:
        return ((w >> np.uint32(8)).astype(np.float64) * 2.0**-24).astype(np.float32)
    return w.astype(np.float64) * 2.0**-32


def uniform_open_from_words(w, dtype) -> np.ndarray:
    """The documented open-interval mapping (0, 1): float32 (2k + 1) 2^-24 from the top 23 bits,
    float64 (w + 1/2) 2^-32; returned in ``dtype``."""
    w = np.asarray(w, dtype=np.uint32)
    if np.dtype(dtype) == np.float32:
        return (((w >> np.uint32(9)).astype(np.float64) * 2 + 1) * 2.0**-24).astype(np.float32)
    return (w.astype(np.float64) + 0.5) * 2.0**-32


def uniform_open(seed, offset, shape, dtype=np.float64) -> np.ndarray:
    n = int(np.prod(shape))
    return uniform_open_from_words(words(seed, offset, n), dtype).reshape(shape)


class Normals(NamedTuple):
    values: np.ndarray   # float64
    radius: np.ndarray   # the Box-Muller radius of each element's pair (error scale)


def normals_from_words(w, dtype) -> Normals:
    """Box-Muller in float64 from the uniforms of ``dtype`` (an odd last word pairs with 0:
    pass the even-length prefix of the stream to get the kernel's last element)."""
    w = np.asarray(w, dtype=np.uint32)
    n = w.size
    padded = np.zeros(n + (n & 1), np.uint32)
    padded[:n] = w
    u = uniform_from_words(padded, dtype).astype(np.float64)
    u1, u2 = u[0::2], u[1::2]
    r = np.sqrt(-2.0 * np.log(1.0 - u1))
    z = np.empty(padded.size)
    z[0::2] = r * np.cos(2.0 * np.pi * u2)
    z[1::2] = r * np.sin(2.0 * np.pi * u2)
    return Normals(z[:n], np.repeat(r, 2)[:n])


def uniform(seed, offset, shape, dtype=np.float64) -> np.ndarray:
    n = int(np.prod(shape))
    return uniform_from_words(words(seed, offset, n), dtype).reshape(shape)


def normal(seed, offset, shape, dtype=np.float64) -> Normals:
    n = int(np.prod(shape))
    # an odd last element still pairs with the next word of its Philox block
    z = normals_from_words(words(seed, offset, n + (n & 1)), dtype)
    return Normals(z.values[:n].reshape(shape), z.radius[:n].reshape(shape))


def _take(generator, n=1):
    """(seed, first offset) from a seed or a fastgen.Generator (advanced like the ops do)."""
    gen = generator if isinstance(generator, fastgen.Generator) else fastgen.Generator(generator)
    return gen.seed, gen.take(n)


# ---- Bernoulli / Gaussian sampling --------------------------------------------------------------
def bernoulli(p, u) -> np.ndarray:
    """Bernoulli states from probabilities and uniforms: 1 iff u < p (float64 0/1)."""
    return (np.asarray(u, np.float64) < np.asarray(p, np.float64)).astype(np.float64)


class BernoulliDraw(NamedTuple):
    probs: np.ndarray      # float64
    states: np.ndarray     # float64 0/1
    margin: np.ndarray     # |p - u|: states with margin < tol may differ from a kernel's


def sample_bernoulli(x, bias=None, *, from_logits=True, generator=0, dtype=None) -> BernoulliDraw:
    """Reference for fastgen.ops.sample_bernoulli (takes one offset, like the op's states)."""
    x64 = np.asarray(x, dtype=np.float64)
    dtype = np.dtype(dtype or (x.dtype if np.asarray(x).dtype in (np.float32, np.float64) else np.float64))
    if from_logits:
        # the kernel adds the bias in its own dtype, then takes the sigmoid
        pre = np.asarray(x, dtype) + (np.asarray(bias, dtype) if bias is not None else dtype.type(0))
        p = sigmoid(pre)
    else:
        p = np.asarray(x, dtype).astype(np.float64)
    seed, offset = _take(generator)
    u = uniform(seed, offset, x64.shape, dtype).astype(np.float64)
    return BernoulliDraw(p, bernoulli(p, u), np.abs(p - u))


def sample_gaussian(mean, std=1.0, *, bias=None, generator=0, dtype=None):
    """Reference for fastgen.ops.sample_gaussian: (values, error_scale) in float64."""
    mean = np.asarray(mean)
    dtype = np.dtype(dtype or (mean.dtype if mean.dtype in (np.float32, np.float64) else np.float64))
    m = mean.astype(np.float64) + (np.asarray(bias, np.float64) if bias is not None else 0.0)
    s = np.asarray(std, np.float64)
    seed, offset = _take(generator)
    z = normal(seed, offset, mean.shape, dtype)
    scale = np.abs(mean.astype(np.float64)) + (np.abs(np.asarray(bias, np.float64)) if bias is not None else 0.0)
    return m + s * z.values, scale + s * np.maximum(z.radius, 1e-3)


# ---- RBM ------------------------------------------------------------------------------------------
def _f64(*arrays):
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


def energy(v, h, W, b_vis, b_hid):
    """E(v, h) = -v.b - h.c - h W v for paired rows."""
    v, h, W, b_vis, b_hid = _f64(v, h, W, b_vis, b_hid)
    return -(v @ b_vis) - (h @ b_hid) - np.einsum("nj,ji,ni->n", h, W, v)


def hidden_probs(v, W, b_vis, b_hid):
    v, W, b_hid = _f64(v, W, b_hid)
    return sigmoid(v @ W.T + b_hid)


def visible_probs(h, W, b_vis, b_hid):
    h, W, b_vis = _f64(h, W, b_vis)
    return sigmoid(h @ W + b_vis)


def free_energy(v, W, b_vis, b_hid):
    """F(v) = -v.b - sum_j softplus(c_j + W_j v) = -log sum_h exp(-E(v, h))."""
    v, W, b_vis, b_hid = _f64(v, W, b_vis, b_hid)
    return -(v @ b_vis) - softplus(v @ W.T + b_hid).sum(axis=1)


def pseudo_likelihood(v, W, b_vis, b_hid):
    """sum_i log P(v_i | v_-i) = sum_i log sigmoid(F(v with v_i -> 1 - v_i) - F(v)), by
    flipping every unit in turn (a loop over units, free energies of whole batches)."""
    v, W, b_vis, b_hid = _f64(v, W, b_vis, b_hid)
    fe = free_energy(v, W, b_vis, b_hid)
    total = np.zeros(v.shape[0])
    for i in range(v.shape[1]):
        flipped = v.copy()
        flipped[:, i] = 1.0 - flipped[:, i]
        total += log_sigmoid(free_energy(flipped, W, b_vis, b_hid) - fe)
    return total


def all_states(n: int) -> np.ndarray:
    """All 2**n binary vectors, row k = the bits of k (float64)."""
    return ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(np.float64)


def log_partition_brute_force(W, b_vis, b_hid) -> float:
    """log Z = log sum_{v, h} exp(-E(v, h)) over every visible AND hidden configuration."""
    W, b_vis, b_hid = _f64(W, b_vis, b_hid)
    n_hidden, n_visible = W.shape
    V, H = all_states(n_visible), all_states(n_hidden)
    neg_energy = (V @ b_vis)[:, None] + (H @ b_hid)[None, :] + V @ W.T @ H.T
    top = neg_energy.max()
    return float(top + np.log(np.exp(neg_energy - top).sum()))


class GibbsRef(NamedTuple):
    visible: np.ndarray       # float64 states after the last step
    hidden_probs: np.ndarray  # P(h | v_k), float64
    certain_rows: np.ndarray  # rows whose every draw was farther than tol from its threshold


def gibbs(v, W, b_vis, b_hid, steps=1, *, generator=0, clamp=None, dtype=None, tol=None) -> GibbsRef:
    """Reference for fastgen.ops.gibbs: step s samples h with offset first + 2 s, then v with
    first + 2 s + 1; clamped visible units keep their starting values."""
    dtype = np.dtype(dtype or np.asarray(W).dtype)
    tol = ambiguous_tol(dtype) if tol is None else tol
    v0 = np.asarray(v, np.float64)
    W64, b_vis64, b_hid64 = _f64(W, b_vis, b_hid)
    seed, first = _take(generator, 2 * steps)
    vk = v0.copy()
    certain = np.ones(v0.shape[0], bool)
    mask = None if clamp is None else np.broadcast_to(np.asarray(clamp, bool), v0.shape)
    for s in range(steps):
        ph = sigmoid(vk @ W64.T + b_hid64)
        uh = uniform(seed, first + 2 * s, ph.shape, dtype).astype(np.float64)
        h = bernoulli(ph, uh)
        pv = sigmoid(h @ W64 + b_vis64)
        uv = uniform(seed, first + 2 * s + 1, pv.shape, dtype).astype(np.float64)
        new_v = bernoulli(pv, uv)
        close_v = np.abs(pv - uv) < tol
        if mask is not None:
            new_v = np.where(mask, v0, new_v)
            close_v &= ~mask
        certain &= ~(np.abs(ph - uh) < tol).any(axis=1) & ~close_v.any(axis=1)
        vk = new_v
    return GibbsRef(vk, sigmoid(vk @ W64.T + b_hid64), certain)


class CDRef(NamedTuple):
    weights: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray
    chains: np.ndarray
    n_ambiguous: int          # draws within tol of their threshold (0: the comparison is exact)


def cd_gradients(v, W, b_vis, b_hid, *, k=1, generator=0, persistent_chains=None, dtype=None, tol=None) -> CDRef:
    """Reference for fastgen.ops.cd_gradients (takes 2k + 1 offsets): offset ``first`` draws
    h ~ P(h | v_data) (CD only), step s draws v with ``first + 1 + 2 s`` and h with
    ``first + 2 + 2 s`` (not on the last step of CD, which keeps P(h | v_k)).
    dW = <P(h|v) v^T>_data - <P(h|v_k) v_k^T>_chains, each averaged over its own rows."""
    dtype = np.dtype(dtype or np.asarray(W).dtype)
    tol = ambiguous_tol(dtype) if tol is None else tol
    v, W, b_vis, b_hid = _f64(v, W, b_vis, b_hid)
    seed, first = _take(generator, 2 * k + 1)
    n_ambiguous = 0

    def draw(p, offset):
        nonlocal n_ambiguous
        u = uniform(seed, offset, p.shape, dtype).astype(np.float64)
        n_ambiguous += int((np.abs(p - u) < tol).sum())
        return bernoulli(p, u)

    hidden_pos = sigmoid(v @ W.T + b_hid)
    if persistent_chains is None:
        chains = draw(hidden_pos, first)
    else:
        chains = np.asarray(persistent_chains, np.float64).copy()
    for step in range(k):
        visible_neg = draw(sigmoid(chains @ W + b_vis), first + 1 + 2 * step)
        hidden_neg = sigmoid(visible_neg @ W.T + b_hid)
        if not (step + 1 == k and persistent_chains is None):
            chains = draw(hidden_neg, first + 2 + 2 * step)
    dW = hidden_pos.T @ v / v.shape[0] - hidden_neg.T @ visible_neg / chains.shape[0]
    db_vis = v.mean(axis=0) - visible_neg.mean(axis=0)
    db_hid = hidden_pos.mean(axis=0) - hidden_neg.mean(axis=0)
    return CDRef(dW, db_vis, db_hid, chains, n_ambiguous)


def sgd_step(param, velocity, grad, *, learning_rate, momentum=0.0, weight_decay=0.0):
    """v = m v + lr (g - wd * param); param += v. Returns (param, velocity), float64."""
    param, velocity, grad = _f64(param, velocity, grad)
    velocity = momentum * velocity + learning_rate * (grad - weight_decay * param)
    return param + velocity, velocity


class TrainRef(NamedTuple):
    weights: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray
    velocities: tuple          # (weights, visible bias, hidden bias)
    chains: np.ndarray         # the persistent chains after the pass (CD: the last batch's)
    n_ambiguous: int


def train_pass(data, W, b_vis, b_hid, batch_size, *, k=1, chains=None, learning_rate, momentum=0.0,
               weight_decay=0.0, seed, first_offset, velocities=None, dtype=None, tol=None) -> TrainRef:
    """Reference for one pass of fastgen's CD-k / PCD-k trainer (C.rbm_train_batches): consecutive
    mini-batches of ``batch_size`` rows (the last may be shorter); batch i draws with the offsets
    ``first_offset + i (2k + 1)`` as :func:`cd_gradients`; then v = m v + lr (g - wd param) and
    param += v for the weights, and the same without decay for the biases. PCD when ``chains``
    is given (updated from batch to batch), else CD-k. The parameters are rounded to ``dtype``
    after every batch, as the kernel keeps them."""
    dtype = np.dtype(dtype or np.asarray(W).dtype)
    params = list(_f64(W, b_vis, b_hid))
    velocity = [np.zeros_like(x) for x in params] if velocities is None else list(_f64(*velocities))
    n_ambiguous = 0
    last_chains = chains
    for i, start in enumerate(range(0, len(data), batch_size)):
        grads = cd_gradients(data[start:start + batch_size], *params, k=k,
                             generator=fastgen.Generator(seed, first_offset + i * (2 * k + 1)),
                             persistent_chains=chains, dtype=dtype, tol=tol)
        n_ambiguous += grads.n_ambiguous
        last_chains = grads.chains
        if chains is not None:
            chains = grads.chains
        for j, (g, wd) in enumerate(zip(grads[:3], (weight_decay, 0.0, 0.0))):
            params[j], velocity[j] = sgd_step(params[j], velocity[j], g, learning_rate=learning_rate,
                                              momentum=momentum, weight_decay=wd)
            params[j] = params[j].astype(dtype).astype(np.float64)
            velocity[j] = velocity[j].astype(dtype).astype(np.float64)
    return TrainRef(*params, tuple(velocity), last_chains, n_ambiguous)


# ---- Gaussian-Bernoulli RBM -----------------------------------------------------------------------
# E(v, h) = sum_i (v_i - b_i)^2 / (2 s_i^2) - c.h - sum_ij h_j W_ji v_i / s_i^2, s = exp(log_sigma)
# (Cho, Ilin and Raiko 2011): P(h_j = 1 | v) = sigmoid(c_j + W_j (v / s^2)), v | h ~ N(b + W^T h, s^2).
def gb_energy(v, h, W, b_vis, b_hid, log_sigma):
    v, h, W, b_vis, b_hid, log_sigma = _f64(v, h, W, b_vis, b_hid, log_sigma)
    var = np.exp(2.0 * log_sigma)
    total = np.zeros(v.shape[0])
    for i in range(v.shape[1]):
        total += (v[:, i] - b_vis[i]) ** 2 / (2.0 * var[i])
        total -= (h @ W[:, i]) * v[:, i] / var[i]
    return total - h @ b_hid


def gb_hidden_probs(v, W, b_vis, b_hid, log_sigma):
    v, W, b_hid, log_sigma = _f64(v, W, b_hid, log_sigma)
    return sigmoid((v / np.exp(2.0 * log_sigma)) @ W.T + b_hid)


def gb_visible_mean(h, W, b_vis):
    h, W, b_vis = _f64(h, W, b_vis)
    return h @ W + b_vis


def gb_free_energy(v, W, b_vis, b_hid, log_sigma):
    """F(v) = sum_i (v_i - b_i)^2 / (2 s_i^2) - sum_j softplus(c_j + W_j (v / s^2))."""
    v, W, b_vis, b_hid, log_sigma = _f64(v, W, b_vis, b_hid, log_sigma)
    var = np.exp(2.0 * log_sigma)
    return ((v - b_vis) ** 2 / (2.0 * var)).sum(axis=1) - softplus((v / var) @ W.T + b_hid).sum(axis=1)


class GBMixture(NamedTuple):
    log_weights: np.ndarray  # [2**n_hidden] log P(h), normalised
    hidden: np.ndarray       # [2**n_hidden, n_hidden] every configuration
    means: np.ndarray        # [2**n_hidden, n_visible] E[v | h] = b + W^T h
    sigma: np.ndarray        # [n_visible] shared standard deviations
    log_z: float


def gb_mixture(W, b_vis, b_hid, log_sigma) -> GBMixture:
    """The exact marginal of a small GB-RBM as a mixture of Gaussians, one per hidden
    configuration: the integral over v of exp(-E(v, h)) is, unit by unit,
    sqrt(2 pi) s_i exp(((b_i + m_i)^2 - b_i^2) / (2 s_i^2)) with m = W^T h, times exp(c.h)."""
    W, b_vis, b_hid, log_sigma = _f64(W, b_vis, b_hid, log_sigma)
    H = all_states(W.shape[0])
    s = np.exp(log_sigma)
    log_mass = np.empty(len(H))
    for k, h in enumerate(H):
        m = h @ W
        per_unit = 0.5 * np.log(2.0 * np.pi) + np.log(s) + ((b_vis + m) ** 2 - b_vis ** 2) / (2.0 * s ** 2)
        log_mass[k] = h @ b_hid + per_unit.sum()
    top = log_mass.max()
    log_z = float(top + np.log(np.exp(log_mass - top).sum()))
    return GBMixture(log_mass - log_z, H, H @ W + b_vis, s, log_z)


def gb_moments(W, b_vis, b_hid, log_sigma):
    """Exact (mean, covariance) of v and E[h] under the model."""
    mix = gb_mixture(W, b_vis, b_hid, log_sigma)
    p = np.exp(mix.log_weights)
    mean = p @ mix.means
    centred = mix.means - mean
    cov = np.diag(mix.sigma ** 2) + (centred * p[:, None]).T @ centred
    return mean, cov, p @ mix.hidden


class GBCDRef(NamedTuple):
    weights: np.ndarray
    visible_bias: np.ndarray
    hidden_bias: np.ndarray
    log_sigma: np.ndarray
    chains: np.ndarray
    n_ambiguous: int


def gb_cd_gradients(v, W, b_vis, b_hid, log_sigma, *, k=1, generator=0, persistent_chains=None,
                    learn_sigma=True, dtype=None, tol=None) -> GBCDRef:
    """Reference for GaussianContrastiveDivergence.batch_gradients (takes 2k + 1 offsets):
    offset ``first`` draws h ~ P(h | v_data) (CD only); step s draws v = b + W^T h + s * z with
    the normals of ``first + 1 + 2 s`` and h with the uniforms of ``first + 2 + 2 s`` (not on
    CD's last step). Statistics -dE/dtheta at h = P(h | v), data mean minus chain mean:
    W: h v / s^2; b: (v - b) / s^2; c: h; log s: ((v - b)^2 - 2 v (W^T h)) / s^2."""
    dtype = np.dtype(dtype or np.asarray(W).dtype)
    tol = ambiguous_tol(dtype) if tol is None else tol
    v, W, b_vis, b_hid, log_sigma = _f64(v, W, b_vis, b_hid, log_sigma)
    seed, first = _take(generator, 2 * k + 1)
    var = np.exp(2.0 * log_sigma)
    n_ambiguous = 0

    def draw(p, offset):
        nonlocal n_ambiguous
        u = uniform(seed, offset, p.shape, dtype).astype(np.float64)
        n_ambiguous += int((np.abs(p - u) < tol).sum())
        return bernoulli(p, u)

    def stats(x, ph):
        out = [ph.T @ (x / var) / len(x), ((x - b_vis) / var).mean(axis=0), ph.mean(axis=0)]
        if learn_sigma:
            out.append((((x - b_vis) ** 2 - 2.0 * x * (ph @ W)) / var).mean(axis=0))
        else:
            out.append(np.zeros_like(b_vis))
        return out

    hidden_pos = gb_hidden_probs(v, W, b_vis, b_hid, log_sigma)
    chains = draw(hidden_pos, first) if persistent_chains is None else np.asarray(persistent_chains, np.float64)
    for step in range(k):
        z = normal(seed, first + 1 + 2 * step, (chains.shape[0], W.shape[1]), dtype).values
        visible_neg = chains @ W + b_vis + np.exp(log_sigma) * z
        hidden_neg = gb_hidden_probs(visible_neg, W, b_vis, b_hid, log_sigma)
        if not (step + 1 == k and persistent_chains is None):
            chains = draw(hidden_neg, first + 2 + 2 * step)
    pos, neg = stats(v, hidden_pos), stats(visible_neg, hidden_neg)
    return GBCDRef(*(p - q for p, q in zip(pos, neg)), chains, n_ambiguous)
