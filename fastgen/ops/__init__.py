"""Functional kernels: validate once, then call the compiled kernel.

Arrays in, same kind out (NumPy, or CPU torch tensors viewed through DLPack). float32 and
float64 are computed as given; other real dtypes are converted once (see ``validation``).
Inputs are never modified, except by the ops that update a model in place (``cd_epoch``,
``sgd_momentum_update``), which say so.
"""
from .ais import ais_log_weights
from .binary import binary_matmul
from .categorical import sample_categorical
from .cd import CDGradients, cd_epoch, cd_gradients
from .data_summary import DataSummary, data_summary
from .elbo import bernoulli_log_likelihood, gaussian_log_likelihood
from .gibbs import gibbs
from .pseudo_likelihood import pseudo_likelihood
from .reparam import reparameterize
from .sampling import sample_bernoulli, sample_gaussian
from .sgd import sgd_momentum_update
from .sparse_linear import sparse_input_linear

__all__ = ["sample_bernoulli", "sample_gaussian", "gibbs", "cd_gradients", "CDGradients", "cd_epoch", "binary_matmul",
           "sample_categorical", "reparameterize", "bernoulli_log_likelihood", "gaussian_log_likelihood",
           "sparse_input_linear", "ais_log_weights", "pseudo_likelihood", "sgd_momentum_update", "data_summary",
           "DataSummary"]
