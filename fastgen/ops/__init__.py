"""Functional kernels: validate once, then call the compiled kernel.

Arrays in, same kind out (NumPy, or CPU torch tensors viewed through DLPack). float32 and
float64 are computed as given; other real dtypes are converted once (see ``validation``).
Inputs are never modified, except by the ops that update a model in place (``cd_epoch``,
``sgd_momentum_update``), which say so.
"""
from .ais import ais_log_weights, raise_log_weights
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


def share_blas_threads(enabled: bool = True) -> list[str]:
    """Run NumPy's and SciPy's OpenBLAS threaded work on fastgen's OpenMP team (the default since
    the first kernel call, unless ``FASTGEN_SHARE_BLAS_THREADS=0``), or give each its own thread
    pool back.

    Separate pools fight for the cores: OpenBLAS's workers spin for about 0.1 s after each call,
    so a kernel called right after NumPy's matmuls ran at about half speed on a small machine.
    Results do not change; NumPy's and SciPy's thread counts stay theirs to set (threadpoolctl).

    Parameters
    ----------
    enabled : bool
        True to share one pool, False to restore the libraries' own pools.

    Returns
    -------
    list of str
        Paths of the OpenBLAS libraries now running on fastgen's team (empty when none has the
        hook: OpenBLAS before 0.3.27, or a BLAS that is not OpenBLAS with pthreads).
    """
    from .._checks import flag
    from .._native import cpu

    return cpu.share_blas_threads(flag(enabled, "enabled"))


__all__ = ["sample_bernoulli", "sample_gaussian", "gibbs", "cd_gradients", "CDGradients", "cd_epoch", "binary_matmul",
           "sample_categorical", "reparameterize", "bernoulli_log_likelihood", "gaussian_log_likelihood",
           "sparse_input_linear", "ais_log_weights", "raise_log_weights", "pseudo_likelihood", "sgd_momentum_update",
           "data_summary", "DataSummary", "share_blas_threads"]
