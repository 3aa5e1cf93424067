"""Functional kernels: validate once, then call the compiled kernel.

Arrays in, same kind out (NumPy, or CPU torch tensors viewed through DLPack). float32 and
float64 are computed as given; other real dtypes are converted once (see ``validation``).
Inputs are never modified.
"""
from .binary import binary_matmul
from .categorical import sample_categorical
from .elbo import bernoulli_log_likelihood, gaussian_log_likelihood
from .cd import CDGradients, cd_gradients
from .gibbs import gibbs
from .reparam import reparameterize
from .sampling import sample_bernoulli, sample_gaussian
from .sparse_linear import sparse_input_linear

__all__ = ["sample_bernoulli", "sample_gaussian", "gibbs", "cd_gradients", "CDGradients", "binary_matmul", "sample_categorical", "reparameterize",
           "bernoulli_log_likelihood", "gaussian_log_likelihood", "sparse_input_linear"]
