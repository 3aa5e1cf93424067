"""fastgen.models.dbn.DeepBeliefNet, the model under the DBN estimator: the upward pass and the
reconstruction against NumPy, the offsets each computation takes, up-down steps equal to the
estimator's fine-tuning, and a diverging pass undone. (The estimator: tests/test_sklearn_dbn.py.)"""
import numpy as np
import pytest
from scipy.special import expit

import fastgen
from fastgen.models.dbn import DeepBeliefNet
from fastgen.models.rbm import RBM
from fastgen.sklearn import DBN


def tiny_network(sizes=(12, 6, 5, 3), seed=0, dtype=np.float64) -> DeepBeliefNet:
    """Random parameters for layers of ``sizes`` (data width first)."""
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.normal(scale=0.5, size=shape).astype(dtype)

    below, above = sizes[:-2], sizes[1:-1]
    top = RBM(normal(sizes[-1], sizes[-2]), normal(sizes[-2]), normal(sizes[-1]))
    return DeepBeliefNet([normal(a, b) for a, b in zip(above, below)], [normal(a) for a in above],
                         [normal(a, b) for a, b in zip(above, below)], [normal(b) for b in below], top)


def binary_rows(n, width, seed=1, dtype=np.float64):
    return (np.random.default_rng(seed).random((n, width)) < 0.4).astype(dtype)


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_upward_pass_and_reconstruction_match_numpy(dtype, rtol):
    net = tiny_network(dtype=dtype)
    X = binary_rows(20, 12, dtype=dtype)
    H = X.astype(np.float64)
    for R, r in zip(net.recognition_weights, net.recognition_biases):
        H = expit(H @ R.T.astype(np.float64) + r)
    W, b, c = (a.astype(np.float64) for a in (net.top.weights, net.top.visible_bias, net.top.hidden_bias))
    top = expit(H @ W.T + c)
    np.testing.assert_allclose(net.upward(X), top, rtol=rtol, atol=rtol)
    P = expit(top @ W + b)
    for G, g in zip(reversed(net.generative_weights), reversed(net.generative_biases)):
        P = expit(P @ G.astype(np.float64) + g)
    assert net.reconstruction_error(X) == pytest.approx(np.mean((X - P) ** 2), rel=10 * rtol)


@pytest.mark.parametrize("states", [False, True])
def test_sample_takes_the_documented_offsets(states):
    net = tiny_network()
    gen = fastgen.Generator(3)
    out = net.sample(7, 4, states=states, generator=gen)
    n_layers = len(net.recognition_weights) + 1
    assert gen.offset == 1 + 2 * 4 + n_layers + int(states)
    assert out.shape == (7, 12) and out.min() >= 0 and out.max() <= 1
    if states:
        assert set(np.unique(out)) <= {0.0, 1.0}


def test_up_down_step_takes_the_documented_offsets_and_moves_every_parameter():
    net = tiny_network()
    before = [a.copy() for a in net.parameters()]
    gen = fastgen.Generator(4)
    net.up_down_step(binary_rows(10, 12), np.float64(0.05), 2, gen)
    n_layers = len(net.recognition_weights) + 1
    assert gen.offset == (n_layers - 1) + 2 * 2 + max(n_layers - 2, 0)
    assert all(not np.array_equal(a, b) for a, b in zip(net.parameters(), before))


def test_up_down_pass_is_the_estimators_fine_tuning():
    X = binary_rows(60, 12)
    fitted = DBN((6, 5, 3), n_iter=1, batch_size=10, random_state=0).fit(X)
    net = DeepBeliefNet([a.copy() for a in fitted.recognition_weights_],
                        [a.copy() for a in fitted.recognition_biases_],
                        [a.copy() for a in fitted.generative_weights_],
                        [a.copy() for a in fitted.generative_biases_],
                        RBM(*(a.copy() for a in (fitted.rbms_[-1].components_, fitted.rbms_[-1].intercept_visible_,
                                                 fitted.rbms_[-1].intercept_hidden_))))
    net.up_down_pass((X[s:s + 20] for s in range(0, 60, 20)), 0.05, 1, fastgen.Generator(9))
    fitted.fine_tune(X, n_iter=1, learning_rate=0.05, batch_size=20, random_state=fastgen.Generator(9))
    for mine, theirs in zip(net.parameters(), [*fitted.recognition_weights_, *fitted.recognition_biases_,
                                               *fitted.generative_weights_, *fitted.generative_biases_,
                                               fitted.rbms_[-1].components_, fitted.rbms_[-1].intercept_visible_,
                                               fitted.rbms_[-1].intercept_hidden_]):
        np.testing.assert_array_equal(mine, theirs)


def test_a_diverging_pass_is_undone():
    net = tiny_network()
    before = [a.copy() for a in net.parameters()]
    X = binary_rows(30, 12)
    with pytest.raises(FloatingPointError, match="fine_tune diverged.*learning_rate=1e\\+300"):
        net.up_down_pass((X[s:s + 10] for s in range(0, 30, 10)), 1e300, 1, fastgen.Generator(0))
    for a, b in zip(net.parameters(), before):
        np.testing.assert_array_equal(a, b)
