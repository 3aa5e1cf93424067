"""CUDA contrastive divergence: one CD-k / PCD-k epoch over mini-batches (cuBLAS GEMMs, the
sampling kernel, the parameter updates of kernels/cd.cu), replayed from a CUDA graph on repeated
calls (:mod:`fastgen._native.graphs`). The algorithm and counters are csrc/rbm.cpp's
rbm_train_batches.
"""
from __future__ import annotations

from .cuda_runtime import current_device, gemm, launch, pack_record, struct_dtypes, suffix
from .cuda_sampling import bernoulli
from .graphs import Workspaces, graph_key, run_recorded

# kernels/include/fastgen/params/cd.h
STRUCTS = {
    "VelocityParams": (("param", "p"), ("velocity", "p"), ("n", "i"), ("decay", "d")),
    "SgdParams": (("param", "p"), ("velocity", "p"), ("grad", "p"), ("n", "i"), ("lr", "d"), ("momentum", "d"),
                  ("weight_decay", "d")),
}
DTYPES = struct_dtypes(STRUCTS)


def apply_velocity(param, velocity, decay: float) -> None:
    """velocity -= decay param; param += velocity (the CPU's apply_velocity)."""
    params = pack_record(DTYPES["VelocityParams"], param=param, velocity=velocity, n=param.size, decay=float(decay))
    launch("cd", f"fg_apply_velocity_{suffix(param.dtype)}", param.size, params)


def sgd_update(param, grad, *, velocity=None, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
    """param += lr (grad - weight_decay param), through a momentum buffer when given (the CPU's
    sgd_momentum_update)."""
    params = pack_record(DTYPES["SgdParams"], param=param, velocity=velocity, grad=grad, n=param.size, lr=float(lr),
                         momentum=float(momentum), weight_decay=float(weight_decay))
    launch("cd", f"fg_sgd_update_{suffix(param.dtype)}", param.size, params)


def train_epoch(W, b_vis, b_hid, data, *, batch_size: int, cd_k: int, lr: float, momentum: float,
                weight_decay: float, chains=None, velocities=None, seed: int, first: int) -> str:
    """One CD-k / PCD-k pass over ``data`` (CuPy, C-contiguous, W's dtype) in mini-batches, updating
    W, b_vis, b_hid (and the persistent ``chains``, the momentum ``velocities``) in place: the
    algorithm and counters of csrc/rbm.cpp's rbm_train_batches, with the GEMMs on cuBLAS and the
    gradient scaling, weight decay and bias gradients folded into the GEMMs' alpha/beta (so no
    gradient array is ever written). Returns "eager" or "graph"."""
    import cupy as cp

    n, nv = data.shape
    nh = W.shape[0]
    if n == 0:
        return "eager"
    dtype = W.dtype
    t = dtype.type
    B_max = min(batch_size, n)
    persistent = chains is not None
    C_fixed = chains.shape[0] if persistent else None
    ws_key = ("epoch", current_device(), int(cp.cuda.get_current_stream().ptr), dtype.str, n, nv, nh, batch_size,
              C_fixed)

    def make():
        C = C_fixed or B_max
        return {"h_pos": cp.empty((B_max, nh), dtype), "v_neg": cp.empty((C, nv), dtype),
                "h_neg": cp.empty((C, nh), dtype), "cd_chains": None if persistent else cp.empty((B_max, nh), dtype),
                "ones": cp.ones(max(B_max, C), dtype)}

    ws = Workspaces.get(ws_key, make)
    per_batch = 2 * cd_k + 1
    lr_t = t(lr)
    vW, vb, vh = velocities if velocities is not None else (None, None, None)

    def bias_update(bias, velocity, pos, B, neg, C):
        # grad = mean(pos rows) - mean(neg rows) as two GEMVs with a ones vector; plain SGD adds
        # lr * grad to the bias directly, momentum accumulates it into the velocity first.
        ones_b = ws["ones"][:B].reshape(1, B)
        ones_c = ws["ones"][:C].reshape(1, C)
        target = (bias if velocity is None else velocity).reshape(1, -1)
        gemm("N", "N", ones_b, pos, target, alpha=lr_t / t(B), beta=1.0 if velocity is None else t(momentum))
        gemm("N", "N", ones_c, neg, target, alpha=-lr_t / t(C), beta=1.0)
        if velocity is not None:
            apply_velocity(bias, velocity, 0.0)

    def body(rng, base):
        for b, start in enumerate(range(0, n, batch_size)):
            B = min(batch_size, n - start)
            v = data[start:start + B]
            s = base + b * per_batch
            h_pos = ws["h_pos"][:B]
            gemm("N", "T", v, W, h_pos)
            if persistent:
                chain, C = chains, C_fixed
                bernoulli(h_pos, b_hid, h_pos, None)
            else:
                chain, C = ws["cd_chains"][:B], B
                bernoulli(h_pos, b_hid, h_pos, chain, seed=seed, offset=s, rng=rng)
            v_neg, h_neg = ws["v_neg"][:C], ws["h_neg"][:C]
            for step in range(cd_k):
                gemm("N", "N", chain, W, v_neg)
                bernoulli(v_neg, b_vis, None, v_neg, seed=seed, offset=s + 1 + 2 * step, rng=rng)
                gemm("N", "T", v_neg, W, h_neg)
                if step + 1 == cd_k and not persistent:
                    bernoulli(h_neg, b_hid, h_neg, None)
                else:
                    bernoulli(h_neg, b_hid, h_neg, chain, seed=seed, offset=s + 2 + 2 * step, rng=rng)
            bias_update(b_vis, vb, v, B, v_neg, C)
            bias_update(b_hid, vh, h_pos, B, h_neg, C)
            if vW is None:
                gemm("T", "N", h_pos, v, W, alpha=lr_t / t(B), beta=t(1) - lr_t * t(weight_decay))
                gemm("T", "N", h_neg, v_neg, W, alpha=-lr_t / t(C), beta=1.0)
            else:
                gemm("T", "N", h_pos, v, vW, alpha=lr_t / t(B), beta=t(momentum))
                gemm("T", "N", h_neg, v_neg, vW, alpha=-lr_t / t(C), beta=1.0)
                apply_velocity(W, vW, lr_t * t(weight_decay))

    arrays = (data, W, b_vis, b_hid, chains, *(velocities or ()), *ws.values())
    key = graph_key("epoch", arrays, (batch_size, cd_k, float(lr), float(momentum), float(weight_decay)))
    return run_recorded(key, body, seed, first, keep=ws)
