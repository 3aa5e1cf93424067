"""DCGAN and MLP models, minibatch discrimination, virtual batch norm, unrolled GAN and the
conditional models: shapes, the fastgen op in the generator, hand-written references, and bad
input."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from fastgen.torch.gan import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator,  # noqa: E402
                               MinibatchDiscrimination, VirtualBatchNorm, generator_loss, discriminator_loss,
                               unrolled_generator_loss)

F = torch.nn.functional


class OpLog(TorchDispatchMode):
    """Records the name of every aten/custom op that reaches the dispatcher."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(size, channels):
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=16, image_size=size, channels=channels, width=8)
    d = DCGANDiscriminator(image_size=size, channels=channels, width=8)
    x = g(torch.randn(5, 16))
    assert x.shape == (5, channels, size, size)
    assert x.abs().max() <= 1.0   # tanh output
    assert g(torch.randn(5, 16, 1, 1)).shape == x.shape
    assert d(x).shape == (5,)
    d_mb = DCGANDiscriminator(image_size=size, channels=channels, width=8, minibatch_kernels=6)
    assert d_mb(x).shape == (5,)


def test_generator_runs_fastgen_transposed_convolution():
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=8, image_size=32, channels=1, width=4)
    z = torch.randn(3, 8)
    with OpLog() as log:
        out = g(z)
        out.sum().backward()
    n_layers = len(g.weights)
    assert log.ops.count("fastgen.conv_transpose2d.default") == n_layers
    assert log.ops.count("fastgen.conv_transpose2d_backward.default") == n_layers
    # no aten transposed convolution at the module level (the fastgen backward op runs torch's
    # convolution_backward inside itself, below the dispatcher this mode sees)
    assert not any("convolution" in op for op in log.ops)


def test_generator_matches_plain_pytorch_layers():
    # the same weights through nn.ConvTranspose2d + BatchNorm + ReLU ... Tanh (the eager DCGAN)
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=8, image_size=64, channels=3, width=4).double()
    z = torch.randn(6, 8, dtype=torch.float64)
    h = z[:, :, None, None]
    for i, w in enumerate(g.weights):
        stride, padding = g.geometry[i]
        if i == len(g.weights) - 1:
            h = torch.tanh(F.conv_transpose2d(h, w, g.output_bias, stride, padding))
        else:
            bn = g.norms[i]
            h = F.relu(F.batch_norm(F.conv_transpose2d(h, w, None, stride, padding), None, None, bn.weight, bn.bias,
                                    training=True, eps=bn.eps))
    torch.testing.assert_close(g(z), h, rtol=1e-10, atol=1e-10)


def test_unnormalised_generator_fuses_bias_and_relu():
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=8, image_size=28, channels=1, width=4, norm="none").double()
    with torch.no_grad():
        for b in g.hidden_biases:
            b.normal_()
    z = torch.randn(4, 8, dtype=torch.float64)
    h = z[:, :, None, None]
    for i, w in enumerate(g.weights[:-1]):
        h = F.relu(F.conv_transpose2d(h, w, g.hidden_biases[i], *g.geometry[i]))
    expected = torch.tanh(F.conv_transpose2d(h, g.weights[-1], g.output_bias, 2, 1))
    torch.testing.assert_close(g(z), expected, rtol=1e-10, atol=1e-10)


def test_image_size_errors_name_the_argument():
    with pytest.raises(ValueError, match="image_size must be one of 28, 32, 64"):
        DCGANGenerator(image_size=48)
    with pytest.raises(ValueError, match="image_size must be one of"):
        DCGANDiscriminator(image_size=16)
    d = DCGANDiscriminator(image_size=32, channels=1, width=4)
    with pytest.raises(ValueError, match=r"x must be images of shape \(N, 1, 32, 32\).*got \(2, 1, 28, 28\)"):
        d(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"x must be images of shape \(N, 1, 32, 32\)"):
        d(torch.zeros(2, 3, 32, 32))
    g = DCGANGenerator(latent_dim=10, image_size=32, channels=1, width=4)
    with pytest.raises(ValueError, match=r"z must have shape \(N, 10\)"):
        g(torch.zeros(2, 12))
    with pytest.raises(TypeError, match="z must be a floating-point tensor"):
        g(torch.zeros(2, 10, dtype=torch.long))


