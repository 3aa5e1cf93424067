"""torch.ops.fastgen.bernoulli_log_likelihood / gaussian_log_likelihood: values against torch's
own expressions, gradients (gradcheck and against autograd of those expressions), opcheck,
torch.compile, bad input.

On a GPU (``gpu`` marker): the likelihood ops on CUDA tensors pass opcheck, gradcheck and compile,
run on the caller's stream and refuse a device mix."""
from __future__ import annotations

import math

import numpy as np

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from fastgen.torch.elbo import bernoulli_log_likelihood, gaussian_log_likelihood  # noqa: E402
from cuda_helpers import torch_cuda_or_skip  # noqa: E402

TOL = {torch.float32: dict(rtol=2e-5, atol=2e-4), torch.float64: dict(rtol=1e-12, atol=1e-10)}


def bernoulli_eager(x, logits):
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").reshape(x.shape[0], -1 if x.shape[0] else 0).sum(1)


def gaussian_eager(x, mean, logvar=None):
    v = torch.zeros_like(x) if logvar is None else logvar.expand_as(x)
    return (-0.5 * (math.log(2 * math.pi) + v + (x - mean) ** 2 * torch.exp(-v))).flatten(1).sum(1)


def data(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=g) < 0.3).to(dtype)
    logits = (torch.randn(shape, generator=g) * 4).to(dtype)
    return x, logits


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 1), (5, 129), (2, 4096 + 32), (4, 1, 6, 6), (0, 7)])
def test_bernoulli_values_and_gradient_match_eager(dtype, shape):
    x, logits = data(shape, dtype, sum(shape))
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    ours, ref = bernoulli_log_likelihood(x, a), bernoulli_eager(x, b)
    torch.testing.assert_close(ours, ref, **TOL[dtype])
    w = torch.randn(shape[0], generator=torch.Generator().manual_seed(1), dtype=dtype)
    (ours * w).sum().backward()
    (ref * w).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("logvar_kind", ["none", "element", "feature"])
def test_gaussian_values_and_gradients_match_eager(dtype, logvar_kind):
    g = torch.Generator().manual_seed(7)
    shape = (6, 3, 5)
    x, mean = torch.randn(shape, generator=g, dtype=dtype), torch.randn(shape, generator=g, dtype=dtype)
    logvar = {"none": None, "element": torch.randn(shape, generator=g, dtype=dtype),
              "feature": torch.randn(shape[1:], generator=g, dtype=dtype)}[logvar_kind]
    leaves = [t.clone().requires_grad_() for t in (x, mean) + ((logvar,) if logvar is not None else ())]
    copies = [t.detach().clone().requires_grad_() for t in leaves]
    ours, ref = gaussian_log_likelihood(*leaves), gaussian_eager(*copies)
    torch.testing.assert_close(ours, ref, **TOL[dtype])
    w = torch.randn(shape[0], generator=g, dtype=dtype)
    (ours * w).sum().backward()
    (ref * w).sum().backward()
    for mine, theirs in zip(leaves, copies):
        torch.testing.assert_close(mine.grad, theirs.grad, **TOL[dtype])


def test_gradcheck_float64():
    x, logits = data((3, 4), torch.float64, 2)
    logits.requires_grad_()
    grey = (x * 0.6 + 0.2).requires_grad_()
    assert torch.autograd.gradcheck(bernoulli_log_likelihood, (grey, logits))
    g = torch.Generator().manual_seed(3)
    xs = [torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    per_feature = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gaussian_log_likelihood, tuple(xs))
    assert torch.autograd.gradcheck(gaussian_log_likelihood, (xs[0], xs[1], per_feature))
    assert torch.autograd.gradcheck(lambda a, b: gaussian_log_likelihood(a, b), (xs[0], xs[1]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 1), (5, 129), (2, 4096 + 32), (4, 1, 6, 6), (0, 7)])
