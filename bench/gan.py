"""``python -m bench gan``: GAN mode coverage on the 2-D mixtures, and DCGAN training speed on the
CPU against a plain PyTorch eager DCGAN.

M. Mode coverage (Metz et al. 2017's synthetic tests, scaled down to run on 2 CPU cores): a
   mixture of 8 Gaussians on a circle of radius 2 (sd 0.02) and of 25 on the grid
   {-4,-2,0,2,4}^2 (sd 0.05). Generator: MLP, z of 64 dims, two hidden ReLU layers of 128;
   discriminator: one hidden ReLU layer of 128 (Metz et al.'s sizes). Adam (betas (0.5, 0.999)),
   batch 128, 3,000 generator steps: 2,000 at lr 1e-3, the last 1,000 at 1e-4 (Metz et al.: 25,000
   steps at 1e-4, too long here). Methods: standard GAN (minimax
   loss), non-saturating loss, LSGAN, minibatch discrimination (non-saturating loss; 5 kernels
   of dimension 3), unrolled GAN (non-saturating loss, 5 unrolled Adam steps of D). After
   training, 2,500 samples are drawn: a sample is high quality when within 3 sd of its nearest
   mode; a mode is covered when at least 20 high-quality samples have it as nearest (PacGAN's
   rule). PNG: samples (dots) over the modes (3-sd circles), one panel per method.
S. Speed, float32, same init, same algorithm (one discriminator step on a real and a fake batch,
   then one generator step, non-saturating loss, Adam):
   S1: one training step of a 64x64 DCGAN (width 64, z 100, RGB), batch 128;
   S2: MNIST (``../shared/data``, 28x28, width 64, batch 128): a fixed number of iterations,
       reported per iteration and scaled to the 78 iterations of an epoch of the 10k images.
   fastgen: DCGANGenerator (``torch.ops.fastgen.conv_transpose2d``, no bias before batch norm,
   bias + tanh fused in the output layer) and DCGANDiscriminator (channels-last on the CPU),
   with the optimiser GANTrainer builds (``fastgen.torch.optim.adam``: torch's fused Adam) and,
   like GANTrainer, a G step whose backward computes G's gradients only (not D's weight
   gradients, which plain training loops compute and discard).
   Anchors: the same networks in plain eager PyTorch (nn.ConvTranspose2d + BatchNorm2d + ReLU,
   Tanh), weights copied, with torch.optim.Adam's default -- the target's reference -- and the
   same eager networks with the layout, optimiser and G step that fastgen adopts (the
   discriminator and its inputs in channels_last, ``Adam(fused=True)``, G-only gradients in the
   G step): the gap between the two anchors is what those training-loop choices give, the rest
   is fastgen's kernels.
   Target: fastgen at least 1.2x faster than the plain eager DCGAN. Then a fastgen DCGAN trains
   one epoch on MNIST and writes its sample grid.

``--speed-only`` runs S1 and S2 alone (no mode coverage, no MNIST sample epoch); with ``--json``
it replaces only the speed scenarios (and records the speed run's environment) in the existing
results file.
"""
from __future__ import annotations

import copy
import math
import tempfile
import time
from pathlib import Path

from .common import (data_dir, DEFAULT_COOLDOWN_S, format_table, format_targets, load_warning,
                     LoadMonitor, print_target_summary, register, RESULTS_DIR, results_document, skip_line,
                     start_torch_suite, summarize, target, time_interleaved, write_json)

SPEED_MIN = 1.2
TOY = dict(latent_dim=64, hidden=128, g_layers=2, d_layers=1, lr=1e-3, final_lr=1e-4, final_fraction=1 / 3, batch=128,
           steps=3000, quick_steps=150,
           n_eval=2500, mbd_kernels=5, mbd_dim=3, unrolled=5, train_size=100_000)
METHODS = {  # name -> (loss, minibatch kernels, unrolled steps)
    "standard GAN (minimax)": ("minimax", 0, 0),
    "non-saturating": ("nonsaturating", 0, 0),
    "LSGAN": ("lsgan", 0, 0),
    "minibatch discrimination": ("nonsaturating", TOY["mbd_kernels"], 0),
    "unrolled GAN (5 steps)": ("nonsaturating", 0, TOY["unrolled"]),
}
MNIST_ITERATIONS, QUICK_MNIST_ITERATIONS = 10, 2
ANCHOR_CL = "PyTorch eager DCGAN, channels_last D + fused Adam + G-only G-step grads"
MNIST_BATCH = 128


