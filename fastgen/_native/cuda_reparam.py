"""CUDA launchers of the reparameterised Gaussian sample with its KL term, kernels/reparam.cu
(csrc/reparam.cpp on the device: bitwise the CPU's z for the same seed and offset).

Every function takes CuPy arrays the ops have validated, writes its outputs in place and
launches on CuPy's current stream.
"""
from __future__ import annotations

from .cuda_runtime import (STREAM_FIELDS, current_device, launch, pack_record, row_stride, sm_count, stream_fields,
                           struct_dtypes, suffix)

# kernels/include/fastgen/params/reparam.h
STRUCTS = {
    "ReparamGpuParams": (("mu", "p"), ("logvar", "p"), ("z", "p"), ("kl", "p"), ("rows", "i"), ("cols", "i"),
                         ("mu_stride", "i"), ("logvar_stride", "i")) + STREAM_FIELDS + (("first_row", "i"),),
    "ReparamBackwardGpuParams": (("grad_z", "p"), ("grad_kl", "p"), ("mu", "p"), ("logvar", "p"), ("grad_mu", "p"),
                                 ("grad_logvar", "p"), ("rows", "i"), ("cols", "i")) + STREAM_FIELDS + (("first_row", "i"),),
}
DTYPES = struct_dtypes(STRUCTS)

ROWS_PER_BLOCK = 4  # the forward runs one warp per row, 4 warps per block


def reparameterize(mu, logvar, z, kl, *, seed: int, offset: int, first_row: int = 0) -> None:
    """z = mu + exp(logvar / 2) eps and kl[r] = the row's KL sum (``kl`` may be None), with eps of
    element (r, c) normal number ``(first_row + r) * cols + c`` of (seed, offset): the CPU's
    counters. mu and logvar are 2-D with contiguous rows (row strides allowed), z contiguous."""
    rows, cols = mu.shape
    if rows == 0:
        return
    if cols == 0:  # the CPU's convention: an empty sum
        if kl is not None:
            kl[...] = 0
        return
    params = pack_record(DTYPES["ReparamGpuParams"], mu=mu, logvar=logvar, z=z, kl=kl, rows=rows, cols=cols,
                         mu_stride=row_stride(mu), logvar_stride=row_stride(logvar),
                         first_row=first_row, **stream_fields(seed, offset))
    grid = max(1, min(-(-rows // ROWS_PER_BLOCK), sm_count(current_device()) * 16))
    launch("reparam", f"fg_reparam_forward_{suffix(mu.dtype)}", rows, params, block=32 * ROWS_PER_BLOCK, grid=grid)


def reparameterize_backward(grad_z, grad_kl, mu, logvar, grad_mu, grad_logvar, *, seed: int, offset: int,
                            first_row: int = 0) -> None:
    """grad_mu, grad_logvar of ``<grad_z, z> + <grad_kl, kl>`` (either gradient may be None), eps drawn
    again from the forward's (seed, offset). All [rows, cols] contiguous, grad_kl [rows]."""
    rows, cols = mu.shape
    params = pack_record(DTYPES["ReparamBackwardGpuParams"], grad_z=grad_z, grad_kl=grad_kl, mu=mu, logvar=logvar,
                         grad_mu=grad_mu, grad_logvar=grad_logvar, rows=rows, cols=cols,
                         first_row=first_row, **stream_fields(seed, offset))
    # the Philox blocks of stream elements first_row * cols .. (first_row + rows) * cols - 1
    blocks = -(-((first_row + rows) * cols) // 4) - (first_row * cols) // 4
    launch("reparam", f"fg_reparam_backward_{suffix(mu.dtype)}", blocks, params)
