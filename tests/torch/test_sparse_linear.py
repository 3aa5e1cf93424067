"""fastgen's sparse-input linear layer (``torch.ops.fastgen.sparse_input_linear``, the NumPy entry
``fastgen.ops.sparse_input_linear`` and ``fastgen.torch.layers.SparseInputLinear``) against a plain
float64 NumPy reference: values and gradients over densities and widths, the kernel forced and
through the density dispatcher, edge cases (empty batch, all-zero rows, non-contiguous x, no bias),
opcheck, gradcheck, torch.compile, thread-count independence, bad input, checkpoints."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastgen.ops.sparse_linear as ops_sparse_linear  # noqa: E402
from fastgen.ops import sparse_input_linear as sparse_input_linear_numpy  # noqa: E402
from fastgen.torch.layers import SparseInputLinear  # noqa: E402
from fastgen.torch.sparse_linear import sparse_input_linear  # noqa: E402
from reference.sparse_linear import sparse_input_linear as reference, sparse_input_linear_grads as reference_grads  # noqa: E402

TOL = {torch.float32: dict(rtol=2e-5, atol=2e-5), torch.float64: dict(rtol=1e-12, atol=1e-12)}


def sparse_x(rows, cols, density, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(rows, cols, generator=g, dtype=dtype) + 0.05  # never an accidental zero
    return values * (torch.rand(rows, cols, generator=g, dtype=dtype) < density)


def params(cols, out, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(cols, out, generator=g, dtype=dtype) * 0.1, torch.randn(out, generator=g, dtype=dtype)


@pytest.fixture(autouse=True)
def own_torch_rng():
    """These tests seed torch's global generator (module initialisation): give it back as it was,
    so that tests running later draw what they drew before this file existed."""
    with torch.random.fork_rng():
        yield


@pytest.fixture
def kernel_always(monkeypatch):
    """Send every density to the compiled kernel (the dispatcher's crossover would otherwise hand
    dense inputs to torch's GEMM, which these tests are not about)."""
    monkeypatch.setattr(ops_sparse_linear, "FORWARD_MAX_DENSITY", 1.0)
    monkeypatch.setattr(ops_sparse_linear, "BACKWARD_MAX_DENSITY", 1.0)


def check_against_reference(x, w, b, dtype, x_grad=True):
    x = x.clone().requires_grad_(x_grad)
    w, b = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
    y = sparse_input_linear(x, w, b)
    assert y.dtype == dtype and y.shape == (x.shape[0], w.shape[1])
    np.testing.assert_allclose(y.detach().numpy(), reference(x.detach(), w.detach(), b.detach()), **TOL[dtype])
    grad_y = torch.randn(y.shape, generator=torch.Generator().manual_seed(5), dtype=dtype)
    y.backward(grad_y)
    want_x, want_w, want_b = reference_grads(x.detach(), w.detach(), grad_y)
    np.testing.assert_allclose(w.grad.numpy(), want_w, **TOL[dtype])
    np.testing.assert_allclose(b.grad.numpy(), want_b, **TOL[dtype])
    if x_grad:
        np.testing.assert_allclose(x.grad.numpy(), want_x, **TOL[dtype])
    else:
        assert x.grad is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.18, 0.5, 1.0])
@pytest.mark.parametrize("out", [1, 129, 4096 + 32])
def test_kernel_matches_reference(kernel_always, density, out, dtype):
    # widths: one column (the scalar tail only), 129 (vector tiles + a 1-column tail), 4128 (many tiles)
    x = sparse_x(37, 70 if out > 1000 else 300, density, dtype)
    w, b = params(x.shape[1], out, dtype)
    check_against_reference(x, w, b, dtype, x_grad=out != 129)


@pytest.mark.parametrize("density", [0.0, 0.18, 1.0])
def test_dispatcher_matches_reference_on_either_side_of_the_crossover(density):
    x = sparse_x(64, 200, density, torch.float32)
    w, b = params(200, 50, torch.float32)
    check_against_reference(x, w, b, torch.float32, x_grad=False)