# ---- conditional ------------------------------------------------------------------------------
def test_conditional_models_use_the_labels():
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=8, image_size=28, channels=1, width=4, n_classes=10)
    d = DCGANDiscriminator(image_size=28, channels=1, width=4, n_classes=10)
    z = torch.randn(4, 8)
    labels = torch.tensor([0, 3, 9, 3])
    x = g(z, labels)
    assert x.shape == (4, 1, 28, 28) and d(x, labels).shape == (4,)
    # The label changes the output (one-hot concatenated to z / as input maps).
    assert not torch.allclose(g(z, labels), g(z, torch.tensor([1, 3, 9, 3])))
    assert not torch.allclose(d(x, labels), d(x, torch.tensor([5, 3, 9, 3])))
    mg, md = MLPGenerator(latent_dim=4, n_classes=3), MLPDiscriminator(n_classes=3)
    y = mg(torch.randn(6, 4), torch.arange(6) % 3)
    assert y.shape == (6, 2) and md(y, torch.arange(6) % 3).shape == (6,)


@pytest.mark.parametrize("labels,error,match", [
    (None, ValueError, "labels is required: the model is conditional on 10 classes"),
    (torch.tensor([0, 1, 2]), ValueError, r"labels must have shape \(4,\), one label per sample"),
    (torch.tensor([0, 1, 2, 10]), ValueError, r"labels must lie in \[0, 10\)"),
    (torch.tensor([0.0, 1.0, 2.0, 3.0]), TypeError, "labels must hold integer class indices"),
])
def test_conditional_label_errors(labels, error, match):
    g = DCGANGenerator(latent_dim=8, image_size=28, channels=1, width=4, n_classes=10)
    d = DCGANDiscriminator(image_size=28, channels=1, width=4, n_classes=10)
    with pytest.raises(error, match=match):
        g(torch.randn(4, 8), labels)
    with pytest.raises(error, match=match):
        d(torch.zeros(4, 1, 28, 28), labels)


def test_labels_refused_by_unconditional_model():
    g = DCGANGenerator(latent_dim=8, image_size=28, channels=1, width=4)
    with pytest.raises(ValueError, match="labels given to an unconditional model"):
        g(torch.randn(2, 8), torch.tensor([0, 1]))


# ---- minibatch discrimination -----------------------------------------------------------------
def test_minibatch_discrimination_matches_loops():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(6, n_kernels=4, kernel_dim=3).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    out = layer(x)
    T = layer.T.detach().reshape(6, 4, 3)
    expected = torch.zeros(5, 4, dtype=torch.float64)
    for i in range(5):
        for b in range(4):
            mi = x[i] @ T[:, b, :]
            for j in range(5):
                expected[i, b] += torch.exp(-(mi - x[j] @ T[:, b, :]).abs().sum())
    torch.testing.assert_close(out[:, :6], x)
    torch.testing.assert_close(out[:, 6:], expected, rtol=1e-12, atol=1e-12)
    # identical samples score the batch size in every kernel: what gives mode collapse away
    same = layer(x[:1].expand(5, 6).contiguous())
    torch.testing.assert_close(same[:, 6:], torch.full((5, 4), 5.0, dtype=torch.float64))


def test_minibatch_discrimination_gradients_equal_the_broadcast_form():
    torch.manual_seed(1)
    layer = MinibatchDiscrimination(6, n_kernels=4, kernel_dim=3).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    x[3] = x[1]  # a zero distance off the diagonal too: |d| has derivative 0 there in both forms
    x.requires_grad_()
    w = torch.randn(5, 4, dtype=torch.float64)
    (layer(x)[:, 6:] * w).sum().backward()
    grad_x, grad_t = x.grad.clone(), layer.T.grad.clone()
    x.grad, layer.T.grad = None, None
    m = (x @ layer.T).view(5, 4, 3)
    broadcast = torch.exp(-(m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(dim=3)).sum(dim=1)
    (broadcast * w).sum().backward()
    torch.testing.assert_close(grad_x, x.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_t, layer.T.grad, rtol=1e-12, atol=1e-12)


def test_minibatch_discrimination_bad_input():
    with pytest.raises(ValueError, match="n_kernels must be an integer >= 1"):
        MinibatchDiscrimination(4, n_kernels=0)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4\)"):
        MinibatchDiscrimination(4)(torch.zeros(3, 5))