def test_forward_with_gradient_is_bitwise_the_two_op_path(dtype, shape):
    x, logits = data(shape, dtype, sum(shape) + 1)
    ll, factor = torch.ops.fastgen.bernoulli_log_likelihood_with_grad(x, logits)
    assert torch.equal(ll, torch.ops.fastgen.bernoulli_log_likelihood(x, logits))
    ones = torch.ones(shape[0], dtype=dtype)
    assert torch.equal(factor, torch.ops.fastgen.bernoulli_log_likelihood_backward(ones, x, logits))
    # the public function takes this path when the logits need a gradient; same gradient as the two-op path
    w = torch.randn(shape[0], generator=torch.Generator().manual_seed(2), dtype=dtype)
    a = logits.clone().requires_grad_()
    (bernoulli_log_likelihood(x, a) * w).sum().backward()
    assert torch.equal(a.grad, torch.ops.fastgen.bernoulli_log_likelihood_backward(w, x, logits))


def test_second_derivative_is_refused_on_the_forward_with_gradient_path():
    x, logits = data((3, 4), torch.float64, 9)
    logits.requires_grad_()
    (g,) = torch.autograd.grad(bernoulli_log_likelihood(x, logits).sum(), logits, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


def test_opcheck():
    for shape in ((3, 5), (1, 1), (0, 4), (2, 3, 4)):
        x, logits = data(shape, torch.float64, 5)
        torch.library.opcheck(torch.ops.fastgen.bernoulli_log_likelihood.default, (x, logits.requires_grad_()))
        mean = logits.detach().clone().requires_grad_()
        for logvar in (None, torch.zeros(shape[1:], dtype=torch.float64, requires_grad=True),
                       torch.zeros(shape, dtype=torch.float64, requires_grad=True)):
            torch.library.opcheck(torch.ops.fastgen.gaussian_log_likelihood.default, (x, mean, logvar))
    grad = torch.ones(3, dtype=torch.float64)
    x, logits = data((3, 5), torch.float64, 6)
    torch.library.opcheck(torch.ops.fastgen.bernoulli_log_likelihood_backward.default, (grad, x, logits))
    for shape in ((3, 5), (1, 1), (0, 4), (2, 3, 4)):
        xs, ls = data(shape, torch.float64, 7)
        torch.library.opcheck(torch.ops.fastgen.bernoulli_log_likelihood_with_grad.default,
                              (xs.requires_grad_(), ls.requires_grad_()))
    torch.library.opcheck(torch.ops.fastgen.gaussian_log_likelihood_backward.default, (grad, x, logits, None))


def test_runs_under_torch_compile_without_graph_breaks():
    def negative_elbo(x, logits, mean, logvar):
        return -(bernoulli_log_likelihood(x, logits) + gaussian_log_likelihood(x, mean, logvar)).mean()

    x, logits = data((4, 9), torch.float32, 8)
    mean, logvar = torch.randn(4, 9), torch.randn(9)
    leaves = [t.clone().requires_grad_() for t in (logits, mean, logvar)]
    copies = [t.clone().requires_grad_() for t in (logits, mean, logvar)]
    compiled = torch.compile(negative_elbo, fullgraph=True, backend="aot_eager")
    out = compiled(x, *leaves)
    out.backward()
    ref = negative_elbo(x, *copies)
    ref.backward()
    torch.testing.assert_close(out, ref)
    for a, b in zip(leaves, copies):
        torch.testing.assert_close(a.grad, b.grad)


def test_bad_input_names_the_argument():
    x, logits = data((2, 3), torch.float32, 0)
    with pytest.raises(ValueError, match="logits must have x's shape"):
        bernoulli_log_likelihood(x, logits[:, :2])
    with pytest.raises(ValueError, match="logits must have x's shape .* and dtype"):
        bernoulli_log_likelihood(x, logits.double())
    with pytest.raises(ValueError, match="x must be \\(batch, ...\\)"):
        bernoulli_log_likelihood(x[0], logits[0])
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        bernoulli_log_likelihood(x + 2, logits)
    with pytest.raises(TypeError, match="logits must be float32 or float64"):
        bernoulli_log_likelihood(x.int().float(), logits.int())
    bad = logits.clone()
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match="logits contains NaN or infinity"):
        bernoulli_log_likelihood(x, bad)
    with pytest.raises(ValueError, match="logvar must have x's shape"):
        gaussian_log_likelihood(x, logits, torch.zeros(2))
    with pytest.raises(ValueError, match="logvar must have x's dtype"):
        gaussian_log_likelihood(x, logits, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="mean contains NaN"):
        gaussian_log_likelihood(x, torch.full_like(x, float("nan")))


