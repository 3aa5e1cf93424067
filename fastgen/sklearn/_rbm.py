"""scikit-learn's BernoulliRBM, trained by fastgen's compiled CD/PCD loops on the CPU or a GPU."""
from __future__ import annotations

import time
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted

from .. import _backend
from ..models.data_parallel import OneProcess, ShardedContrastiveDivergence
from ..models.rbm import RBM, ContrastiveDivergence
from ..models.schedules import ANNEALED_PCD, SCHEDULES, learning_rate_for_pass, log_odds_visible_bias
from ..ops import sample_bernoulli
from . import _base
from ._base import RBM_PARAMETERS, check_fitted_finite, training_passes, writeable_training_state
from ._data import validate_rows, validate_rows_on_device
from ._parallel import current_job, same_seed, world_size
from ._params import (RBM_PARAMETER_CONSTRAINTS, DeviceOption, generator_from, parameter_errors, parse_device,
                      validate_params)
from ._rbm_compat import ScikitLearnHelpersMixin
from ._rbm_likelihood import LikelihoodMixin


class BernoulliRBM(LikelihoodMixin, ScikitLearnHelpersMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                   BaseEstimator):
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
    learning_rate_schedule : {"constant", "linear"} or callable, default="constant"
        The learning rate of each of :meth:`fit`'s passes: ``learning_rate`` throughout
        (scikit-learn's), decaying linearly from ``learning_rate`` toward
        ``final_learning_rate`` (pass i of n_iter, from 0: ``learning_rate + (final_learning_rate
        - learning_rate) * i / n_iter``), or ``schedule(i, n_iter)``, a finite number > 0.
        :meth:`partial_fit` always uses ``learning_rate``.
    final_learning_rate : float >= 0, default=0.0
        Where the linear schedule is headed.
    visible_bias_init : {"zeros", "log_odds"}, default="zeros"
        The visible biases :meth:`fit` starts from: zeros (scikit-learn's), or the log-odds of
        each feature's mean in the training data, clipped to [0.001, 0.999] (Hinton's guide).

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
        learning_rate_schedule="constant",
        final_learning_rate=0.0,
        visible_bias_init="zeros",
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
        self.learning_rate_schedule = learning_rate_schedule
        self.final_learning_rate = final_learning_rate
        self.visible_bias_init = visible_bias_init

    @classmethod
    def annealed_pcd(cls, n_components=500, **params):
        """A BernoulliRBM with the annealed PCD recipe, the others of ``params`` set as given.

        The recipe (:data:`fastgen.models.schedules.ANNEALED_PCD`): PCD-1 with 100 persistent
        chains, batches of 100, the learning rate 0.05 decayed linearly to 0 over 100 passes, the
        visible biases started at the data's log-odds. A constant rate (scikit-learn's) leaves
        the chains and weights "hot": on binarized MNIST with 500 hidden units (``python -m bench
        quality``, means over 3 seeds) this recipe's held-out log-likelihood is bracketed by
        [-89.8, -88.6] nats (RAISE, AIS) after 8 to 17 s on 2 cores, scikit-learn's
        BernoulliRBM's with the same rate, batch and epochs by [-167.3, -162.4] after about 54 s.

        Parameters
        ----------
        n_components : int, default=500
        **params
            Any other parameter of :class:`BernoulliRBM`; these override the recipe's.

        Returns
        -------
        BernoulliRBM
            An ordinary (unfitted) estimator: ``get_params`` shows every setting.
        """
        return cls(n_components=n_components, **{**ANNEALED_PCD, **params})

    _parameter_constraints: dict = {
        **RBM_PARAMETER_CONSTRAINTS,
        "device": [DeviceOption()],
        "n_temperatures": [Interval(Integral, 1, None, closed="left")],
        "min_beta": [Interval(Real, 0, 1, closed="left")],
        "learning_rate_schedule": [StrOptions(set(SCHEDULES)), callable],
        "final_learning_rate": [Interval(Real, 0, None, closed="left")],
        "visible_bias_init": [StrOptions({"zeros", "log_odds"})],
    }

    # ---- validation ----------------------------------------------------------------------------
    def _check_params(self, caller_name=None):
        """InvalidParameterError naming the first bad parameter (``caller_name``: the estimator
        named in scikit-learn's messages, DBN for its layers)."""
        validate_params(self, caller_name)
        if self.n_temperatures > 1 and not self.persistent:
            raise InvalidParameterError("n_temperatures > 1 (parallel tempering) needs persistent=True")

    def _validate_params(self):  # scikit-learn's hook (used by its _fit_context): the same checks
        self._check_params()

    def _validate_X(self, X, reset, column_sums=False, training=False):
        """X checked and converted on the host (:func:`fastgen.sklearn._data.validate_rows`);
        ``(X, column sums)`` with ``column_sums``."""
        X, sums = validate_rows(self, X, reset=reset, dtype=None, column_sums=column_sums, training=training)
        return (X, sums) if column_sums else X

    def _train_device(self, X):
        """"cpu" or the CUDA ordinal fit / partial_fit train on (see ``device``)."""
        wanted = parse_device(self.device)
        on_gpu = _backend.is_cuda_array(X)
        if current_job() is not None:
            if self.n_temperatures > 1:
                raise InvalidParameterError("n_temperatures > 1 (parallel tempering) does not train data-parallel: "
                                            "use n_temperatures=1 inside fastgen.sklearn.data_parallel")
            if wanted not in ("auto", "cpu"):
                raise ValueError(f"device={self.device!r}: data-parallel training runs on the CPU (gloo); use "
                                 "device='cpu'")
            return "cpu"
        if wanted == "cpu" or (wanted == "auto" and not on_gpu):
            return "cpu"
        if self.n_temperatures > 1:
            raise InvalidParameterError("n_temperatures > 1 (parallel tempering) runs on the CPU only: use "
                                        "device='cpu' (and host data)")
        if wanted == "auto" or wanted == "cuda":
            device = _backend.device_of(X) if on_gpu else 0
        else:
            device = wanted
            if on_gpu and _backend.device_of(X) != device:
                raise ValueError(f"device={self.device!r} but X is on cuda:{_backend.device_of(X)}")
        try:
            _backend.cuda_module("X")
        except TypeError as exc:
            raise ValueError(f"device={self.device!r} needs a CUDA device: {exc}") from None
        return device

    def _training_data(self, X, device, reset):
        """``(X, column sums)`` checked for training on ``device``: host rows for "cpu", a CuPy
        array on the current device otherwise (sums None for sparse host X)."""
        if device == "cpu":
            return validate_rows(self, X, reset=reset, dtype=None, column_sums=True, training=True)
        return validate_rows_on_device(self, X, reset=reset, column_sums=True, training=True)

    # ---- model and training state --------------------------------------------------------------
    @staticmethod
    def _dense_chunks(X, rows_per_chunk):
        """Dense, C-contiguous row blocks of X (X itself when it is dense, on any device)."""
        if not sp.issparse(X):
            yield X
            return
        for start in range(0, X.shape[0], rows_per_chunk):
            yield np.ascontiguousarray(X[start:start + rows_per_chunk].toarray())

    def _model(self) -> RBM:
        check_fitted_finite(self, RBM_PARAMETERS)
        return RBM(self.components_, self.intercept_visible_, self.intercept_hidden_)

    def _trainer(self) -> ContrastiveDivergence:
        if self.n_temperatures > 1:
            from ..models.tempering import ParallelTemperingTrainer, temperature_ladder

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
        # data-parallel: n_chains per rank, and every rank holds all of them (its share advances)
        self.h_samples_ = np.zeros(((self.n_chains or self.batch_size) * world_size(), self.n_components), dtype)
        self._velocities = None
        self._n_features_out = self.n_components
        self.__dict__.pop("tempering_", None)

    def _store_trainer_state(self, trainer):
        self._velocities = trainer.velocities
        if trainer.chains is not None:
            self.h_samples_ = trainer.chains
        if getattr(trainer, "sampler", None) is not None:
            self.tempering_ = trainer.sampler

    def _train(self, X, n_passes, batch_size, generator, *, report=True, schedule=None):
        """``n_passes`` passes over X in mini-batches of ``batch_size`` rows, from the fitted
        parameters and training state. Host X trains the estimator's arrays in place; a CuPy X
        trains device copies of them on its device (ContrastiveDivergence runs the GPU epoch for
        CuPy arrays), copied back after every reported pass and at the end. ``report``: the
        verbose lines and the progress bar (fit only, as scikit-learn). ``schedule(i)``: the
        learning rate of pass i (from 0), else the trainer's throughout."""
        on_device = _backend.is_cuda_array(X)
        rbm, trainer = self._model(), self._trainer()
        job = current_job()
        chunk_rows = _base.SPARSE_CHUNK_ROWS
        if job is not None or (batch_size > chunk_rows and not on_device and self.n_temperatures == 1):
            # one rank's share of each batch, or a batch read and computed in chunks (out of core:
            # partial_fit of a memory-mapped file reads chunk_rows rows at a time)
            trainer = ShardedContrastiveDivergence(trainer, job if job is not None else OneProcess(), chunk_rows)
        if on_device:
            rbm = RBM(*(_backend.to_cupy(a, "X") for a in (rbm.weights, rbm.visible_bias, rbm.hidden_bias)))
            self._move_trainer_state(trainer, lambda a: _backend.to_cupy(a, "X"))
        rows_per_chunk = batch_size * max(1, _base.SPARSE_CHUNK_ROWS // batch_size)
        begin = time.time()
        try:
            with training_passes(self, n_passes, show=report) as iterations:
                for iteration in iterations:
                    if schedule is not None:
                        trainer.learning_rate = schedule(iteration - 1)
                    sharded = isinstance(trainer, ShardedContrastiveDivergence)  # reads its own chunks
                    for chunk in [X] if sharded else self._dense_chunks(X, rows_per_chunk):
                        trainer.run(rbm, chunk, batch_size, generator)
                    if report and self.verbose and not self.progress and (job is None or job.rank == 0):
                        self._store_parameters(rbm)
                        end = time.time()
                        print("[%s] Iteration %d, pseudo-likelihood = %.2f, time = %.2fs"
                              % (type(self).__name__, iteration, self.score_samples(X).mean(), end - begin))
                        begin = end
        finally:  # after a failed (and undone) pass too: the last finite parameters and state
            self._store_parameters(rbm)
            if on_device:
                self._move_trainer_state(trainer, lambda a: _backend.to_host(a, "X"))
            self._store_trainer_state(trainer)

    def _learning_rate_for_pass(self, pass_index):
        with parameter_errors():
            return learning_rate_for_pass(self.learning_rate_schedule, self.learning_rate, self.final_learning_rate,
                                          pass_index, self.n_iter)

    @staticmethod
    def _move_trainer_state(trainer, move):
        """The trainer's chains and momentum buffers replaced by ``move`` of each."""
        if trainer.chains is not None:
            trainer.chains = move(trainer.chains)
        if trainer.velocities is not None:
            trainer.velocities = tuple(move(a) for a in trainer.velocities)

    def _store_parameters(self, rbm):
        """The trained parameters as the estimator's (host) arrays: the same arrays after host
        training, copies of the device ones after GPU training."""
        self.components_, self.intercept_visible_, self.intercept_hidden_ = (
            _backend.to_host(a, name) for a, name in zip((rbm.weights, rbm.visible_bias, rbm.hidden_bias),
                                                         RBM_PARAMETERS))

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
        with _backend.Placement(device, X, "X").activate():
            X, column_sums = self._training_data(X, device, reset=True)
            generator = same_seed(generator_from(self.random_state))
            self._initialize(X.shape[1], X.dtype, generator)
            if column_sums is None:  # sparse X
                column_sums = np.asarray(X.sum(axis=0), np.float64).ravel()
            if self.visible_bias_init == "log_odds":
                self.intercept_visible_[...] = log_odds_visible_bias(column_sums, X.shape[0], X.dtype)
            if init is not None:
                self.components_[...], self.intercept_visible_[...], self.intercept_hidden_[...] = init
            schedule = None if self.learning_rate_schedule == "constant" else self._learning_rate_for_pass
            try:
                self._train(X, self.n_iter, self.batch_size * world_size(), generator, schedule=schedule)
            finally:  # the stream's position, after a failed pass too
                self._generator = generator
        self._visible_sums = (column_sums, X.shape[0])
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
        with _backend.Placement(device, X, "X").activate():
            first_pass = not hasattr(self, "components_")
            X, column_sums = self._training_data(X, device, reset=first_pass)
            if not hasattr(self, "_generator"):
                self._generator = same_seed(generator_from(self.random_state))
            if first_pass:
                self._initialize(X.shape[1], X.dtype, self._generator)
            writeable_training_state(self)
            if X.shape[0]:
                self._train(X, 1, X.shape[0], self._generator, report=False)
        if column_sums is None:  # sparse X
            column_sums = np.asarray(X.sum(axis=0), np.float64).ravel()
        sums, count = getattr(self, "_visible_sums", (np.zeros(X.shape[1]), 0))
        self._visible_sums = (sums + column_sums, count + X.shape[0])
        return self

    def transform(self, X):
        """Hidden activation probabilities P(h = 1 | v = X).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        h : ndarray of shape (n_samples, n_components)
            For GPU input (unless ``device="cpu"``): computed on its device and returned in its
            kind.
        """
        check_is_fitted(self)
        if not (_backend.is_cuda_array(X) and parse_device(self.device) != "cpu"):
            return self._mean_hiddens(self._validate_X(X, reset=False))
        placement = _backend.placement(X=X)
        with placement.activate():
            X, _ = validate_rows_on_device(self, X, reset=False)
            model = self._model()
            W, c = (_backend.to_cupy(a, "X") for a in (model.weights, model.hidden_bias))
            return placement.wrap(sample_bernoulli(X @ W.T, c, output="probs"))

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
        parts = [rbm.pseudo_likelihood(c) for c in self._dense_chunks(X, _base.SPARSE_CHUNK_ROWS)]
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
            self._generator = generator_from(self.random_state)
        return self._model().gibbs(v, 1, generator=self._generator).astype(bool)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
