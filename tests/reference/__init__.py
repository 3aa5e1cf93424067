"""Plain NumPy references for fastgen's kernels (the test oracle), one module per op.

Everything here is computed in float64 from first principles, written for clarity rather than
speed, and shares no code with fastgen except the raw Philox words (:func:`philox.words`), which
the tests pin to the pure-Python Philox4x32-10 of :mod:`reference.philox` and to the published
Random123 vectors.

``reference/<op>.py`` mirrors ``fastgen/ops/<op>.py`` and names each reference after the op it
checks; :mod:`~reference.philox` holds the random stream, :mod:`~reference.activations` the
elementary functions, :mod:`~reference.rbm` and :mod:`~reference.gbrbm` the models' math.
Every name is re-exported here, so ``import reference as ref; ref.gibbs(...)`` works as well as
``from reference.gibbs import gibbs``.
"""
from .activations import log_sigmoid, sigmoid, softplus
from .ais import ais_log_weights, raise_log_weights
from .binary import binary_matmul
from .categorical import sample_categorical
from .cd import CDRef, TrainRef, cd_gradients, train_pass
from .data_summary import data_summary
from .elbo import LOG_2PI, bernoulli_log_likelihood, gaussian_log_likelihood
from .gbrbm import (GBCDRef, GBMixture, gb_cd_gradients, gb_energy, gb_free_energy, gb_hidden_probs, gb_mixture,
                    gb_moments, gb_visible_mean)
from .gibbs import GibbsRef, gibbs
from .philox import (MASK32, PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1, Normals, normal, normals_from_words,
                     philox4x32_10, philox_words_numpy, seed_and_offset, stream_counter, stream_key,
                     stream_word_py, uniform, uniform_from_words, uniform_open, uniform_open_from_words, words)
from .rbm import (all_states, as_float64, energy, free_energy, hidden_probs, log_partition_brute_force,
                  visible_probs)
from .pseudo_likelihood import pseudo_likelihood
from .reparam import reparameterize
from .sgd import sgd_step
from .sampling import AMBIGUOUS_TOL, BernoulliDraw, ambiguous_tol, bernoulli, sample_bernoulli, sample_gaussian
from .sparse_linear import sparse_input_linear, sparse_input_linear_grads

__all__ = [
    # activations
    "sigmoid", "softplus", "log_sigmoid",
    # ais
    "ais_log_weights", "raise_log_weights",
    # philox: the random stream
    "MASK32", "PHILOX_M0", "PHILOX_M1", "PHILOX_W0", "PHILOX_W1", "philox4x32_10", "stream_counter", "stream_key",
    "stream_word_py", "philox_words_numpy", "words", "seed_and_offset", "uniform_from_words",
    "uniform_open_from_words", "uniform_open", "Normals", "normals_from_words", "uniform", "normal",
    # sampling
    "AMBIGUOUS_TOL", "ambiguous_tol", "bernoulli", "BernoulliDraw", "sample_bernoulli", "sample_gaussian",
    # rbm
    "as_float64", "energy", "hidden_probs", "visible_probs", "free_energy", "pseudo_likelihood", "all_states",
    "log_partition_brute_force",
    # gibbs
    "GibbsRef", "gibbs",
    # cd
    "CDRef", "cd_gradients", "sgd_step", "TrainRef", "train_pass",
    # gbrbm
    "gb_energy", "gb_hidden_probs", "gb_visible_mean", "gb_free_energy", "GBMixture", "gb_mixture", "gb_moments",
    "GBCDRef", "gb_cd_gradients",
    # binary, categorical, data_summary, elbo, reparam, sparse_linear
    "binary_matmul", "sample_categorical", "data_summary", "LOG_2PI", "bernoulli_log_likelihood",
    "gaussian_log_likelihood", "reparameterize", "sparse_input_linear", "sparse_input_linear_grads",
]
