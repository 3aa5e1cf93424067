"""torch.ops.fastgen.reparameterize: opcheck, gradcheck, torch.compile, and the values of the
NumPy kernel."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastgen  # noqa: E402
from fastgen.ops import reparameterize as reparameterize_numpy  # noqa: E402
from fastgen.torch.reparam import reparameterize  # noqa: E402


def tensors(shape, dtype=torch.float64, seed=0, grad=True):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(shape, generator=g, dtype=dtype).requires_grad_(grad)
    logvar = torch.randn(shape, generator=g, dtype=dtype).requires_grad_(grad)
    return mu, logvar


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_values_as_the_numpy_kernel(dtype):
    mu, logvar = tensors((7, 33), dtype, grad=False)
    z, kl = reparameterize(mu, logvar, fastgen.Generator(4))
    ez, ekl = reparameterize_numpy(mu.numpy(), logvar.numpy(), generator=fastgen.Generator(4))
    np.testing.assert_array_equal(z.numpy(), ez)
    np.testing.assert_array_equal(kl.numpy(), ekl)


def test_opcheck():
    for shape in ((3, 5), (1, 1), (0, 4)):
        mu, logvar = tensors(shape)
        torch.library.opcheck(torch.ops.fastgen.reparameterize.default, (mu, logvar, 11, 2))
    mu, logvar = tensors((4, 6))
    g = torch.randn(4, 6, dtype=torch.float64)
    torch.library.opcheck(torch.ops.fastgen.reparameterize_backward.default,
                          (g, torch.randn(4, dtype=torch.float64), mu.detach(), logvar.detach(), 1, 2))


def test_gradcheck_float64_z_kl_and_each_alone():
    mu, logvar = tensors((5, 4), seed=1)
    assert torch.autograd.gradcheck(lambda a, b: torch.ops.fastgen.reparameterize(a, b, 3, 7), (mu, logvar))
    assert torch.autograd.gradcheck(lambda a, b: torch.ops.fastgen.reparameterize(a, b, 3, 7)[0], (mu, logvar))
    assert torch.autograd.gradcheck(lambda a, b: torch.ops.fastgen.reparameterize(a, b, 3, 7)[1], (mu, logvar))


def test_gradients_equal_the_eager_expression_with_the_same_eps():
    mu, logvar = tensors((6, 9), seed=2)
    z, kl = reparameterize(mu, logvar, fastgen.Generator(8))
    loss = (z * torch.linspace(-1, 1, 9, dtype=torch.float64)).sum() + 0.3 * kl.sum()
    loss.backward()
    eps = ((z - mu) / torch.exp(0.5 * logvar)).detach()
    mu2, lv2 = mu.detach().clone().requires_grad_(), logvar.detach().clone().requires_grad_()
    z2 = mu2 + torch.exp(0.5 * lv2) * eps
    kl2 = 0.5 * (mu2 ** 2 + torch.exp(lv2) - 1 - lv2).sum(dim=1)
    ((z2 * torch.linspace(-1, 1, 9, dtype=torch.float64)).sum() + 0.3 * kl2.sum()).backward()
    torch.testing.assert_close(mu.grad, mu2.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logvar.grad, lv2.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(kl, kl2.detach(), rtol=1e-12, atol=1e-12)


def test_runs_under_torch_compile_without_graph_breaks():
    def elbo_terms(mu, logvar):
        z, kl = torch.ops.fastgen.reparameterize(mu, logvar, 5, 1)
        return (z ** 2).sum() + kl.sum()

    compiled = torch.compile(elbo_terms, fullgraph=True, backend="aot_eager")
    mu, logvar = tensors((3, 4), torch.float32, seed=3)
    out = compiled(mu, logvar)
    out.backward()
    mu2, lv2 = mu.detach().clone().requires_grad_(), logvar.detach().clone().requires_grad_()
    expected = elbo_terms(mu2, lv2)
    expected.backward()
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(mu.grad, mu2.grad)
    torch.testing.assert_close(logvar.grad, lv2.grad)


def test_bad_input_is_refused():
    mu, logvar = tensors((2, 3), grad=False)
    with pytest.raises(ValueError, match="same shape"):
        torch.ops.fastgen.reparameterize(mu, logvar[:, :2], 0, 0)
    with pytest.raises(ValueError, match="mu must be 2-D"):
        torch.ops.fastgen.reparameterize(mu[0], logvar[0], 0, 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        torch.ops.fastgen.reparameterize(mu.to(torch.int64), logvar.to(torch.int64), 0, 0)
    bad = logvar.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="logvar contains NaN or infinity"):
        torch.ops.fastgen.reparameterize(mu, bad, 0, 0)
    gen = fastgen.Generator(1)
    reparameterize(mu, logvar, gen)
    assert gen.offset == 1


def test_kl_only_backward_and_double_backward():
    mu, logvar = tensors((5, 6), seed=4)
    z, kl = torch.ops.fastgen.reparameterize(mu, logvar, 3, 1)
    (kl * torch.arange(5, dtype=torch.float64)).sum().backward()  # z unused: its gradient is None
    g = torch.arange(5, dtype=torch.float64)[:, None]
    torch.testing.assert_close(mu.grad, g * mu.detach())
    torch.testing.assert_close(logvar.grad, 0.5 * g * (torch.exp(logvar.detach()) - 1))
    z, kl = torch.ops.fastgen.reparameterize(mu, logvar, 3, 1)
    (grad_mu,) = torch.autograd.grad(z.sum() + kl.sum(), mu, create_graph=True)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        grad_mu.sum().backward()


def test_nan_in_any_row_is_refused_naming_the_argument():
    mu, logvar = tensors((300, 64), torch.float32, grad=False)
    for row in (0, 150, 299):
        bad = mu.clone()
        bad[row, 3] = float("inf")
        with pytest.raises(ValueError, match="^mu contains NaN or infinity"):
            torch.ops.fastgen.reparameterize(bad, logvar, 0, 0)



# ---- the CUDA kernels' registration and checks (their results: tests/cuda/test_vae_ops_gpu.py) ----
def test_both_ops_have_cpu_and_cuda_kernels():
    for op in ("fastgen::reparameterize", "fastgen::reparameterize_backward"):
        for key in ("CPU", "CUDA", "Meta", "Autograd"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(op, key), (op, key)


def test_fake_kernel_takes_any_device_and_refuses_a_mix():
    from fastgen.torch import reparam

    meta = torch.empty(3, 4, device="meta")
    z, kl = torch.ops.fastgen.reparameterize(meta, meta, 0, 0)
    assert z.shape == (3, 4) and kl.shape == (3,) and z.device.type == "meta"
    with pytest.raises(ValueError, match="logvar is on meta but mu is on cpu"):
        reparam._check_any(torch.zeros(3, 4), meta)
    with pytest.raises(ValueError, match="mu must be 2-D"):
        reparam._check_any(meta[0], meta[0])


def test_cuda_kernels_without_the_backend_raise_naming_the_tensor(monkeypatch):
    from fastgen._native import cuda as _cuda
    from fastgen.torch import reparam

    monkeypatch.setattr(_cuda, "unavailable_reason", lambda: "CuPy is not importable (ImportError: test)")
    mu, logvar = tensors((2, 3), grad=False)
    message = "^mu lives on a CUDA device, but fastgen's CUDA backend is unavailable: CuPy is not importable"
    with pytest.raises(TypeError, match=message):
        reparam._reparameterize_cuda(mu, logvar, 0, 0)
    with pytest.raises(TypeError, match=message):
        reparam._reparameterize_backward_cuda(torch.ones_like(mu), None, mu, logvar, 0, 0)
    with pytest.raises(ValueError, match="logvar is on meta but mu is on cpu"):
        reparam._reparameterize_cuda(mu, logvar.to("meta"), 0, 0)
    with pytest.raises(ValueError, match="seed must fit an int64"):
        reparam._reparameterize_cuda(mu, logvar, 2**64, 0)