def test_dispatcher_sends_dense_input_to_the_gemm_and_sparse_input_to_the_kernel():
    w, b = params(200, 50, torch.float64)
    sparse = sparse_x(64, 200, 0.1, torch.float64).numpy()
    dense = sparse_x(64, 200, 1.0, torch.float64).numpy()
    assert ops_sparse_linear.forward_numpy(sparse, w.numpy(), b.numpy()) is not None
    assert ops_sparse_linear.forward_numpy(dense, w.numpy(), b.numpy()) is None
    g = np.ones((64, 50))
    assert ops_sparse_linear.backward_numpy(sparse, g, True, True)[0] is not None
    grad_w, grad_b = ops_sparse_linear.backward_numpy(dense, g, True, True)
    assert grad_w is None and grad_b is not None  # the bias gradient is always the kernel's
    np.testing.assert_allclose(grad_b, g.sum(0), rtol=1e-12)


def test_mnist_like_images_with_empty_rows_and_columns(kernel_always):
    # a block of columns nobody uses (the images' border) and rows that are all zero
    x = sparse_x(130, 784, 0.3, torch.float32)
    x[:, :100] = 0
    x[[0, 7, 129]] = 0
    w, b = params(784, 400, torch.float32)
    y = sparse_input_linear(x, w, b)
    for r in (0, 7, 129):
        assert torch.equal(y[r], b)  # nothing but the bias, exactly
    check_against_reference(x, w, b, torch.float32, x_grad=False)


def test_empty_batch(kernel_always):
    x = torch.zeros(0, 30)
    w, b = params(30, 9, torch.float32)
    w.requires_grad_(True)
    b.requires_grad_(True)
    y = sparse_input_linear(x, w, b)
    assert y.shape == (0, 9)
    y.sum().backward()
    assert torch.equal(w.grad, torch.zeros(30, 9)) and torch.equal(b.grad, torch.zeros(9))


def test_non_contiguous_x_and_no_bias(kernel_always):
    base = sparse_x(40, 120, 0.2, torch.float64)
    x = base[:, ::2]  # strided columns
    assert not x.is_contiguous()
    w, _ = params(60, 17, torch.float64)
    np.testing.assert_allclose(sparse_input_linear(x, w, None).numpy(), reference(x, w), **TOL[torch.float64])
    xt = sparse_x(60, 40, 0.2, torch.float64).t()  # a transposed view
    np.testing.assert_allclose(sparse_input_linear(xt, w).numpy(), reference(xt, w), **TOL[torch.float64])


def test_inputs_are_never_modified(kernel_always):
    x = sparse_x(33, 50, 0.2, torch.float32).requires_grad_(True)
    w, b = params(50, 20, torch.float32)
    w.requires_grad_(True)
    b.requires_grad_(True)
    copies = [t.detach().clone() for t in (x, w, b)]
    sparse_input_linear(x, w, b).square().sum().backward()
    for original, copy in zip((x, w, b), copies):
        assert torch.equal(original.detach(), copy)
    xn, wn, bn = (c.numpy().copy() for c in copies)
    sparse_input_linear_numpy(xn, wn, bn)
    np.testing.assert_array_equal(xn, copies[0].numpy())
    np.testing.assert_array_equal(wn, copies[1].numpy())


@pytest.mark.parametrize("density", [0.15, 1.0])
def test_numpy_entry_matches_reference(density):
    x = sparse_x(20, 64, density, torch.float64).numpy()
    w, b = (t.numpy() for t in params(64, 33, torch.float64))
    y = sparse_input_linear_numpy(x, w, b)
    assert isinstance(y, np.ndarray) and y.dtype == np.float64
    np.testing.assert_allclose(y, reference(x, w, b), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sparse_input_linear_numpy(x, w), reference(x, w), rtol=1e-12, atol=1e-12)
    # torch tensors in, torch tensor out
    yt = sparse_input_linear_numpy(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b))
    assert isinstance(yt, torch.Tensor)
    np.testing.assert_allclose(yt.numpy(), y, rtol=0, atol=0)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("density", [0.2, 1.0])
def test_opcheck(with_bias, density):
    x = sparse_x(6, 11, density, torch.float64)
    w, b = params(11, 5, torch.float64)
    w.requires_grad_(True)
    b.requires_grad_(True)
    torch.library.opcheck(torch.ops.fastgen.sparse_input_linear.default, (x, w, b if with_bias else None))
    torch.library.opcheck(torch.ops.fastgen.sparse_input_linear.default,
                          (x.clone().requires_grad_(True), w, b if with_bias else None))


