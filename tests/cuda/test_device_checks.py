"""The CUDA ops' value checks wait for the device once per call, not once per argument (issue 27,
item 4), checked without a GPU: ``import cupy`` gives NumPy with a ``stack`` whose read-back
(``tolist``) is counted as the one host synchronisation, and the launchers are no-ops."""
from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import pytest

from fastgen.random import Generator
from fastgen.ops.validation import DeviceChecks, float_array_cuda, rbm_parameters_cuda

# the modules (fastgen.ops re-exports the functions under the same names)
cd_op = importlib.import_module("fastgen.ops.cd")
gibbs_op = importlib.import_module("fastgen.ops.gibbs")
sampling_op = importlib.import_module("fastgen.ops.sampling")


class _Flags(np.ndarray):
    syncs = 0

    def tolist(self):
        type(self).syncs += 1
        return super().tolist()


class _Placement:
    cuda = True

    @staticmethod
    def array(a, name):
        return a

    @staticmethod
    def wrap(a):
        return a


@pytest.fixture
def syncs(monkeypatch):
    """The count of host synchronisations made by the checks, on a NumPy stand-in for CuPy."""
    from fastgen._native import cuda as _cuda

    shim = types.ModuleType("cupy")
    for name in ("empty", "empty_like", "isfinite", "ascontiguousarray", "uint8"):
        setattr(shim, name, getattr(np, name))
    shim.stack = lambda flags: np.stack(flags).view(_Flags)
    monkeypatch.setitem(sys.modules, "cupy", shim)
    for launcher in ("gibbs", "bernoulli", "gaussian", "gemm", "hidden_probs"):
        monkeypatch.setattr(_cuda, launcher, lambda *a, **k: "eager")
    monkeypatch.setattr(_Flags, "syncs", 0)
    return lambda: _Flags.syncs


def _rbm(n_visible=5, n_hidden=3, rows=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((rows, n_visible)).astype(np.float32),
            rng.standard_normal((n_hidden, n_visible)).astype(np.float32),
            np.zeros(n_visible, np.float32), np.zeros(n_hidden, np.float32))


def test_queued_checks_are_read_once_and_raise_the_first_failure_in_order(syncs):
    v, W, b, c = _rbm()
    c[1] = np.nan
    v[2, 3] = np.inf
    checks = DeviceChecks()
    rbm_parameters_cuda(_Placement, W, b, c, checks=checks)
    float_array_cuda(v, "v", ndim=2, checks=checks)
    assert syncs() == 0
    with pytest.raises(ValueError, match="^b_hid contains NaN or infinity$"):
        checks.raise_first()
    assert syncs() == 1


def test_without_a_queue_each_call_checks_at_once(syncs):
    v, W, b, c = _rbm()
    float_array_cuda(v, "v", ndim=2)
    assert syncs() == 1
    v[0, 0] = np.nan
    with pytest.raises(ValueError, match="^v contains NaN or infinity$"):
        float_array_cuda(v, "v", ndim=2)
    assert syncs() == 2
    DeviceChecks().raise_first()  # nothing queued: no synchronisation
    empty = np.zeros((0, 5), np.float32)
    float_array_cuda(empty, "v", ndim=2)
    assert syncs() == 2


def test_gibbs_checks_four_arrays_with_one_synchronisation(syncs):
    v, W, b, c = _rbm()
    gibbs_op._gibbs_cuda(_Placement, v, W, b, c, 3, Generator(1), None, False, "eager")
    assert syncs() == 1


def test_cd_gradients_checks_five_arrays_with_one_synchronisation(syncs, monkeypatch):
    v, W, b, c = _rbm()
    chains = np.zeros((4, 3), np.float32)
    monkeypatch.setattr(cd_op, "CDGradients", lambda *a, **k: None)
    cd_op._cd_gradients_cuda(_Placement, v, W, b, c, 1, Generator(1), chains)
    assert syncs() == 1


@pytest.mark.parametrize("where", ["W", "b_vis", "v", "persistent_chains"])
def test_a_bad_argument_is_named_and_the_stream_does_not_move(syncs, where):
    v, W, b, c = _rbm()
    chains = np.zeros((4, 3), np.float32)
    {"W": W, "b_vis": b, "v": v, "persistent_chains": chains}[where].flat[0] = np.nan
    gen = Generator(7)
    with pytest.raises(ValueError, match=f"^{where} contains NaN or infinity$"):
        cd_op._cd_gradients_cuda(_Placement, v, W, b, c, 1, gen, chains)
    assert gen.offset == 0 and syncs() == 1


def test_bernoulli_checks_values_and_range_with_one_synchronisation(syncs):
    x = np.full((3, 4), 0.5, np.float32)
    sampling_op._bernoulli_cuda(_Placement, x, None, False, "states", Generator(0))
    assert syncs() == 1
    x[1, 2] = 1.5
    with pytest.raises(ValueError, match=r"x must hold probabilities in \[0, 1\]"):
        sampling_op._bernoulli_cuda(_Placement, x, None, False, "states", Generator(0))
    bias = np.zeros(4, np.float32)
    bias[3] = -np.inf
    with pytest.raises(ValueError, match="^bias contains NaN or infinity$"):
        sampling_op._bernoulli_cuda(_Placement, x, bias, True, "probs", Generator(0))
    assert syncs() == 3


def test_gaussian_checks_mean_bias_and_std_with_one_synchronisation(syncs):
    mean = np.zeros((3, 4), np.float32)
    std = np.ones(4, np.float32)
    sampling_op._gaussian_cuda(_Placement, mean, std, np.zeros(4, np.float32), Generator(0))
    assert syncs() == 1
    std[2] = -1.0
    with pytest.raises(ValueError, match="std must be >= 0 everywhere"):
        sampling_op._gaussian_cuda(_Placement, mean, std, None, Generator(0))
    assert syncs() == 2
