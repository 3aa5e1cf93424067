"""``python -m bench vae``: the VAE's hot ops on the CPU against plain PyTorch.

R. Reparameterisation + KL, forward and backward, batch 4096 x latent 64 and 256, float32:
   fastgen's fused op (``torch.ops.fastgen.reparameterize``, eps regenerated in the backward)
   against torch eager (``mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)`` plus the KL
   expression) and against ``torch.compile`` of that same function (inductor). The loss each
   implementation receives the same fixed gradients for z and kl (``torch.autograd.backward``).
   Targets: >= 3x eager, >= 1.2x torch.compile.
C. Transposed convolution + bias + activation, forward, on the four up-sampling layers of the
   DCGAN generator with 64x64 output (batch 128: 512->256 channels at 8x8, 256->128 at 16x16,
   128->64 at 32x32, 64->3 at 64x64; kernel 4, stride 2, padding 1; ReLU, tanh on the last):
   fastgen's fused op against F.conv_transpose2d followed by the activation (oneDNN).
   Target: at least as fast as the torch pair (ratio >= 1).

E. One VAE training epoch on MNIST (pytorch/examples' 784-400-20 VAE, batch 128, Adam) against
   the same model in plain PyTorch eager: see bench/vae_epoch.py. Target: >= 1.2x eager.
"""
from __future__ import annotations

from .vae_epoch import EPOCH_BATCH, compiled_loop_scenario, vae_epoch_scenario
from .common import (data_dir, DEFAULT_COOLDOWN_S, format_table, format_targets, load_warning, LoadMonitor,
                     print_target_summary, register, RESULTS_DIR, results_document, start_torch_suite,
                     summarize, target, time_interleaved, write_json)

BATCH, LATENTS = 4096, (64, 256)
QUICK_BATCH = 256
REPARAM_MIN_SPEEDUP_EAGER = 3.0
REPARAM_MIN_SPEEDUP_COMPILE = 1.2
DEFAULT_REPEATS, QUICK_REPEATS = 21, 2
CALLS_PER_TIMING = 10


def eager_reparameterize(mu, logvar):
    import torch

    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    kl = 0.5 * (mu * mu + torch.exp(logvar) - 1.0 - logvar).sum(dim=1)
    return z, kl


def reparam_scenario(batch, latent, repeats, cooldown):
    import torch

    from fastgen import Generator
    from fastgen.torch.ops.reparam import reparameterize

    g = torch.Generator().manual_seed(0)
    mu = torch.randn(batch, latent, generator=g).requires_grad_()
    logvar = torch.randn(batch, latent, generator=g).mul_(0.5).requires_grad_()
    # The gradients arriving from the rest of a VAE, handed to autograd directly: the timing is
    # the op's forward and backward, not a loss around it.
    grad_z = torch.randn(batch, latent, generator=g)
    grad_kl = torch.randn(batch, generator=g)
    compiled = torch.compile(eager_reparameterize)
    gen = Generator(0)

    def step(fn):
        def run():
            for _ in range(CALLS_PER_TIMING):
                mu.grad = logvar.grad = None
                z, kl = fn(mu, logvar)
                torch.autograd.backward((z, kl), (grad_z, grad_kl))
        return run

    fns = {"torch eager": step(eager_reparameterize),
           "torch.compile (inductor)": step(compiled),
           "fastgen fused op": step(lambda m, lv: reparameterize(m, lv, gen))}
    for fn in fns.values():  # compile and warm up outside the timing
        fn()
    with LoadMonitor() as mon:
        times = time_interleaved(fns, repeats, cooldown=cooldown)
    summary = summarize(times, floor=None, reference="torch eager")
    title = (f"\nR. reparameterisation + KL, forward + backward, {batch} x {latent} float32, "
             f"{CALLS_PER_TIMING} calls per timing (median of {repeats})")
    print(format_table(title, summary, floor=None, reference="torch eager"))
    warning = load_warning(mon.as_dict())
    if warning:
        print("  " + warning)
    ours = summary["fastgen fused op"]["median_s"]
    targets = [
        target(f"reparam {batch}x{latent}: speed-up vs torch eager", summary["torch eager"]["median_s"] / ours, ">=",
               REPARAM_MIN_SPEEDUP_EAGER, "x"),
        target(f"reparam {batch}x{latent}: speed-up vs torch.compile",
               summary["torch.compile (inductor)"]["median_s"] / ours, ">=", REPARAM_MIN_SPEEDUP_COMPILE, "x"),
    ]
    print(format_targets(targets))
    return {"shape": [batch, latent], "dtype": "float32", "summary": summary, "targets": targets,
            "load": mon.as_dict(), "torch_threads": torch.get_num_threads()}


