"""Deep belief network: a stack of Bernoulli RBMs (Hinton, Osindero & Teh 2006).

Layers ``x_0`` (the data), ``x_1``, ..., ``x_L``. The top two layers ``x_{L-1}``, ``x_L`` form an
undirected RBM; every lower pair is a directed sigmoid belief layer, generative
``P(x_i | x_{i+1}) = sigmoid(x_{i+1} G_i + g_i)``, with a separate recognition (inference)
model ``Q(x_{i+1} | x_i) = sigmoid(x_i R_i^T + r_i)``. All matrices have scikit-learn's layout
``(n_units above, n_units below)``.

* :meth:`DBN.fit` pretrains greedily: layer ``i`` is a :class:`fastgen.BernoulliRBM` fitted to
  the hidden probabilities of layer ``i - 1`` on the data; afterwards ``R_i = G_i`` (the RBM's
  weights, tied), ``r_i`` is the RBM's hidden bias and ``g_i`` its visible bias.
* :meth:`DBN.fine_tune` runs the up-down algorithm (the contrastive version of wake-sleep,
  Hinton et al. 2006, appendix B), which unties ``R_i`` and ``G_i``.
* :meth:`DBN.transform` is the upward mean-field pass through the recognition weights and the
  top RBM; :meth:`DBN.sample` Gibbs-samples the top RBM and then descends the generative layers;
  :meth:`DBN.to_torch` exports the recognition network for discriminative fine-tuning.

The estimator lives here (not in ``fastgen.sklearn``) because it is model logic built from the
RBM estimator; :mod:`fastgen.sklearn` is imported lazily, inside the methods, so that importing
``fastgen.models`` never forms an import cycle with it.
"""
from __future__ import annotations

import numbers
import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted, validate_data

from .._native import cpu as _cpu
from ..ops import gibbs as _gibbs_op
from ..ops.validation import is_finite_real
from ..random import Generator, as_generator
from ._divergence import DIVERGED, guarded_pass
from .rbm import RBM

# Sparse input is densified this many rows at a time in transform.
_SPARSE_CHUNK_ROWS = 4096
_SAMPLE_OUTPUTS = ("probs", "states")


def _check_random_state(random_state):
    from ..sklearn import check_random_state_named  # lazy, as below

    return check_random_state_named(random_state)


def _bernoulli_rbm_class():
    from ..sklearn import BernoulliRBM  # lazy: fastgen.sklearn imports fastgen.models

    return BernoulliRBM


def _is_sequence(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) and not isinstance(value, str)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _sigmoid_(x: np.ndarray, bias) -> np.ndarray:
    """x <- sigmoid(x + bias) in place, in compiled code (the stable sigmoid of the samplers)."""
    _cpu.C.sample_bernoulli(x, bias, x, None, True, 0, 0)
    return x


def _sample_(x: np.ndarray, bias, generator: Generator) -> np.ndarray:
    """States ~ Bernoulli(sigmoid(x + bias)) (one offset of ``generator``); x is left alone."""
    states = np.empty_like(x)
    _cpu.C.sample_bernoulli(x, bias, None, states, True, generator.seed, generator.take())
    return states


def _sample_probs(p: np.ndarray, generator: Generator) -> np.ndarray:
    """States ~ Bernoulli(p) for probabilities p (one offset of ``generator``)."""
    states = np.empty_like(p)
    _cpu.C.sample_bernoulli(p, None, None, states, False, generator.seed, generator.take())
    return states


