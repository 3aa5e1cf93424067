"""CUDA launchers of the VAE / autoencoder / DCGAN ops under one name: each lives in the module of
its op (:mod:`~fastgen._native.cuda_reparam`, :mod:`~fastgen._native.cuda_elbo`,
:mod:`~fastgen._native.cuda_pool`, :mod:`~fastgen._native.cuda_conv`), compiled from the .cu file
of the same name.

Like :mod:`fastgen._native.cuda`, nothing here is imported by ``import fastgen``; every function
takes CuPy arrays (C-contiguous unless said otherwise, one float dtype), writes its outputs in
place and launches on CuPy's current stream, which the ops set to the caller's (torch's current
stream for torch tensors). Validation is the ops' job (fastgen/ops/*.py): these functions trust
their arguments. Every kernel here gives the same bits run to run.
"""
from __future__ import annotations

from . import cuda_conv, cuda_elbo, cuda_pool, cuda_reparam
from .cuda_conv import (activation_backward, conv_transpose2d, conv_transpose2d_backward, conv_transpose2d_im2col,
                        conv_transpose2d_output)
from .cuda_elbo import (bernoulli_log_likelihood, bernoulli_log_likelihood_backward, gaussian_log_likelihood,
                        gaussian_log_likelihood_backward, likelihood_threads)
from .cuda_pool import avg_unpool2d, gather_planes, max_pool2d, scatter_planes
from .cuda_reparam import reparameterize, reparameterize_backward
from .cuda_runtime import pack_record

# The params structs of the modules above, by name (checked against the C++ layouts by
# tests/cuda/test_cuda_vae_host.py).
DTYPES = {**cuda_reparam.DTYPES, **cuda_elbo.DTYPES, **cuda_pool.DTYPES, **cuda_conv.DTYPES}


def pack(struct: str, **values):
    """:func:`fastgen._native.cuda_runtime.pack_record` for the structs of :data:`DTYPES`, by name."""
    return pack_record(DTYPES[struct], **values)


__all__ = ["DTYPES", "activation_backward", "avg_unpool2d", "bernoulli_log_likelihood",
           "bernoulli_log_likelihood_backward", "conv_transpose2d", "conv_transpose2d_backward",
           "conv_transpose2d_im2col", "conv_transpose2d_output", "gather_planes", "gaussian_log_likelihood",
           "gaussian_log_likelihood_backward", "likelihood_threads", "max_pool2d", "pack", "reparameterize",
           "reparameterize_backward", "scatter_planes"]