DCGAN_LAYERS = ((512, 256, 4, "relu"), (256, 128, 8, "relu"), (128, 64, 16, "relu"), (64, 3, 32, "tanh"))
DCGAN_BATCH, QUICK_DCGAN_BATCH = 128, 4
CONV_MIN_SPEEDUP = 1.0


def conv_scenario(batch, repeats, cooldown):
    import torch
    import torch.nn.functional as F

    from fastgen.torch.ops.conv import conv_transpose2d

    g = torch.Generator().manual_seed(0)
    layers = []
    for c_in, c_out, size, act in DCGAN_LAYERS:
        x = torch.randn(batch, c_in, size, size, generator=g)
        w = torch.randn(c_in, c_out, 4, 4, generator=g) * 0.02
        b = torch.randn(c_out, generator=g) * 0.1
        layers.append((x, w, b, act))
    torch_act = {"relu": F.relu, "tanh": torch.tanh}

    def torch_pair():
        with torch.no_grad():
            for x, w, b, act in layers:
                torch_act[act](F.conv_transpose2d(x, w, b, 2, 1))

    def fastgen_op():
        with torch.no_grad():
            for x, w, b, act in layers:
                conv_transpose2d(x, w, b, 2, 1, 0, act)

    fns = {"F.conv_transpose2d + activation": torch_pair, "fastgen fused op": fastgen_op}
    with LoadMonitor() as mon:
        times = time_interleaved(fns, repeats, cooldown=cooldown)
    summary = summarize(times, floor=None, reference="F.conv_transpose2d + activation")
    title = (f"\nC. transposed convolution + bias + activation, forward, DCGAN generator's 4 up-sampling layers, "
             f"batch {batch}, float32 (median of {repeats})")
    print(format_table(title, summary, floor=None, reference="F.conv_transpose2d + activation",
                       reference_label="torch pair"))
    warning = load_warning(mon.as_dict())
    if warning:
        print("  " + warning)
    targets = [target(f"conv_transpose2d (DCGAN layers, batch {batch}): speed-up vs the torch pair",
                      summary["fastgen fused op"]["speedup_vs_reference"], ">=", CONV_MIN_SPEEDUP, "x")]
    print(format_targets(targets))
    return {"batch": batch, "layers": [list(layer) for layer in DCGAN_LAYERS], "summary": summary,
            "targets": targets, "load": mon.as_dict()}


def run_suite(args) -> dict:
    quick = bool(getattr(args, "quick", False))
    repeats = args.repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    cooldown = DEFAULT_COOLDOWN_S if getattr(args, "cooldown", None) is None else args.cooldown
    env = start_torch_suite("fastgen VAE ops (CPU) vs PyTorch", quick)
    batch = QUICK_BATCH if quick else BATCH
    scenarios = {f"R_reparam_{batch}x{latent}_float32": reparam_scenario(batch, latent, repeats, cooldown)
                 for latent in LATENTS}
    conv_batch = QUICK_DCGAN_BATCH if quick else DCGAN_BATCH
    scenarios[f"C_conv_transpose_dcgan_batch{conv_batch}_float32"] = conv_scenario(conv_batch, max(1, repeats // 3),
                                                                                   cooldown)
    scenarios[f"E_vae_epoch_mnist_batch{EPOCH_BATCH}_float32"] = vae_epoch_scenario(
        data_dir(), quick, max(1, repeats // 2), cooldown)
    scenarios[f"L_compiled_vae_loop_batch{EPOCH_BATCH}_float32"] = compiled_loop_scenario(
        data_dir(), quick, max(1, repeats // 2), cooldown)
    document = results_document("vae", env, {"quick": quick, "repeats": repeats, "calls_per_timing": CALLS_PER_TIMING},
                                scenarios)
    print_target_summary(scenarios)
    return document


@register("vae", "VAE/GAN ops vs PyTorch: reparameterisation + KL (eager, torch.compile), transposed convolution", results_file="vae_cpu.json")
def main(args) -> int:
    document = run_suite(args)
    if getattr(args, "json", False):
        path = write_json(document, getattr(args, "out", None) or RESULTS_DIR / "vae_cpu.json")
        print(f"\nwrote {path}")
    return 0

