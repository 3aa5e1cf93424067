"""scikit-learn estimators backed by fastgen's compiled kernels."""
from __future__ import annotations

import numbers
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn import get_config
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    Options,
    validate_parameter_constraints,
)
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import _backend
from ._native import cpu as _cpu
from .models.rbm import RBM, ContrastiveDivergence
from .ops.validation import is_finite_real
from .random import Generator, as_generator

# What validate_data(reset=True) sets on the estimator.
_FEATURE_ATTRIBUTES = ("n_features_in_", "feature_names_in_")

# Sparse input is densified this many rows at a time (rounded to whole batches).
_SPARSE_CHUNK_ROWS = 4096

# Training data outside [0, 1] by more than this warns (MinMaxScaler's rounding gives values like
# -1e-17 or 1 + 2e-16, float32 data 1 + 1.2e-7: not worth a warning).
_RANGE_TOLERANCE = 1e-6


# ---- parameter checks shared by the estimators ---------------------------------------------------
def _check_fitted_finite(estimator, names) -> None:
    """A fitted parameter with a NaN or infinity (a damaged file, or arrays set by hand) is
    refused: the kernels would propagate it into every output, or a sampler would turn it into
    states that look like numbers."""
    for name in names:
        a = getattr(estimator, name)
        if isinstance(a, np.ndarray) and a.size and not np.isfinite(a).all():
            raise ValueError(f"{type(estimator).__name__}.{name} contains NaN or infinity: the model is "
                             "unusable (fit it again)")


def _writeable(owner, names) -> None:
    """Arrays that training updates in place, made writeable copies where they are read-only (a
    model loaded with joblib's mmap_mode='r'); the file behind them is never written."""
    for name in names:
        a = getattr(owner, name, None)
        if isinstance(a, np.ndarray) and not a.flags.writeable:
            setattr(owner, name, np.array(a))
        elif isinstance(a, tuple) and any(isinstance(v, np.ndarray) and not v.flags.writeable for v in a):
            setattr(owner, name, tuple(np.array(v) for v in a))


def _writeable_training_state(estimator) -> None:
    """Everything partial_fit updates in place: parameters, chains, momentum, tempering replicas."""
    _writeable(estimator, (*_RBM_PARAMETERS, "log_sigma_", "h_samples_", "_velocities"))
    sampler = getattr(estimator, "tempering_", None)
    if sampler is not None:
        _writeable(sampler, ("visible", "swap_attempts", "swap_accepts"))


_RBM_PARAMETERS = ("components_", "intercept_visible_", "intercept_hidden_")

def _parse_device(device):
    """"auto", "cpu", "cuda", or a CUDA ordinal for "cuda:N"; InvalidParameterError (a ValueError)
    naming ``device``."""
    if isinstance(device, str):
        text = device.strip().lower()
        if text in ("auto", "cpu", "cuda"):
            return text
        if text.startswith("cuda:") and text[5:].isdigit():
            return int(text[5:])
    raise InvalidParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def _check_integer(estimator, name, minimum, allow_none=False, maximum=None):
    value = getattr(estimator, name)
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise InvalidParameterError(f"{name} must be at most {maximum}, got {value!r}")


# Unit counts, batch rows and chains are BLAS dimensions (32-bit int) in the compiled loops.
_MAX_EXTENT = 2**31 - 1


def check_random_state_named(random_state):
    """scikit-learn's check_random_state, with errors (InvalidParameterError, a ValueError) that
    name random_state."""
    try:
        return check_random_state(random_state)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"random_state must be None, an int in [0, 2**32) or a numpy RandomState, "
                         f"got {random_state!r} ({exc})") from None


def _check_number(estimator, name, low, high=None, low_open=False, high_open=False):
    value = getattr(estimator, name)
    if not is_finite_real(value):
        raise InvalidParameterError(f"{name} must be a finite real number, got {value!r}")
    if value < low or (low_open and value == low) or (high is not None and (value > high or (high_open and value == high))):
        interval = f"{'(' if low_open else '['}{low}, {'inf' if high is None else high}{')' if high_open or high is None else ']'}"
        raise InvalidParameterError(f"{name} must be in {interval}, got {value!r}")


def _check_rbm_params(estimator):
    """The training parameters every RBM estimator has (and their dtype option)."""
    _check_integer(estimator, "n_components", 1, maximum=_MAX_EXTENT)
    _check_number(estimator, "learning_rate", 0.0, low_open=True)
    _check_integer(estimator, "batch_size", 1, maximum=_MAX_EXTENT)
    _check_integer(estimator, "n_iter", 0)
    _check_integer(estimator, "cd_k", 1, maximum=_MAX_EXTENT)
    _check_integer(estimator, "n_chains", 1, allow_none=True, maximum=_MAX_EXTENT)
    _check_number(estimator, "momentum", 0.0, 1.0, high_open=True)
    _check_number(estimator, "weight_decay", 0.0)
    if estimator.dtype is not None:
        try:
            dtype = np.dtype(estimator.dtype)
        except TypeError:  # not a dtype at all: refused below, naming dtype
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise InvalidParameterError(f"dtype must be None, 'float32' or 'float64', got {estimator.dtype!r}")


