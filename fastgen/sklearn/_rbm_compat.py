"""scikit-learn's underscore helpers of BernoulliRBM (``_mean_hiddens``, ``_sample_hiddens``,
``_sample_visibles``, ``_free_energy``), with its semantics, for fastgen's BernoulliRBM.

scikit-learn's tests, tutorials and user code call these on its BernoulliRBM. Here they are
computed by the model layer (:class:`fastgen.models.rbm.RBM`). Like scikit-learn's, they take v
(or h) as it is: dense or scipy.sparse, one row (1-D) or several (2-D), with no feature-name or
range check; the result has the fitted parameters' dtype.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from .. import _backend
from ..random import Generator, as_generator
from . import _base
from ._params import generator_from


class ScikitLearnHelpersMixin:
    """The helpers, for an estimator with BernoulliRBM's fitted attributes and ``_model()``."""

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
        """Dense blocks of ``_base.SPARSE_CHUNK_ROWS`` rows (views of dense rows, densified sparse ones)."""
        for start in range(0, rows.shape[0], _base.SPARSE_CHUNK_ROWS):
            block = rows[start:start + _base.SPARSE_CHUNK_ROWS]
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
                self._generator = generator_from(self.random_state)
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