# ---- mode coverage -------------------------------------------------------------------------------
def _train_toy(centres, std, loss, mbd, unrolled, steps, seed):
    import torch

    from fastgen.torch.gan import GANConfig, GANTrainer, MLPDiscriminator, MLPGenerator, generate
    from fastgen.torch.gan.data import mode_coverage, sample_mixture

    t = TOY
    torch.manual_seed(seed)
    g = MLPGenerator(latent_dim=t["latent_dim"], hidden=t["hidden"], n_layers=t["g_layers"])
    d = MLPDiscriminator(hidden=t["hidden"], n_layers=t["d_layers"], minibatch_kernels=mbd,
                         minibatch_kernel_dim=t["mbd_dim"])
    data = sample_mixture(centres, std, t["train_size"], torch.Generator().manual_seed(seed))
    trainer = GANTrainer(g, d, data, config=GANConfig(loss=loss, unrolled_steps=unrolled, lr_g=t["lr"],
                                                      lr_d=t["lr"], batch_size=t["batch"], seed=seed))
    start = time.perf_counter()
    # the last third at a tenth of the learning rate: Adam's noise at 1e-3 smears the samples over
    # more than the modes' 3-sd radius (0.06 on the ring); every method gets the same schedule
    final = int(steps * t["final_fraction"])
    epochs = math.ceil(steps / trainer.iterations_per_epoch)
    trainer.train(epochs, progress=False, stop_after=steps - final)
    for optimizer in (trainer.opt_g, trainer.opt_d):
        for group in optimizer.param_groups:
            group["lr"] = t["final_lr"]
    trainer.train(epochs, progress=False, stop_after=final)
    seconds = time.perf_counter() - start
    z = torch.randn(t["n_eval"], t["latent_dim"], generator=torch.Generator().manual_seed(seed + 1000))
    samples = generate(g, z)
    return mode_coverage(samples, centres, std), samples, seconds


