"""Scenario E of ``python -m bench vae``: one VAE training epoch on MNIST, fastgen against plain
PyTorch eager.

The model is pytorch/examples' VAE shape: 784 -> 400 -> (mu, logvar) 20 -> 400 -> 784, ReLU,
Bernoulli decoder, batch 128, Adam (lr 1e-3), on the 10,000 MNIST images of ../shared/data
scaled to [0, 1]. Implementations, all with identical initial weights and the same batches:

* ``torch eager (examples)``: the pytorch/examples code -- ``mu + exp(0.5 logvar) * randn``,
  the KL expression, ``sigmoid`` on the decoder and ``F.binary_cross_entropy(..., "sum")``;
* ``torch eager (BCE with logits)``: the same with the numerically preferable
  ``F.binary_cross_entropy_with_logits`` (one fewer pass), as a careful user would write it;
* ``torch eager (examples), fused Adam``: the examples code with ``Adam(fused=True)``, to show
  how much of the difference is the optimiser step;
* ``fastgen VAE``: ``fastgen.torch.nn.VAE`` -- fused reparameterisation + KL
  (``torch.ops.fastgen.reparameterize``), the fused Bernoulli log-likelihood op, the first
  encoder layer on the images' nonzeros (``fastgen.torch.nn.SparseInputLinear``: MNIST is
  81 % zeros), the other layers nn.Linear -- trained as ``fastgen.torch.train.loop.fit`` trains
  it, with ``fastgen.torch.optim.adam`` (torch's fused Adam kernel).

Target (torch-ops issue): the fastgen epoch at least 1.2x faster than eager (the examples code).
The row ``GEMMs only`` times the eager models' dense linear layers' forward and backward with
a trivial loss: the floor of a dense implementation, which fastgen's sparse first layer may go
below.
"""
from __future__ import annotations

from .common import LoadMonitor, skip_line, format_table, format_targets, load_warning, summarize, target, time_interleaved

N_FEATURES, HIDDEN, LATENT = 784, 400, 20
EPOCH_BATCH = 128
VAE_EPOCH_MIN_SPEEDUP = 1.2
QUICK_SAMPLES = 128 * 5
FUSED_ADAM_ANCHOR = "torch eager (examples), fused Adam"


def _eager_vae(torch, logits_loss: bool):
    import torch.nn.functional as F
    from torch import nn

    class EagerVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(N_FEATURES, HIDDEN)
            self.fc21, self.fc22 = nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)
            self.fc3, self.fc4 = nn.Linear(LATENT, HIDDEN), nn.Linear(HIDDEN, N_FEATURES)

        def loss(self, x):
            h = F.relu(self.fc1(x))
            mu, logvar = self.fc21(h), self.fc22(h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            out = self.fc4(F.relu(self.fc3(z)))
            if logits_loss:
                recon = F.binary_cross_entropy_with_logits(out, x, reduction="sum")
            else:
                recon = F.binary_cross_entropy(torch.sigmoid(out), x, reduction="sum")
            kl = 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1 - logvar)
            return (recon + kl) / x.shape[0]

    return EagerVAE()


def _copy_weights(eager, ours) -> None:
    import torch

    pairs = [(eager.fc1, ours.encoder[0]), (eager.fc21, ours.mu_head), (eager.fc22, ours.logvar_head),
             (eager.fc3, ours.decoder[0]), (eager.fc4, ours.decoder[2])]
    with torch.no_grad():
        for theirs, mine in pairs:
            # fastgen's first layer (SparseInputLinear) stores its weight transposed, (in, out)
            theirs.weight.copy_(mine.weight_t.t() if hasattr(mine, "weight_t") else mine.weight)
            theirs.bias.copy_(mine.bias)


