"""fastgen.torch.vae: the ELBO against an eager computation with the same eps, gradients,
sampling reproducibility, reconstruction / interpolation / attribute arithmetic, training on
digits, torch.compile, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import fastgen  # noqa: E402
from fastgen.datasets import load_digits_binary  # noqa: E402
from fastgen.ops import reparameterize as reparameterize_numpy  # noqa: E402
from fastgen.torch.training import evaluate, fit  # noqa: E402
from fastgen.torch.vae import VAE, ConvVAE  # noqa: E402


def eps_of(seed, offset, shape, dtype=np.float64):
    """The standard normals the model's draw with (seed, offset) uses: z at mu 0, logvar 0."""
    zeros = np.zeros(shape, dtype)
    z, _ = reparameterize_numpy(zeros, zeros, generator=fastgen.Generator(seed, offset))
    return torch.from_numpy(z)


def eager_elbo(model, x, eps):
    h = model.encoder(x) if not isinstance(model, ConvVAE) else None
    if isinstance(model, ConvVAE):
        h = x
        for conv in model.down:
            h = F.relu(conv(h))
        h = h.flatten(1)
    mu, logvar = model.mu_head(h), model.logvar_head(h)
    z = mu + torch.exp(0.5 * logvar) * eps
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
    out = model.decode_output(z)
    if model.likelihood == "bernoulli":
        ll = -F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)
    else:
        v = model.decoder_logvar
        ll = (-0.5 * (math.log(2 * math.pi) + v + (x - out) ** 2 * torch.exp(-v))).flatten(1).sum(1)
    return ll - kl


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("conv", [False, True])
def test_elbo_and_gradients_equal_the_eager_computation_with_the_same_eps(likelihood, conv):
    torch.manual_seed(0)
    if conv:
        model = ConvVAE(1, 8, (3, 4), 5, likelihood, seed=11).double()
        x = torch.rand(6, 1, 8, 8, dtype=torch.float64)
    else:
        model = VAE(13, (9,), 5, likelihood, seed=11).double()
        x = torch.rand(6, 13, dtype=torch.float64)
    if likelihood == "gaussian":
        with torch.no_grad():
            model.decoder_logvar.normal_()
    twin = type(model)(**model.config(), seed=0).double()
    twin.load_state_dict(model.state_dict())
    offset = model.generator.offset
    out = model(x)
    assert model.generator.offset == offset + 1
    expected = eager_elbo(twin, x, eps_of(11, offset, (6, 5)))
    torch.testing.assert_close(out.elbo, expected, rtol=1e-10, atol=1e-10)
    (-out.elbo.mean()).backward()
    (-expected.mean()).backward()
    for (name, a), b in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-10, msg=name)


def test_sampling_is_reproducible_from_the_seed_and_decodes_standard_normals():
    model = VAE(10, (6,), 3, seed=5)
    a = model.sample(4, generator=fastgen.Generator(9))
    b = model.sample(4, generator=fastgen.Generator(9))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert a.shape == (4, 10) and ((a > 0) & (a < 1)).all()
    expected = torch.sigmoid(model.decoder(eps_of(9, 0, (4, 3), np.float32)))
    torch.testing.assert_close(a, expected)
    offset = model.generator.offset
    model.sample(2)
    assert model.generator.offset == offset + 1
    conv = ConvVAE(1, 8, (2, 3), 4, seed=1)
    assert conv.sample(3).shape == (3, 1, 8, 8)


def test_reconstruct_interpolate_and_attribute_shift_use_the_mean_code():
    torch.manual_seed(1)
    model = VAE(12, (8,), 4, seed=2)
    x = torch.rand(5, 12)
    mu = model.encode(x)[0]
    torch.testing.assert_close(model.reconstruct(x), torch.sigmoid(model.decoder(mu)))
    path = model.interpolate(x[0], x[1], steps=4)
    assert path.shape == (4, 12)
    torch.testing.assert_close(path[[0, -1]], model.reconstruct(x[:2]))
    middle = torch.sigmoid(model.decoder((mu[0] + mu[1]) / 2))
    torch.testing.assert_close(model.interpolate(x[0], x[1], steps=3)[1], middle)
    z = torch.randn(3, 4)
    target = torch.randn(4)
    torch.testing.assert_close(VAE.shift_towards(z, target, 0.25), 0.75 * z + 0.25 * target)
    shifted = model.attribute_shift(x[:2], x[2:], alphas=(0.0, 1.0))
    assert shifted.shape == (2, 2, 12)
    torch.testing.assert_close(shifted[0], model.reconstruct(x[:2]))
    target_code = model.encode(x[2:])[0].mean(0)
    torch.testing.assert_close(shifted[1], torch.sigmoid(model.decoder(target_code)).expand(2, 12))


def test_training_on_digits_raises_the_held_out_elbo():
    # thresholded: grey levels would put an entropy floor under every model's cross-entropy
    X = torch.from_numpy((load_digits_binary(dtype=np.float32) > 0.5).astype(np.float32))
    train, test = X[:1500], X[1500:]
    torch.manual_seed(0)
    model = VAE(64, (64,), 8, seed=0)
    before = evaluate(model, test)
    fit(model, train, epochs=15, batch_size=64, lr=3e-3, seed=0)
    after = evaluate(model, test)
    # the mean image's cross-entropy: what a model that ignores its input can reach
    mean_image = train.mean(0, keepdim=True).clamp(1e-4, 1 - 1e-4).expand_as(test)
    baseline = F.binary_cross_entropy(mean_image, test, reduction="sum").item() / len(test)
    assert after < 0.9 * baseline and after < 0.5 * before


def test_gaussian_decoder_learns_its_variance():
    torch.manual_seed(2)
    x = 0.1 * torch.randn(400, 6)  # small spread: the learned log-variance must drop below 0
    model = VAE(6, (8,), 2, likelihood="gaussian", seed=3)
    fit(model, x, epochs=15, batch_size=50, lr=1e-2, seed=0)
    # from 0 towards log(0.01) = -4.6; Adam moves it by about lr a step (120 steps here)
    assert model.decoder_logvar.max().item() < -1.0


def test_runs_under_torch_compile_without_graph_breaks():
    torch.manual_seed(4)
    model = VAE(7, (5,), 3, seed=8)
    twin = VAE(7, (5,), 3, seed=8)
    twin.load_state_dict(model.state_dict())
    x = torch.rand(4, 7)
    compiled = torch.compile(lambda m, x: m.loss(x, fastgen.Generator(3)), fullgraph=True, backend="aot_eager")
    loss = compiled(model, x)
    loss.backward()
    ref = twin.loss(x, fastgen.Generator(3))
    ref.backward()
    torch.testing.assert_close(loss, ref)
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a.grad, b.grad)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="n_latent must be an integer >= 1"):
        VAE(4, n_latent=0)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        VAE(4, likelihood="laplace")
    with pytest.raises(ValueError, match="image_size .* divisible"):
        ConvVAE(1, 28, (8, 8, 8))
    model = VAE(6, (4,), 2, seed=0)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 6\)"):
        model.loss(torch.rand(2, 7))
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        model.loss(torch.rand(2, 6) + 1)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 1, 8, 8\)"):
        ConvVAE(1, 8, (2,), 3, seed=0).loss(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        model.sample(0)
    with pytest.raises(ValueError, match=r"target_mean must have shape \(2,\)"):
        VAE.shift_towards(torch.zeros(3, 2), torch.zeros(3), 0.5)
