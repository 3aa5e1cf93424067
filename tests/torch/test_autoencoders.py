"""fastgen.torch.autoencoders: losses against hand-written references, the contractive penalty
against autograd's Jacobian, noise statistics, greedy stacking, the convolutional variants
against torch's own layers, training that really lowers the loss, bad input."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from fastgen.datasets import load_digits_binary  # noqa: E402
from fastgen.torch.autoencoders import (Autoencoder, ContractiveAutoencoder, ConvAutoencoder,  # noqa: E402
                                        DenoisingAutoencoder, pretrain_stacked)
from fastgen.torch.layers import ConvTranspose2d  # noqa: E402
from fastgen.torch.training import evaluate, fit  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    return torch.from_numpy(load_digits_binary(dtype=np.float32))


def test_mlp_autoencoder_loss_is_the_mean_cross_entropy_and_squared_error():
    torch.manual_seed(0)
    x = torch.rand(5, 12)
    for likelihood in ("bernoulli", "gaussian"):
        model = Autoencoder(12, (7,), 3, likelihood=likelihood)
        out = model.decoder(model.encoder(x))
        if likelihood == "bernoulli":
            expected = F.binary_cross_entropy_with_logits(out, x, reduction="sum") / 5
            torch.testing.assert_close(model(x), torch.sigmoid(out))
        else:
            expected = 0.5 * ((out - x) ** 2).sum() / 5
            torch.testing.assert_close(model(x), out)
        torch.testing.assert_close(model.loss(x), expected)
    assert [m.out_features for m in model.encoder if isinstance(m, torch.nn.Linear)] == [7, 3]
    assert [m.out_features for m in model.decoder if isinstance(m, torch.nn.Linear)] == [7, 12]


def test_masking_noise_drops_the_stated_share_and_the_target_stays_clean():
    model = DenoisingAutoencoder(50, (8,), 4, noise="masking", noise_level=0.3)
    x = torch.ones(400, 50)
    g = torch.Generator().manual_seed(1)
    corrupted = model.corrupt(x, g)
    dropped = (corrupted == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.01  # 20,000 draws: sd 0.0032
    assert set(corrupted.unique().tolist()) == {0.0, 1.0}
    # the loss reconstructs the clean x from the corrupted copy
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    loss = model.loss(x[:10], g1)
    noisy = model.corrupt(x[:10], g2)
    expected = F.binary_cross_entropy_with_logits(model.decoder(model.encoder(noisy)), x[:10], reduction="sum") / 10
    torch.testing.assert_close(loss, expected)


def test_gaussian_noise_has_the_stated_standard_deviation():
    model = DenoisingAutoencoder(40, (8,), 4, likelihood="gaussian", noise="gaussian", noise_level=0.5)
    x = torch.zeros(500, 40)
    noise = model.corrupt(x, torch.Generator().manual_seed(2))
    assert abs(noise.std().item() - 0.5) < 0.01 and abs(noise.mean().item()) < 0.01


def test_contractive_penalty_equals_the_frobenius_norm_of_autograds_jacobian():
    torch.manual_seed(3)
    model = ContractiveAutoencoder(9, 5, contraction=0.7).double()
    x = torch.rand(4, 9, dtype=torch.float64)
    closed = model.jacobian_penalty(x)
    for i in range(4):
        jac = torch.autograd.functional.jacobian(model.encode, x[i:i + 1]).reshape(5, 9)
        torch.testing.assert_close(closed[i], (jac ** 2).sum())
    out = model.decoder(model.encoder(x))
    recon = F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(1)
    torch.testing.assert_close(model.loss(x), (recon + 0.7 * closed).mean())


def test_contraction_makes_codes_less_sensitive(digits):
    def trained(contraction):
        torch.manual_seed(0)
        model = ContractiveAutoencoder(64, 32, contraction=contraction)
        fit(model, digits, epochs=4, batch_size=64, lr=3e-3, seed=0)
        return model.jacobian_penalty(digits).mean().item()

    assert trained(1.0) < 0.5 * trained(0.0)


def test_training_lowers_held_out_loss_below_the_mean_image_baseline(digits):
    torch.manual_seed(0)
    train, test = digits[:1500], digits[1500:]
    model = Autoencoder(64, (64,), 16)
    before = evaluate(model, test)
    fit(model, train, epochs=8, batch_size=64, lr=3e-3, seed=0)
    after = evaluate(model, test)
    mean_image = train.mean(0, keepdim=True).clamp(1e-4, 1 - 1e-4).expand_as(test)
    baseline = F.binary_cross_entropy(mean_image, test, reduction="sum").item() / len(test)
    assert after < 0.8 * baseline < before


def test_stacked_pretraining_reuses_each_layers_shallow_autoencoder(digits):
    X = digits[:600]
    deep = pretrain_stacked(X, (32, 8), epochs=2, batch_size=50, lr=3e-3, seed=4)
    assert deep.hidden == (32,) and deep.n_latent == 8 and deep.activation == "sigmoid"
    # layer 1 is bitwise the shallow autoencoder trained alone with the same seed
    torch.manual_seed(4)
    shallow = Autoencoder(64, (), 32, "sigmoid", code_activation=True)
    fit(shallow, X, epochs=2, batch_size=50, lr=3e-3, seed=4)
    torch.testing.assert_close(deep.encoder[0].weight, shallow.encoder[0].weight, rtol=0, atol=0)
    torch.testing.assert_close(deep.decoder[2].weight, shallow.decoder[0].weight, rtol=0, atol=0)
    # and the stack reconstructs far better than the same architecture untrained
    torch.manual_seed(4)
    fresh = Autoencoder(64, (32,), 8, "sigmoid", code_activation=True)
    assert evaluate(deep, X) < 0.9 * evaluate(fresh, X)


def test_fused_transposed_convolution_layer_matches_torch_with_the_same_state_dict():
    torch.manual_seed(6)
    ours = ConvTranspose2d(3, 5, 4, 2, 1, output_padding=1, activation="leaky_relu", negative_slope=0.2)
    ref = torch.nn.ConvTranspose2d(3, 5, 4, 2, 1, output_padding=1)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 7, 6)
    torch.testing.assert_close(ours(x), F.leaky_relu(ref(x), 0.2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pooling", [False, True])
def test_conv_autoencoder_equals_its_torch_twin(pooling):
    torch.manual_seed(7)
    model = ConvAutoencoder(1, 8, (4, 6), pooling=pooling)
    x = torch.rand(3, 1, 8, 8)
    # the same network written with torch's layers only
    h, indices = x, []
    for conv in model.down:
        h = F.relu(conv(h))
        if pooling:
            h, idx = F.max_pool2d(h, 2, return_indices=True)
            indices.append(idx)
    assert h.shape == (3, 6, 2, 2)
    for i, layer in enumerate(model.up):
        last = i == len(model.up) - 1
        if pooling:
            h = layer(F.max_unpool2d(h, indices[-1 - i], 2, output_size=(h.shape[2] * 2, h.shape[3] * 2)))
        else:
            h = F.conv_transpose2d(h, layer.weight, layer.bias, 2, 1)
        if not last:
            h = F.relu(h)
    torch.testing.assert_close(model(x), torch.sigmoid(h), rtol=1e-5, atol=1e-6)
    assert all(isinstance(layer, ConvTranspose2d) for layer in model.up) != pooling


@pytest.mark.parametrize("pooling", [False, True])
def test_conv_autoencoder_trains_on_digits(digits, pooling):
    torch.manual_seed(0)
    images = digits[:800].reshape(-1, 1, 8, 8)
    model = ConvAutoencoder(1, 8, (8, 16), pooling=pooling)
    before = evaluate(model, images)
    fit(model, images, epochs=3, batch_size=64, lr=3e-3, seed=0)
    assert evaluate(model, images) < 0.8 * before


def test_interpolation_ends_at_the_reconstructions():
    torch.manual_seed(8)
    model = Autoencoder(10, (6,), 3)
    x = torch.rand(2, 10)
    path = model.interpolate(x[0], x[1], steps=5)
    assert path.shape == (5, 10)
    torch.testing.assert_close(path[[0, -1]], model.reconstruct(x))
    conv = ConvAutoencoder(1, 4, (2,))
    images = torch.rand(2, 1, 4, 4)
    torch.testing.assert_close(conv.interpolate(images[0], images[1], 3)[[0, -1]], conv.reconstruct(images))


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="n_features must be an integer >= 1"):
        Autoencoder(0)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        Autoencoder(4, likelihood="poisson")
    with pytest.raises(ValueError, match="each entry of hidden"):
        Autoencoder(4, hidden=(3, -1))
    with pytest.raises(ValueError, match="noise_level must be a number in"):
        DenoisingAutoencoder(4, noise="masking", noise_level=1.0)
    with pytest.raises(ValueError, match="noise must be one of"):
        DenoisingAutoencoder(4, noise="salt")
    with pytest.raises(ValueError, match="contraction must be a number"):
        ContractiveAutoencoder(4, contraction=-1)
    with pytest.raises(ValueError, match="divisible by 2 \\*\\* len\\(channels\\) = 4"):
        ConvAutoencoder(1, 10, (4, 8))
    model = Autoencoder(6, (4,), 2)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 6\)"):
        model.loss(torch.rand(3, 5))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        model.loss(torch.ones(3, 6, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 1, 8, 8\)"):
        ConvAutoencoder(1, 8, (4,)).loss(torch.rand(2, 1, 28, 28))
    pooled = ConvAutoencoder(1, 8, (4,), pooling=True)
    with pytest.raises(ValueError, match="indices"):
        pooled.decode_output(torch.rand(1, 4, 4, 4))
    with pytest.raises(ValueError, match="layer_sizes must be a sequence"):
        pretrain_stacked(torch.rand(4, 6), None)


@pytest.mark.parametrize("pooling", [False, True])
def test_conv_autoencoder_with_n_latent_has_a_bottleneck_and_a_torch_twin(pooling):
    torch.manual_seed(3)
    model = ConvAutoencoder(1, 8, (4, 6), pooling=pooling, n_latent=5, unpool="block")
    x = torch.rand(3, 1, 8, 8)
    code = model.encode(x)
    assert code.shape == (3, 5) and model.code_size == 5 < 64
    assert ConvAutoencoder(1, 8, (4, 6)).code_size == 6 * 2 * 2
    # the same network with torch's layers: block unpooling is nearest-neighbour upsampling by 2
    h = x
    for conv in model.down:
        h = F.relu(conv(h))
        if pooling:
            h = F.max_pool2d(h, 2)
    torch.testing.assert_close(code, model.to_code(h.flatten(1)))
    h = F.relu(model.from_code(code)).reshape(3, 6, 2, 2)
    for i, layer in enumerate(model.up):
        if pooling:
            h = layer(F.interpolate(h, scale_factor=2, mode="nearest"))
        else:
            h = F.conv_transpose2d(h, layer.weight, layer.bias, 2, 1)
        if i < len(model.up) - 1:
            h = F.relu(h)
    torch.testing.assert_close(model(x), torch.sigmoid(h), rtol=1e-5, atol=1e-6)
    # the decoder needs the code alone: interpolation works, and the ends are the reconstructions
    torch.testing.assert_close(model.interpolate(x[0], x[1], 4)[[0, -1]], model.reconstruct(x[:2]))
    rebuilt = ConvAutoencoder(**model.config())
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(x), model(x))


def test_argmax_unpooling_needs_the_encoder_positions():
    model = ConvAutoencoder(1, 8, (4,), pooling=True, n_latent=3)
    assert model.needs_indices and not ConvAutoencoder(1, 8, (4,), pooling=True, unpool="block").needs_indices
    with pytest.raises(ValueError, match="cannot decode codes without argmax indices"):
        model.interpolate(torch.rand(1, 8, 8), torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="unpool must be one of"):
        ConvAutoencoder(1, 8, (4,), pooling=True, unpool="nearest")
    with pytest.raises(ValueError, match="n_latent must be an integer >= 1"):
        ConvAutoencoder(1, 8, (4,), n_latent=0)