# ==== on a GPU (CuPy arrays and torch CUDA tensors against the CPU) =============================


@pytest.mark.gpu
def test_torch_likelihood_ops_on_cuda_opcheck_gradcheck_compile():
    torch = torch_cuda_or_skip()
    from fastgen.torch import elbo as telbo

    rng = np.random.default_rng(0)
    x = torch.tensor((rng.random((5, 2, 3)) < 0.5).astype(np.float64), device="cuda")
    logits = torch.tensor(rng.standard_normal((5, 2, 3)), device="cuda", requires_grad=True)
    mean = torch.tensor(rng.standard_normal((5, 2, 3)), device="cuda", requires_grad=True)
    lv_feat = torch.tensor(rng.uniform(-1, 1, (2, 3)), device="cuda", requires_grad=True)
    lv_elem = torch.tensor(rng.uniform(-1, 1, (5, 2, 3)), device="cuda", requires_grad=True)
    got = telbo.bernoulli_log_likelihood(x, logits)
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.detach().cpu().numpy(),
                               telbo.bernoulli_log_likelihood(x.cpu(), logits.detach().cpu()).numpy(), rtol=1e-13)
    torch.library.opcheck(torch.ops.fastgen.bernoulli_log_likelihood.default, (x, logits))
    torch.library.opcheck(torch.ops.fastgen.gaussian_log_likelihood.default, (x, mean, lv_feat))
    torch.library.opcheck(torch.ops.fastgen.gaussian_log_likelihood.default, (x, mean, None))
    assert torch.autograd.gradcheck(lambda l: telbo.bernoulli_log_likelihood(x, l), (logits,))
    for lv in (lv_feat, lv_elem):
        assert torch.autograd.gradcheck(lambda m, v: telbo.gaussian_log_likelihood(x, m, v), (mean, lv))
    compiled = torch.compile(lambda a, b, c: telbo.gaussian_log_likelihood(a, b, c).sum(), fullgraph=True)
    loss = compiled(x, mean, lv_feat)
    loss.backward()
    assert lv_feat.grad is not None and lv_feat.grad.device.type == "cuda"


@pytest.mark.gpu
def test_torch_cuda_ops_run_on_the_callers_stream():
    torch = torch_cuda_or_skip()
    from fastgen.torch import elbo as telbo

    x = torch.rand(256, 784, device="cuda").round()
    logits = torch.randn(256, 784, device="cuda")
    want = telbo.bernoulli_log_likelihood(x, logits)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        logits2 = logits * 1  # written on the side stream: the op must see it there
        got = telbo.bernoulli_log_likelihood(x, logits2)
    torch.cuda.current_stream().wait_stream(side)
    assert torch.equal(got, want)


@pytest.mark.gpu
def test_cuda_tensor_mixed_with_a_cpu_tensor_is_refused():
    torch = torch_cuda_or_skip()
    from fastgen.torch import elbo as telbo

    with pytest.raises(ValueError, match="logits is on cpu but x is on cuda"):
        telbo.bernoulli_log_likelihood(torch.zeros(2, 3, device="cuda"), torch.zeros(2, 3))
