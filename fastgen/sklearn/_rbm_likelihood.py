"""BernoulliRBM's likelihoods: log Z (exact, or by annealed importance sampling) and log P(x),
through that log Z or by reverse AIS."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from .._checks import real
from ..models.rbm import RBM
from . import _base
from ._base import RBM_PARAMETERS, check_fitted_finite
from ._parallel import current_job, same_seed
from ._params import generator_from, parameter_errors


class LikelihoodMixin:
    """:meth:`log_partition`, :meth:`log_likelihood`, :meth:`log_likelihood_raise` and
    :meth:`log_likelihood_bounds` of a fitted BernoulliRBM (which provides ``_model``,
    ``_validate_X`` and ``_dense_chunks``)."""

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
        from ..models.ais import ais_log_partition

        check_is_fitted(self)
        if method not in ("auto", "exact", "ais"):
            raise InvalidParameterError(f"method must be 'auto', 'exact' or 'ais', got {method!r}")
        rbm = self._model()
        small = min(rbm.n_visible, rbm.n_hidden) <= 20
        if method == "exact" or (method == "auto" and small and not return_result):
            return rbm.log_partition()
        betas = self._annealing_schedule(n_betas, betas)
        base = self._base_visible_bias(rbm, data)
        seed_from = self.random_state if random_state is None else random_state
        generator = same_seed(generator_from(seed_from))  # data-parallel: rank 0's seed
        result = ais_log_partition(rbm, n_chains=n_chains, betas=betas, base_visible_bias=base, generator=generator,
                                   job=current_job())
        return result if return_result else result.log_z

    @staticmethod
    def _annealing_schedule(n_betas, betas):
        """``betas`` as given, or the paper's schedule of ``n_betas`` (default 14,500)."""
        from ..models.ais import DEFAULT_N_BETAS, default_schedule

        if betas is not None and n_betas is not None:
            raise InvalidParameterError("give n_betas or betas, not both")
        return default_schedule(DEFAULT_N_BETAS if n_betas is None else n_betas) if betas is None else betas

    def _base_visible_bias(self, rbm, data):
        """The AIS base-rate model's visible biases: from ``data``'s marginals, else from the
        training data's (with base_rate_bias's pseudocount), else zeros."""
        from ..models.ais import base_rate_bias

        if data is not None:
            data = self._validate_X(data, reset=False)
            return base_rate_bias(data.toarray() if sp.issparse(data) else data, rbm.n_visible, rbm.dtype)
        if hasattr(self, "_visible_sums") and self._visible_sums[1] > 0:
            sums, count = self._visible_sums
            p = (sums + 1.0) / (count + 2.0)
            return np.log(p / (1 - p)).astype(rbm.dtype)
        return np.zeros(rbm.n_visible, rbm.dtype)

    def _reverse_annealing_inputs(self, X, n_betas, betas, data, random_state):
        """What reverse AIS from the rows of X needs: (model, dense rows, schedule, base-rate
        visible biases, generator)."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        rbm = self._model()
        betas = self._annealing_schedule(n_betas, betas)
        base = self._base_visible_bias(rbm, data)
        rows = np.concatenate(list(self._dense_chunks(X, _base.SPARSE_CHUNK_ROWS)))
        generator = same_seed(generator_from(self.random_state if random_state is None else random_state))
        return rbm, rows, betas, base, generator

    def log_likelihood_raise(self, X, *, n_chains=10, n_betas=None, betas=None, data=None, random_state=None,
                             return_result=False):
        """log P(x) of each row by reverse annealed importance sampling (RAISE), which needs no
        log Z and errs low where :meth:`log_likelihood` with an AIS log Z errs high: the two
        bracket the true value (:func:`fastgen.models.ais.raise_log_likelihood`).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        n_chains : int, default=10
            Reverse chains per row.
        n_betas, betas, data, random_state
            As for :meth:`log_partition` (the same base-rate model and schedule).
        return_result : bool, default=False
            Return the :class:`fastgen.models.ais.RAISEResult` (per-chain weights, mean,
            standard error) instead of the per-row estimates.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,), float64, or RAISEResult
        """
        from ..models.ais import raise_log_likelihood

        rbm, rows, betas, base, generator = self._reverse_annealing_inputs(X, n_betas, betas, data, random_state)
        with parameter_errors():
            result = raise_log_likelihood(rbm, rows, n_chains=n_chains, betas=betas, base_visible_bias=base,
                                          generator=generator, job=current_job())
        return result if return_result else result.log_likelihood

    def log_likelihood_bounds(self, X, *, ais_chains=500, raise_chains=5, n_betas=None, betas=None, data=None,
                              random_state=None):
        """The mean log-likelihood of the rows of X bracketed from both sides: ``[RAISE, AIS]``
        (:func:`fastgen.models.ais.likelihood_bounds`).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Held-out rows, at least one (a hundred is typical: RAISE costs ``raise_chains``
            chains per row).
        ais_chains : int, default=500
            AIS chains for log Z.
        raise_chains : int, default=5
            Reverse chains per row.
        n_betas, betas, data, random_state
            As for :meth:`log_partition` (the same base-rate model and schedule for both).

        Returns
        -------
        fastgen.models.ais.LikelihoodBounds
            ``lower`` (RAISE) and ``upper`` (AIS) with their standard errors over the rows,
            ``width``, and both estimators' full results.
        """
        from ..models.ais import likelihood_bounds

        rbm, rows, betas, base, generator = self._reverse_annealing_inputs(X, n_betas, betas, data, random_state)
        with parameter_errors():
            return likelihood_bounds(rbm, rows, ais_chains=ais_chains, raise_chains=raise_chains, betas=betas,
                                     base_visible_bias=base, generator=generator, job=current_job())

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
        else:
            with parameter_errors():
                log_z = real(log_z, "log_z")
        check_fitted_finite(self, RBM_PARAMETERS)
        rbm = RBM(*(np.asarray(a, np.float64) for a in (self.components_, self.intercept_visible_,
                                                         self.intercept_hidden_)))
        free = [rbm.free_energy(c) for c in self._dense_chunks(X, _base.SPARSE_CHUNK_ROWS)]
        return -(np.concatenate(free) if free else np.empty(0)) - float(log_z)


__all__ = ["LikelihoodMixin"]
