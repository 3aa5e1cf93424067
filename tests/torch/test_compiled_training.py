"""Compiled training loops, the way PyTorch users write them: ``torch.compile(fullgraph=True)`` of
the model's loss (forward and, through AOTAutograd, backward) and ``torch.compile`` of the
optimizer step, 20 steps per model. Each must compile on the first step and never again (no
recompiles; no graph breaks but the two torch's Optimizer.step inserts on purpose, around the
update: pytorch/pytorch#104053), and its losses must follow the eager loop's (inductor with ``fallback_random`` draws torch's
random numbers as eager does; fastgen's own draws come from the model's stream either way)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch._dynamo.utils import counters  # noqa: E402

from fastgen.torch.gan import DCGANDiscriminator, DCGANGenerator, discriminator_loss, generator_loss  # noqa: E402
from fastgen.torch.nn import (Autoencoder, ConvAutoencoder, ConvVAE, ContractiveAutoencoder,  # noqa: E402
                              DenoisingAutoencoder, VAE)
from fastgen.torch.smiles import SmilesLM  # noqa: E402

STEPS = 20
# float32 losses after 20 optimizer steps: compiled kernels sum in another order than eager ones
RTOL = 2e-3


def _images(n, channels=1, size=28, seed=0):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def _vae():
    return VAE(64, hidden=(32,), n_latent=4), [torch.rand(16, 64, generator=torch.Generator().manual_seed(s))
                                               for s in range(2)]


def _conv_vae():
    return ConvVAE(1, 16, channels=(4, 8), n_latent=4), [_images(8, size=16, seed=s) for s in range(2)]


def _autoencoder():
    return Autoencoder(64, hidden=(32,), n_latent=8), [torch.rand(16, 64, generator=torch.Generator().manual_seed(s))
                                                       for s in range(2)]


def _denoising():
    return DenoisingAutoencoder(64, hidden=(32,), n_latent=8), [
        torch.rand(16, 64, generator=torch.Generator().manual_seed(s)) for s in range(2)]


def _contractive():
    return ContractiveAutoencoder(64, n_latent=8), [torch.rand(16, 64, generator=torch.Generator().manual_seed(s))
                                                    for s in range(2)]


def _conv_autoencoder():
    return ConvAutoencoder(1, 16, channels=(4, 8)), [_images(8, size=16, seed=s) for s in range(2)]


MODELS = {"VAE": _vae, "ConvVAE": _conv_vae, "Autoencoder": _autoencoder, "DenoisingAutoencoder": _denoising,
          "ContractiveAutoencoder": _contractive, "ConvAutoencoder": _conv_autoencoder}


def train(make, compiled: bool, loss_of=lambda model, batch: model.loss(batch)):
    """Losses of STEPS Adam steps from torch.manual_seed(0), and the number of graphs compiled
    after the first step and at the end."""
    torch.manual_seed(0)
    model, batches = make()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_fn(batch):
        return loss_of(model, batch)

    def step_fn():
        optimizer.step()

    if compiled:
        loss_fn = torch.compile(loss_fn, fullgraph=True)
        step_fn = torch.compile(step_fn)  # not fullgraph: Optimizer.step breaks the graph itself
    losses, graphs_after_first = [], None
    for step in range(STEPS):
        optimizer.zero_grad()
        loss = loss_fn(batches[step % len(batches)])
        loss.backward()
        step_fn()
        losses.append(loss.item())
        if step == 0:
            graphs_after_first = counters["stats"]["unique_graphs"]
    return losses, graphs_after_first, counters["stats"]["unique_graphs"]


@pytest.fixture
def fresh_dynamo(monkeypatch):
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config, "fallback_random", True)
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def check_compiled_loop(make, loss_of=None):
    kwargs = {} if loss_of is None else {"loss_of": loss_of}
    eager, _, _ = train(make, False, **kwargs)
    counters.clear()
    compiled, first, last = train(make, True, **kwargs)
    assert first >= 1 and last == first, f"recompiled: {first} graphs after the first step, {last} after {STEPS}"
    breaks = {reason: n for reason, n in counters["graph_break"].items()
              if "User-inserted graph break" not in reason}  # Optimizer.step's own two
    assert not breaks, breaks
    assert "recompiles" not in counters or not counters["recompiles"]
    torch.testing.assert_close(torch.tensor(compiled), torch.tensor(eager), rtol=RTOL, atol=1e-4)
    assert compiled[-1] < compiled[0]  # it trains


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_training_loop(name, fresh_dynamo):
    check_compiled_loop(MODELS[name])


@pytest.mark.slow
def test_compiled_dcgan_generator_and_discriminator_steps(fresh_dynamo):
    def make():
        g = DCGANGenerator(latent_dim=8, image_size=28, channels=1, width=4)
        d = DCGANDiscriminator(image_size=28, channels=1, width=4)
        z = [torch.randn(8, 8, generator=torch.Generator().manual_seed(s)) for s in range(2)]
        real = [_images(8, seed=s) * 2 - 1 for s in range(2)]
        return torch.nn.ModuleDict({"g": g, "d": d}), list(zip(z, real))

    def loss_of(models, batch):  # the two players' losses in one objective (each trains its own weights)
        z, real = batch
        fake = models["g"](z)
        d_loss = discriminator_loss(models["d"](real), models["d"](fake.detach()))
        return d_loss + generator_loss(models["d"](fake))

    check_compiled_loop(make, loss_of)


@pytest.mark.slow
def test_compiled_smiles_model_steps(fresh_dynamo, monkeypatch):
    # Dynamo traces torch's nn.LSTM only with this (torch's flag, experimental in 2.x); the SMILES
    # model's own code needs nothing more
    monkeypatch.setattr(torch._dynamo.config, "allow_rnn", True)

    def make():
        model = SmilesLM(vocab_size=12, embedding_dim=8, hidden_size=16, num_layers=2, dropout=0.1)
        g = torch.Generator().manual_seed(0)
        tokens = [torch.randint(3, 12, (8, 10), generator=g) for _ in range(2)]
        return model, [(t, torch.full((8,), 10)) for t in tokens]

    def loss_of(model, batch):
        loss, count = model.loss(*batch)
        return loss / count

    check_compiled_loop(make, loss_of)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_a_new_batch_size_recompiles_once_then_the_batch_is_dynamic(name, fresh_dynamo):
    # as for torch's own layers: the first graph is specialised, the second marks the batch
    # dimension dynamic; a check that turned a size into an int would compile one graph per size
    torch.manual_seed(0)
    model, batches = MODELS[name]()
    loss = torch.compile(model.loss, fullgraph=True, backend="aot_eager")
    for n in (8, 7, 5, 3, 2):
        loss(torch.cat([batches[0]] * 2)[:n]).backward()
    assert counters["stats"]["unique_graphs"] == 2
