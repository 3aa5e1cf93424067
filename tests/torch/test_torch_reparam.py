"""torch.ops.fastgen.reparameterize: opcheck, gradcheck, torch.compile, and the values of the
NumPy kernel.

On a GPU (``gpu`` marker): the op on CUDA tensors matches the CPU op (values, gradients, opcheck,
gradcheck, compile), refuses what the CPU refuses and runs on the caller's stream."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastgen  # noqa: E402
from fastgen.ops import reparameterize as reparameterize_numpy  # noqa: E402
from fastgen.torch.reparam import reparameterize  # noqa: E402
from fastgen.torch.random import stream_tensor as S  # noqa: E402
from cuda_helpers import KL_GPU_RTOL, NO_CUPY, kl_scale, reparam_inputs, run_python  # noqa: E402


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
        torch.library.opcheck(torch.ops.fastgen.reparameterize.default, (mu, logvar, S(11, 2)))
    mu, logvar = tensors((4, 6))
    g = torch.randn(4, 6, dtype=torch.float64)
    torch.library.opcheck(torch.ops.fastgen.reparameterize_backward.default,
                          (g, torch.randn(4, dtype=torch.float64), mu.detach(), logvar.detach(), S(1, 2)))


def test_gradcheck_float64_z_kl_and_each_alone():
    mu, logvar = tensors((5, 4), seed=1)
    assert torch.autograd.gradcheck(lambda a, b: torch.ops.fastgen.reparameterize(a, b, S(3, 7)), (mu, logvar))
    assert torch.autograd.gradcheck(lambda a, b: torch.ops.fastgen.reparameterize(a, b, S(3, 7))[0], (mu, logvar))
    assert torch.autograd.gradcheck(lambda a, b: torch.ops.fastgen.reparameterize(a, b, S(3, 7))[1], (mu, logvar))


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
        z, kl = torch.ops.fastgen.reparameterize(mu, logvar, S(5, 1))
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
        torch.ops.fastgen.reparameterize(mu, logvar[:, :2], S(0, 0))
    with pytest.raises(ValueError, match="mu must be 2-D"):
        torch.ops.fastgen.reparameterize(mu[0], logvar[0], S(0, 0))
    with pytest.raises(TypeError, match="float32 or float64"):
        torch.ops.fastgen.reparameterize(mu.to(torch.int64), logvar.to(torch.int64), S(0, 0))
    bad = logvar.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="logvar contains NaN or infinity"):
        torch.ops.fastgen.reparameterize(mu, bad, S(0, 0))
    gen = fastgen.Generator(1)
    reparameterize(mu, logvar, gen)
    assert gen.offset == 1


def test_kl_only_backward_and_double_backward():
    mu, logvar = tensors((5, 6), seed=4)
    z, kl = torch.ops.fastgen.reparameterize(mu, logvar, S(3, 1))
    (kl * torch.arange(5, dtype=torch.float64)).sum().backward()  # z unused: its gradient is None
    g = torch.arange(5, dtype=torch.float64)[:, None]
    torch.testing.assert_close(mu.grad, g * mu.detach())
    torch.testing.assert_close(logvar.grad, 0.5 * g * (torch.exp(logvar.detach()) - 1))
    z, kl = torch.ops.fastgen.reparameterize(mu, logvar, S(3, 1))
    (grad_mu,) = torch.autograd.grad(z.sum() + kl.sum(), mu, create_graph=True)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        grad_mu.sum().backward()


def test_nan_in_any_row_is_refused_naming_the_argument():
    mu, logvar = tensors((300, 64), torch.float32, grad=False)
    for row in (0, 150, 299):
        bad = mu.clone()
        bad[row, 3] = float("inf")
        with pytest.raises(ValueError, match="^mu contains NaN or infinity"):
            torch.ops.fastgen.reparameterize(bad, logvar, S(0, 0))


# ---- the CUDA kernels' registration and checks (their results: the gpu cases below) ----
def test_both_ops_have_cpu_and_cuda_kernels():
    for op in ("fastgen::reparameterize", "fastgen::reparameterize_backward"):
        for key in ("CPU", "CUDA", "Meta", "Autograd"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(op, key), (op, key)


def test_fake_kernel_takes_any_device_and_refuses_a_mix():
    from fastgen.torch import reparam

    meta = torch.empty(3, 4, device="meta")
    z, kl = torch.ops.fastgen.reparameterize(meta, meta, S(0, 0))
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
        reparam._reparameterize_cuda(mu, logvar, S(0, 0))
    with pytest.raises(TypeError, match=message):
        reparam._reparameterize_backward_cuda(torch.ones_like(mu), None, mu, logvar, S(0, 0))
    with pytest.raises(ValueError, match="logvar is on meta but mu is on cpu"):
        reparam._reparameterize_cuda(mu, logvar.to("meta"), S(0, 0))
    with pytest.raises(TypeError, match=r"stream must be an int64 tensor of shape \(2,\)"):
        reparam._reparameterize_cuda(mu, logvar, 2**64)
    with pytest.raises(TypeError, match=r"stream must be an int64 tensor of shape \(2,\)"):
        torch.ops.fastgen.reparameterize(mu, logvar, torch.zeros(3, dtype=torch.int64))


# ==== on a GPU (CuPy arrays and torch CUDA tensors against the CPU) =============================


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1, 1), (200, 33), (4096, 64)])
def test_torch_reparameterize_on_cuda_matches_the_cpu_op(torch_cuda, dtype, shape):
    torch = torch_cuda
    from fastgen.torch.reparam import reparameterize

    dt = getattr(torch, dtype)
    mu, lv = (torch.tensor(a) for a in reparam_inputs(shape, getattr(np, dtype), seed=shape[1]))
    grads = (torch.randn(shape, dtype=dt), torch.randn(shape[0], dtype=dt))
    results = {}
    for device in ("cpu", "cuda"):
        m = mu.to(device).requires_grad_()
        v = lv.to(device).requires_grad_()
        gen = fastgen.Generator(11, 2**40)
        z, kl = reparameterize(m, v, gen)
        assert gen.offset == 2**40 + 1 and z.device.type == device and kl.device.type == device
        assert z.dtype == dt and kl.dtype == dt and z.is_contiguous()
        torch.autograd.backward((z, kl), tuple(g.to(device) for g in grads))
        results[device] = [t.detach().cpu() for t in (z, kl, m.grad, v.grad)]
    (zc, klc, gmc, gvc), (zg, klg, gmg, gvg) = results["cpu"], results["cuda"]
    assert torch.equal(zg, zc) and torch.equal(gmg, gmc) and torch.equal(gvg, gvc)
    tol = KL_GPU_RTOL[getattr(np, dtype)] * kl_scale(mu.numpy(), lv.numpy())
    assert np.all(np.abs(klg.numpy() - klc.numpy()) <= tol)


@pytest.mark.gpu
def test_torch_reparameterize_on_cuda_each_output_alone_and_first_derivatives_only(torch_cuda):
    torch = torch_cuda
    mu, lv = (torch.tensor(a, device="cuda", requires_grad=True) for a in reparam_inputs((5, 6), np.float64, 4))
    z, kl = torch.ops.fastgen.reparameterize(mu, lv, S(3, 1))
    (kl * torch.arange(5.0, device="cuda", dtype=torch.float64)).sum().backward()  # z unused
    g = torch.arange(5.0, device="cuda", dtype=torch.float64)[:, None]
    torch.testing.assert_close(mu.grad, g * mu.detach())
    torch.testing.assert_close(lv.grad, 0.5 * g * (torch.exp(lv.detach()) - 1))
    mu.grad = lv.grad = None
    z, kl = torch.ops.fastgen.reparameterize(mu, lv, S(3, 1))
    z.sum().backward()  # kl unused
    m_cpu, v_cpu = mu.detach().cpu().requires_grad_(), lv.detach().cpu().requires_grad_()
    torch.ops.fastgen.reparameterize(m_cpu, v_cpu, S(3, 1))[0].sum().backward()
    assert torch.equal(lv.grad.cpu(), v_cpu.grad) and torch.equal(mu.grad.cpu(), m_cpu.grad)
    z, kl = torch.ops.fastgen.reparameterize(mu, lv, S(3, 1))
    (grad_mu,) = torch.autograd.grad(z.sum() + kl.sum(), mu, create_graph=True)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        grad_mu.sum().backward()


@pytest.mark.gpu
def test_torch_reparameterize_on_cuda_opcheck_gradcheck_compile(torch_cuda):
    torch = torch_cuda
    for shape in ((3, 5), (1, 1), (0, 4), (4, 0)):
        mu, lv = (torch.randn(shape, dtype=torch.float64, device="cuda", requires_grad=True) for _ in range(2))
        torch.library.opcheck(torch.ops.fastgen.reparameterize.default, (mu, lv, S(11, 2)))
    mu, lv = (torch.randn(4, 6, dtype=torch.float64, device="cuda") for _ in range(2))
    g = torch.randn(4, 6, dtype=torch.float64, device="cuda")
    gk = torch.randn(4, dtype=torch.float64, device="cuda")
    for args in ((g, gk), (g, None), (None, gk)):
        torch.library.opcheck(torch.ops.fastgen.reparameterize_backward.default, (*args, mu, lv, S(1, 2)))
    mu, lv = (torch.randn(5, 4, dtype=torch.float64, device="cuda", requires_grad=True) for _ in range(2))
    assert torch.autograd.gradcheck(lambda a, b: torch.ops.fastgen.reparameterize(a, b, S(3, 7)), (mu, lv))

    def elbo_terms(m, v):
        z, kl = torch.ops.fastgen.reparameterize(m, v, S(5, 1))
        return (z ** 2).sum() + kl.sum()

    compiled = torch.compile(elbo_terms, fullgraph=True)
    m1, v1 = (torch.randn(3, 4, device="cuda", requires_grad=True) for _ in range(2))
    out = compiled(m1, v1)
    out.backward()
    m2, v2 = m1.detach().clone().requires_grad_(), v1.detach().clone().requires_grad_()
    expected = elbo_terms(m2, v2)
    expected.backward()
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(m1.grad, m2.grad)
    torch.testing.assert_close(v1.grad, v2.grad)


@pytest.mark.gpu
def test_torch_reparameterize_on_cuda_refuses_what_the_cpu_refuses(torch_cuda):
    torch = torch_cuda
    mu, lv = (torch.randn(300, 64, device="cuda") for _ in range(2))
    for row in (0, 150, 299):
        for name in ("mu", "logvar"):
            bad_mu, bad_lv = mu.clone(), lv.clone()
            (bad_mu if name == "mu" else bad_lv)[row, 3] = float("nan")
            with pytest.raises(ValueError, match=f"^{name} contains NaN or infinity$"):
                torch.ops.fastgen.reparameterize(bad_mu, bad_lv, S(0, 0))
            with pytest.raises(ValueError, match=f"^{name} contains NaN or infinity$"):  # and the CPU's
                torch.ops.fastgen.reparameterize(bad_mu.cpu(), bad_lv.cpu(), S(0, 0))
    with pytest.raises(ValueError, match="logvar is on cpu but mu is on cuda:0"):
        torch.ops.fastgen.reparameterize(mu, lv.cpu(), S(0, 0))
    with pytest.raises(ValueError, match="logvar is on cuda:0 but mu is on cpu"):
        torch.ops.fastgen.reparameterize(mu.cpu(), lv, S(0, 0))
    with pytest.raises(ValueError, match="grad_z is on cpu but mu is on cuda:0"):
        torch.ops.fastgen.reparameterize_backward(torch.zeros(300, 64), None, mu, lv, S(0, 0))
    with pytest.raises(ValueError, match="same shape"):
        torch.ops.fastgen.reparameterize(mu, lv[:, :2], S(0, 0))
    with pytest.raises(ValueError, match="mu must be 2-D"):
        torch.ops.fastgen.reparameterize(mu[0], lv[0], S(0, 0))
    with pytest.raises(TypeError, match="float32 or float64"):
        torch.ops.fastgen.reparameterize(mu.to(torch.int32), lv.to(torch.int32), S(0, 0))
    with pytest.raises(ValueError, match="grad_kl must have 300 elements"):
        torch.ops.fastgen.reparameterize_backward(None, torch.zeros(3, device="cuda"), mu, lv, S(0, 0))


@pytest.mark.gpu
def test_torch_reparameterize_runs_on_the_callers_stream(torch_cuda):
    torch = torch_cuda
    mu, lv = (torch.randn(1024, 64, device="cuda") for _ in range(2))
    want = torch.ops.fastgen.reparameterize(mu, lv, S(1, 2))
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        m = mu
        for _ in range(50):  # written on the side stream: the op must wait for it there
            m = m * 1
        got = torch.ops.fastgen.reparameterize(m, lv, S(1, 2))
    torch.cuda.current_stream().wait_stream(side)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.gpu
def test_torch_cuda_tensors_without_cupy_raise_the_documented_error(torch_cuda):
    code = NO_CUPY + (
        "import torch, pytest\n"
        "import fastgen.torch.reparam\n"
        "mu = torch.zeros(2, 3, device='cuda')\n"
        "with pytest.raises(TypeError, match=\"mu lives on a CUDA device, but fastgen's CUDA backend is "
        "unavailable: CuPy is not importable\"):\n"
        "    torch.ops.fastgen.reparameterize(mu, mu, S(0, 0))\n"
        "print('ok')\n")
    assert run_python(code).strip() == "ok"


def test_first_row_gives_a_share_of_a_batch_the_batchs_eps_and_gradients():
    mu, logvar = tensors((9, 5), seed=7)
    z, kl = torch.ops.fastgen.reparameterize(mu, logvar, S(4, 3))
    (z.sum() + kl.sum()).backward()
    full_mu, full_lv = mu.grad.clone(), logvar.grad.clone()
    for a, b in ((0, 4), (4, 9)):
        m, v = mu.detach()[a:b].clone().requires_grad_(), logvar.detach()[a:b].clone().requires_grad_()
        pz, pkl = torch.ops.fastgen.reparameterize(m, v, S(4, 3), a)
        assert torch.equal(pz, z.detach()[a:b]) and torch.equal(pkl, kl.detach()[a:b])
        (pz.sum() + pkl.sum()).backward()
        assert torch.equal(m.grad, full_mu[a:b]) and torch.equal(v.grad, full_lv[a:b])
    torch.library.opcheck(torch.ops.fastgen.reparameterize.default, (mu, logvar, S(4, 3), 5))
    with pytest.raises(ValueError, match="first_row must be an integer >= 0"):
        torch.ops.fastgen.reparameterize(mu, logvar, S(4, 3), -1)
