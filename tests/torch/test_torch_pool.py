"""torch.ops.fastgen pooling ops: gradients (gradcheck, float64) against torch's own pooling,
opcheck, and torch.compile without graph breaks.

On a GPU (``gpu`` marker): the pool ops on CUDA tensors pass opcheck, gradcheck and compile."""
from __future__ import annotations

import numpy as np

import pytest

torch = pytest.importorskip("torch")

from fastgen.torch.pool import avg_unpool2d, max_pool2d, max_unpool2d  # noqa: E402
from cuda_helpers import torch_cuda_or_skip  # noqa: E402

F = torch.nn.functional


def images(shape=(2, 3, 9, 7), seed=0, grad=True):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).requires_grad_(grad)


@pytest.mark.parametrize("kernel,stride,padding", [(3, 2, 1), (2, 2, 0), ((3, 2), (1, 2), (1, 0))])
def test_max_pool_gradients_match_torch(kernel, stride, padding):
    x = images()
    out, idx = max_pool2d(x, kernel, stride, padding)
    w = torch.randn_like(out)
    (out * w).sum().backward()
    x2 = x.detach().clone().requires_grad_()
    t_out, t_idx = F.max_pool2d(x2, kernel, stride, padding, return_indices=True)
    (t_out * w).sum().backward()
    torch.testing.assert_close(out, t_out)
    assert torch.equal(idx, t_idx)
    torch.testing.assert_close(x.grad, x2.grad)
    assert torch.autograd.gradcheck(lambda a: max_pool2d(a, kernel, stride, padding)[0], (images(seed=1),))


def test_unpool_gradients():
    x = images()
    out, idx = max_pool2d(x.detach(), 2)
    y = out.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a: max_unpool2d(a, idx, (9, 7)), (y,))
    assert torch.autograd.gradcheck(lambda a: avg_unpool2d(a, (2, 3)), (images((1, 2, 3, 4)),))


def test_opcheck():
    x = images(grad=True)
    torch.library.opcheck(torch.ops.fastgen.max_pool2d.default, (x, [3, 3], [2, 2], [1, 1]))
    out, idx = max_pool2d(x.detach(), 2)
    torch.library.opcheck(torch.ops.fastgen.max_unpool2d.default, (out.clone().requires_grad_(), idx, [9, 7]))
    torch.library.opcheck(torch.ops.fastgen.avg_unpool2d.default, (images((1, 2, 3, 4)), [2, 2]))


def test_autoencoder_style_graph_compiles_without_breaks():
    def down_up(x):
        pooled, idx = torch.ops.fastgen.max_pool2d(x, [2, 2], [2, 2], [0, 0])
        return (torch.ops.fastgen.max_unpool2d(pooled, idx, [8, 8]) ** 2).sum() + \
            torch.ops.fastgen.avg_unpool2d(pooled, [2, 2]).sum()

    compiled = torch.compile(down_up, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    out = compiled(x)
    out.backward()
    x2 = x.detach().clone().requires_grad_()
    expected = down_up(x2)
    expected.backward()
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(x.grad, x2.grad)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="x must be 4-D"):
        max_pool2d(torch.zeros(4, 4), 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        max_pool2d(torch.zeros(1, 1, 4, 4, dtype=torch.int32), 2)
    with pytest.raises(ValueError, match="does not fit the input"):
        max_pool2d(torch.zeros(1, 1, 2, 2), 3)
    with pytest.raises(ValueError, match="x contains NaN"):
        max_pool2d(torch.full((1, 1, 2, 2), float("nan")), 2)
    out, idx = max_pool2d(torch.zeros(1, 1, 4, 4), 2)
    with pytest.raises(ValueError, match="indices must lie in"):
        max_unpool2d(out, idx + 50, (4, 4))
    with pytest.raises(TypeError, match="indices must be an int64"):
        max_unpool2d(out, idx.to(torch.int32), (4, 4))


# ==== on a GPU (CuPy arrays and torch CUDA tensors against the CPU) =============================


@pytest.mark.gpu
def test_torch_pool_ops_on_cuda_opcheck_gradcheck_compile():
    torch = torch_cuda_or_skip()
    from fastgen.torch import pool as tpool

    rng = np.random.default_rng(1)
    x = torch.tensor(rng.standard_normal((2, 3, 6, 6)), device="cuda", requires_grad=True)
    out, idx = tpool.max_pool2d(x, 2)
    want_out, want_idx = tpool.max_pool2d(x.detach().cpu(), 2)
    assert torch.equal(out.detach().cpu(), want_out) and torch.equal(idx.cpu(), want_idx)
    torch.library.opcheck(torch.ops.fastgen.max_pool2d.default, (x, [3, 3], [2, 2], [1, 1]))
    torch.library.opcheck(torch.ops.fastgen.max_unpool2d.default, (out.detach().requires_grad_(), idx, [6, 6]))
    torch.library.opcheck(torch.ops.fastgen.avg_unpool2d.default, (out.detach().requires_grad_(), [2, 2]))
    assert torch.autograd.gradcheck(lambda a: tpool.max_pool2d(a, 3, 2, 1)[0], (x,))
    small = out.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a: tpool.max_unpool2d(a, idx, (6, 6)), (small,))
    assert torch.autograd.gradcheck(lambda a: tpool.avg_unpool2d(a, (2, 3)), (small,))

    def f(a):
        o, i = tpool.max_pool2d(a, 2)
        return tpool.avg_unpool2d(tpool.max_unpool2d(o, i, (6, 6)), 1).sum()

    compiled = torch.compile(f, fullgraph=True)
    compiled(x).backward()
    assert x.grad is not None and x.grad.device.type == "cuda"