# ---- virtual batch norm -----------------------------------------------------------------------
@pytest.mark.parametrize("size", [32, 0])
def test_virtual_batch_norm_output_does_not_depend_on_the_batch(size):
    torch.manual_seed(0)
    if size:
        g = DCGANGenerator(latent_dim=8, image_size=size, channels=1, width=4, norm="virtual", reference_size=16)
    else:
        g = MLPGenerator(latent_dim=8, hidden=16, norm="virtual", reference_size=16)
    g.set_reference(torch.randn(16, 8))
    z = torch.randn(6, 8)
    full = g(z)
    alone = torch.cat([g(z[i:i + 1]) for i in range(6)])
    other = g(torch.cat([z[:1], 10 * torch.randn(9, 8)]))[:1]
    torch.testing.assert_close(alone, full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(other, full[:1], rtol=1e-5, atol=1e-6)
    # ... whereas ordinary batch norm output does depend on the rest of the batch
    torch.manual_seed(0)
    bn = DCGANGenerator(latent_dim=8, image_size=32, channels=1, width=4)
    assert not torch.allclose(bn(z)[:1], bn(torch.cat([z[:1], 10 * torch.randn(9, 8)]))[:1], atol=1e-3)


def test_virtual_batch_norm_uses_reference_statistics():
    torch.manual_seed(0)
    layer = VirtualBatchNorm(3).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        layer.bias.copy_(torch.tensor([0.0, -1.0, 1.0]))
    ref = torch.randn(8, 3, 4, 4, dtype=torch.float64) * 2 + 1
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    layer.collecting_reference = True
    layer(ref)
    layer.collecting_reference = False
    out = layer(x)
    r = 8
    for i in range(2):
        mean = (x[i].mean(dim=(1, 2)) + r * ref.mean(dim=(0, 2, 3))) / (r + 1)
        meansq = ((x[i] ** 2).mean(dim=(1, 2)) + r * (ref ** 2).mean(dim=(0, 2, 3))) / (r + 1)
        var = meansq - mean ** 2
        expected = (x[i] - mean[:, None, None]) / torch.sqrt(var[:, None, None] + layer.eps)
        expected = expected * layer.weight[:, None, None] + layer.bias[:, None, None]
        torch.testing.assert_close(out[i], expected, rtol=1e-12, atol=1e-12)


def test_virtual_batch_norm_needs_a_reference():
    g = DCGANGenerator(latent_dim=8, image_size=28, channels=1, width=4, norm="virtual", reference_size=4)
    with pytest.raises(RuntimeError, match="set_reference"):
        g(torch.randn(2, 8))
    with pytest.raises(ValueError, match=r"inputs must have shape \(4, 8\)"):
        g.set_reference(torch.randn(5, 8))


# ---- unrolled GAN ------------------------------------------------------------------------------
def _toy(seed=0):
    torch.manual_seed(seed)
    g = MLPGenerator(latent_dim=3, hidden=8, n_layers=1).double()
    d = MLPDiscriminator(hidden=8).double()
    real = torch.randn(10, 2, dtype=torch.float64)
    z = torch.randn(12, 3, dtype=torch.float64)
    return g, d, real, z


def _manual_d(params, x):
    w1, b1, w2, b2 = params
    return (torch.relu(x @ w1.t() + b1) @ w2.t() + b2).reshape(-1)


def test_unrolled_generator_gradient_matches_a_manual_unroll_sgd():
    g, d, real, z = _toy()
    lr = 0.5
    fake = g(z)
    loss = unrolled_generator_loss(d, real, fake, 1, lr)
    got = torch.autograd.grad(loss, list(g.parameters()))
    # by hand: one SGD step of D with create_graph, then the NS loss of the stepped D
    fake = g(z)
    p0 = [d.hidden[0].weight, d.hidden[0].bias, d.output.weight, d.output.bias]
    d_loss = F.softplus(-_manual_d(p0, real)).mean() + F.softplus(_manual_d(p0, fake)).mean()
    grads = torch.autograd.grad(d_loss, p0, create_graph=True)
    p1 = [p - lr * gr for p, gr in zip(p0, grads)]
    expected = torch.autograd.grad(F.softplus(-_manual_d(p1, fake)).mean(), list(g.parameters()))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # and it is not the ordinary generator gradient
    plain = torch.autograd.grad(generator_loss(d(g(z))), list(g.parameters()))
    assert max(float((a - b).abs().max()) for a, b in zip(got, plain)) > 1e-3


def test_unrolled_generator_gradient_matches_a_manual_unroll_adam():
    g, d, real, z = _toy(1)
    opt = torch.optim.Adam(d.parameters(), lr=0.05, betas=(0.5, 0.999))
    for _ in range(2):   # give Adam some moment estimates
        opt.zero_grad()
        discriminator_loss(d(real), d(g(z).detach())).backward()
        opt.step()
    fake = g(z)
    got = torch.autograd.grad(unrolled_generator_loss(d, real, fake, 1, 1.0, optimizer=opt), list(g.parameters()))
    fake = g(z)
    p0 = [d.hidden[0].weight, d.hidden[0].bias, d.output.weight, d.output.bias]
    d_loss = F.softplus(-_manual_d(p0, real)).mean() + F.softplus(_manual_d(p0, fake)).mean()
    grads = torch.autograd.grad(d_loss, p0, create_graph=True)
    p1 = []
    for p, gr in zip(p0, grads):
        st = opt.state[p]
        t = int(st["step"]) + 1
        m = 0.5 * st["exp_avg"] + 0.5 * gr
        v = 0.999 * st["exp_avg_sq"] + 0.001 * gr * gr
        p1.append(p - 0.05 / (1 - 0.5 ** t) * m / (torch.sqrt(v / (1 - 0.999 ** t) + 1e-16) + 1e-8))
    expected = torch.autograd.grad(F.softplus(-_manual_d(p1, fake)).mean(), list(g.parameters()))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    # the unroll reads Adam's state and does not change it
    assert all(int(opt.state[p]["step"]) == 2 for p in d.parameters())


def test_unrolled_zero_steps_is_the_plain_loss_and_d_is_untouched():
    g, d, real, z = _toy(2)
    before = [p.detach().clone() for p in d.parameters()]
    fake = g(z)
    torch.testing.assert_close(unrolled_generator_loss(d, real, fake, 0, 0.1), generator_loss(d(fake)))
    unrolled_generator_loss(d, real, fake, 3, 0.1)
    assert all(torch.equal(a, b) for a, b in zip(before, d.parameters()))
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        unrolled_generator_loss(d, real, fake, -1, 0.1)
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Adam"):
        unrolled_generator_loss(d, real, fake, 1, 0.1, optimizer=torch.optim.SGD(d.parameters(), lr=0.1))


@pytest.mark.parametrize("minibatch_kernels", [0, 4])
@pytest.mark.parametrize("size", [28, 64])
def test_channels_last_discriminator_matches_nchw(size, minibatch_kernels):
    # the CPU discriminator runs channels-last; the same module in NCHW gives the same logits and
    # gradients (to float32 rounding), and the layout leaves parameters and state dict alone
    torch.manual_seed(0)
    d = DCGANDiscriminator(image_size=size, channels=3, width=8, minibatch_kernels=minibatch_kernels)
    assert d.channels_last
    nchw = DCGANDiscriminator(image_size=size, channels=3, width=8, minibatch_kernels=minibatch_kernels)
    nchw.load_state_dict(d.state_dict())
    nchw.channels_last = False
    x = torch.randn(6, 3, size, size)
    outs, grads = [], []
    for model in (d, nchw):
        xi = x.clone().requires_grad_()
        out = model(xi)
        (out * torch.arange(1.0, 7.0)).sum().backward()
        outs.append(out.detach())
        grads.append([xi.grad] + [p.grad for p in model.parameters()])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    for got, want in zip(*grads):
        assert got.is_contiguous()        # parameter gradients keep the parameters' NCHW layout
        # float32 sums in another order: a few ulps of the largest entry
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4 * float(want.abs().max()))
    state = d.state_dict()
    assert list(state) == list(nchw.state_dict())
    assert all(t.is_contiguous() for t in state.values())


def test_channels_last_discriminator_float64_and_conditional():
    torch.manual_seed(1)
    d = DCGANDiscriminator(image_size=32, channels=1, width=4, n_classes=3).double()
    x = torch.randn(4, 1, 32, 32, dtype=torch.float64)
    labels = torch.tensor([0, 2, 1, 2])
    d.train(False)
    got = d(x, labels)
    d.channels_last = False
    torch.testing.assert_close(got, d(x, labels), rtol=1e-12, atol=1e-12)
