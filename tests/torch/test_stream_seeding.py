"""The VAEs' Philox stream under torch's conventions (fastgen.torch.random): torch.manual_seed
makes a model's training reproducible, state_dict carries the stream, a resumed run continues
bitwise, and model.generator reads and writes the same buffer."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import fastgen  # noqa: E402
from fastgen.torch.nn import ConvVAE, VAE  # noqa: E402


def _data(seed=0):
    return torch.rand(16, 30, generator=torch.Generator().manual_seed(seed))


def _train(model, optimizer, steps, x):
    for _ in range(steps):
        optimizer.zero_grad()
        model.loss(x).backward()
        optimizer.step()


def _fresh(torch_seed):
    torch.manual_seed(torch_seed)
    model = VAE(30, hidden=(12,), n_latent=3)  # no seed: drawn from torch's default generator
    return model, torch.optim.Adam(model.parameters(), lr=1e-2)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_torch_manual_seed_twice_gives_bitwise_identical_training():
    runs = []
    for torch_seed in (5, 5, 6):
        model, opt = _fresh(torch_seed)
        _train(model, opt, 6, _data())
        runs.append(_weights(model))
    for key in runs[0]:
        assert torch.equal(runs[0][key], runs[1][key]), key
    assert not torch.equal(runs[0]["mu_head.weight"], runs[2]["mu_head.weight"])
    assert runs[0]["stream"][0] != runs[2]["stream"][0]  # the stream's seed came from torch's generator
    assert runs[0]["stream"][1] == 6  # one offset per training step


def test_the_seed_is_drawn_after_the_layers_so_their_initialisation_is_torchs_own():
    torch.manual_seed(9)
    seeded = VAE(30, hidden=(12,), n_latent=3, seed=123)
    torch.manual_seed(9)
    unseeded = VAE(30, hidden=(12,), n_latent=3)
    assert torch.equal(seeded.mu_head.weight, unseeded.mu_head.weight)
    assert seeded.generator.get_state() == {"seed": 123, "offset": 0}


def test_state_dict_round_trip_resumes_bitwise():
    x = _data(1)
    straight, opt = _fresh(2)
    _train(straight, opt, 8, x)

    first, opt1 = _fresh(2)
    _train(first, opt1, 3, x)
    saved_model, saved_opt = _weights(first), opt1.state_dict()
    resumed = VAE(30, hidden=(12,), n_latent=3, seed=999)  # another stream, replaced by the saved one
    resumed.load_state_dict(saved_model)
    opt2 = torch.optim.Adam(resumed.parameters(), lr=1e-2)
    opt2.load_state_dict(saved_opt)
    assert resumed.generator.get_state() == first.generator.get_state()
    _train(resumed, opt2, 5, x)
    for key, value in _weights(straight).items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_a_state_dict_from_before_the_stream_buffer_still_loads():
    model = VAE(30, hidden=(12,), n_latent=3, seed=4)
    old = {k: v for k, v in model.state_dict().items() if k != "stream"}
    other = VAE(30, hidden=(12,), n_latent=3, seed=8)
    other.load_state_dict(old)  # strict: the missing stream keeps the model's own
    assert other.generator.get_state() == {"seed": 8, "offset": 0}


@pytest.mark.parametrize("make", [lambda **k: VAE(30, hidden=(12,), n_latent=3, **k),
                                  lambda **k: ConvVAE(1, 8, channels=(2,), n_latent=3, **k)])
def test_generator_is_a_view_of_the_buffer(make):
    model = make(seed=fastgen.Generator(2**64 - 1, 5))  # a Generator's seed and position are taken
    gen = model.generator
    assert isinstance(gen, fastgen.Generator)
    assert gen.get_state() == {"seed": 2**64 - 1, "offset": 5}
    assert model.stream.tolist() == [-1, 5]  # two's complement in the int64 buffer
    assert gen.take(2) == 5 and model.stream[1] == 7
    model.sample(3)  # one offset
    assert gen.offset == 8
    model.generator = 11  # an int seed or a Generator replaces the stream
    assert model.generator.get_state() == {"seed": 11, "offset": 0}
    gen.set_state({"seed": 3, "offset": 4})
    assert model.stream.tolist() == [3, 4]
    with pytest.raises(ValueError, match=r"offset must be in \[0, 2\*\*64\)"):
        gen.set_state({"seed": 3, "offset": -1})
    assert model.stream.tolist() == [3, 4]  # a refused state changes nothing


def test_sampling_and_forward_draw_the_same_numbers_as_the_generators_stream():
    model = VAE(30, hidden=(12,), n_latent=3, seed=21)
    x = _data(2)
    out = model(x)  # offset 0
    again = VAE(30, hidden=(12,), n_latent=3, seed=21)
    again.load_state_dict(model.state_dict())
    again.stream[1] = 0
    explicit = again(x, generator=fastgen.Generator(21, 0))  # an explicit Generator draws the same eps
    assert torch.equal(out.z, explicit.z)
    assert model.stream[1] == 1 and again.stream[1] == 0  # an explicit generator leaves the model's stream


def test_a_torch_generator_seeds_the_ops_stream_like_a_numpy_one():
    import fastgen.torch as ft

    mu = torch.zeros(4, 3)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    z1, _ = ft.reparameterize(mu, mu, generator=g1)  # one draw of g1 seeds a fastgen.Generator
    z2, _ = ft.reparameterize(mu, mu, generator=g2)
    assert torch.equal(z1, z2)
    assert not torch.equal(z1, ft.reparameterize(mu, mu, generator=g1)[0])  # g1 moved on
    with pytest.raises(TypeError, match=r"got builtins.str"):
        ft.reparameterize(mu, mu, generator="3")
