"""bfloat16 / float16 through fastgen's torch ops and models: explicit reduced-precision tensors
compute in float32 and come back in their dtype; under torch.autocast the ops run in float32.
Each is compared with the float32 computation on the same values, with per-dtype tolerances."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import fastgen.torch as ft  # noqa: E402
from fastgen.torch.nn import VAE, ConvVAE  # noqa: E402
from fastgen.torch.random import stream_tensor  # noqa: E402

REDUCED = [torch.bfloat16, torch.float16]
# Relative tolerance of a result computed in float32 from reduced-precision inputs and rounded
# to that dtype once: a few units in the last place of the output dtype.
RTOL = {torch.bfloat16: 2e-2, torch.float16: 2e-3}


def _rand(*shape, seed=0, low=-1.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g) * (high - low) + low


def _ops():
    """name -> (function of float tensors, inputs in float32)."""
    x01 = _rand(6, 10, seed=1, low=0.0, high=1.0)
    return {
        "reparameterize": (lambda mu, lv: torch.ops.fastgen.reparameterize(mu, lv, stream_tensor(3, 1)),
                           [_rand(5, 4, seed=2), _rand(5, 4, seed=3)]),
        "bernoulli_log_likelihood": (ft.bernoulli_log_likelihood, [x01, _rand(6, 10, seed=4) * 3]),
        "gaussian_log_likelihood": (ft.gaussian_log_likelihood, [x01, _rand(6, 10, seed=5), _rand(10, seed=6)]),
        "conv_transpose2d": (lambda x, w, b: ft.conv_transpose2d(x, w, b, 2, 1, 0, "relu"),
                             [_rand(2, 3, 5, 5, seed=7), _rand(3, 4, 4, 4, seed=8), _rand(4, seed=9)]),
        "max_pool2d": (lambda x: ft.max_pool2d(x, 2)[0], [_rand(2, 3, 6, 6, seed=10)]),
        "sparse_input_linear": (ft.sparse_input_linear, [torch.relu(_rand(6, 12, seed=11)), _rand(12, 5, seed=12),
                                                         _rand(5, seed=13)]),
    }


def _outputs(result):
    return [t for t in (result if isinstance(result, (tuple, list)) else (result,)) if t.is_floating_point()]


@pytest.mark.parametrize("dtype", REDUCED, ids=str)
@pytest.mark.parametrize("name", list(_ops()))
def test_reduced_inputs_compute_in_float32_and_come_back_in_their_dtype(name, dtype):
    fn, inputs = _ops()[name]
    reduced = [t.to(dtype).requires_grad_() for t in inputs]
    exact = [t.to(dtype).float().requires_grad_() for t in inputs]  # the same values, in float32
    got, want = _outputs(fn(*reduced)), _outputs(fn(*exact))
    for g, w in zip(got, want):
        assert g.dtype == dtype
        torch.testing.assert_close(g.float(), w.detach().to(dtype).float(), rtol=RTOL[dtype], atol=RTOL[dtype])
    sum(g.float().sum() for g in got).backward()
    sum(w.sum() for w in want).backward()
    for r, e in zip(reduced, exact):
        assert r.grad.dtype == dtype
        torch.testing.assert_close(r.grad.float(), e.grad, rtol=4 * RTOL[dtype], atol=4 * RTOL[dtype])


@pytest.mark.parametrize("dtype", REDUCED, ids=str)
def test_sample_categorical_draws_what_float32_draws_from_the_same_values(dtype):
    logits = (_rand(40, 7, seed=14) * 4).to(dtype)
    got = ft.sample_categorical(logits, generator=5)
    assert torch.equal(got, ft.sample_categorical(logits.float(), generator=5))


def test_mixed_dtypes_are_refused_naming_each_tensors_dtype():
    mu = _rand(3, 2).to(torch.bfloat16)
    with pytest.raises(TypeError, match=r"must have one dtype .*: got mu torch.bfloat16, logvar torch.float32"):
        torch.ops.fastgen.reparameterize(mu, _rand(3, 2), stream_tensor(0, 0))
    x = _rand(4, 6).relu().to(torch.float16)
    with pytest.raises(TypeError, match=r"got x torch.float16, weight_t torch.float32"):
        ft.sparse_input_linear(x, _rand(6, 3), None)


@pytest.mark.parametrize("make, shape", [(lambda: VAE(30, hidden=(16,), n_latent=4, seed=0), (12, 30)),
                                         (lambda: ConvVAE(1, 8, channels=(4,), n_latent=3, seed=0), (6, 1, 8, 8))],
                         ids=["VAE", "ConvVAE"])
def test_autocast_bfloat16_on_the_cpu_follows_float32(make, shape):
    x = _rand(*shape, seed=15, low=0.0, high=1.0)
    torch.manual_seed(0)
    model = make()
    reference = make()
    reference.load_state_dict(model.state_dict())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        loss = -out.elbo.mean()
    assert out.kl.dtype == torch.float32 and out.log_likelihood.dtype == torch.float32  # reductions in float32
    loss.backward()
    want = -reference(x).elbo.mean()
    want.backward()
    # bfloat16 layers (8 bits of mantissa) feed the float32 ops: the loss within 2 %, gradients within 10 %
    torch.testing.assert_close(loss, want, rtol=2e-2, atol=0.0)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        scale = q.grad.abs().max()
        assert (p.grad - q.grad).abs().max() <= 0.1 * scale + 1e-6, name


def test_a_bfloat16_model_trains_like_its_float32_twin():
    x = _rand(32, 30, seed=16, low=0.0, high=1.0)
    curves = {}
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        model = VAE(30, hidden=(16,), n_latent=4, seed=0).to(dtype)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        curves[dtype] = []
        for _ in range(30):
            opt.zero_grad()
            loss = model.loss(x.to(dtype))
            assert loss.dtype == dtype and model.stream.dtype == torch.int64  # .to() leaves the stream alone
            loss.backward()
            opt.step()
            curves[dtype].append(loss.item())
    full, half = torch.tensor(curves[torch.float32]), torch.tensor(curves[torch.bfloat16])
    assert half[-1] < half[0]
    torch.testing.assert_close(half, full, rtol=2e-2, atol=0.0)


def test_a_numpy_array_is_refused_by_name_before_the_dispatcher():
    import numpy as np

    for call, name in ((lambda a: ft.bernoulli_log_likelihood(a, torch.zeros(2, 3)), "x"),
                       (lambda a: ft.reparameterize(torch.zeros(2, 3), a), "logvar"),
                       (lambda a: ft.conv_transpose2d(a, torch.zeros(3, 2, 2, 2)), "x"),
                       (lambda a: ft.max_pool2d(a, 2), "x"),
                       (lambda a: ft.sample_categorical(a), "logits"),
                       (lambda a: ft.sparse_input_linear(torch.zeros(2, 3), a), "weight_t")):
        with pytest.raises(TypeError, match=rf"^{name} must be a torch.Tensor, got numpy.ndarray \(fastgen.ops takes"):
            call(np.zeros((2, 3)))
