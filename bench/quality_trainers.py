"""The trainers ``python -m bench quality`` compares, each returning a model's (W, b, c) as float32
NumPy arrays: fastgen's BernoulliRBM (any of its negative phases), scikit-learn's BernoulliRBM,
and the plain PyTorch PCD-1 a researcher would otherwise write, with fastgen's annealed recipe."""
from __future__ import annotations

import numpy as np


def rbm_arrays(estimator):
    """(W [n_hidden, n_visible], b [n_visible], c [n_hidden]) of a fitted BernoulliRBM (fastgen's or
    scikit-learn's), float32."""
    return tuple(np.ascontiguousarray(a, np.float32) for a in (estimator.components_, estimator.intercept_visible_,
                                                               estimator.intercept_hidden_))


def fit_fastgen(X, seed, **params):
    from fastgen import BernoulliRBM

    return rbm_arrays(BernoulliRBM(random_state=seed, **params).fit(X))


def fit_scikit_learn(X, seed, **params):
    from sklearn.neural_network import BernoulliRBM

    return rbm_arrays(BernoulliRBM(random_state=seed, **params).fit(X))


def fit_torch_pcd(X, seed, *, n_components, learning_rate, batch_size, n_iter, n_chains,
                  final_learning_rate=0.0):
    """PCD-1 in plain PyTorch (CPU, float32), the annealed recipe written out: weights ~ N(0, 0.01),
    visible biases at the data's log-odds (clipped as fastgen clips them), ``n_chains`` persistent
    chains started at h = 0, the rate decayed linearly per pass toward ``final_learning_rate``, the
    batches in order (as scikit-learn and fastgen take them); the same update as
    scikit-learn's BernoulliRBM, with the negative statistics a mean over the chains."""
    import torch

    from fastgen.models.schedules import LOG_ODDS_CLIP

    torch.manual_seed(seed)
    data = torch.from_numpy(np.ascontiguousarray(X, np.float32))
    n, nv = data.shape
    W = torch.randn(n_components, nv) * 0.01
    p = (data.mean(0).double()).clamp(LOG_ODDS_CLIP, 1 - LOG_ODDS_CLIP)
    b = torch.log(p / (1 - p)).float()
    c = torch.zeros(n_components)
    chains = torch.zeros(n_chains, n_components)
    with torch.no_grad():
        for epoch in range(n_iter):
            lr = learning_rate + (final_learning_rate - learning_rate) * epoch / n_iter
            for start in range(0, n, batch_size):
                v = data[start:start + batch_size]
                h_pos = torch.sigmoid(torch.addmm(c, v, W.t()))
                v_neg = torch.bernoulli(torch.sigmoid(torch.addmm(b, chains, W)))
                h_neg = torch.sigmoid(torch.addmm(c, v_neg, W.t()))
                W.addmm_(h_pos.t(), v, alpha=lr / v.shape[0]).addmm_(h_neg.t(), v_neg, alpha=-lr / n_chains)
                c.add_(h_pos.mean(0) - h_neg.mean(0), alpha=lr)
                b.add_(v.mean(0) - v_neg.mean(0), alpha=lr)
                chains = torch.bernoulli(h_neg)
    return W.numpy(), b.numpy(), c.numpy()