def test_gradcheck_float64(kernel_always):
    x = sparse_x(5, 9, 0.3, torch.float64).requires_grad_(True)
    w, b = params(9, 4, torch.float64)
    w.requires_grad_(True)
    b.requires_grad_(True)
    # finite differences move x's zeros off zero: the kernel then sees them as nonzeros, so the
    # check covers both the lists and the values
    assert torch.autograd.gradcheck(lambda x, w, b: sparse_input_linear(x, w, b), (x, w, b), eps=1e-6, atol=1e-8)


def test_torch_compile_fullgraph():
    torch.manual_seed(0)
    layer = SparseInputLinear(30, 12)
    x = sparse_x(8, 30, 0.2, torch.float32)
    compiled = torch.compile(lambda x: torch.relu(layer(x)).sum(), fullgraph=True, backend="aot_eager")
    loss = compiled(x)
    loss.backward()
    grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    ref = torch.relu(layer(x)).sum()
    ref.backward()
    torch.testing.assert_close(loss, ref)
    for got, p in zip(grads, layer.parameters()):
        torch.testing.assert_close(got, p.grad)


_THREAD_SCRIPT = """
import sys, numpy as np
import fastgen.ops.sparse_linear as sl
from fastgen._native import cpu as _cpu
rng = np.random.default_rng(0)
outs = []
for rows, cols, out, density, dtype in ((128, 784, 400, 0.18, np.float32), (77, 300, 129, 0.5, np.float64)):
    x = ((rng.random((rows, cols)) < density) * rng.random((rows, cols))).astype(dtype)
    w = rng.normal(size=(cols, out)).astype(dtype)
    b = rng.normal(size=out).astype(dtype)
    g = rng.normal(size=(rows, out)).astype(dtype)
    y = sl.forward_numpy(x, w, b, 1.0)
    gw, gb = sl.backward_numpy(x, g, True, True, 1.0)
    outs += [y.view(np.uint8).ravel(), gw.view(np.uint8).ravel(), gb.view(np.uint8).ravel()]
np.save(sys.argv[1], np.concatenate(outs))
np.save(sys.argv[1] + ".threads.npy", np.array([_cpu.C.max_threads()]))
"""


def test_bitwise_identical_for_1_and_2_threads(tmp_path):
    results = []
    for threads in ("1", "2"):
        path = tmp_path / f"t{threads}.npy"
        subprocess.run([sys.executable, "-c", _THREAD_SCRIPT, str(path)], check=True,
                       env=dict(os.environ, OMP_NUM_THREADS=threads), timeout=300)
        assert np.load(str(path) + ".threads.npy")[0] == int(threads)
        results.append(np.load(path))
    np.testing.assert_array_equal(results[0], results[1])


# ---- bad input: each case names its argument -------------------------------------------------------
def _good():
    x = sparse_x(4, 6, 0.5, torch.float32)
    w, b = params(6, 3, torch.float32)
    return x, w, b