def _scatter_png(path, panels, centres, std, extent):
    """One panel per method: modes as 3-sd circles (grey), samples as dots (black)."""
    from PIL import Image, ImageDraw

    size, pad, head = 220, 6, 14
    img = Image.new("RGB", (len(panels) * (size + pad) + pad, size + head + 2 * pad), "white")
    draw = ImageDraw.Draw(img)

    def to_px(x, y, left):
        return (left + (x + extent) / (2 * extent) * size, pad + head + (extent - y) / (2 * extent) * size)

    for k, (title, samples) in enumerate(panels):
        left = pad + k * (size + pad)
        draw.rectangle([left, pad + head, left + size, pad + head + size], outline="black")
        draw.text((left + 2, pad), title[:34], fill="black")
        r = 3 * std / (2 * extent) * size
        for cx, cy in centres.tolist():
            px, py = to_px(cx, cy, left)
            draw.ellipse([px - max(r, 2), py - max(r, 2), px + max(r, 2), py + max(r, 2)], outline=(0, 160, 0))
        for x, y in samples.tolist():
            if abs(x) < extent and abs(y) < extent:
                px, py = to_px(x, y, left)
                draw.point((px, py), fill=(200, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG", optimize=True)
    return path


def coverage_scenario(quick: bool, seed: int, out_dir):
    from fastgen.torch.gan.data import GRID_STD, RING_STD, grid_centres, ring_centres

    steps = TOY["quick_steps"] if quick else TOY["steps"]
    results = {}
    print(f"\nM. mode coverage: {steps} generator steps, batch {TOY['batch']}, Adam lr {TOY['lr']} (last third "
          f"{TOY['final_lr']}); "
          f"{TOY['n_eval']} samples; high quality = within 3 sd of the nearest mode; a mode is covered with "
          f">= 20 high-quality samples")
    for dataset, centres, std, extent in (("ring8", ring_centres(), RING_STD, 2.6), ("grid25", grid_centres(), GRID_STD,
                                                                                     5.2)):
        rows, panels = {}, []
        print(f"  {dataset} ({centres.shape[0]} modes, sd {std}):")
        print(f"    {'method':<28}{'modes covered':>15}{'high-quality share':>20}{'seconds':>9}")
        for name, (loss, mbd, unrolled) in METHODS.items():
            metrics, samples, seconds = _train_toy(centres, std, loss, mbd, unrolled, steps, seed)
            rows[name] = {**metrics, "seconds": seconds, "loss": loss, "minibatch_kernels": mbd,
                          "unrolled_steps": unrolled}
            panels.append((f"{name}: {metrics['modes_covered']}/{metrics['n_modes']}, "
                           f"{metrics['high_quality_share']:.0%}", samples))
            print(f"    {name:<28}{metrics['modes_covered']:>9}/{metrics['n_modes']:<5}"
                  f"{metrics['high_quality_share']:>20.3f}{seconds:>9.1f}", flush=True)
        png = _scatter_png(out_dir / f"gan_{dataset}.png", panels, centres, std, extent)
        unrolled_name, standard = "unrolled GAN (5 steps)", "standard GAN (minimax)"
        u, s, ns = (rows[k]["modes_covered"] for k in (unrolled_name, standard, "non-saturating"))
        verdict = ("more modes than" if u > s else "as many modes as" if u == s else "fewer modes than")
        print(f"    unrolled GAN covers {verdict} the standard GAN ({u} vs {s}; non-saturating: {ns})")
        print(f"    wrote {png}")
        results[dataset] = {"methods": rows, "png": str(png), "unrolled_beats_standard": u > s,
                            "unrolled_beats_nonsaturating": u > ns}
    return {"settings": dict(TOY, steps=steps, seed=seed), "results": results}


# ---- speed -------------------------------------------------------------------------------------
def eager_generator(generator):
    """The same generator as plain eager PyTorch modules, weights copied (z enters as (N, nz, 1, 1))."""
    import torch
    from torch import nn

    layers = []
    last = len(generator.weights) - 1
    for i, w in enumerate(generator.weights):
        stride, padding = generator.geometry[i]
        c_in, c_out, k, _ = w.shape
        conv = nn.ConvTranspose2d(c_in, c_out, k, stride, padding, bias=(i == last))
        with torch.no_grad():
            conv.weight.copy_(w)
            if i == last:
                conv.bias.copy_(generator.output_bias)
        layers += [conv, nn.Tanh()] if i == last else [conv, copy.deepcopy(generator.norms[i]), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def _step_fn(generator, discriminator, real, batch, latent, seed, reshape_z, optimizer=None, d_input=None,
             g_only=False):
    """One iteration: D step on (real, G(z).detach()), then G step; NS loss, Adam (0.5, 0.999)
    (``optimizer(params, lr=, betas=)``, default torch.optim.Adam); ``d_input`` maps the images
    before the discriminator (the channels-last anchor's layout change); ``g_only``: the G step's
    backward computes the generator's gradients only (``backward(inputs=G's parameters)``, as
    GANTrainer does), not the discriminator's weight gradients it would discard."""
    import torch

    from fastgen.torch.gan import discriminator_loss, generator_loss

    optimizer = optimizer or torch.optim.Adam
    d_input = d_input or (lambda t: t)
    opt_g = optimizer(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = optimizer(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    noise = torch.Generator().manual_seed(seed)
    state = {"i": 0}
    g_params = list(generator.parameters()) if g_only else None

    def step():
        x = real[(state["i"] * batch) % real.shape[0]:][:batch]
        state["i"] += 1
        z = torch.randn(batch, latent, generator=noise)
        z = z.view(batch, latent, 1, 1) if reshape_z else z
        with torch.no_grad():
            fake = generator(z)
        d_loss = discriminator_loss(discriminator(d_input(x)), discriminator(d_input(fake)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        z = torch.randn(batch, latent, generator=noise)
        fake = generator(z.view(batch, latent, 1, 1) if reshape_z else z)
        g_loss = generator_loss(discriminator(d_input(fake)))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward(inputs=g_params)
        opt_g.step()
        return float(d_loss.detach()), float(g_loss.detach())

    return step


def _pair(image_size, channels, width, latent, seed):
    import torch

    from fastgen.torch.gan import DCGANDiscriminator, DCGANGenerator

    torch.manual_seed(seed)
    g = DCGANGenerator(latent, image_size, channels, width)
    d = DCGANDiscriminator(image_size, channels, width)
    return (g, d), (eager_generator(g), copy.deepcopy(d))


def speed_scenario(label, title, real, image_size, channels, width, batch, iterations, repeats, cooldown):
    import torch

    from fastgen.torch.gan import DCGANDiscriminator
    from fastgen.torch.optim import adam

    latent = 100
    (g, d), (eg, ed) = _pair(image_size, channels, width, latent, 0)
    # identical networks: check the first forward agrees before timing anything
    z = torch.randn(4, latent, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(g(z), eg(z.view(4, latent, 1, 1)), rtol=1e-4, atol=1e-5)
    # the eager discriminator is a copy of fastgen's module: make it the plain NCHW one
    ed.channels_last = False
    eg_cl, ed_cl = copy.deepcopy(eg), copy.deepcopy(ed).to(memory_format=torch.channels_last)
    assert DCGANDiscriminator.channels_last, "the fastgen row measures the discriminator as a user gets it"
    ours = _step_fn(g, d, real, batch, latent, 1, False, optimizer=adam, g_only=True)
    theirs = _step_fn(eg, ed, real, batch, latent, 1, True)
    theirs_cl = _step_fn(eg_cl, ed_cl, real, batch, latent, 1, True,
                         optimizer=lambda params, **kw: torch.optim.Adam(params, fused=True, **kw),
                         d_input=lambda t: t.to(memory_format=torch.channels_last), g_only=True)

    def repeat(fn):
        def run():
            for _ in range(iterations):
                fn()
        return run

    fns = {"PyTorch eager DCGAN": repeat(theirs), ANCHOR_CL: repeat(theirs_cl), "fastgen DCGAN": repeat(ours)}
    with LoadMonitor() as mon:
        times = time_interleaved(fns, repeats, cooldown=cooldown)
    summary = summarize(times, floor=None, reference="PyTorch eager DCGAN")
    print(format_table(title, summary, floor=None, reference="PyTorch eager DCGAN", reference_label="eager"))
    warning = load_warning(mon.as_dict())
    if warning:
        print("  " + warning)
    speedup = summary["fastgen DCGAN"]["speedup_vs_reference"]
    print(f"  fastgen DCGAN vs the eager anchor with the same layout, optimiser and G step: "
          f"{summary[ANCHOR_CL]['median_s'] / summary['fastgen DCGAN']['median_s']:.2f}x (its kernels' share)")
    targets = [target(f"{label}: speed-up vs PyTorch eager DCGAN", speedup, ">=", SPEED_MIN, "x")]
    print(format_targets(targets))
    return {"image_size": image_size, "channels": channels, "width": width, "batch": batch,
            "iterations_per_timing": iterations, "summary": summary, "targets": targets, "load": mon.as_dict(),
            "torch_threads": torch.get_num_threads()}


def mnist_samples(mnist, out_dir, quick):
    """One epoch (or a few iterations with --quick) of a fastgen DCGAN on MNIST; the sample grid."""
    import torch

    from fastgen.torch.gan import DCGANDiscriminator, DCGANGenerator, GANConfig, GANTrainer

    torch.manual_seed(0)
    trainer = GANTrainer(DCGANGenerator(100, 28, 1, 32), DCGANDiscriminator(28, 1, 32), mnist,
                         config=GANConfig(batch_size=MNIST_BATCH, n_samples=64))
    start = time.perf_counter()
    trainer.train(1, progress=False, stop_after=3 if quick else None)
    seconds = time.perf_counter() - start
    path = trainer.write_samples(out_dir / "gan_mnist_samples.png")
    done = 3 if quick else trainer.iterations_per_epoch
    print(f"\nMNIST: a fastgen DCGAN (width 32, batch {MNIST_BATCH}) trained {done} iterations in {seconds:.1f} s; "
          f"D loss {trainer.history[-1]['d_loss'] if trainer.history else float('nan'):.3f}, "
          f"G loss {trainer.history[-1]['g_loss'] if trainer.history else float('nan'):.3f}; wrote {path}")
    return {"iterations": done, "seconds": seconds, "png": str(path), "history": trainer.history}


def run_suite(args) -> dict:
    import torch

    quick = bool(getattr(args, "quick", False))
    speed_only = bool(getattr(args, "speed_only", False))
    cooldown = DEFAULT_COOLDOWN_S if getattr(args, "cooldown", None) is None else args.cooldown
    # --quick is a smoke test: its PNGs go to a temporary folder, not over the measured ones
    out_dir = Path(tempfile.gettempdir()) / "fastgen_bench_gan" if quick else RESULTS_DIR
    env = start_torch_suite("fastgen GANs: mode coverage and DCGAN speed (CPU)", quick)
    scenarios = {}
    if not speed_only:
        coverage = coverage_scenario(quick, 0, out_dir)
        scenarios["M_mode_coverage"] = {**coverage, "targets": []}

    repeats = args.repeats or (2 if quick else 5)
    batch = 8 if quick else 128
    g = torch.Generator().manual_seed(0)
    real64 = torch.rand(batch * 2, 3, 64, 64, generator=g) * 2 - 1
    scenarios[f"S1_dcgan64_step_batch{batch}"] = speed_scenario(
        f"DCGAN 64x64 step (batch {batch})",
        f"\nS1. one DCGAN training step, 64x64 RGB, width 64, batch {batch}, D + G updates (median of {repeats})",
        real64, 64, 3, 64, batch, 1, repeats, cooldown)

    mnist_path = data_dir() / "mnist_test_10k.npz"
    if mnist_path.is_file():
        import numpy as np

        with np.load(mnist_path) as f:
            mnist = torch.from_numpy(f["data"].astype(np.float32) / 255.0)[:, None] * 2 - 1
        iterations = QUICK_MNIST_ITERATIONS if quick else MNIST_ITERATIONS
        mnist_batch = 8 if quick else MNIST_BATCH
        epoch_iterations = mnist.shape[0] // MNIST_BATCH
        result = speed_scenario(
            f"MNIST DCGAN iterations (batch {mnist_batch})",
            f"\nS2. MNIST DCGAN, 28x28, width 64, batch {mnist_batch}: {iterations} iterations per timing (an "
            f"epoch of the 10k images is {epoch_iterations}; a whole one per repeat would take too long on this "
            f"machine) (median of {repeats})", mnist, 28, 1, 64, mnist_batch, iterations, repeats, cooldown)
        per_it = {k: v["median_s"] / iterations for k, v in result["summary"].items()}
        print("  per iteration: " + ", ".join(f"{k} {v:.3f} s" for k, v in per_it.items())
              + f"; estimated epoch ({epoch_iterations} iterations): "
              + ", ".join(f"{k} {v * epoch_iterations:.0f} s" for k, v in per_it.items()))
        result["estimated_epoch_s"] = {k: v * epoch_iterations for k, v in per_it.items()}
        scenarios[f"S2_mnist_dcgan28_batch{mnist_batch}"] = result
        if not speed_only:
            scenarios["MNIST_samples"] = {**mnist_samples(mnist, out_dir, quick), "targets": []}
    else:
        skip_line("S2 / MNIST", f"{mnist_path} not found")
    document = results_document("gan", env, {"quick": quick, "repeats": repeats, "speed_only": speed_only},
                                scenarios)
    print_target_summary(scenarios)
    return document


def _merge_speed(document: dict, path: Path) -> dict:
    """The results file at ``path`` with its speed scenarios replaced by ``document``'s (a
    --speed-only run); the mode-coverage and MNIST-sample entries are kept as they were."""
    import json

    if not path.is_file():
        return document
    merged = json.loads(path.read_text())
    merged["scenarios"] = {k: v for k, v in merged["scenarios"].items() if not k.startswith(("S1_", "S2_"))}
    merged["scenarios"].update(document["scenarios"])
    merged["speed_run"] = {"command": document["command"], "environment": document["environment"],
                           "settings": document["settings"]}
    return merged


def _add_arguments(parser) -> None:
    parser.add_argument("--speed-only", action="store_true",
                        help="run the DCGAN speed scenarios (S1, S2) only; with --json, replace only their "
                             "entries in the results file")


@register("gan", "GANs: mode coverage on 2-D mixtures (8 ring, 25 grid); DCGAN training speed vs eager PyTorch",
          add_arguments=_add_arguments, results_file="gan_cpu.json")
def main(args) -> int:
    document = run_suite(args)
    if getattr(args, "json", False):
        path = Path(getattr(args, "out", None) or RESULTS_DIR / "gan_cpu.json")
        if getattr(args, "speed_only", False):
            document = _merge_speed(document, path)
        path = write_json(document, path)
        print(f"\nwrote {path}")
    return 0
