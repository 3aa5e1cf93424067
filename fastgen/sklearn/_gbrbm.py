"""Gaussian-Bernoulli RBM estimator (real-valued visible units), trained by PCD-k or CD-k."""
from __future__ import annotations

import time

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .._checks import positive_int
from ..models.gbrbm import GaussianContrastiveDivergence, GaussianRBM, check_standardized
from ..random import Generator
from ._base import RBM_PARAMETERS, check_fitted_finite, training_passes, writeable_training_state
from ._data import compute_dtype, refuse_iterator
from ._parallel import current_job, same_seed, world_size
from ._params import RBM_PARAMETER_CONSTRAINTS, generator_from, parameter_errors, validate_params


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
        1 / sigma^2 when sigma is learned; 0.005 is the best rate or near it on standardised
        data, with a 4x margin to divergence (docs/performance.md has the measurements). Lower
        it with momentum (the step grows by up to 1 / (1 - momentum));
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

    _parameter_constraints: dict = {**RBM_PARAMETER_CONSTRAINTS, "learn_sigma": ["boolean"]}

    # ---- validation ----------------------------------------------------------------------------
    def _check_params(self):
        """InvalidParameterError naming the first bad parameter."""
        validate_params(self)

    def _validate_params(self):  # scikit-learn's hook (used by its _fit_context): the same checks
        self._check_params()

    def _validate_X(self, X, reset, training=False):
        refuse_iterator(X, self)
        X = validate_data(self, X, reset=reset, dtype=(np.float64, np.float32))
        dtype = compute_dtype(self.dtype, X.dtype) if reset else self.components_.dtype
        X = np.ascontiguousarray(X, dtype=dtype)
        if training and not self.learn_sigma:
            check_standardized(X, name="X", stacklevel=3)
        return X

    def _model(self):
        check_fitted_finite(self, (*RBM_PARAMETERS, "log_sigma_"))
        return GaussianRBM(self.components_, self.intercept_visible_, self.intercept_hidden_, self.log_sigma_)

    def _trainer(self):
        return GaussianContrastiveDivergence(
            learning_rate=self.learning_rate, cd_k=self.cd_k, persistent=bool(self.persistent),
            n_chains=self.n_chains or self.batch_size, momentum=self.momentum, weight_decay=self.weight_decay,
            learn_sigma=bool(self.learn_sigma), min_sigma=self._min_sigma,
            chains=self.h_samples_ if self.persistent else None,
            velocities=getattr(self, "_velocities", None), job=current_job(),
        )

    def _initialize(self, X, generator):
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
        # data-parallel: n_chains per rank, and every rank holds all of them
        self.h_samples_ = np.zeros(((self.n_chains or self.batch_size) * world_size(), self.n_components), dtype)
        self._velocities = None
        self._n_features_out = self.n_components

    def _centred_model(self):
        """The fitted model in the coordinates the trainer works in, u = v - centre: the same
        distribution with b - centre and c + W (centre / sigma^2). Training in them is the
        centring of Montavon and Mueller (2012): the hidden input W (u / sigma^2) no longer
        carries a large, W-dependent offset when the data sit far from 0."""
        check_fitted_finite(self, (*RBM_PARAMETERS, "log_sigma_"))
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

    def _stream(self) -> Generator:
        if not hasattr(self, "_generator"):
            self._generator = same_seed(generator_from(self.random_state))
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
        generator = same_seed(generator_from(self.random_state))  # data-parallel: rank 0's seed
        self._initialize(X, generator)
        model, trainer = self._centred_model(), self._trainer()
        U = X - self._centre

        begin = time.time()
        try:
            with training_passes(self, self.n_iter) as iterations:
                for iteration in iterations:
                    trainer.run(model, U, self.batch_size * world_size(), generator)
                    if self.verbose and not self.progress and getattr(trainer.job, "rank", 0) == 0:
                        end = time.time()
                        print(
                            "[%s] Iteration %d, reconstruction error = %.4f, time = %.2fs"
                            % (type(self).__name__, iteration, model.reconstruction_error(U), end - begin)
                        )
                        begin = end
        finally:
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
        writeable_training_state(self)
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
        with parameter_errors():
            n_samples = positive_int(n_samples, "n_samples", minimum=1)
            n_steps = positive_int(n_steps, "n_steps", minimum=0)
        return self._model().sample(n_samples, n_steps, generator=self._stream())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
