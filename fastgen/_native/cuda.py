"""The CUDA backend's surface: kernels/*.cu compiled at run time by NVRTC through CuPy, cuBLAS
GEMMs, and CUDA graphs for fixed-shape loops. This module gathers, under one name, the functions
the ops call; each lives in the module of its concern:

- :mod:`fastgen._native.cuda_runtime`: availability, NVRTC compile and cache, params packing,
  launch, GEMMs;
- :mod:`fastgen._native.graphs`: CUDA-graph capture and replay, the workspaces graphs write;
- :mod:`fastgen._native.cuda_sampling`: stream fills, Bernoulli and Gaussian draws;
- :mod:`fastgen._native.cuda_gibbs`: k-step block Gibbs (graph or fused kernel);
- :mod:`fastgen._native.cuda_cd`: the CD/PCD epoch and its parameter updates.

Nothing here is imported by ``import fastgen``; CuPy is imported on first use, from
:func:`unavailable_reason` (which every CUDA path asks first).
"""
from __future__ import annotations

from . import cuda_cd, cuda_gibbs, cuda_sampling, graphs
from .cuda_cd import apply_velocity, sgd_update, train_epoch
from .cuda_gibbs import fused_gibbs_fits, fused_gibbs_shared_bytes, gibbs, gibbs_fused, gibbs_method, hidden_probs
from .cuda_runtime import (available, gemm, kernel_dir, kernel_sources, launch, nvrtc_binding, nvrtc_options,
                           pack_record, require, stream_fields, suffix, unavailable_reason)
from .cuda_sampling import bernoulli, fill_bits, fill_normal, fill_uniform, gaussian
from .graphs import clear_graphs, graphs_enabled, run_recorded, set_stream

# The params structs of the modules above, by name (checked against the C++ layouts by
# tests/cuda/test_cuda_host.py).
DTYPES = {**cuda_sampling.DTYPES, **cuda_gibbs.DTYPES, **cuda_cd.DTYPES, **graphs.DTYPES}


def pack(struct: str, **values):
    """:func:`pack_record` for the structs of :data:`DTYPES`, by name."""
    return pack_record(DTYPES[struct], **values)


__all__ = ["DTYPES", "apply_velocity", "available", "bernoulli", "clear_graphs", "fill_bits", "fill_normal",
           "fill_uniform", "fused_gibbs_fits", "fused_gibbs_shared_bytes", "gaussian", "gemm", "gibbs", "gibbs_fused",
           "gibbs_method", "graphs_enabled", "hidden_probs", "kernel_dir", "kernel_sources", "launch",
           "nvrtc_binding", "nvrtc_options", "pack", "pack_record", "require", "run_recorded", "set_stream",
           "sgd_update", "stream_fields", "suffix", "train_epoch", "unavailable_reason"]
