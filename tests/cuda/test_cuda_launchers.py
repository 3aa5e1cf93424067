"""The CUDA launchers' glue, checked without a GPU: every launcher of fastgen/_native/cuda_*.py
packs its params struct (a field it names that the struct lacks raises) and launches an entry
point that kernels/<module>.cu defines, where <module> is the name the launcher passes. The
launch itself is replaced by a recorder and the arrays by stand-ins that look like CuPy's."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from fastgen._native import (cuda_cd, cuda_categorical, cuda_conv, cuda_elbo, cuda_gibbs, cuda_pool, cuda_reparam,
                             cuda_sampling, graphs)

KERNELS = Path(__file__).resolve().parents[2] / "kernels"
LAUNCHER_MODULES = (cuda_cd, cuda_categorical, cuda_conv, cuda_elbo, cuda_gibbs, cuda_pool, cuda_reparam,
                    cuda_sampling, graphs)


class _Pointer:
    def __init__(self, ptr: int):
        self.ptr = ptr


class FakeCupyArray:
    """Shape, dtype, strides and a device pointer: what the launchers read of a CuPy array."""

    def __init__(self, shape, dtype=np.float32):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.itemsize = self.dtype.itemsize
        self.ndim = len(self.shape)
        self.size = int(np.prod(self.shape))
        self.strides = tuple(int(np.prod(self.shape[i + 1:])) * self.itemsize for i in range(self.ndim))
        self.data = _Pointer(4096)

    def fill(self, value) -> None:
        pass


FakeCupyArray.__module__ = "cupy.testing_stand_in"  # pack_record turns such arrays into pointers


def entry_points(source: Path) -> set[str]:
    """The extern "C" kernels a .cu file defines, its FG_*_KERNELS(T, SUFFIX) macros expanded."""
    text = source.read_text()
    names = set()
    suffixes = set(re.findall(r"^FG_\w+_KERNELS?\(\w+, (\w+)\)$", text, flags=re.M))
    for name in re.findall(r'extern "C" __global__ void ([\w#]+)\(', text):
        if "##SUFFIX" in name:
            names |= {name.replace("##SUFFIX", s) for s in suffixes}
        else:
            names.add(name)
    return names


@pytest.fixture
def launches(monkeypatch):
    recorded = []

    def launch(module, name, work, params, **options):
        assert params.shape == (1,) and params.dtype.names, "one params record per launch"
        recorded.append((module, name))

    for module in LAUNCHER_MODULES:
        monkeypatch.setattr(module, "launch", launch)
        for attr, value in (("sm_count", lambda device: 132), ("current_device", lambda: 0),
                            ("shared_memory_optin", lambda device: 227 * 1024)):
            if hasattr(module, attr):
                monkeypatch.setattr(module, attr, value)
    return recorded


def A(*shape, dtype=np.float32):
    return FakeCupyArray(shape, dtype)


GEOMETRY = (2, 3, 4, 4, 5, 8, 8, 4, 4, 2, 2, 1, 1)
CALLS = {
    "fill_bits": lambda t: cuda_sampling.fill_bits(A(10, dtype=np.uint32), 3, 5),
    "fill_uniform": lambda t: cuda_sampling.fill_uniform(A(10, dtype=t), 3, 5),
    "fill_normal": lambda t: cuda_sampling.fill_normal(A(10, dtype=t), 3, 5, rng=A(2, dtype=np.uint64)),
    "bernoulli": lambda t: cuda_sampling.bernoulli(A(4, 6, dtype=t), A(6, dtype=t), None, A(4, 6, dtype=t),
                                                   seed=2, offset=7, clamp=A(4, 6, dtype=np.uint8)),
    "gaussian": lambda t: cuda_sampling.gaussian(A(4, 6, dtype=t), A(4, 6, dtype=t), std=A(6, dtype=t), seed=1),
    "set_stream": lambda t: graphs.set_stream(A(2, dtype=np.uint64), 9, 11),
    "gibbs_fused": lambda t: cuda_gibbs.gibbs_fused(A(7, 10, dtype=t), A(5, 10, dtype=t), A(10, dtype=t),
                                                    A(5, dtype=t), 3, seed=4, offset=8),
    "apply_velocity": lambda t: cuda_cd.apply_velocity(A(5, dtype=t), A(5, dtype=t), 0.1),
    "sgd_update": lambda t: cuda_cd.sgd_update(A(5, dtype=t), A(5, dtype=t), velocity=A(5, dtype=t), lr=0.1),
    "reparameterize": lambda t: cuda_reparam.reparameterize(A(4, 6, dtype=t), A(4, 6, dtype=t), A(4, 6, dtype=t),
                                                            A(4, dtype=t), seed=1, offset=2),
    "reparameterize_backward": lambda t: cuda_reparam.reparameterize_backward(
        A(4, 6, dtype=t), A(4, dtype=t), A(4, 6, dtype=t), A(4, 6, dtype=t), A(4, 6, dtype=t), A(4, 6, dtype=t),
        seed=1, offset=2),
    "bernoulli_log_likelihood": lambda t: cuda_elbo.bernoulli_log_likelihood(A(4, 6, dtype=t), A(4, 6, dtype=t),
                                                                             A(4, dtype=t)),
    "bernoulli_log_likelihood_backward": lambda t: cuda_elbo.bernoulli_log_likelihood_backward(
        A(4, dtype=t), A(4, 6, dtype=t), A(4, 6, dtype=t), A(4, 6, dtype=t), A(4, 6, dtype=t)),
    "gaussian_log_likelihood": lambda t: cuda_elbo.gaussian_log_likelihood(A(4, 6, dtype=t), A(4, 6, dtype=t),
                                                                           A(6, dtype=t), A(4, dtype=t)),
    "gaussian_log_likelihood_backward": lambda t: cuda_elbo.gaussian_log_likelihood_backward(
        A(4, dtype=t), A(4, 6, dtype=t), A(4, 6, dtype=t), A(6, dtype=t), A(4, 6, dtype=t), A(6, dtype=t),
        A(4, 6, dtype=t)),
    "max_pool2d": lambda t: cuda_pool.max_pool2d(A(2, 3, 8, 8, dtype=t), A(2, 3, 4, 4, dtype=t),
                                                 A(2, 3, 4, 4, dtype=np.int64), (2, 2), (2, 2), (0, 1)),
    "scatter_planes_add": lambda t: cuda_pool.scatter_planes(A(2, 3, 4, 4, dtype=t), A(2, 3, 4, 4, dtype=np.int64),
                                                             A(2, 3, 8, 8, dtype=t), True),
    "scatter_planes_assign": lambda t: cuda_pool.scatter_planes(A(2, 3, 4, 4, dtype=t),
                                                                A(2, 3, 4, 4, dtype=np.int64),
                                                                A(2, 3, 8, 8, dtype=t), False),
    "gather_planes": lambda t: cuda_pool.gather_planes(A(2, 3, 8, 8, dtype=t), A(2, 3, 4, 4, dtype=np.int64),
                                                       A(2, 3, 4, 4, dtype=t)),
    "avg_unpool2d": lambda t: cuda_pool.avg_unpool2d(A(2, 3, 4, 4, dtype=t), A(2, 3, 8, 8, dtype=t), (2, 2)),
    "avg_unpool2d_backward": lambda t: cuda_pool.avg_unpool2d(A(2, 3, 8, 8, dtype=t), A(2, 3, 4, 4, dtype=t),
                                                              (2, 2), backward=True),
    "conv_transpose2d_output": lambda t: cuda_conv.conv_transpose2d_output(
        A(80, 32, dtype=t), A(5, dtype=t), A(2, 5, 8, 8, dtype=t), GEOMETRY, 2, 0.2),
    "conv_transpose2d_im2col": lambda t: cuda_conv.conv_transpose2d_im2col(A(2, 5, 8, 8, dtype=t),
                                                                           A(80, 32, dtype=t), GEOMETRY),
    "activation_backward": lambda t: cuda_conv.activation_backward(A(10, dtype=t), A(10, dtype=t), A(10, dtype=t),
                                                                   3, 0.1),
    "sample_categorical": lambda t: cuda_categorical.sample_categorical(
        A(4, 6, dtype=t), A(4, dtype=np.int64), temperature=0.7, top_k=2, seed=3, offset=4),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_each_launcher_launches_a_kernel_of_its_own_file(launches, call, dtype):
    CALLS[call](dtype)
    assert launches, f"{call} launched nothing"
    for module, name in launches:
        source = KERNELS / f"{module}.cu"
        assert source.is_file(), f"{call} launches from kernels/{module}.cu, which does not exist"
        assert name in entry_points(source), f"{call}: kernels/{module}.cu has no entry point {name}"


def test_every_kernel_file_is_launched_by_some_launcher(launches):
    for call in CALLS.values():
        call(np.float32)
    # numba.cu holds device functions that numba.cuda kernels link (fastgen.numba.cuda), not kernels
    assert {module for module, _ in launches} == {p.stem for p in KERNELS.glob("*.cu")} - {"numba"}