class DBN(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Deep belief network: greedily pretrained stack of Bernoulli RBMs, with up-down fine-tuning.

    Layer ``i`` (``i = 0 .. L-1``, ``L = len(hidden_layer_sizes)``) is a
    :class:`fastgen.BernoulliRBM` with ``hidden_layer_sizes[i]`` hidden units, trained by
    PCD-k / CD-k on the **hidden probabilities** P(h = 1 | v) of layer ``i - 1`` (layer 0 on X).
    Probabilities rather than sampled states are the usual choice (Hinton & Salakhutdinov 2006,
    scikit-learn's RBM pipelines): they carry the same expectation with less noise, and they
    make pretraining deterministic given the seeds. The top two layers form an undirected RBM;
    the layers below it are directed (generative weights top-down, recognition weights
    bottom-up), tied after pretraining and untied by :meth:`fine_tune`.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(500, 500, 2000)
        Hidden units of each RBM, bottom to top (Hinton et al.'s MNIST network is
        784-500-500-2000). Must be non-empty, every entry >= 1.
    learning_rate : float or sequence of float, default=0.1
        Pretraining learning rate, one for all layers or one per layer.
    batch_size : int, default=10
        Mini-batch size of pretraining (and the default of :meth:`fine_tune`); 10 as
        :class:`fastgen.BernoulliRBM` and scikit-learn (Hinton's MNIST recipe uses 100).
    n_iter : int or sequence of int, default=10
        Pretraining passes over the data, one for all layers or one per layer (0 keeps a
        layer at its initial weights, e.g. an ``init_rbms`` entry taken as it is).
    cd_k : int, default=1
        Gibbs steps per negative phase.
    persistent : bool, default=True
        PCD (persistent chains) or plain CD-k in pretraining.
    momentum : float in [0, 1), default=0.0
    weight_decay : float, default=0.0
        L2 penalty on the weights during pretraining.
    dtype : {None, "float32", "float64"}, default=None
        Compute dtype; None follows X (float32 stays float32, anything else float64).
    init_rbms : sequence or None, default=None
        One entry per layer, each None (fresh small random weights) or a pre-built RBM to start
        that layer from: a fitted :class:`fastgen.BernoulliRBM` or a
        :class:`fastgen.models.rbm.RBM`. Its parameters are copied (never modified); its sizes
        must chain: ``n_visible`` = the layer's input width, ``n_hidden`` =
        ``hidden_layer_sizes[i]``. It is then trained for that layer's ``n_iter`` passes.
    random_state : int, RandomState instance or None, default=None
        Seeds the layers: one int is drawn per layer from
        ``check_random_state(random_state)`` and becomes that layer's ``random_state``, then one
        more seeds the network's own stream (:meth:`fine_tune` and :meth:`sample` without a
        ``random_state`` of their own continue it).
    verbose : int, default=0
        Print a line per layer (and each layer's scikit-learn progress lines, and one line per
        fine-tuning pass with its reconstruction error).
    progress : bool, default=False
        A progress bar per layer over its passes.

    Attributes
    ----------
    rbms_ : list of fastgen.BernoulliRBM, length L
        The pretrained layers. ``rbms_[i].components_`` has shape
        (hidden_layer_sizes[i], n_units of layer i). :meth:`fine_tune` trains the top RBM
        ``rbms_[-1]`` in place and leaves ``rbms_[:-1]`` as pretrained: after fine-tuning, the
        directed layers are described by the four lists below.
    recognition_weights_ : list of ndarray, length L-1
        ``R_i`` of shape (hidden_layer_sizes[i], n_units of layer i): bottom-up weights of the
        directed layers (a copy of ``rbms_[i].components_`` until fine-tuned).
    recognition_biases_ : list of ndarray, length L-1
        ``r_i`` of shape (hidden_layer_sizes[i],): bottom-up biases (``intercept_hidden_``).
    generative_weights_ : list of ndarray, length L-1
        ``G_i`` of shape (hidden_layer_sizes[i], n_units of layer i): top-down weights,
        ``P(x_i | x_{i+1}) = sigmoid(x_{i+1} G_i + g_i)``.
    generative_biases_ : list of ndarray, length L-1
        ``g_i`` of shape (n_units of layer i,): top-down biases (``intercept_visible_``).
    layer_sizes_ : tuple of int, length L+1
        ``(n_features_in_, *hidden_layer_sizes)``.
    n_fine_tune_iter_ : int
        Up-down passes run by :meth:`fine_tune` so far (0 after :meth:`fit`).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has string feature names.

    Notes
    -----
    A DBN with a single layer is exactly its RBM: ``transform`` is ``rbms_[0].transform`` and
    ``fine_tune`` reduces to CD-k in that RBM.
    """

    def __init__(
        self,
        hidden_layer_sizes=(500, 500, 2000),
        *,
        learning_rate=0.1,
        batch_size=10,
        n_iter=10,
        cd_k=1,
        persistent=True,
        momentum=0.0,
        weight_decay=0.0,
        dtype=None,
        init_rbms=None,
        random_state=None,
        verbose=0,
        progress=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.cd_k = cd_k
        self.persistent = persistent
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.dtype = dtype
        self.init_rbms = init_rbms
        self.random_state = random_state
        self.verbose = verbose
        self.progress = progress

    # ---- validation ----------------------------------------------------------------------------
    def _layer_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = [sizes]
        if not _is_sequence(sizes) or len(sizes) == 0:
            raise InvalidParameterError(
                f"hidden_layer_sizes must be a non-empty sequence of positive integers, got {self.hidden_layer_sizes!r}"
            )
        for i, size in enumerate(sizes):
            if isinstance(size, (bool, np.bool_)) or not isinstance(size, numbers.Integral) or size < 1:
                raise InvalidParameterError(
                    f"hidden_layer_sizes must hold positive integers, got {size!r} at position {i} "
                    f"of {self.hidden_layer_sizes!r}"
                )
        return [int(s) for s in sizes]

    def _per_layer(self, name: str, n_layers: int) -> list:
        value = getattr(self, name)
        if not _is_sequence(value):
            return [value] * n_layers
        if len(value) != n_layers:
            raise InvalidParameterError(
                f"{name} must be one value or one per layer ({n_layers} layers from hidden_layer_sizes), "
                f"got {len(value)} values"
            )
        values = list(value.tolist() if isinstance(value, np.ndarray) else value)
        for i, v in enumerate(values):
            if name == "n_iter":
                ok = isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) and v >= 0
                want = "an integer >= 0"
            else:
                ok = is_finite_real(v) and v > 0
                want = "a finite number > 0"
            if not ok:
                raise InvalidParameterError(f"{name}[{i}] must be {want}, got {v!r}")
        return values

    def _layer_estimators(self):
        """Unfitted BernoulliRBM per layer and the network's own stream; every parameter is
        checked here, before X is looked at and before any training starts."""
        BernoulliRBM = _bernoulli_rbm_class()
        sizes = self._layer_sizes()
        n_layers = len(sizes)
        rates = self._per_layer("learning_rate", n_layers)
        iters = self._per_layer("n_iter", n_layers)
        rng = _check_random_state(self.random_state)
        seeds = [int(rng.randint(np.iinfo(np.int32).max)) for _ in range(n_layers)]
        own_seed = int(rng.randint(np.iinfo(np.int64).max, dtype=np.int64))
        estimators = []
        for i in range(n_layers):
            est = BernoulliRBM(
                n_components=sizes[i], learning_rate=rates[i], batch_size=self.batch_size, n_iter=iters[i],
                verbose=self.verbose, random_state=seeds[i], cd_k=self.cd_k, persistent=self.persistent,
                momentum=self.momentum, weight_decay=self.weight_decay, dtype=self.dtype, progress=self.progress,
            )
            est._check_params(caller_name=type(self).__name__)  # errors name the parameter (cd_k, ...)
            estimators.append(est)
        return estimators, Generator(own_seed)

    def _check_init_rbms(self, n_features: int, sizes: list[int]) -> list:
        n_layers = len(sizes)
        if self.init_rbms is None:
            return [None] * n_layers
        if not _is_sequence(self.init_rbms) or len(self.init_rbms) != n_layers:
            got = len(self.init_rbms) if _is_sequence(self.init_rbms) else type(self.init_rbms).__name__
            raise InvalidParameterError(
                f"init_rbms must be None or a sequence with one entry per layer "
                f"({n_layers}, from hidden_layer_sizes={tuple(sizes)}), got {got}"
            )
        BernoulliRBM = _bernoulli_rbm_class()
        params = []
        widths = [n_features, *sizes]
        for i, entry in enumerate(self.init_rbms):
            if entry is None:
                params.append(None)
                continue
            if isinstance(entry, RBM):
                W, b, c = entry.weights, entry.visible_bias, entry.hidden_bias
            elif isinstance(entry, BernoulliRBM):
                check_is_fitted(entry, msg=f"init_rbms[{i}] is an unfitted BernoulliRBM: fit it first or pass None")
                W, b, c = entry.components_, entry.intercept_visible_, entry.intercept_hidden_
            else:
                raise InvalidParameterError(
                    f"init_rbms[{i}] must be None, a fitted fastgen.BernoulliRBM or a fastgen.models.rbm.RBM, "
                    f"got {type(entry).__name__}"
                )
            W, b, c = (np.asarray(a) for a in (W, b, c))
            if W.ndim != 2 or b.shape != (W.shape[1],) or c.shape != (W.shape[0],):
                raise InvalidParameterError(
                    f"init_rbms[{i}] has inconsistent parameter shapes: weights {W.shape}, "
                    f"visible bias {b.shape}, hidden bias {c.shape}"
                )
            n_hidden, n_visible = W.shape
            below = "n_features_in_ of X" if i == 0 else f"hidden_layer_sizes[{i - 1}]"
            if n_visible != widths[i]:
                raise InvalidParameterError(
                    f"init_rbms[{i}] has n_visible={n_visible} but layer {i} takes {widths[i]} inputs "
                    f"({below}): the layers do not chain"
                )
            if n_hidden != widths[i + 1]:
                raise InvalidParameterError(
                    f"init_rbms[{i}] has n_hidden={n_hidden} but hidden_layer_sizes[{i}] = {widths[i + 1]}"
                )
            for name, a in (("weights", W), ("visible bias", b), ("hidden bias", c)):
                if not np.isfinite(a).all():
                    raise InvalidParameterError(f"init_rbms[{i}] {name} contain NaN or infinity")
            params.append((W, b, c))
        return params

    def _validate_X(self, X, reset: bool):
        dtype = (np.float64, np.float32)
        X = validate_data(self, X, accept_sparse="csr", reset=reset, dtype=dtype)
        if reset:
            target = np.dtype(self.dtype) if self.dtype is not None else (
                np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64))
        else:
            target = self.rbms_[0].components_.dtype
        if sp.issparse(X):
            return X.astype(target, copy=False)
        return np.ascontiguousarray(X, dtype=target)

    # ---- pretraining ---------------------------------------------------------------------------
    @staticmethod
    def _fit_layer_from(est, H, init) -> None:
        """``est.fit(H)`` started from ``init = (W, b_vis, b_hid)`` instead of random weights:
        the same stream, chains and epochs as :meth:`BernoulliRBM.fit`."""
        est._fit(H, init=init)

    def fit(self, X, y=None):
        """Greedy layer-wise pretraining.

        Layer 0 is fitted to X, layer ``i`` to ``rbms_[i - 1].transform`` of its input (hidden
        probabilities). Fitting one :class:`fastgen.BernoulliRBM` per layer by hand, with the
        same parameters and each ``rbms_[i].random_state``, gives the same weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, values in [0, 1] (binary or probabilities).
        y : ignored

        Returns
        -------
        self : DBN
        """
        estimators, generator = self._layer_estimators()
        X = self._validate_X(X, reset=True)
        inits = self._check_init_rbms(X.shape[1], [est.n_components for est in estimators])
        H = X
        for i, (est, init) in enumerate(zip(estimators, inits)):
            if self.verbose:
                print(f"[{type(self).__name__}] pretraining layer {i + 1}/{len(estimators)}: "
                      f"{H.shape[1]} -> {est.n_components} units, {est.n_iter} passes")
            if init is None:
                est.fit(H)
            else:
                self._fit_layer_from(est, H, init)
            if i + 1 < len(estimators):
                H = est.transform(H)
        self.rbms_ = estimators
        self.layer_sizes_ = (X.shape[1], *(est.n_components for est in estimators))
        lower = estimators[:-1]
        self.recognition_weights_ = [est.components_.copy() for est in lower]
        self.recognition_biases_ = [est.intercept_hidden_.copy() for est in lower]
        self.generative_weights_ = [est.components_.copy() for est in lower]
        self.generative_biases_ = [est.intercept_visible_.copy() for est in lower]
        self.n_fine_tune_iter_ = 0
        self._n_features_out = self.layer_sizes_[-1]
        self._generator = generator
        return self

    # ---- inference -----------------------------------------------------------------------------
    def _top(self) -> RBM:
        """The top RBM as a model sharing the arrays of ``rbms_[-1]`` (trained in place)."""
        top = self.rbms_[-1]
        return RBM(top.components_, top.intercept_visible_, top.intercept_hidden_)

    def _upward_dense(self, X: np.ndarray) -> np.ndarray:
        H = X
        for R, r in zip(self.recognition_weights_, self.recognition_biases_):
            H = _sigmoid_(H @ R.T, r)
        return self._top().hidden_probs(H)

    def transform(self, X):
        """Top-layer probabilities by an upward mean-field pass.

        ``h_0 = X``, ``h_{i+1} = sigmoid(h_i R_i^T + r_i)`` through the recognition weights of
        the directed layers, then the top RBM's P(h = 1 | h_{L-1}). Before fine-tuning this is
        ``rbms_[L-1].transform(... rbms_[0].transform(X))``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        h : ndarray of shape (n_samples, hidden_layer_sizes[-1])
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        if sp.issparse(X):
            parts = [self._upward_dense(np.ascontiguousarray(X[s:s + _SPARSE_CHUNK_ROWS].toarray()))
                     for s in range(0, X.shape[0], _SPARSE_CHUNK_ROWS)]
            return np.vstack(parts) if parts else np.empty((0, self.layer_sizes_[-1]), X.dtype)
        return self._upward_dense(X)

    def sample(self, n_samples, *, gibbs_steps=1000, output="probs", random_state=None):
        """Generate data: Gibbs sampling in the top RBM, then one pass down the directed layers.

        The top RBM's chains start from uniform random states of its visible layer (the
        penultimate layer, ``x_{L-1}``) and run ``gibbs_steps`` block-Gibbs steps in compiled
        code (:func:`fastgen.ops.gibbs`); the top hidden layer is then sampled from the last
        state, and the pass down samples ``x_{L-1} ~ P(x_{L-1} | x_L)`` (the top RBM's visible
        conditional) and ``x_i ~ P(x_i | x_{i+1}) = sigmoid(x_{i+1} G_i + g_i)`` with the
        generative weights and each layer's visible bias, down to ``x_1``. The data layer is
        returned as the probabilities ``P(x_0 | x_1)`` (``output="probs"``, the usual way to
        show a DBN's samples) or sampled from them (``output="states"``).

        Parameters
        ----------
        n_samples : int >= 0
        gibbs_steps : int >= 0, default=1000
            Block-Gibbs steps in the top RBM before the descent.
        output : {"probs", "states"}, default="probs"
            The data layer as probabilities or as 0/1 states.
        random_state : int, fastgen.Generator, NumPy generator or None
            The stream to draw from; None continues the network's own stream (seeded at fit).
            Takes ``1 + 2 * gibbs_steps + L`` offsets (``+ 1`` with ``output="states"``).

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features_in_), values in [0, 1]
        """
        check_is_fitted(self)
        n_samples = _check_int(n_samples, "n_samples", 0)
        gibbs_steps = _check_int(gibbs_steps, "gibbs_steps", 0)
        if output not in _SAMPLE_OUTPUTS:
            raise InvalidParameterError(f"output must be one of {_SAMPLE_OUTPUTS}, got {output!r}")
        gen = self._generator if random_state is None else as_generator(random_state)
        top = self._top()
        v = top.sample(n_samples, gibbs_steps, generator=gen)
        h = top.sample_hidden(v, generator=gen)
        p = top.visible_probs(h)
        for G, g in zip(reversed(self.generative_weights_), reversed(self.generative_biases_)):
            p = _sigmoid_(_sample_probs(p, gen) @ G, g)
        return _sample_probs(p, gen) if output == "states" else p

    # ---- up-down fine-tuning -------------------------------------------------------------------
    def fine_tune(self, X, y=None, *, n_iter=10, learning_rate=0.01, cd_k=None, batch_size=None, random_state=None):
        """Up-down fine-tuning (contrastive wake-sleep, Hinton, Osindero & Teh 2006).

        Unties the recognition and generative weights of the directed layers and, for every
        mini-batch ``x_0`` (consecutive rows of X, vectorised over the batch):

        1. **wake** -- a bottom-up stochastic pass ``s_{i+1} ~ Q(x_{i+1} | s_i)`` with the
           recognition weights (``s_0 = x_0``); each generative layer learns to reconstruct the
           layer below from the one above: ``G_i += lr <s_{i+1}^T (s_i - P(x_i | s_{i+1}))>``,
           ``g_i += lr <s_i - P(x_i | s_{i+1})>``;
        2. **top** -- CD-k in the top RBM with ``s_{L-1}`` as its data: positive statistics from
           P(h | s_{L-1}), negative ones from the sampled visible states after ``cd_k`` Gibbs
           steps started at ``s_{L-1}`` and their P(h | .);
        3. **sleep** -- a top-down stochastic pass from the end of that chain,
           ``t_{L-1}`` = its last visible states, ``t_i ~ P(x_i | t_{i+1})`` (``t_0`` kept as
           probabilities, as in the paper); each recognition layer learns to infer the layer
           above from the one below: ``R_i += lr <(t_{i+1} - Q(x_{i+1} | t_i))^T t_i>``,
           ``r_i += lr <t_{i+1} - Q(x_{i+1} | t_i)>``.

        All predictions use the parameters from before the batch's updates; ``<.>`` is the mean
        over the batch. Products go to BLAS, sigmoids and Bernoulli draws to fastgen's compiled
        sampler. The top RBM ``rbms_[-1]`` is updated in place; the lower ``rbms_`` keep their
        pretrained values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Values in [0, 1].
        y : ignored
        n_iter : int >= 0, default=10
            Passes over X.
        learning_rate : float > 0, default=0.01
            One step size for all three phases.
        cd_k : int >= 1 or None, default=None
            Gibbs steps in the top RBM; None means the estimator's ``cd_k``.
        batch_size : int >= 1 or None, default=None
            None means the estimator's ``batch_size``.
        random_state : int, fastgen.Generator, NumPy generator or None
            The stream; None continues the network's own stream. Each batch takes
            ``(L - 1) + 2 * cd_k + max(L - 2, 0)`` offsets.

        Returns
        -------
        self : DBN

        Raises
        ------
        FloatingPointError
            If a pass left a parameter NaN, infinite or above 1e6 in magnitude (a learning rate
            far too large); the network keeps the parameters from before that pass.
        """
        check_is_fitted(self)
        n_iter = _check_int(n_iter, "n_iter", 0)
        if not is_finite_real(learning_rate) or learning_rate <= 0:
            raise InvalidParameterError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
        cd_k = _check_int(self.cd_k if cd_k is None else cd_k, "cd_k", 1)
        batch_size = _check_int(self.batch_size if batch_size is None else batch_size, "batch_size", 1)
        X = self._validate_X(X, reset=False)
        gen = self._generator if random_state is None else as_generator(random_state)
        dt = self.rbms_[0].components_.dtype.type
        lr = dt(learning_rate)
        self._writeable_parameters()
        params = [*self.recognition_weights_, *self.recognition_biases_, *self.generative_weights_,
                  *self.generative_biases_, *self._top_arrays()]

        def one_pass():
            for start in range(0, X.shape[0], batch_size):
                batch = X[start:start + batch_size]
                batch = np.ascontiguousarray(batch.toarray()) if sp.issparse(batch) else batch
                self._up_down_batch(batch, lr, cd_k, gen)

        begin = time.time()
        for _ in range(n_iter):
            guarded_pass(one_pass, params, message=(
                f"fine_tune diverged (a parameter became NaN, infinite or larger than {DIVERGED:g}) with "
                f"learning_rate={learning_rate}: the network keeps its parameters from before this pass; "
                "use a smaller learning_rate"))
            self.n_fine_tune_iter_ += 1
            if self.verbose:
                end = time.time()
                print("[%s] Fine-tuning pass %d, reconstruction error = %.5f, time = %.2fs"
                      % (type(self).__name__, self.n_fine_tune_iter_, self._reconstruction_error(X), end - begin))
                begin = end
        return self

    def _writeable_parameters(self) -> None:
        """Writeable copies of the arrays fine-tuning updates where they are read-only (a network
        loaded with joblib's mmap_mode='r'); the file behind them is never written."""
        for name in ("recognition_weights_", "recognition_biases_", "generative_weights_", "generative_biases_"):
            setattr(self, name, [a if a.flags.writeable else np.array(a) for a in getattr(self, name)])
        top = self.rbms_[-1]
        for name in ("components_", "intercept_visible_", "intercept_hidden_"):
            a = getattr(top, name)
            if not a.flags.writeable:
                setattr(top, name, np.array(a))

    def _top_arrays(self):
        top = self.rbms_[-1]
        return top.components_, top.intercept_visible_, top.intercept_hidden_

    def _up_down_batch(self, x0: np.ndarray, lr, cd_k: int, gen: Generator) -> None:
        R, r = self.recognition_weights_, self.recognition_biases_
        G, g = self.generative_weights_, self.generative_biases_
        top = self._top()
        n_directed = len(R)
        scale = lr / x0.shape[0]

        # wake: bottom-up stochastic pass through the recognition model
        wake = [x0]
        for i in range(n_directed):
            wake.append(_sample_(wake[i] @ R[i].T, r[i], gen))
        # top RBM: CD-k from the wake states of the penultimate layer
        v_pos = wake[-1]
        h_pos = top.hidden_probs(v_pos)
        v_neg, h_neg = _gibbs_op(v_pos, top.weights, top.visible_bias, top.hidden_bias, cd_k,
                                 generator=gen, return_hidden=True)
        # sleep: top-down stochastic pass through the generative model from the chain's end
        sleep = [None] * n_directed + [v_neg]
        for i in reversed(range(n_directed)):
            pre = sleep[i + 1] @ G[i]
            sleep[i] = _sigmoid_(pre, g[i]) if i == 0 else _sample_(pre, g[i], gen)
        # predictions with the parameters from before this batch's updates
        wake_err = [wake[i] - _sigmoid_(wake[i + 1] @ G[i], g[i]) for i in range(n_directed)]
        sleep_err = [sleep[i + 1] - _sigmoid_(sleep[i] @ R[i].T, r[i]) for i in range(n_directed)]
        # updates (means over the batch)
        for i in range(n_directed):
            G[i] += scale * (wake[i + 1].T @ wake_err[i])
            g[i] += lr * wake_err[i].mean(axis=0)
            R[i] += scale * (sleep_err[i].T @ sleep[i])
            r[i] += lr * sleep_err[i].mean(axis=0)
        top.weights += scale * (h_pos.T @ v_pos - h_neg.T @ v_neg)
        top.visible_bias += lr * (v_pos.mean(axis=0) - v_neg.mean(axis=0))
        top.hidden_bias += lr * (h_pos.mean(axis=0) - h_neg.mean(axis=0))

    def _reconstruction_error(self, X) -> float:
        """Mean squared error of the deterministic up-down reconstruction of X (verbose only)."""
        if sp.issparse(X):
            X = np.ascontiguousarray(X.toarray())
        top = self._top()
        H = X
        for R, r in zip(self.recognition_weights_, self.recognition_biases_):
            H = _sigmoid_(H @ R.T, r)
        P = top.visible_probs(top.hidden_probs(H))
        for G, g in zip(reversed(self.generative_weights_), reversed(self.generative_biases_)):
            P = _sigmoid_(P @ G, g)
        return float(np.mean((X - P) ** 2))

    # ---- export --------------------------------------------------------------------------------
    def to_torch(self, n_classes=None, *, dtype=None):
        """The recognition network as a ``torch.nn.Sequential`` for discriminative fine-tuning.

        ``Linear(n_0, n_1), Sigmoid(), ..., Linear(n_{L-1}, n_L), Sigmoid()`` with the weights
        and biases of the recognition layers and of the top RBM's hidden units, so that the
        module's output on X equals :meth:`transform` (up to the float tolerance of ``dtype``);
        with ``n_classes``, a fresh ``Linear(n_L, n_classes)`` (torch's default initialisation,
        seeded by ``torch.manual_seed``) is appended, producing logits for
        ``torch.nn.CrossEntropyLoss``. The parameters are copies: training the module leaves the
        DBN unchanged. Needs PyTorch (``pip install fastgen[torch]``).

        Parameters
        ----------
        n_classes : int >= 1 or None, default=None
        dtype : torch.dtype or None, default=None
            None means ``torch.float32``.

        Returns
        -------
        model : torch.nn.Sequential
        """
        check_is_fitted(self)
        if n_classes is not None:
            n_classes = _check_int(n_classes, "n_classes", 1)
        try:
            import torch
            from torch import nn
        except ImportError as exc:  # pragma: no cover - torch is in the test extras
            raise ImportError("DBN.to_torch needs PyTorch: pip install 'fastgen[torch]'") from exc
        dtype = torch.float32 if dtype is None else dtype
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise InvalidParameterError(f"dtype must be None or a floating torch.dtype, got {dtype!r}")
        top = self.rbms_[-1]
        layers = []
        for W, b in [*zip(self.recognition_weights_, self.recognition_biases_),
                     (top.components_, top.intercept_hidden_)]:
            linear = nn.utils.skip_init(nn.Linear, W.shape[1], W.shape[0], dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
                linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
            layers += [linear, nn.Sigmoid()]
        if n_classes is not None:
            layers.append(nn.Linear(self.layer_sizes_[-1], n_classes, dtype=dtype))
        return nn.Sequential(*layers)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