BAD = {
    "x 1-D": (lambda x, w, b: (x[0], w, b), ValueError, r"x must be 2-D"),
    "x not a tensor": (lambda x, w, b: (x.numpy(), w, b), TypeError, r"x must be a torch.Tensor"),
    "x integer": (lambda x, w, b: (x.to(torch.int64), w, b), TypeError, r"x must be float32 or float64"),
    "weight_t 3-D": (lambda x, w, b: (x, w[None], b), ValueError, r"weight_t must be 2-D"),
    "weight_t rows": (lambda x, w, b: (x, w[:5], b), ValueError, r"weight_t must have x.shape\[1\] = 6 rows"),
    "weight_t dtype": (lambda x, w, b: (x, w.double(), b), TypeError, r"weight_t must have x's dtype"),
    "bias shape": (lambda x, w, b: (x, w, b[:2]), ValueError, r"bias must have shape \(3,\)"),
    "bias 2-D": (lambda x, w, b: (x, w, b[None]), ValueError, r"bias must be 1-D"),
    "bias dtype": (lambda x, w, b: (x, w, b.double()), TypeError, r"bias must have x's dtype"),
    "x NaN": (lambda x, w, b: (x.index_fill(1, torch.tensor([2]), float("nan")), w, b), ValueError,
              r"x contains NaN or infinity"),
    "x inf": (lambda x, w, b: (x.index_fill(1, torch.tensor([5]), float("inf")), w, b), ValueError,
              r"x contains NaN or infinity"),
    "weight_t inf": (lambda x, w, b: (x, w.index_fill(0, torch.tensor([1]), float("-inf")), b), ValueError,
                     r"weight_t contains NaN or infinity"),
    "bias NaN": (lambda x, w, b: (x, w, b.index_fill(0, torch.tensor([0]), float("nan"))), ValueError,
                 r"bias contains NaN or infinity"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_names_the_argument(case):
    make, error, message = BAD[case]
    with pytest.raises(error, match=message):
        sparse_input_linear(*make(*_good()))


def test_dense_x_with_nan_is_refused_too():
    # above the crossover the GEMM runs, but x is checked by the same count pass first
    x, w, b = _good()
    x = torch.ones_like(x)
    x[1, 1] = float("nan")
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        sparse_input_linear(x, w, b)


@pytest.mark.parametrize("case", ["shapes", "bias", "nan"])
def test_numpy_entry_bad_input(case):
    x, w, b = (t.numpy() for t in _good())
    if case == "shapes":
        with pytest.raises(ValueError, match=r"weight_t must have x.shape\[1\] = 6 rows"):
            sparse_input_linear_numpy(x, w[:4], b)
    elif case == "bias":
        with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
            sparse_input_linear_numpy(x, w, b[:1])
    else:
        x = x.copy()
        x[0, 0] = np.nan
        with pytest.raises(ValueError, match="x contains NaN or infinity"):
            sparse_input_linear_numpy(x, w, b)


# ---- the module and checkpoints ---------------------------------------------------------------------
def test_module_initialises_like_nn_linear_and_loads_its_state_dict():
    torch.manual_seed(3)
    linear = torch.nn.Linear(20, 7)
    torch.manual_seed(3)
    layer = SparseInputLinear(20, 7)
    assert torch.equal(layer.weight_t, linear.weight.t()) and torch.equal(layer.bias, linear.bias)
    other = SparseInputLinear(20, 7)
    other.load_state_dict(linear.state_dict())
    assert torch.equal(other.weight_t, linear.weight.t())
    assert set(layer.state_dict()) == {"weight_t", "bias"}
    x = sparse_x(5, 20, 0.3, torch.float32)
    torch.testing.assert_close(layer(x), linear(x), **TOL[torch.float32])
    assert SparseInputLinear(20, 7, bias=False).bias is None


def test_vae_checkpoint_from_before_the_sparse_layer_loads(tmp_path):
    from fastgen.torch.training import load_checkpoint, save_checkpoint
    from fastgen.torch.optim import adam
    from fastgen.torch.vae import VAE

    model = VAE(12, (8,), 3, seed=1)
    optimizer = adam(model.parameters(), lr=1e-3)
    model.loss(torch.rand(5, 12)).backward()
    optimizer.step()
    path = save_checkpoint(tmp_path / "new.pt", model, optimizer, epoch=1)
    # rewrite it as the earlier layout: encoder.0.weight (out, in), Adam's moments the same
    state = torch.load(path, weights_only=False)
    weight_t = state["model"].pop("encoder.0.weight_t")
    state["model"]["encoder.0.weight"] = weight_t.t().contiguous()
    index = list(dict(model.named_parameters())).index("encoder.0.weight_t")
    moments = state["optimizer"]["state"][index]
    for key in ("exp_avg", "exp_avg_sq"):
        moments[key] = moments[key].t().contiguous()
    torch.save(state, tmp_path / "old.pt")
    loaded, loaded_optimizer, epoch, _ = load_checkpoint(tmp_path / "old.pt")
    assert epoch == 1
    assert torch.equal(loaded.encoder[0].weight_t, model.encoder[0].weight_t)
    new_state = loaded_optimizer.state[loaded.encoder[0].weight_t]
    old_state = optimizer.state[model.encoder[0].weight_t]
    for key in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(new_state[key], old_state[key])
    loaded.loss(torch.rand(5, 12)).backward()
    loaded_optimizer.step()  # moments and gradient shapes agree
