"""scikit-learn estimators backed by fastgen's compiled kernels."""
from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .models.rbm import RBM, ContrastiveDivergence
from .random import Generator

# Sparse input is densified this many rows at a time (rounded to whole batches).
_SPARSE_CHUNK_ROWS = 4096


class BernoulliRBM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Bernoulli restricted Boltzmann machine trained by persistent contrastive divergence.

    A drop-in for :class:`sklearn.neural_network.BernoulliRBM`: the same parameters, defaults,
    attributes and methods, with every epoch run in compiled code. Differences, all
    deliberate: :meth:`score_samples` returns the *exact* pseudo-likelihood (the expectation of
    scikit-learn's one-random-bit estimate, so it is deterministic); randomness comes from
    fastgen's Philox stream seeded from ``random_state``; the negative-phase statistics are a
    mean over the chains (scikit-learn divides them by the batch's row count, which differs
    only on a shorter last batch).

    Parameters
    ----------
    n_components : int, default=256
        Number of hidden units.
    learning_rate : float, default=0.1
    batch_size : int, default=10
    n_iter : int, default=10
        Passes over the training data.
    verbose : int, default=0
        Print scikit-learn's progress line after each iteration.
    random_state : int, RandomState instance or None, default=None
    cd_k : int, default=1
        Gibbs steps per negative phase.
    persistent : bool, default=True
        PCD (persistent chains, scikit-learn's algorithm) or plain CD-k.
    n_chains : int or None, default=None
        Number of persistent chains; None means ``batch_size`` (as scikit-learn).
    momentum : float in [0, 1), default=0.0
    weight_decay : float, default=0.0
        L2 penalty on the weights.
    dtype : {None, "float32", "float64"}, default=None
        Compute dtype; None follows the input (float32 stays float32, anything else float64).
    device : {"cpu"}, default="cpu"
        Where to train. Only the CPU backend exists in this build.
    progress : bool, default=False
        Show a progress bar over iterations instead of the verbose lines.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Weight matrix W.
    intercept_hidden_ : ndarray of shape (n_components,)
    intercept_visible_ : ndarray of shape (n_features,)
    h_samples_ : ndarray of shape (n_chains, n_components)
        Hidden states of the persistent chains.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has string feature names.
    """

    def __init__(
        self,
        n_components=256,
        *,
        learning_rate=0.1,
        batch_size=10,
        n_iter=10,
        verbose=0,
        random_state=None,
        cd_k=1,
        persistent=True,
        n_chains=None,
        momentum=0.0,
        weight_decay=0.0,
        dtype=None,
        device="cpu",
        progress=False,
    ):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.cd_k = cd_k
        self.persistent = persistent
        self.n_chains = n_chains
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.dtype = dtype
        self.device = device
        self.progress = progress

    # ---- validation ----------------------------------------------------------------------------
    def _check_params(self):
        def integer(name, minimum, allow_none=False):
            value = getattr(self, name)
            if allow_none and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")

        def number(name, low, high=None, low_open=False, high_open=False):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite real number, got {value!r}")
            if value < low or (low_open and value == low) or (high is not None and (value > high or (high_open and value == high))):
                interval = f"{'(' if low_open else '['}{low}, {'inf' if high is None else high}{')' if high_open or high is None else ']'}"
                raise ValueError(f"{name} must be in {interval}, got {value!r}")

        integer("n_components", 1)
        number("learning_rate", 0.0, low_open=True)
        integer("batch_size", 1)
        integer("n_iter", 0)
        integer("cd_k", 1)
        integer("n_chains", 1, allow_none=True)
        number("momentum", 0.0, 1.0, high_open=True)
        number("weight_decay", 0.0)
        if not isinstance(self.persistent, (bool, np.bool_)):
            raise ValueError(f"persistent must be a bool, got {self.persistent!r}")
        if self.dtype is not None:
            try:
                dtype = np.dtype(self.dtype)
            except TypeError:  # not a dtype at all: refused below, naming dtype
                dtype = None
            if dtype not in (np.float32, np.float64):
                raise ValueError(f"dtype must be None, 'float32' or 'float64', got {self.dtype!r}")
        if self.device != "cpu":
            raise ValueError(
                f"device must be 'cpu', got {self.device!r}: this build of fastgen has no CUDA backend yet"
            )

    def _compute_dtype(self, X_dtype):
        if self.dtype is not None:
            return np.dtype(self.dtype)
        return np.dtype(np.float32) if X_dtype == np.float32 else np.dtype(np.float64)

    def _validate_X(self, X, reset, dtype=None):
        X = validate_data(self, X, accept_sparse="csr", reset=reset, dtype=(np.float64, np.float32))
        if dtype is None:
            dtype = self._compute_dtype(X.dtype) if reset else self.components_.dtype
        if sp.issparse(X):
            X = X.astype(dtype, copy=False)
            values = X.data
        else:
            X = np.ascontiguousarray(X, dtype=dtype)
            values = X
        if values.size and (values.min() < 0 or values.max() > 1):
            warnings.warn(
                "BernoulliRBM expects values in [0, 1] (binary or probabilities); "
                "X has values outside that range",
                UserWarning,
                stacklevel=3,
            )
        return X

    @staticmethod
    def _dense_chunks(X, rows_per_chunk):
        """Dense, C-contiguous row blocks of X (X itself when it is dense)."""
        if not sp.issparse(X):
            yield X
            return
        for start in range(0, X.shape[0], rows_per_chunk):
            yield np.ascontiguousarray(X[start:start + rows_per_chunk].toarray())

    def _model(self) -> RBM:
        return RBM(self.components_, self.intercept_visible_, self.intercept_hidden_)

    def _trainer(self) -> ContrastiveDivergence:
        trainer = ContrastiveDivergence(
            learning_rate=self.learning_rate, cd_k=self.cd_k, persistent=bool(self.persistent),
            n_chains=self.n_chains or self.batch_size, momentum=self.momentum, weight_decay=self.weight_decay,
            chains=self.h_samples_ if self.persistent else None,
            velocities=getattr(self, "_velocities", None),
        )
        return trainer

    def _initialize(self, n_features, dtype, generator):
        rbm = RBM.initialize(n_features, self.n_components, dtype=dtype, generator=generator)
        self.components_ = rbm.weights
        self.intercept_hidden_ = rbm.hidden_bias
        self.intercept_visible_ = rbm.visible_bias
        self.h_samples_ = np.zeros((self.n_chains or self.batch_size, self.n_components), dtype)
        self._velocities = None
        self._n_features_out = self.n_components

    def _store_trainer_state(self, trainer):
        self._velocities = trainer.velocities
        if trainer.chains is not None:
            self.h_samples_ = trainer.chains

    @staticmethod
    def _generator_from(random_state) -> Generator:
        rng = check_random_state(random_state)
        return Generator(int(rng.randint(np.iinfo(np.int64).max, dtype=np.int64)))

    # ---- scikit-learn API ----------------------------------------------------------------------
    def fit(self, X, y=None):
        """Fit the model to X by PCD-k (or CD-k) over ``n_iter`` passes.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, values in [0, 1].
        y : ignored

        Returns
        -------
        self : BernoulliRBM
        """
        self._check_params()
        X = self._validate_X(X, reset=True)
        generator = self._generator_from(self.random_state)
        dtype = X.dtype
        self._initialize(X.shape[1], dtype, generator)
        rbm, trainer = self._model(), self._trainer()
        rows_per_chunk = self.batch_size * max(1, _SPARSE_CHUNK_ROWS // self.batch_size)

        iterations = range(1, self.n_iter + 1)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(iterations, desc=type(self).__name__, unit="epoch")
            iterations = bar
        begin = time.time()
        for iteration in iterations:
            for chunk in self._dense_chunks(X, rows_per_chunk):
                trainer.run(rbm, chunk, self.batch_size, generator)
            if self.verbose and not self.progress:
                end = time.time()
                print(
                    "[%s] Iteration %d, pseudo-likelihood = %.2f, time = %.2fs"
                    % (type(self).__name__, iteration, self.score_samples(X).mean(), end - begin)
                )
                begin = end
        if bar is not None:
            bar.close()
        self._store_trainer_state(trainer)
        self._generator = generator
        return self

    def partial_fit(self, X, y=None):
        """One CD/PCD update with all of X as the mini-batch.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self : BernoulliRBM
        """
        self._check_params()
        first_pass = not hasattr(self, "components_")
        X = self._validate_X(X, reset=first_pass)
        if not hasattr(self, "_generator"):
            self._generator = self._generator_from(self.random_state)
        if first_pass:
            self._initialize(X.shape[1], X.dtype, self._generator)
        rbm, trainer = self._model(), self._trainer()
        dense = X.toarray() if sp.issparse(X) else X
        if dense.shape[0]:
            trainer.run(rbm, np.ascontiguousarray(dense), dense.shape[0], self._generator)
        self._store_trainer_state(trainer)
        return self

    def transform(self, X):
        """Hidden activation probabilities P(h = 1 | v = X).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        h : ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        rbm = self._model()
        if sp.issparse(X):
            return np.vstack([rbm.hidden_probs(c) for c in self._dense_chunks(X, _SPARSE_CHUNK_ROWS)] or
                             [np.empty((0, self.n_components), rbm.dtype)])
        return rbm.hidden_probs(X)

    def score_samples(self, X):
        """Exact log pseudo-likelihood of each row: ``sum_i log P(x_i | x_-i)``.

        scikit-learn's version flips one random unit per row and scales by n_features, a noisy
        estimate of this sum; this one is exact and deterministic.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        pseudo_likelihood : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        rbm = self._model()
        parts = [rbm.pseudo_likelihood(c) for c in self._dense_chunks(X, _SPARSE_CHUNK_ROWS)]
        return np.concatenate(parts) if parts else np.empty(0, rbm.dtype)

    def gibbs(self, v):
        """One block-Gibbs step v -> h -> v.

        Parameters
        ----------
        v : ndarray of shape (n_samples, n_features)

        Returns
        -------
        v_new : ndarray of bool, shape (n_samples, n_features)
            Visible states after one step (boolean, as scikit-learn returns them).
        """
        check_is_fitted(self)
        v = self._validate_X(v, reset=False)
        if sp.issparse(v):
            v = np.ascontiguousarray(v.toarray())
        if not hasattr(self, "_generator"):
            self._generator = self._generator_from(self.random_state)
        return self._model().gibbs(v, 1, generator=self._generator).astype(bool)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
