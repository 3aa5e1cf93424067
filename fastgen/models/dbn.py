"""Deep belief network: directed sigmoid belief layers below an undirected top RBM (Hinton,
Osindero & Teh 2006).

Layers ``x_0`` (the data), ``x_1``, ..., ``x_L``. The top two layers ``x_{L-1}``, ``x_L`` form an
undirected RBM; every lower pair is a directed sigmoid belief layer, generative
``P(x_i | x_{i+1}) = sigmoid(x_{i+1} G_i + g_i)``, with a separate recognition (inference)
model ``Q(x_{i+1} | x_i) = sigmoid(x_i R_i^T + r_i)``. All matrices have scikit-learn's layout
``(n_units above, n_units below)``.

:class:`DeepBeliefNet` holds the parameters and the model's computations: the upward mean-field
pass, generation (Gibbs sampling in the top RBM, then the descent), and up-down fine-tuning. The estimator that pretrains it greedily from data is
:class:`fastgen.sklearn.DBN`. Sigmoids and Bernoulli draws go to
the samplers' trusted entry points in :mod:`fastgen.ops.sampling` (the arrays here are the
model's own, already checked; one Philox offset per draw), products to BLAS.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ops import gibbs
from ..ops.sampling import sample_bernoulli_numpy, sigmoid_numpy
from ..random import Generator
from ._divergence import DIVERGED, guarded_pass
from .rbm import RBM


def _sigmoid(x: np.ndarray, bias) -> np.ndarray:
    """sigmoid(x + bias), the samplers' stable sigmoid; draws nothing."""
    return sigmoid_numpy(x, bias=bias, out=np.empty_like(x))


def _sample(x: np.ndarray, bias, generator: Generator) -> np.ndarray:
    """States ~ Bernoulli(sigmoid(x + bias)) (one offset of ``generator``)."""
    states = np.empty_like(x)
    sample_bernoulli_numpy(x, bias=bias, states=states, seed=generator.seed, offset=generator.take())
    return states


def _sample_probs(p: np.ndarray, generator: Generator) -> np.ndarray:
    """States ~ Bernoulli(p) for probabilities p (one offset of ``generator``)."""
    states = np.empty_like(p)
    sample_bernoulli_numpy(p, states=states, from_logits=False, seed=generator.seed, offset=generator.take())
    return states