def _warn_outside_unit_interval(low, high, stacklevel) -> None:
    if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        warnings.warn(
            "BernoulliRBM expects values in [0, 1] (binary or probabilities); "
            f"X has values outside that range (min {float(low):.6g}, max {float(high):.6g})",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


# scikit-learn's validate_parameter_constraints takes only its own constraint classes, so the two
# options it has no constraint for are Options with their own test.
class _FloatDtype(Options):
    """The ``dtype`` option: anything ``np.dtype`` maps to float32 or float64."""

    def __init__(self):
        super().__init__(object, {"float32", "float64"})

    def is_satisfied_by(self, val):
        try:
            return np.dtype(val) in (np.float32, np.float64)
        except TypeError:
            return False

    def __str__(self):
        return "a float32 or float64 dtype ('float32', 'float64', numpy.float32, ...)"


class _Device(Options):
    """The ``device`` option (see :func:`_parse_device`)."""

    def __init__(self):
        super().__init__(str, {"auto", "cpu", "cuda"})

    def is_satisfied_by(self, val):
        try:
            _parse_device(val)
        except InvalidParameterError:
            return False
        return True

    def __str__(self):
        return "one of 'auto', 'cpu', 'cuda' or 'cuda:N'"


# scikit-learn's constraint table of the parameters every RBM estimator has (the first six are
# scikit-learn's BernoulliRBM's, with the same constraints). Extents are bounded by _MAX_EXTENT
# and reals must be finite: _check_rbm_params checks those, after the table, with messages of
# their own.
_RBM_PARAMETER_CONSTRAINTS = {
    "n_components": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "n_iter": [Interval(Integral, 0, None, closed="left")],
    "verbose": ["verbose"],
    "random_state": ["random_state"],
    "cd_k": [Interval(Integral, 1, None, closed="left")],
    "persistent": ["boolean"],
    "n_chains": [Interval(Integral, 1, None, closed="left"), None],
    "momentum": [Interval(Real, 0, 1, closed="left")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "dtype": [None, _FloatDtype()],
    "progress": ["boolean"],
}


# fastgen's wording of two errors, which callers match, appended to scikit-learn's.
_WORDING = {
    "random_state": "random_state must be None, an int in [0, 2**32) or a numpy RandomState",
    "device": "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'",
}


def _validate_estimator_params(estimator, caller_name=None) -> None:
    """Every parameter of an RBM estimator checked, or InvalidParameterError (a ValueError and a
    TypeError, as scikit-learn raises) naming it: scikit-learn's ``_parameter_constraints`` table
    first (skipped under ``sklearn.set_config(skip_parameter_validation=True)``, as in
    scikit-learn), then fastgen's own checks, which always run: the compiled loops take 32-bit
    extents and finite rates."""
    if not get_config().get("skip_parameter_validation", False):
        caller_name = caller_name or type(estimator).__name__
        for name, value in estimator.get_params(deep=False).items():
            try:  # one parameter at a time, so that the message can keep fastgen's wording too
                validate_parameter_constraints(estimator._parameter_constraints, {name: value},
                                               caller_name=caller_name)
            except InvalidParameterError as exc:
                if name not in _WORDING:
                    raise
                raise InvalidParameterError(f"{exc} ({_WORDING[name]})") from None
    check_random_state_named(estimator.random_state)
    _check_rbm_params(estimator)
    for name in ("persistent", *(("learn_sigma",) if hasattr(estimator, "learn_sigma") else ())):
        if not isinstance(getattr(estimator, name), (bool, np.bool_)):
            raise InvalidParameterError(f"{name} must be a bool, got {getattr(estimator, name)!r}")


class BernoulliRBM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Bernoulli restricted Boltzmann machine trained by persistent contrastive divergence.

    A drop-in for :class:`sklearn.neural_network.BernoulliRBM`: the same parameters, defaults,
    attributes and methods, with every epoch run in compiled code. Differences, all
    deliberate: :meth:`score_samples` returns the *exact* pseudo-likelihood (the expectation of
    scikit-learn's one-random-bit estimate, so it is deterministic); randomness comes from
    fastgen's Philox stream seeded from ``random_state``; the negative-phase statistics are a
    mean over the chains (scikit-learn divides them by the batch's row count, which differs
    only on a shorter last batch).

    scikit-learn's underscore helpers are here too, with its semantics: ``_mean_hiddens(v)``
    (P(h | v)), ``_sample_hiddens(v, rng)`` and ``_sample_visibles(h, rng)`` (boolean states;
    drawn from the Philox stream seeded from ``rng``, so deterministic given rng's state but not
    scikit-learn's bits) and ``_free_energy(v)`` (scikit-learn's sign: low for likely v).
    Parameter errors are scikit-learn's ``InvalidParameterError`` (a ValueError and a
    TypeError), checked against ``_parameter_constraints`` in :meth:`fit` and
    :meth:`partial_fit`. Training data outside [0, 1] (by more than rounding) warns; data that
    is only transformed or scored does not, as in scikit-learn (held-out folds of a
    MinMaxScaler pipeline leave [0, 1]).

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
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
        Where :meth:`fit` and :meth:`partial_fit` train. "auto": on the GPU when X is already
        there (a CuPy array, a torch CUDA tensor, or a DLPack / ``__cuda_array_interface__``
        producer), else on the CPU. "cuda" (or "cuda:N"): on the GPU, copying host data there
        once. "cpu": on the CPU (GPU data is copied to the host). A GPU fit keeps the data on
        the device, runs every epoch there (cuBLAS GEMMs, the CUDA sampling kernel, one CUDA
        graph per epoch from the second epoch on, on the caller's current stream) and draws
        from the same Philox counters as the CPU; the fitted attributes are NumPy arrays either
        way. :meth:`transform` of GPU data runs on the GPU and returns the input's kind; the
        other methods copy GPU data to the host. Parallel tempering runs on the CPU only.
    progress : bool, default=False
        Show a progress bar over iterations instead of the verbose lines.
    n_temperatures : int, default=1
        1: the negative phase is CD-k or PCD-k (``persistent``). More: parallel tempering
        (Desjardins et al. 2010) with that many replicas of ``n_chains`` chains at inverse
        temperatures evenly spaced from 1 down to ``min_beta``, ``cd_k`` PT steps per batch
        (requires ``persistent=True``); the Python-level loop is slower per batch than the
        compiled PCD loop.
    min_beta : float in [0, 1), default=0.0
        The hottest replica's inverse temperature (parallel tempering only).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Weight matrix W.
    intercept_hidden_ : ndarray of shape (n_components,)
    intercept_visible_ : ndarray of shape (n_features,)
    h_samples_ : ndarray of shape (n_chains, n_components)
        Hidden states of the persistent chains (with parallel tempering: P(h | v) of the
        beta = 1 replica).
    tempering_ : fastgen.models.tempering.ParallelTempering
        Parallel tempering only: the replicas and their swap statistics (``swap_rates``).
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
        device="auto",
        progress=False,
        n_temperatures=1,
        min_beta=0.0,
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
        self.n_temperatures = n_temperatures
        self.min_beta = min_beta

    _parameter_constraints: dict = {
        **_RBM_PARAMETER_CONSTRAINTS,
        "device": [_Device()],
        "n_temperatures": [Interval(Integral, 1, None, closed="left")],
        "min_beta": [Interval(Real, 0, 1, closed="left")],
    }

    # ---- validation ----------------------------------------------------------------------------
    def _check_params(self, caller_name=None):
        """InvalidParameterError naming the first bad parameter (``caller_name``: the estimator
        named in scikit-learn's messages, DBN for its layers)."""
        _validate_estimator_params(self, caller_name)
        _parse_device(self.device)
        _check_integer(self, "n_temperatures", 1)
        _check_number(self, "min_beta", 0.0, 1.0, high_open=True)
        if self.n_temperatures > 1 and not self.persistent:
            raise InvalidParameterError("n_temperatures > 1 (parallel tempering) needs persistent=True")

    def _validate_params(self):  # scikit-learn's hook (used by its _fit_context): the same checks
        self._check_params()

    def _compute_dtype(self, X_dtype):
        if self.dtype is not None:
            return np.dtype(self.dtype)
        return np.dtype(np.float32) if X_dtype == np.float32 else np.dtype(np.float64)

    def _validate_X(self, X, reset, dtype=None, column_sums=False, training=False):
        """X checked and converted (CSR or C-contiguous, in the compute dtype), as scikit-learn's
        ``validate_data`` does; with ``column_sums``, ``(X, sums)``, sums the float64 column sums
        of X (None for sparse X).

        ``training`` (fit, partial_fit): a warning when X has values outside [0, 1] by more than
        rounding (``_RANGE_TOLERANCE``). Data that is only transformed or scored never warns, as
        in scikit-learn: P(h | v) and the free energy are defined for any real v, and a scaler
        fitted on other rows (MinMaxScaler in cross-validation) routinely gives held-out values
        outside [0, 1]."""
        if _backend.is_cuda_array(X):  # the CPU methods: one copy to the host
            X = _backend.to_host(X, "X")
        # Dense data gets its NaN/inf check in the compiled pass below, together with the range
        # and the column sums (one pass instead of NumPy's four).
        dense = not sp.issparse(X)
        # validate_data(reset=True) records the feature count before the pass below can reject X;
        # a rejected X must leave those attributes as they were (scikit-learn checks first).
        kept = {k: v for k, v in vars(self).items() if k in _FEATURE_ATTRIBUTES} if reset else None
        X = validate_data(self, X, accept_sparse="csr", reset=reset, dtype=(np.float64, np.float32),
                          ensure_all_finite=not dense)
        if dtype is None:
            dtype = self._compute_dtype(X.dtype) if reset else self.components_.dtype
        sums = None
        if sp.issparse(X):
            X = X.astype(dtype, copy=False)
            low, high = (X.data.min(), X.data.max()) if X.data.size else (0, 0)
        else:
            X = np.ascontiguousarray(X, dtype=dtype)
            sums = np.zeros(X.shape[1]) if column_sums else None
            finite, low, high = _cpu.C.summarize_rows(X, sums)
            if not finite:  # scikit-learn's own error, for its wording
                if kept is not None:
                    for name in _FEATURE_ATTRIBUTES:
                        self.__dict__.pop(name, None)
                    self.__dict__.update(kept)
                check_array(X, ensure_all_finite=True, input_name="X", estimator=self)
        if training:
            _warn_outside_unit_interval(low, high, stacklevel=3)
        return (X, sums) if column_sums else X

    @staticmethod
    def _dense_chunks(X, rows_per_chunk):
        """Dense, C-contiguous row blocks of X (X itself when it is dense)."""
        if not sp.issparse(X):
            yield X
            return
        for start in range(0, X.shape[0], rows_per_chunk):
            yield np.ascontiguousarray(X[start:start + rows_per_chunk].toarray())

    def _model(self) -> RBM:
        _check_fitted_finite(self, _RBM_PARAMETERS)
        return RBM(self.components_, self.intercept_visible_, self.intercept_hidden_)

    def _trainer(self) -> ContrastiveDivergence:
        if self.n_temperatures > 1:
            from .models.tempering import ParallelTemperingTrainer, temperature_ladder

            return ParallelTemperingTrainer(
                learning_rate=self.learning_rate, cd_k=self.cd_k, n_chains=self.n_chains or self.batch_size,
                momentum=self.momentum, weight_decay=self.weight_decay,
                velocities=getattr(self, "_velocities", None),
                betas=temperature_ladder(self.n_temperatures, self.min_beta),
                sampler=getattr(self, "tempering_", None),
            )
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
        self.__dict__.pop("tempering_", None)

    def _store_trainer_state(self, trainer):
        self._velocities = trainer.velocities
        if trainer.chains is not None:
            self.h_samples_ = trainer.chains
        if getattr(trainer, "sampler", None) is not None:
            self.tempering_ = trainer.sampler

    @staticmethod
    def _generator_from(random_state) -> Generator:
        rng = check_random_state_named(random_state)
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
        return self._fit(X)

    def _fit(self, X, init=None):
        """:meth:`fit`, optionally starting from ``init = (W, b_vis, b_hid)`` instead of the random
        weights (the stream still skips the offset the initialisation takes), as DBN's
        ``init_rbms`` needs."""
        self._check_params()
        device = self._train_device(X)
        if device != "cpu":
            return self._fit_cuda(X, device, init=init)
        X, column_sums = self._validate_X(X, reset=True, column_sums=True, training=True)
        generator = self._generator_from(self.random_state)
        dtype = X.dtype
        self._initialize(X.shape[1], dtype, generator)
        if init is not None:
            self.components_[...], self.intercept_visible_[...], self.intercept_hidden_[...] = init
        rbm, trainer = self._model(), self._trainer()
        rows_per_chunk = self.batch_size * max(1, _SPARSE_CHUNK_ROWS // self.batch_size)

        iterations = range(1, self.n_iter + 1)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(iterations, desc=type(self).__name__, unit="epoch")
            iterations = bar
        begin = time.time()
        try:
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
        finally:  # after a failed (and undone) pass too: chains, velocities, stream position
            if bar is not None:
                bar.close()
            self._store_trainer_state(trainer)
            self._generator = generator
        if column_sums is None:  # sparse X
            column_sums = np.asarray(X.sum(axis=0), np.float64).ravel()
        self._visible_sums = (column_sums, X.shape[0])
        return self

    # ---- GPU training -----------------------------------------------------------------------
    def _train_device(self, X):
        """"cpu" or the CUDA ordinal fit / partial_fit train on (see ``device``)."""
        wanted = _parse_device(self.device)
        on_gpu = _backend.is_cuda_array(X)
        if wanted == "cpu" or (wanted == "auto" and not on_gpu):
            return "cpu"
        if self.n_temperatures > 1:
            raise InvalidParameterError("n_temperatures > 1 (parallel tempering) runs on the CPU only: use device='cpu' "
                             "(and host data)")
        if wanted == "auto" or wanted == "cuda":
            device = _backend.device_of(X) if on_gpu else 0
        else:
            device = wanted
            if on_gpu and _backend.device_of(X) != device:
                raise ValueError(f"device={self.device!r} but X is on cuda:{_backend.device_of(X)}")
        from ._native import cuda as _cuda

        reason = _cuda.unavailable_reason()
        if reason is not None:
            raise ValueError(f"device={self.device!r} needs a CUDA device: {reason}")
        return device

    def _device_data(self, X, reset, training=False):
        """X as a C-contiguous CuPy array of the compute dtype on the current device (zero-copy
        when it is already there in that layout), checked like :meth:`_validate_X`."""
        import cupy as cp

        if sp.issparse(X):
            X = X.toarray()
        X = _backend.to_cupy(X, "X")
        if X.ndim != 2:
            raise ValueError(f"Expected 2D array, got array of shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X must hold real numbers, got dtype {X.dtype}")
        if reset:
            self.n_features_in_ = X.shape[1]
            self.__dict__.pop("feature_names_in_", None)
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input.")
        dtype = self._compute_dtype(X.dtype) if reset else self.components_.dtype
        X = cp.ascontiguousarray(X, dtype=dtype)
        if X.size:
            low, high = (float(v) for v in cp.stack([X.min(), X.max()]).get())
            if not (np.isfinite(low) and np.isfinite(high)):
                raise ValueError("Input X contains NaN or infinity.")
            if training:
                _warn_outside_unit_interval(low, high, stacklevel=4)
        return X

    def _train_cuda(self, X_dev, passes, batch_size, generator):
        """``passes`` epochs over X_dev on the current device, from the estimator's host
        parameters; copies the results back."""
        import cupy as cp

        rbm = RBM(*(cp.asarray(a) for a in (self.components_, self.intercept_visible_, self.intercept_hidden_)))
        trainer = self._trainer()
        if trainer.chains is not None:
            trainer.chains = cp.asarray(trainer.chains)
        if trainer.velocities is not None:
            trainer.velocities = tuple(cp.asarray(a) for a in trainer.velocities)
        try:
            for iteration in range(1, passes + 1):
                begin = time.time()
                trainer.run(rbm, X_dev, batch_size, generator)
                if self.verbose:
                    self.components_, self.intercept_visible_, self.intercept_hidden_ = (
                        cp.asnumpy(a) for a in (rbm.weights, rbm.visible_bias, rbm.hidden_bias))
                    print("[%s] Iteration %d, pseudo-likelihood = %.2f, time = %.2fs"
                          % (type(self).__name__, iteration, self.score_samples(cp.asnumpy(X_dev)).mean(),
                             time.time() - begin))
        finally:  # after a failed (and undone) pass too: the last finite parameters
            self.components_, self.intercept_visible_, self.intercept_hidden_ = (
                cp.asnumpy(a) for a in (rbm.weights, rbm.visible_bias, rbm.hidden_bias))
            if trainer.chains is not None:
                trainer.chains = cp.asnumpy(trainer.chains)
            if trainer.velocities is not None:
                trainer.velocities = tuple(cp.asnumpy(a) for a in trainer.velocities)
            self._store_trainer_state(trainer)

    def _fit_cuda(self, X, device, init=None):
        with _backend.Placement(device, X, "X").activate():
            X_dev = self._device_data(X, reset=True, training=True)
            generator = self._generator_from(self.random_state)
            self._initialize(X_dev.shape[1], X_dev.dtype, generator)
            if init is not None:
                self.components_[...], self.intercept_visible_[...], self.intercept_hidden_[...] = init
            self._train_cuda(X_dev, self.n_iter, self.batch_size, generator)
            self._generator = generator
            self._visible_sums = (X_dev.sum(axis=0, dtype=np.float64).get(), X_dev.shape[0])
        return self

    def _partial_fit_cuda(self, X, device):
        with _backend.Placement(device, X, "X").activate():
            first_pass = not hasattr(self, "components_")
            X_dev = self._device_data(X, reset=first_pass, training=True)
            if not hasattr(self, "_generator"):
                self._generator = self._generator_from(self.random_state)
            if first_pass:
                self._initialize(X_dev.shape[1], X_dev.dtype, self._generator)
            if X_dev.shape[0]:
                self._train_cuda(X_dev, 1, X_dev.shape[0], self._generator)
            sums, count = getattr(self, "_visible_sums", (np.zeros(X_dev.shape[1]), 0))
            self._visible_sums = (sums + X_dev.sum(axis=0, dtype=np.float64).get(), count + X_dev.shape[0])
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
        device = self._train_device(X)
        if device != "cpu":
            return self._partial_fit_cuda(X, device)
        first_pass = not hasattr(self, "components_")
        X = self._validate_X(X, reset=first_pass, training=True)
        if not hasattr(self, "_generator"):
            self._generator = self._generator_from(self.random_state)
        if first_pass:
            self._initialize(X.shape[1], X.dtype, self._generator)
        _writeable_training_state(self)
        rbm, trainer = self._model(), self._trainer()
        dense = X.toarray() if sp.issparse(X) else X
        if dense.shape[0]:
            trainer.run(rbm, np.ascontiguousarray(dense), dense.shape[0], self._generator)
        self._store_trainer_state(trainer)
        sums, count = getattr(self, "_visible_sums", (np.zeros(X.shape[1]), 0))
        self._visible_sums = (sums + np.asarray(dense.sum(axis=0), np.float64).ravel(), count + dense.shape[0])
        return self

    def transform(self, X):
        """Hidden activation probabilities P(h = 1 | v = X).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        h : ndarray of shape (n_samples, n_components)
            For GPU input: computed on its device and returned in its kind.
        """
        check_is_fitted(self)
        if _backend.is_cuda_array(X) and _parse_device(self.device) != "cpu":
            return self._transform_cuda(X)
        X = self._validate_X(X, reset=False)
        return self._mean_hiddens(X)

    def _transform_cuda(self, X):
        import cupy as cp

        from ._native import cuda as _cuda

        pl = _backend.placement(X=X)
        with pl.activate():
            X_dev = self._device_data(X, reset=False)
            W = cp.asarray(self.components_)
            out = cp.empty((X_dev.shape[0], W.shape[0]), W.dtype)
            if out.size:
                _cuda.hidden_probs(X_dev, W, cp.asarray(self.intercept_hidden_), out)
            return pl.wrap(out)

    # ---- scikit-learn's underscore helpers --------------------------------------------------
    # scikit-learn's tests, tutorials and user code call these on its BernoulliRBM. Same
    # semantics here, computed by the model layer (fastgen.models.rbm.RBM). Like scikit-learn's,
    # they take v (or h) as it is: dense or scipy.sparse, one row (1-D) or several (2-D), with no
    # feature-name or range check; the result has the fitted parameters' dtype.

    def _rows(self, a, name):
        """``(rows, one_row)``: a as 2-D float rows of the fitted dtype (CSR for sparse a, dense
        C-contiguous otherwise) and whether a was a single 1-D row."""
        check_is_fitted(self)
        dtype = self.components_.dtype
        if _backend.is_cuda_array(a):
            a = _backend.to_host(a, name)
        if sp.issparse(a):
            a = sp.csr_matrix(a, dtype=dtype)
            return a, False
        a = np.asarray(a, dtype=dtype)
        one_row = a.ndim == 1
        return np.ascontiguousarray(a[None, :] if one_row else a), one_row

    def _row_blocks(self, rows):
        """Dense blocks of ``_SPARSE_CHUNK_ROWS`` rows (views of dense rows, densified sparse ones)."""
        for start in range(0, rows.shape[0], _SPARSE_CHUNK_ROWS):
            block = rows[start:start + _SPARSE_CHUNK_ROWS]
            yield np.ascontiguousarray(block.toarray()) if sp.issparse(block) else block

    @staticmethod
    def _joined(parts, one_row, n_columns, dtype):
        out = np.concatenate(parts) if parts else np.empty((0, n_columns) if n_columns else 0, dtype)
        return out[0] if one_row else out

    def _sampling_stream(self, rng) -> Generator:
        """The fastgen Generator that draws for ``rng``: a NumPy RandomState (or Generator) gives
        a seed drawn from it as :func:`fastgen.random.as_generator` does (one draw, so the states
        are a function of rng's state and successive calls differ); an int seeds it; a
        fastgen.Generator is used as it is; None continues the estimator's own stream (as
        :meth:`gibbs`)."""
        if rng is None:
            if not hasattr(self, "_generator"):
                self._generator = self._generator_from(self.random_state)
            return self._generator
        try:
            return as_generator(rng)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"rng must be a numpy RandomState or Generator, a fastgen.Generator, "
                                        f"an int seed or None, got {rng!r} ({exc})") from None

    def _mean_hiddens(self, v):
        """P(h = 1 | v), as scikit-learn's ``BernoulliRBM._mean_hiddens`` (and :meth:`transform`
        without the input validation).

        Parameters
        ----------
        v : {array-like, sparse matrix} of shape (n_samples, n_features) or (n_features,)

        Returns
        -------
        h : ndarray of shape (n_samples, n_components) (or (n_components,) for one 1-D row)
        """
        rows, one_row = self._rows(v, "v")
        rbm = self._model()
        if sp.issparse(rows):
            parts = [rbm.hidden_probs(block) for block in self._row_blocks(rows)]
            return self._joined(parts, one_row, self.n_components, rbm.dtype)
        h = rbm.hidden_probs(rows)
        return h[0] if one_row else h

    def _sample_hiddens(self, v, rng):
        """Binary states drawn from P(h | v), as scikit-learn's ``_sample_hiddens``.

        The states are Bernoulli(P(h | v)) draws from fastgen's Philox stream, seeded from
        ``rng`` (see :meth:`_sampling_stream`): deterministic given rng's state, but not the
        bits scikit-learn's ``rng.uniform(size=p.shape) < p`` gives. Rows are drawn in blocks of
        4096, one Philox offset per block, so dense and sparse v give the same states.

        Parameters
        ----------
        v : {array-like, sparse matrix} of shape (n_samples, n_features) or (n_features,)
        rng : numpy RandomState or Generator, fastgen.Generator, int or None

        Returns
        -------
        h : ndarray of bool, shape (n_samples, n_components) (or (n_components,))
        """
        rows, one_row = self._rows(v, "v")
        rbm = self._model()
        generator = self._sampling_stream(rng)
        parts = [rbm.sample_hidden(block, generator=generator) for block in self._row_blocks(rows)]
        return self._joined(parts, one_row, self.n_components, rbm.dtype).astype(bool)

    def _sample_visibles(self, h, rng):
        """Binary states drawn from P(v | h), as scikit-learn's ``_sample_visibles`` (fastgen's
        Philox stream seeded from ``rng``, as :meth:`_sample_hiddens`).

        Parameters
        ----------
        h : {array-like, sparse matrix} of shape (n_samples, n_components) or (n_components,)
        rng : numpy RandomState or Generator, fastgen.Generator, int or None

        Returns
        -------
        v : ndarray of bool, shape (n_samples, n_features) (or (n_features,))
        """
        rows, one_row = self._rows(h, "h")
        if rows.ndim != 2 or rows.shape[1] != self.n_components:
            raise ValueError(f"h must have shape (n, {self.n_components}), got {rows.shape}")
        rbm = self._model()
        generator = self._sampling_stream(rng)
        parts = [rbm.sample_visible(block, generator=generator) for block in self._row_blocks(rows)]
        return self._joined(parts, one_row, rbm.n_visible, rbm.dtype).astype(bool)

    def _free_energy(self, v):
        """Free energy ``F(v) = -log sum_h exp(-E(v, h)) = -v.b - sum_j softplus(c_j + W_j v)`` of
        each row, as scikit-learn's ``_free_energy`` (the same sign: low for likely v).

        Parameters
        ----------
        v : {array-like, sparse matrix} of shape (n_samples, n_features) or (n_features,)

        Returns
        -------
        free_energy : ndarray of shape (n_samples,) (a 0-d value for one 1-D row)
        """
        rows, one_row = self._rows(v, "v")
        rbm = self._model()
        if sp.issparse(rows):
            parts = [rbm.free_energy(block) for block in self._row_blocks(rows)]
            return self._joined(parts, one_row, None, rbm.dtype)
        energy = rbm.free_energy(rows)
        return energy[0] if one_row else energy

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

    def log_partition(self, *, method="auto", n_chains=100, n_betas=None, betas=None, data=None,
                      random_state=None, return_result=False):
        """log Z of the fitted RBM: exact, or estimated by annealed importance sampling.

        Parameters
        ----------
        method : {"auto", "exact", "ais"}, default="auto"
            "exact" enumerates the smaller layer (at most 20 units); "auto" does so when it
            can and uses AIS otherwise.
        n_chains : int, default=100
            AIS chains (Salakhutdinov & Murray 2008 use 100).
        n_betas : int, optional
            Length of the default AIS schedule (default 14,500, as in the paper).
        betas : array of shape (n_betas,), optional
            An explicit schedule from 0 to 1 (instead of ``n_betas``).
        data : array of shape (n_samples, n_features), optional
            Data whose marginals define the AIS base-rate model; default: the marginals of the
            data seen by ``fit`` / ``partial_fit``.
        random_state : int, RandomState instance or None
            Seeds the AIS chains; None derives the seed from the estimator's ``random_state``.
        return_result : bool, default=False
            Return the :class:`fastgen.models.ais.AISResult` (error bar, weights) instead of
            the float (AIS only).

        Returns
        -------
        log_z : float, or AISResult with ``return_result=True``
        """
        from .models.ais import DEFAULT_N_BETAS, ais_log_partition, base_rate_bias, default_schedule

        check_is_fitted(self)
        if method not in ("auto", "exact", "ais"):
            raise InvalidParameterError(f"method must be 'auto', 'exact' or 'ais', got {method!r}")
        rbm = self._model()
        small = min(rbm.n_visible, rbm.n_hidden) <= 20
        if method == "exact" or (method == "auto" and small and not return_result):
            return rbm.log_partition()
        if betas is not None and n_betas is not None:
            raise InvalidParameterError("give n_betas or betas, not both")
        if betas is None:
            betas = default_schedule(DEFAULT_N_BETAS if n_betas is None else n_betas)
        if data is not None:
            data = self._validate_X(data, reset=False)
            base = base_rate_bias(data.toarray() if sp.issparse(data) else data, rbm.n_visible, rbm.dtype)
        elif hasattr(self, "_visible_sums") and self._visible_sums[1] > 0:
            sums, count = self._visible_sums
            p = (sums + 1.0) / (count + 2.0)  # the pseudocount of base_rate_bias
            base = np.log(p / (1 - p)).astype(rbm.dtype)
        else:
            base = np.zeros(rbm.n_visible, rbm.dtype)
        seed_from = self.random_state if random_state is None else random_state
        generator = self._generator_from(seed_from)
        result = ais_log_partition(rbm, n_chains=n_chains, betas=betas, base_visible_bias=base, generator=generator)
        return result if return_result else result.log_z

    def log_likelihood(self, X, *, log_z=None, **log_partition_options):
        """log P(x) = -F(x) - log Z of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        log_z : float, optional
            A log partition function computed before (by :meth:`log_partition`); otherwise it
            is computed with ``log_partition_options`` (see :meth:`log_partition`).

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,), float64
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        if log_z is None:
            log_z = self.log_partition(**log_partition_options)
        elif not is_finite_real(log_z):
            raise InvalidParameterError(f"log_z must be a finite real number, got {log_z!r}")
        _check_fitted_finite(self, _RBM_PARAMETERS)
        rbm = RBM(*(np.asarray(a, np.float64) for a in (self.components_, self.intercept_visible_,
                                                         self.intercept_hidden_)))
        free = [rbm.free_energy(c) for c in self._dense_chunks(X, _SPARSE_CHUNK_ROWS)]
        return -(np.concatenate(free) if free else np.empty(0)) - float(log_z)

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


class GaussianBernoulliRBM(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Gaussian-Bernoulli RBM (real-valued visible units) trained by PCD-k or CD-k.

    The model of :class:`fastgen.models.gbrbm.GaussianRBM` (Cho, Ilin and Raiko 2011):
    ``E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c.h - sum_ij h_j W_ji v_i / sigma_i^2``, so
    ``P(h_j = 1 | v) = sigmoid(c_j + sum_i W_ji v_i / sigma_i^2)`` and
    ``v | h ~ N(b + W^T h, sigma^2)``. With ``learn_sigma=False`` (the default) every
    ``sigma_i = 1`` and X should be standardised (:func:`fastgen.models.gbrbm.standardize`):
    fitting data that is not (tolerance in :func:`fastgen.models.gbrbm.standardization_problems`)
    warns. With ``learn_sigma=True`` the per-feature standard deviations are learned too,
    starting from the data's.

    Initialisation, from the first data seen: visible biases its per-feature mean, sigma 1
    (or, with ``learn_sigma``, its per-feature standard deviation, 1 for constant features),
    weights ~ N(0, 0.01^2) times sigma, hidden biases 0 for the centred data (so
    ``-W (mean / sigma^2)`` in the data's coordinates). Training runs on the data minus that
    mean (the same model re-expressed, see ``_centred_model``; the fitted attributes are
    always in the data's own coordinates), so with ``learn_sigma`` neither the offset nor the
    units of a feature matter. Randomness comes from fastgen's Philox stream seeded from
    ``random_state``. Dense input only.

    Parameters
    ----------
    n_components : int, default=256
        Number of hidden units.
    learning_rate : float, default=0.005
        Much smaller than :class:`BernoulliRBM`'s 0.1: Gaussian visible units are unbounded,
        so the updates feed back (v's mean b + W^T h grows with W) and the gradients grow like
        1 / sigma^2 when sigma is learned. Measured on standardised scikit-learn digits
        (1,500 training rows, batch 10, PCD-1, 4 seeds). With 256 hidden units, 0.02
        diverged within 20 epochs (every seed with fixed sigma; learning it, every seed but
        one, whose held-out reconstruction error reached 2e8), and 0.01 gave a worse held-out
        reconstruction error than 0.005 (0.45-0.56 against 0.43-0.45 with fixed sigma,
        0.33-0.37 against 0.28-0.32 learning it). With 16 hidden units (exact held-out
        log-likelihood, 10 epochs), 0.005 is within 1 nat of the best rate with fixed sigma
        (0.01-0.03, which diverge at 256 units from 0.02) and the best when learning sigma,
        while 0.001 is 5 to 16 nats behind. So 0.005: the best or near it, with a 4x margin
        to divergence. Lower it with momentum (the step grows by up to 1 / (1 - momentum));
        larger batches tolerate larger rates. A pass that ends with diverged parameters
        (non-finite, or a weight above 1e6 sigma) raises FloatingPointError.
    batch_size : int, default=10
    n_iter : int, default=10
        Passes over the training data.
    verbose : int, default=0
        Print the reconstruction error after each iteration.
    random_state : int, RandomState instance or None, default=None
    cd_k : int, default=1
        Gibbs steps per negative phase.
    persistent : bool, default=True
        PCD (persistent chains) or plain CD-k. Learning sigma needs PCD in practice: CD's
        short chains from the data bias sigma low.
    n_chains : int or None, default=None
        Number of persistent chains; None means ``batch_size``.
    momentum : float in [0, 1), default=0.0
    weight_decay : float, default=0.0
        L2 penalty on the weights.
    learn_sigma : bool, default=False
        Learn the per-feature standard deviations (log sigma, floored at 0.01 times the
        initial sigma) along with the other parameters. The W and b steps of feature i are
        then scaled by sigma_i^2, which makes training independent of each feature's units
        (see :class:`fastgen.models.gbrbm.GaussianContrastiveDivergence`), so raw data works.
        A constant feature's sigma shrinks to the floor (its likelihood is unbounded).
    dtype : {None, "float32", "float64"}, default=None
        Compute dtype; None follows the input (float32 stays float32, anything else float64).
    progress : bool, default=False
        Show a progress bar over iterations instead of the verbose lines.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Weight matrix W.
    intercept_hidden_ : ndarray of shape (n_components,)
        Hidden biases c.
    intercept_visible_ : ndarray of shape (n_features,)
        Visible biases b (the mean of v when every hidden unit is off).
    log_sigma_ : ndarray of shape (n_features,)
        Log standard deviation of each visible unit given h (0 unless ``learn_sigma``).
    sigma_ : ndarray of shape (n_features,)
        ``exp(log_sigma_)``, computed on access.
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
        learning_rate=0.005,
        batch_size=10,
        n_iter=10,
        verbose=0,
        random_state=None,
        cd_k=1,
        persistent=True,
        n_chains=None,
        momentum=0.0,
        weight_decay=0.0,
        learn_sigma=False,
        dtype=None,
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
        self.learn_sigma = learn_sigma
        self.dtype = dtype
        self.progress = progress

    @property
    def sigma_(self):
        return np.exp(self.log_sigma_)

    _parameter_constraints: dict = {**_RBM_PARAMETER_CONSTRAINTS, "learn_sigma": ["boolean"]}

    # ---- validation ----------------------------------------------------------------------------
    def _check_params(self):
        """InvalidParameterError naming the first bad parameter."""
        _validate_estimator_params(self)

    def _validate_params(self):  # scikit-learn's hook (used by its _fit_context): the same checks
        self._check_params()

    def _validate_X(self, X, reset, training=False):
        X = validate_data(self, X, reset=reset, dtype=(np.float64, np.float32))
        if reset:
            dtype = np.dtype(self.dtype) if self.dtype is not None else (
                np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64))
        else:
            dtype = self.components_.dtype
        X = np.ascontiguousarray(X, dtype=dtype)
        if training and not self.learn_sigma:
            from .models.gbrbm import check_standardized

            check_standardized(X, name="X", stacklevel=3)
        return X

    def _model(self):
        from .models.gbrbm import GaussianRBM

        _check_fitted_finite(self, (*_RBM_PARAMETERS, "log_sigma_"))
        return GaussianRBM(self.components_, self.intercept_visible_, self.intercept_hidden_, self.log_sigma_)

    def _trainer(self):
        from .models.gbrbm import GaussianContrastiveDivergence

        return GaussianContrastiveDivergence(
            learning_rate=self.learning_rate, cd_k=self.cd_k, persistent=bool(self.persistent),
            n_chains=self.n_chains or self.batch_size, momentum=self.momentum, weight_decay=self.weight_decay,
            learn_sigma=bool(self.learn_sigma), min_sigma=self._min_sigma,
            chains=self.h_samples_ if self.persistent else None,
            velocities=getattr(self, "_velocities", None),
        )

    def _initialize(self, X, generator):
        from .models.gbrbm import GaussianRBM

        dtype = X.dtype
        mean = X.mean(axis=0, dtype=np.float64)
        sigma = None
        self._min_sigma = 1e-2
        if self.learn_sigma:
            std = X.std(axis=0, dtype=np.float64)
            sigma = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
            self._min_sigma = 1e-2 * sigma
        # training runs on X - centre (see _centred_model); the visible bias starts at the mean
        self._centre = mean.astype(dtype)
        model = GaussianRBM.initialize(X.shape[1], self.n_components, dtype=dtype, generator=generator, sigma=sigma)
        if sigma is not None:
            model.weights *= sigma.astype(dtype)  # weights in each feature's units, like sigma
        self._store_centred(model)
        self.h_samples_ = np.zeros((self.n_chains or self.batch_size, self.n_components), dtype)
        self._velocities = None
        self._n_features_out = self.n_components

    def _centred_model(self):
        """The fitted model in the coordinates the trainer works in, u = v - centre: the same
        distribution with b - centre and c + W (centre / sigma^2). Training in them is the
        centring of Montavon and Mueller (2012): the hidden input W (u / sigma^2) no longer
        carries a large, W-dependent offset when the data sit far from 0."""
        from .models.gbrbm import GaussianRBM

        _check_fitted_finite(self, (*_RBM_PARAMETERS, "log_sigma_"))
        inv_var = np.exp(-2.0 * self.log_sigma_)
        return GaussianRBM(self.components_.copy(), self.intercept_visible_ - self._centre,
                           self.intercept_hidden_ + self.components_ @ (self._centre * inv_var),
                           self.log_sigma_.copy())

    def _store_centred(self, model):
        inv_var = np.exp(-2.0 * model.log_sigma)
        self.components_ = model.weights
        self.intercept_visible_ = model.visible_bias + self._centre
        self.intercept_hidden_ = model.hidden_bias - model.weights @ (self._centre * inv_var)
        self.log_sigma_ = model.log_sigma

    def _store_trainer_state(self, trainer):
        self._velocities = trainer.velocities
        if trainer.chains is not None:
            self.h_samples_ = trainer.chains

    @staticmethod
    def _generator_from(random_state) -> Generator:
        rng = check_random_state_named(random_state)
        return Generator(int(rng.randint(np.iinfo(np.int64).max, dtype=np.int64)))

    def _stream(self) -> Generator:
        if not hasattr(self, "_generator"):
            self._generator = self._generator_from(self.random_state)
        return self._generator

    # ---- scikit-learn API ----------------------------------------------------------------------
    def fit(self, X, y=None):
        """Fit the model to X by PCD-k (or CD-k) over ``n_iter`` passes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; standardised unless ``learn_sigma`` (otherwise a UserWarning).
        y : ignored

        Returns
        -------
        self : GaussianBernoulliRBM
        """
        self._check_params()
        X = self._validate_X(X, reset=True, training=True)
        generator = self._generator_from(self.random_state)
        self._initialize(X, generator)
        model, trainer = self._centred_model(), self._trainer()
        U = X - self._centre

        iterations = range(1, self.n_iter + 1)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(iterations, desc=type(self).__name__, unit="epoch")
            iterations = bar
        begin = time.time()
        try:
            for iteration in iterations:
                trainer.run(model, U, self.batch_size, generator)
                if self.verbose and not self.progress:
                    end = time.time()
                    print(
                        "[%s] Iteration %d, reconstruction error = %.4f, time = %.2fs"
                        % (type(self).__name__, iteration, model.reconstruction_error(U), end - begin)
                    )
                    begin = end
        finally:
            if bar is not None:
                bar.close()
            # also after a failed pass, which the trainer has undone: the model keeps the last
            # finite parameters and the stream its position
            self._store_centred(model)
            self._store_trainer_state(trainer)
            self._generator = generator
        return self

    def partial_fit(self, X, y=None):
        """One CD/PCD update with all of X as the mini-batch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self : GaussianBernoulliRBM
        """
        self._check_params()
        first_pass = not hasattr(self, "components_")
        X = self._validate_X(X, reset=first_pass, training=True)
        generator = self._stream()
        if first_pass:
            self._initialize(X, generator)
        _writeable_training_state(self)
        model, trainer = self._centred_model(), self._trainer()
        if X.shape[0]:
            trainer.run(model, X - self._centre, X.shape[0], generator)
        self._store_centred(model)
        self._store_trainer_state(trainer)
        return self

    def transform(self, X):
        """Hidden activation probabilities P(h = 1 | v = X).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        h : ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self._model().hidden_probs(X)

    def score_samples(self, X):
        """Negative free energy ``-F(x) = log p(x) + log Z`` of each row.

        The unnormalised log-density: deterministic, cheap at any size, and it ranks rows as
        the log-likelihood does (the two differ by the constant log Z). For the normalised
        value, see :meth:`log_likelihood` (exact, small models only).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        score : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return -self._model().free_energy(X)

    def log_likelihood(self, X):
        """Exact log-density log p(x) of each row (``n_components <= 20``: log Z is computed by
        enumerating the hidden configurations, in float64).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_p : ndarray of float64, shape (n_samples,)
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        return self._model().log_likelihood(X)

    def gibbs(self, v):
        """One block-Gibbs step v -> h -> v (both sampled).

        Parameters
        ----------
        v : array-like of shape (n_samples, n_features)

        Returns
        -------
        v_new : ndarray of shape (n_samples, n_features)
            Visible values drawn from N(b + W^T h, sigma^2) with h ~ P(h | v).
        """
        check_is_fitted(self)
        v = self._validate_X(v, reset=False)
        return self._model().gibbs(v, 1, generator=self._stream())

    def sample(self, n_samples=1, *, n_steps=1000):
        """Draw samples by running independent Gibbs chains.

        Each chain starts from N(b, sigma^2) (the visible distribution with every hidden unit
        off) and runs ``n_steps`` block-Gibbs steps; the estimator's random stream advances.

        Parameters
        ----------
        n_samples : int, default=1
        n_steps : int, default=1000

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        for name, value, minimum in (("n_samples", n_samples, 1), ("n_steps", n_steps, 0)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
        return self._model().sample(int(n_samples), int(n_steps), generator=self._stream())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