def vae_epoch_scenario(data_dir, quick: bool, repeats: int, cooldown: float) -> dict:
    import torch

    from fastgen.datasets import load_mnist_shared
    from fastgen.torch.optim import adam
    from fastgen.torch.nn.vae import VAE

    path = data_dir / "mnist_test_10k.npz"
    if not path.is_file():
        return {"skipped": skip_line("E. VAE epoch", f"{path} is absent (the shared data folder)"), "targets": []}
    X = torch.from_numpy(load_mnist_shared(path, binary=False))
    if quick:
        X = X[:QUICK_SAMPLES]
    batches = [X[i:i + EPOCH_BATCH] for i in range(0, X.shape[0], EPOCH_BATCH)]
    torch.manual_seed(0)
    ours = VAE(N_FEATURES, (HIDDEN,), LATENT, seed=0)
    models = {"torch eager (examples)": _eager_vae(torch, False), "torch eager (BCE with logits)": _eager_vae(torch, True),
              FUSED_ADAM_ANCHOR: _eager_vae(torch, False), "fastgen VAE": ours}
    for name, model in models.items():
        if model is not ours:
            _copy_weights(model, ours)
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=1e-3) for name, m in models.items()}
    optimizers[FUSED_ADAM_ANCHOR] = torch.optim.Adam(models[FUSED_ADAM_ANCHOR].parameters(), lr=1e-3, fused=True)
    optimizers["fastgen VAE"] = adam(ours.parameters(), lr=1e-3)
    gemm_layers = [torch.nn.Linear(N_FEATURES, HIDDEN), torch.nn.Linear(HIDDEN, 2 * LATENT),
                   torch.nn.Linear(LATENT, HIDDEN), torch.nn.Linear(HIDDEN, N_FEATURES)]

    def epoch(name):
        model, opt = models[name], optimizers[name]

        def run():
            for batch in batches:
                loss = model.loss(batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return run

    def gemms_only():
        for batch in batches:
            h = gemm_layers[0](batch)
            z = gemm_layers[1](h)[:, :LATENT]
            out = gemm_layers[3](gemm_layers[2](z))
            out.sum().backward()

    fns = {name: epoch(name) for name in models}
    fns["GEMMs only (floor)"] = gemms_only
    with LoadMonitor() as mon:
        times = time_interleaved(fns, repeats, cooldown=cooldown)
    reference = "torch eager (examples)"
    summary = summarize(times, floor="GEMMs only (floor)", reference=reference)
    title = (f"\nE. one VAE epoch, MNIST {X.shape[0]} images, 784-400-20, batch {EPOCH_BATCH}, Adam, float32 "
             f"(median of {repeats})")
    print(format_table(title, summary, floor="GEMMs only (floor)", reference=reference))
    warning = load_warning(mon.as_dict())
    if warning:
        print("  " + warning)
    ours_s = summary["fastgen VAE"]["median_s"]
    targets = [
        target("VAE epoch: speed-up vs torch eager (examples)", summary[reference]["median_s"] / ours_s, ">=",
               VAE_EPOCH_MIN_SPEEDUP, "x"),
        target("VAE epoch: speed-up vs torch eager (BCE with logits)",
               summary["torch eager (BCE with logits)"]["median_s"] / ours_s, ">=", VAE_EPOCH_MIN_SPEEDUP, "x"),
    ]
    print(format_targets(targets))
    print(f"  (not a target) fastgen VAE vs {FUSED_ADAM_ANCHOR}: "
          f"{summary[FUSED_ADAM_ANCHOR]['median_s'] / ours_s:.2f}x")
    return {"samples": int(X.shape[0]), "batch": EPOCH_BATCH, "shape": [N_FEATURES, HIDDEN, LATENT],
            "summary": summary, "targets": targets, "load": mon.as_dict(), "torch_threads": torch.get_num_threads()}


COMPILED_SAMPLES = 128 * 20


def compiled_loop_scenario(data_dir, quick: bool, repeats: int, cooldown: float) -> dict:
    """Scenario L: the training loop as a torch.compile user runs it (the loss compiled with
    fullgraph=True, backward through it, eager Adam), fastgen's VAE against the eager examples
    model and torch.compile of that model, on the first COMPILED_SAMPLES images. Compilation
    happens in the warm-up call; the graphs compiled after it are counted (recompiles)."""
    import torch
    from torch._dynamo.utils import counters

    from fastgen.datasets import load_mnist_shared
    from fastgen.torch.nn.vae import VAE

    path = data_dir / "mnist_test_10k.npz"
    if not path.is_file():
        return {"skipped": skip_line("L. compiled VAE loop", f"{path} is absent (the shared data folder)"),
                "targets": []}
    X = torch.from_numpy(load_mnist_shared(path, binary=False))[:QUICK_SAMPLES if quick else COMPILED_SAMPLES]
    batches = [X[i:i + EPOCH_BATCH] for i in range(0, X.shape[0], EPOCH_BATCH)]
    torch.manual_seed(0)
    ours = VAE(N_FEATURES, (HIDDEN,), LATENT, seed=0)
    eager, to_compile = _eager_vae(torch, False), _eager_vae(torch, False)
    _copy_weights(eager, ours)
    _copy_weights(to_compile, ours)
    torch._dynamo.reset()
    losses = {"torch eager (examples)": eager.loss, "torch.compile(eager model)": torch.compile(to_compile.loss),
              "fastgen VAE, torch.compile": torch.compile(ours.loss, fullgraph=True)}
    params = {"torch eager (examples)": eager, "torch.compile(eager model)": to_compile, "fastgen VAE, torch.compile": ours}
    optimizers = {name: torch.optim.Adam(params[name].parameters(), lr=1e-3) for name in losses}

    def loop(name):
        loss_fn, opt = losses[name], optimizers[name]

        def run():
            for batch in batches:
                loss = loss_fn(batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return run

    fns = {name: loop(name) for name in losses}
    for fn in fns.values():  # compile (and warm up) outside the timings
        fn()
    graphs = counters["stats"]["unique_graphs"]
    with LoadMonitor() as mon:
        times = time_interleaved(fns, repeats, cooldown=cooldown, warmup=0)
    recompiles = counters["stats"]["unique_graphs"] - graphs
    reference = "torch eager (examples)"
    summary = summarize(times, floor=None, reference=reference)
    title = (f"\nL. compiled training loop, MNIST {X.shape[0]} images, 784-400-20, batch {EPOCH_BATCH}, Adam, "
             f"float32 (median of {repeats})")
    print(format_table(title, summary, floor=None, reference=reference))
    print(f"  graphs compiled after the warm-up: {recompiles}")
    warning = load_warning(mon.as_dict())
    if warning:
        print("  " + warning)
    targets = [target("L compiled fastgen VAE loop: graphs compiled after the first epoch", recompiles, "<=", 0)]
    print(format_targets(targets))
    return {"title": title.strip(), "samples": int(X.shape[0]), "batch": EPOCH_BATCH, "summary": summary,
            "recompiles_after_warmup": recompiles, "targets": targets, "load": mon.as_dict(),
            "torch_threads": torch.get_num_threads()}
