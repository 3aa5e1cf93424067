"""Deep belief network estimator: a greedily pretrained stack of Bernoulli RBMs with up-down
fine-tuning (Hinton, Osindero & Teh 2006); the model itself is
:class:`fastgen.models.dbn.DeepBeliefNet`.

* :meth:`DBN.fit` pretrains greedily: layer ``i`` is a :class:`fastgen.BernoulliRBM` fitted to
  the hidden probabilities of layer ``i - 1`` on the data; afterwards ``R_i = G_i`` (the RBM's
  weights, tied), ``r_i`` is the RBM's hidden bias and ``g_i`` its visible bias.
* :meth:`DBN.fine_tune` runs the up-down algorithm (the contrastive version of wake-sleep,
  Hinton et al. 2006, appendix B), which unties ``R_i`` and ``G_i``.
* :meth:`DBN.transform` is the upward mean-field pass through the recognition weights and the
  top RBM; :meth:`DBN.sample` Gibbs-samples the top RBM and then descends the generative layers;
  :meth:`DBN.to_torch` exports the recognition network for discriminative fine-tuning.
"""
from __future__ import annotations

import numbers
import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted, validate_data

from .._checks import positive_int, real
from ..models.dbn import DeepBeliefNet
from ..models.rbm import RBM
from ..random import Generator, as_generator
from ._base import SPARSE_CHUNK_ROWS, writeable_training_state
from ._data import compute_dtype, refuse_iterator
from ._parallel import same_ints, world_size
from ._params import check_random_state_named, parameter_errors
from ._rbm import BernoulliRBM

_SAMPLE_OUTPUTS = ("probs", "states")


def _is_sequence(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) and not isinstance(value, str)


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
        with parameter_errors():
            return [positive_int(size, f"hidden_layer_sizes[{i}]") for i, size in enumerate(sizes)]

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
        with parameter_errors():
            for i, v in enumerate(values):
                if name == "n_iter":
                    positive_int(v, f"n_iter[{i}]", minimum=0)
                else:
                    real(v, f"{name}[{i}]", low=0.0, low_open=True)
        return values

    def _layer_estimators(self):
        """Unfitted BernoulliRBM per layer and the network's own stream; every parameter is
        checked here, before X is looked at and before any training starts."""
        sizes = self._layer_sizes()
        n_layers = len(sizes)
        rates = self._per_layer("learning_rate", n_layers)
        iters = self._per_layer("n_iter", n_layers)
        rng = check_random_state_named(self.random_state)
        seeds = [int(rng.randint(np.iinfo(np.int32).max)) for _ in range(n_layers)]
        own_seed = int(rng.randint(np.iinfo(np.int64).max, dtype=np.int64))
        *seeds, own_seed = same_ints([*seeds, own_seed])  # data-parallel: rank 0's (random_state=None)
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
        refuse_iterator(X, self)
        dtype = (np.float64, np.float32)
        X = validate_data(self, X, accept_sparse="csr", reset=reset, dtype=dtype)
        target = compute_dtype(self.dtype, X.dtype) if reset else self.rbms_[0].components_.dtype
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

    def _network(self) -> DeepBeliefNet:
        """The fitted network as the model, sharing the estimator's arrays (trained in place)."""
        return DeepBeliefNet(self.recognition_weights_, self.recognition_biases_, self.generative_weights_,
                             self.generative_biases_, self._top())

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
        network = self._network()
        if sp.issparse(X):
            parts = [network.upward(np.ascontiguousarray(X[s:s + SPARSE_CHUNK_ROWS].toarray()))
                     for s in range(0, X.shape[0], SPARSE_CHUNK_ROWS)]
            return np.vstack(parts) if parts else np.empty((0, self.layer_sizes_[-1]), X.dtype)
        return network.upward(X)

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
        with parameter_errors():
            n_samples = positive_int(n_samples, "n_samples", minimum=0)
            gibbs_steps = positive_int(gibbs_steps, "gibbs_steps", minimum=0)
        if output not in _SAMPLE_OUTPUTS:
            raise InvalidParameterError(f"output must be one of {_SAMPLE_OUTPUTS}, got {output!r}")
        gen = self._generator if random_state is None else as_generator(random_state)
        return self._network().sample(n_samples, gibbs_steps, states=output == "states", generator=gen)

    # ---- up-down fine-tuning -------------------------------------------------------------------
    def fine_tune(self, X, y=None, *, n_iter=10, learning_rate=0.01, cd_k=None, batch_size=None, random_state=None):
        """Up-down fine-tuning (contrastive wake-sleep, Hinton, Osindero & Teh 2006).

        Unties the recognition and generative weights of the directed layers and runs, for
        every mini-batch (consecutive rows of X, vectorised over the batch), a wake phase (a
        stochastic bottom-up pass; each generative layer learns to reconstruct the layer below),
        CD-k in the top RBM from the wake states, and a sleep phase (a stochastic top-down pass
        from the end of that chain; each recognition layer learns to infer the layer above):
        :meth:`fastgen.models.dbn.DeepBeliefNet.up_down_step` has the formulas. The top RBM
        ``rbms_[-1]`` is updated in place; the lower ``rbms_`` keep their pretrained values.

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
        if world_size() > 1:
            raise ValueError("DBN.fine_tune does not train data-parallel: call it outside "
                             "fastgen.sklearn.data_parallel (e.g. on rank 0 alone)")
        check_is_fitted(self)
        with parameter_errors():
            n_iter = positive_int(n_iter, "n_iter", minimum=0)
            real(learning_rate, "learning_rate", low=0.0, low_open=True)
            cd_k = positive_int(self.cd_k if cd_k is None else cd_k, "cd_k")
            batch_size = positive_int(self.batch_size if batch_size is None else batch_size, "batch_size")
        X = self._validate_X(X, reset=False)
        gen = self._generator if random_state is None else as_generator(random_state)
        self._writeable_parameters()
        network = self._network()

        def batches():
            for start in range(0, X.shape[0], batch_size):
                batch = X[start:start + batch_size]
                yield np.ascontiguousarray(batch.toarray()) if sp.issparse(batch) else batch

        begin = time.time()
        for _ in range(n_iter):
            network.up_down_pass(batches(), learning_rate, cd_k, gen)
            self.n_fine_tune_iter_ += 1
            if self.verbose:
                end = time.time()
                dense = np.ascontiguousarray(X.toarray()) if sp.issparse(X) else X
                print("[%s] Fine-tuning pass %d, reconstruction error = %.5f, time = %.2fs"
                      % (type(self).__name__, self.n_fine_tune_iter_, network.reconstruction_error(dense),
                         end - begin))
                begin = end
        return self

    def _writeable_parameters(self) -> None:
        """Writeable copies of the arrays fine-tuning updates where they are read-only (a network
        loaded with joblib's mmap_mode='r'); the file behind them is never written."""
        for name in ("recognition_weights_", "recognition_biases_", "generative_weights_", "generative_biases_"):
            setattr(self, name, [a if a.flags.writeable else np.array(a) for a in getattr(self, name)])
        writeable_training_state(self.rbms_[-1])

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
            with parameter_errors():
                n_classes = positive_int(n_classes, "n_classes")
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