@dataclass
class DeepBeliefNet:
    """Parameters of a DBN with ``L = len(recognition_weights) + 1`` hidden layers; the arrays are
    used (and trained) in place.

    Attributes
    ----------
    recognition_weights : list of ndarray, length L-1
        ``R_i`` of shape (n_units of layer i+1, n_units of layer i).
    recognition_biases : list of ndarray, length L-1
        ``r_i`` of shape (n_units of layer i+1,).
    generative_weights : list of ndarray, length L-1
        ``G_i`` of shape (n_units of layer i+1, n_units of layer i).
    generative_biases : list of ndarray, length L-1
        ``g_i`` of shape (n_units of layer i,).
    top : RBM
        The undirected top RBM between ``x_{L-1}`` (its visible layer) and ``x_L``.
    """

    recognition_weights: list
    recognition_biases: list
    generative_weights: list
    generative_biases: list
    top: RBM

    def parameters(self) -> list:
        """Every array :meth:`up_down_step` updates."""
        return [*self.recognition_weights, *self.recognition_biases, *self.generative_weights,
                *self.generative_biases, self.top.weights, self.top.visible_bias, self.top.hidden_bias]

    def upward(self, X: np.ndarray) -> np.ndarray:
        """Top-layer probabilities by an upward mean-field pass, shape (n, n_units of x_L):
        ``h_0 = X``, ``h_{i+1} = sigmoid(h_i R_i^T + r_i)``, then the top RBM's P(h | h_{L-1})."""
        H = X
        for R, r in zip(self.recognition_weights, self.recognition_biases):
            H = _sigmoid(H @ R.T, r)
        return self.top.hidden_probs(H)

    def reconstruction_error(self, X: np.ndarray) -> float:
        """Mean squared error of the deterministic up-down reconstruction of X: the upward pass,
        the top RBM's P(v | P(h | .)), and the generative layers' probabilities down to x_0."""
        H = X
        for R, r in zip(self.recognition_weights, self.recognition_biases):
            H = _sigmoid(H @ R.T, r)
        P = self.top.visible_probs(self.top.hidden_probs(H))
        for G, g in zip(reversed(self.generative_weights), reversed(self.generative_biases)):
            P = _sigmoid(P @ G, g)
        return float(np.mean((X - P) ** 2))

    def sample(self, n_samples: int, gibbs_steps: int, *, states: bool, generator: Generator) -> np.ndarray:
        """Generated data of shape (n_samples, n_units of x_0).

        The top RBM's chains start from uniform random states of its visible layer and run
        ``gibbs_steps`` block-Gibbs steps; the top hidden layer is sampled from the last state,
        then ``x_{L-1} ~ P(x_{L-1} | x_L)`` and ``x_i ~ P(x_i | x_{i+1})`` down to ``x_1``. The
        data layer is ``P(x_0 | x_1)``, or states drawn from it with ``states``. Takes
        ``1 + 2 * gibbs_steps + L`` offsets (``+ 1`` with ``states``).
        """
        v = self.top.sample(n_samples, gibbs_steps, generator=generator)
        h = self.top.sample_hidden(v, generator=generator)
        p = self.top.visible_probs(h)
        for G, g in zip(reversed(self.generative_weights), reversed(self.generative_biases)):
            p = _sigmoid(_sample_probs(p, generator) @ G, g)
        return _sample_probs(p, generator) if states else p

    def up_down_step(self, x0: np.ndarray, learning_rate, cd_k: int, generator: Generator) -> None:
        """One up-down update from the batch ``x0`` (rows of data), in place.

        1. **wake**: ``s_{i+1} ~ Q(x_{i+1} | s_i)`` from ``s_0 = x0``; then
           ``G_i += lr <s_{i+1}^T (s_i - P(x_i | s_{i+1}))>``, ``g_i += lr <s_i - P(x_i | s_{i+1})>``;
        2. **top**: CD-k in the top RBM with ``s_{L-1}`` as its data;
        3. **sleep**: ``t_{L-1}`` = the chain's last visible states, ``t_i ~ P(x_i | t_{i+1})``
           (``t_0`` kept as probabilities); then ``R_i += lr <(t_{i+1} - Q(x_{i+1} | t_i))^T t_i>``,
           ``r_i += lr <t_{i+1} - Q(x_{i+1} | t_i)>``.

        All predictions use the parameters from before the update; ``<.>`` is the mean over the
        batch and ``learning_rate`` a scalar of the parameters' dtype. Takes
        ``(L - 1) + 2 * cd_k + max(L - 2, 0)`` offsets.
        """
        R, r = self.recognition_weights, self.recognition_biases
        G, g = self.generative_weights, self.generative_biases
        top = self.top
        n_directed = len(R)
        lr = learning_rate
        scale = lr / x0.shape[0]

        wake = [x0]
        for i in range(n_directed):
            wake.append(_sample(wake[i] @ R[i].T, r[i], generator))
        v_pos = wake[-1]
        h_pos = top.hidden_probs(v_pos)
        v_neg, h_neg = gibbs(v_pos, top.weights, top.visible_bias, top.hidden_bias, cd_k,
                             generator=generator, return_hidden=True)
        sleep = [None] * n_directed + [v_neg]
        for i in reversed(range(n_directed)):
            pre = sleep[i + 1] @ G[i]
            sleep[i] = _sigmoid(pre, g[i]) if i == 0 else _sample(pre, g[i], generator)
        wake_err = [wake[i] - _sigmoid(wake[i + 1] @ G[i], g[i]) for i in range(n_directed)]
        sleep_err = [sleep[i + 1] - _sigmoid(sleep[i] @ R[i].T, r[i]) for i in range(n_directed)]
        for i in range(n_directed):
            G[i] += scale * (wake[i + 1].T @ wake_err[i])
            g[i] += lr * wake_err[i].mean(axis=0)
            R[i] += scale * (sleep_err[i].T @ sleep[i])
            r[i] += lr * sleep_err[i].mean(axis=0)
        top.weights += scale * (h_pos.T @ v_pos - h_neg.T @ v_neg)
        top.visible_bias += lr * (v_pos.mean(axis=0) - v_neg.mean(axis=0))
        top.hidden_bias += lr * (h_pos.mean(axis=0) - h_neg.mean(axis=0))

    def up_down_pass(self, batches, learning_rate: float, cd_k: int, generator: Generator) -> None:
        """:meth:`up_down_step` on each of ``batches`` (dense row blocks) in turn, with
        ``learning_rate`` in the parameters' dtype. A pass that leaves a parameter NaN, infinite
        or above 1e6 in magnitude is undone and raises FloatingPointError."""
        lr = self.top.dtype.type(learning_rate)

        def one_pass():
            for batch in batches:
                self.up_down_step(batch, lr, cd_k, generator)

        guarded_pass(one_pass, self.parameters(), message=(
            f"fine_tune diverged (a parameter became NaN, infinite or larger than {DIVERGED:g}) with "
            f"learning_rate={learning_rate}: the network keeps its parameters from before this pass; "
            "use a smaller learning_rate"))
