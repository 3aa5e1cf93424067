"""The GAN training loop: k discriminator steps per generator step, any loss of :mod:`.losses`,
label smoothing, the unrolled generator loss, progress bar, exactly resumable checkpoints, PNG
sample grids from fixed noise after every epoch, latent interpolation.

Randomness: the data order of epoch e is ``np.random.default_rng([seed, e]).permutation``; the
noise (z and, for a conditional model, the fake labels) comes from one ``torch.Generator`` seeded
with ``seed`` whose state is checkpointed; the fixed noise for the sample grids and the virtual
batch norm reference batches come from ``seed + 1`` once, at construction. Nothing else draws
random numbers, so a run that stops, saves and resumes gives bitwise the parameters of a run
that did not stop (on the same machine and thread count).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from ..optim import adam
from ..._checks import positive_int
from ._checks import check_labels, float_tensor, positive_float
from .losses import check_loss, discriminator_loss, generator_loss, label_targets
from .stabilizers import unrolled_generator_loss

CHECKPOINT_FORMAT = "fastgen-gan-1"


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; training stopped before applying that step."""


@dataclass
class GANConfig:
    """Training settings.

    loss : {"minimax", "nonsaturating", "lsgan"}
    smoothing : {"none", "one_sided", "two_sided"} (see :func:`.losses.label_targets`)
    d_steps : discriminator steps (each on a fresh real batch) per generator step
    unrolled_steps : > 0 trains the generator against the discriminator that many steps ahead
        (:func:`.stabilizers.unrolled_generator_loss`, unrolling D's own Adam)
    lr_g, lr_d, betas : Adam settings (Radford et al.: 2e-4, (0.5, 0.999))
    batch_size : real samples per discriminator step (and generated samples per step); the
        incomplete last batch of an epoch is dropped (batch norm on a handful of samples is noise)
    n_samples : fixed-noise samples drawn for the grid after every epoch
    seed : see the module docstring
    """

    loss: str = "nonsaturating"
    smoothing: str = "none"
    d_steps: int = 1
    unrolled_steps: int = 0
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple = (0.5, 0.999)
    batch_size: int = 64
    n_samples: int = 64
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def check(self) -> "GANConfig":
        check_loss(self.loss)
        label_targets(self.smoothing)
        positive_int(self.d_steps, "d_steps")
        positive_int(self.unrolled_steps, "unrolled_steps", minimum=0)
        positive_float(self.lr_g, "lr_g")
        positive_float(self.lr_d, "lr_d")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        positive_int(self.batch_size, "batch_size")
        positive_int(self.n_samples, "n_samples")
        positive_int(self.seed, "seed", minimum=0)
        return self


def generate(generator: nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Samples from ``generator`` without changing it: batch norm normalises with the batch's own
    statistics (as in training) but its running statistics are left as they were.

    Shapes: z (N, latent_dim), labels (N,) -> the generator's output (N, ...)."""
    buffers = {name: b.clone() for name, b in generator.named_buffers()}
    args = (z,) if labels is None else (z, labels)
    with torch.no_grad():
        return functional_call(generator, buffers, args)


def interpolate_latents(z0: torch.Tensor, z1: torch.Tensor, n_steps: int, method: str = "slerp") -> torch.Tensor:
    """Points from ``z0`` to ``z1`` (both (D,)): ``n_steps`` of them, ends included, shape (n_steps, D).

    ``"slerp"`` (the default) follows the great circle with interpolated norm (White 2016): a
    straight line between two Gaussian samples passes through points of atypically small norm;
    ``"linear"`` is the straight line."""
    float_tensor(z0, "z0")
    float_tensor(z1, "z1")
    if z0.dim() != 1 or z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must be 1-D of the same length, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    n_steps = positive_int(n_steps, "n_steps")
    t = torch.linspace(0.0, 1.0, n_steps, dtype=z0.dtype)[:, None]
    if method == "linear":
        return (1 - t) * z0 + t * z1
    if method != "slerp":
        raise ValueError(f"method must be 'slerp' or 'linear', got {method!r}")
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(omega.sin()) < 1e-6:   # (anti)parallel: the circle is undefined, the line is fine
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / omega.sin()


def save_image_grid(images: torch.Tensor, path, ncols: int | None = None, scale: int = 2) -> Path:
    """Write images in [-1, 1] (the generator's tanh range), shape (N, C, H, W) with C = 1 or 3,
    as one PNG grid (grayscale or RGB)."""
    from PIL import Image

    from ..._png import tile_images

    float_tensor(images, "images")
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (N, 1 or 3, H, W), got {tuple(images.shape)}")
    x = ((images.detach().double().clamp(-1, 1) + 1) / 2).numpy()
    n, c, h, w = x.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    planes = [tile_images(x[:, k], (h, w), ncols=ncols, padding=1) for k in range(c)]
    pixels = np.rint(np.stack(planes, axis=-1) * 255).astype(np.uint8)
    pixels = np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
    from ...serialization import atomic_write

    image = Image.fromarray(pixels[..., 0] if c == 1 else pixels)
    return atomic_write(path, lambda fh: image.save(fh, format="PNG"))  # never a half-written PNG


class GANTrainer:
    """Trains a generator/discriminator pair on ``data``.

    Parameters
    ----------
    generator : nn.Module
        ``generator(z[, labels])`` with a ``latent_dim`` attribute (and ``n_classes``), e.g.
        :class:`.DCGANGenerator`, :class:`.MLPGenerator`.
    discriminator : nn.Module
        ``discriminator(x[, labels]) -> (N,)`` logits, with ``input_shape`` and ``n_classes``.
    data : Tensor of shape (N, *discriminator.input_shape)
        Real samples (images in [-1, 1] for the DCGAN's tanh output).
    labels : LongTensor of shape (N,), required iff the models are conditional
    config : GANConfig

    Attributes
    ----------
    epoch, iteration : completed epochs, generator steps done in the current epoch
    history : one dict per completed epoch (mean losses, seconds)
    fixed_z, fixed_labels : the noise behind every epoch's sample grid
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, data: torch.Tensor,
                 labels: torch.Tensor | None = None, config: GANConfig | None = None, job=None):
        self.config = (config or GANConfig()).check()
        self.set_job(job)  # the data's size is checked below, after its shape
        c = self.config
        self.generator, self.discriminator = generator, discriminator
        self.n_classes = int(getattr(generator, "n_classes", 0))
        if int(getattr(discriminator, "n_classes", 0)) != self.n_classes:
            raise ValueError(f"the generator is conditional on {self.n_classes} classes but the discriminator on "
                             f"{getattr(discriminator, 'n_classes', 0)}; they must agree")
        float_tensor(data, "data")
        expected = tuple(discriminator.input_shape)
        if data.dim() != 1 + len(expected) or tuple(data.shape[1:]) != expected:
            raise ValueError(f"data must have shape (N, {', '.join(map(str, expected))}) to match the "
                             f"discriminator, got {tuple(data.shape)}")
        if not bool(torch.isfinite(data).all()):
            raise ValueError("data holds NaN or infinite values")
        if self.n_classes and labels is not None and (not isinstance(labels, torch.Tensor) or labels.dim() != 1
                                                      or labels.shape[0] != data.shape[0]):
            shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise ValueError(f"labels must hold one class per sample of data, shape ({data.shape[0]},), got {shape}")
        self.labels = check_labels(labels, data.shape[0], self.n_classes)
        if self.labels is not None:
            self.labels = self.labels.long()
        self.data = data
        self._check_enough_data(data.shape[0])
        self.real_target, self.fake_target = label_targets(c.smoothing)
        betas = tuple(float(b) for b in c.betas)
        self.opt_g = adam(generator.parameters(), lr=c.lr_g, betas=betas)
        self.opt_d = adam(discriminator.parameters(), lr=c.lr_d, betas=betas)
        self._g_params = [p for p in generator.parameters() if p.requires_grad]
        self.noise = torch.Generator().manual_seed(c.seed)
        fixed = torch.Generator().manual_seed(c.seed + 1)
        self.fixed_z = torch.randn(c.n_samples, generator.latent_dim, generator=fixed, dtype=data.dtype)
        self.fixed_labels = (torch.arange(c.n_samples) % self.n_classes) if self.n_classes else None
        for model, ref in ((generator, "noise"), (discriminator, "data")):
            if getattr(model, "norm", None) == "virtual":
                size = model.reference_inputs.shape[0]
                if ref == "noise":
                    inputs = torch.randn(size, generator.latent_dim, generator=fixed, dtype=data.dtype)
                    ref_labels = torch.randint(0, self.n_classes, (size,), generator=fixed) if self.n_classes else None
                else:
                    index = torch.randperm(data.shape[0], generator=fixed)[:size]
                    if len(index) < size:
                        raise ValueError(f"data has {data.shape[0]} samples, fewer than the discriminator's "
                                         f"reference batch ({size})")
                    inputs, ref_labels = data[index], (self.labels[index] if self.n_classes else None)
                model.set_reference(inputs, ref_labels)
        self.epoch = 0
        self.iteration = 0
        self._sums = {"d_loss": 0.0, "g_loss": 0.0}
        self.history: list[dict] = []
        self.last_checkpoint: Path | None = None

    def set_job(self, job, n_samples: int | None = None) -> None:
        """Train as one rank of ``job`` (fastgen.torch.train.distributed; None: one process):
        ``config.batch_size`` rows per rank, gradients averaged, rank 0 writes."""
        if job is not None and self.config.unrolled_steps:
            raise ValueError("unrolled_steps > 0 under torchrun: the unrolled discriminator copies would train on "
                             "each rank's share alone; train an unrolled GAN in one process")
        self.job, self.world_size = job, 1 if job is None else job.world_size
        self.is_main = job is None or job.is_main
        if n_samples is None and hasattr(self, "data"):
            n_samples = self.data.shape[0]
        if n_samples is not None:
            self._check_enough_data(n_samples)

    def _check_enough_data(self, n_samples: int) -> None:
        c = self.config
        if n_samples < c.batch_size * self.world_size * c.d_steps:
            raise ValueError(f"data has {n_samples} samples, fewer than one iteration needs (batch_size "
                             f"{c.batch_size} x d_steps {c.d_steps}"
                             + (f" x {self.world_size} processes)" if self.world_size > 1 else ")"))

    # ---- data and noise ----
    @property
    def iterations_per_epoch(self) -> int:
        """Generator steps per epoch: each takes ``d_steps`` real batches (of every rank)."""
        return self.data.shape[0] // (self.config.batch_size * self.world_size) // self.config.d_steps

    def _order(self, epoch: int) -> torch.Tensor:
        return torch.from_numpy(np.random.default_rng([self.config.seed, epoch]).permutation(self.data.shape[0]))

    def _noise(self, n: int):
        z = torch.randn(n, self.generator.latent_dim, generator=self.noise, dtype=self.data.dtype)
        labels = torch.randint(0, self.n_classes, (n,), generator=self.noise) if self.n_classes else None
        return z, labels

    def _finite(self, loss: torch.Tensor, what: str) -> None:
        if not bool(torch.isfinite(loss.detach())):
            where = f"epoch {self.epoch + 1}, iteration {self.iteration + 1}"
            kept = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint is not None
                    else "no checkpoint had been written yet")
            raise NonFiniteLossError(
                f"non-finite {what} loss ({float(loss.detach())}) at {where}; training stopped before applying "
                f"this step; {kept} (try a lower learning rate, or another loss)")

    # ---- one generator step ----
    def _share(self, *tensors):
        """This rank's rows of a step's global batch (everything, in one process)."""
        if self.job is None:
            return tensors
        first, stop = self.job.share(self.config.batch_size * self.world_size)
        return tuple(None if t is None else t[first:stop] for t in tensors)

    def _step(self, optimizer, params) -> None:
        if self.job is not None:  # every rank's share is one batch_size: the mean of the means
            self.job.average_gradients(params)
        optimizer.step()

    def _mean_over_ranks(self, value: float) -> float:
        return value if self.job is None else self.job.sum(value) / self.world_size

    def train_iteration(self, order: torch.Tensor) -> tuple[float, float]:
        """``d_steps`` discriminator steps, then one generator step; returns (D loss, G loss) of
        the last discriminator step and the generator step. Under torchrun each step's global
        batch (``batch_size`` rows per rank, real and noise) is shared out, gradients averaged."""
        c, G, D = self.config, self.generator, self.discriminator
        d_args = dict(loss=c.loss, real_target=self.real_target, fake_target=self.fake_target)
        rows = c.batch_size * self.world_size
        for k in range(c.d_steps):
            index = order[(self.iteration * c.d_steps + k) * rows:][:rows]
            real = self.data[index]
            real_labels = self.labels[index] if self.n_classes else None
            z, fake_labels = self._noise(rows)
            real, real_labels, z, fake_labels = self._share(real, real_labels, z, fake_labels)
            with torch.no_grad():
                fake = G(z) if fake_labels is None else G(z, fake_labels)
            d_loss = discriminator_loss(self._d(real, real_labels), self._d(fake, fake_labels), **d_args)
            self._finite(d_loss, "discriminator")
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self._step(self.opt_d, D.parameters())
        z, fake_labels = self._share(*self._noise(rows))
        fake = G(z) if fake_labels is None else G(z, fake_labels)
        if c.unrolled_steps:
            g_loss = unrolled_generator_loss(D, real, fake, c.unrolled_steps, c.lr_d, real_labels=real_labels,
                                             fake_labels=fake_labels, optimizer=self.opt_d, **d_args)
        else:
            g_loss = generator_loss(self._d(fake, fake_labels), c.loss)
        self._finite(g_loss, "generator")
        self.opt_g.zero_grad(set_to_none=True)
        # gradients for the generator's parameters only: autograd then skips the discriminator's
        # weight gradients (its convolutions' grad_weight), which this step would only throw away
        g_loss.backward(inputs=self._g_params)
        self._step(self.opt_g, self._g_params)
        self.iteration += 1
        return self._mean_over_ranks(float(d_loss.detach())), self._mean_over_ranks(float(g_loss.detach()))

    def _d(self, x, labels):
        return self.discriminator(x) if labels is None else self.discriminator(x, labels)

    # ---- the loop ----
    def train(self, epochs: int, *, checkpoint=None, checkpoint_every: int | None = None, out_dir=None,
              progress: bool = True, stop_after: int | None = None) -> list[dict]:
        """Train until ``epochs`` epochs are complete (counting those already done).

        Parameters
        ----------
        epochs : int
        checkpoint : path, optional
            Saved after every epoch and every ``checkpoint_every`` iterations (atomically: the
            previous file stays until the new one is complete).
        out_dir : path, optional
            ``samples_epoch{E}.png`` (fixed noise) after every epoch, for image data.
        progress : bool
            tqdm bar per epoch with the running mean losses.
        stop_after : int, optional
            Return after this many iterations of this call (for tests of resuming).

        Raises
        ------
        NonFiniteLossError
            When a loss is NaN or infinite: that step is not applied and no checkpoint is
            written, so ``checkpoint`` keeps the last good state.
        """
        from tqdm.auto import tqdm

        epochs = positive_int(epochs, "epochs", minimum=0)
        if checkpoint_every is not None:
            positive_int(checkpoint_every, "checkpoint_every")
        self.generator.train()
        self.discriminator.train()
        done = 0
        per_epoch = self.iterations_per_epoch
        while self.epoch < epochs:
            order = self._order(self.epoch)
            bar = tqdm(total=per_epoch, initial=self.iteration, disable=not (progress and self.is_main), leave=True,
                       desc=f"epoch {self.epoch + 1}/{epochs}", unit="it", dynamic_ncols=True)
            start = time.perf_counter()
            try:
                while self.iteration < per_epoch:
                    d_loss, g_loss = self.train_iteration(order)
                    self._sums["d_loss"] += d_loss
                    self._sums["g_loss"] += g_loss
                    done += 1
                    bar.update(1)
                    bar.set_postfix(d_loss=f"{self._sums['d_loss'] / self.iteration:.4f}",
                                    g_loss=f"{self._sums['g_loss'] / self.iteration:.4f}", refresh=False)
                    if checkpoint and checkpoint_every and self.iteration % checkpoint_every == 0 \
                            and self.iteration < per_epoch and self.is_main:
                        self.save(checkpoint)
                    if stop_after is not None and done >= stop_after:
                        return self.history
            finally:
                bar.close()
            record = {"epoch": self.epoch + 1, "d_loss": self._sums["d_loss"] / per_epoch,
                      "g_loss": self._sums["g_loss"] / per_epoch, "seconds": time.perf_counter() - start}
            self.history.append(record)
            self.epoch, self.iteration, self._sums = self.epoch + 1, 0, {"d_loss": 0.0, "g_loss": 0.0}
            if out_dir is not None and self.data.dim() == 4 and self.is_main:
                self.write_samples(Path(out_dir) / f"samples_epoch{self.epoch:03d}.png")
            if checkpoint and self.is_main:
                self.save(checkpoint)
        return self.history

    # ---- images ----
    def sample(self, z: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Generator samples (default: from the fixed noise), without changing any state."""
        if z is None:
            z, labels = self.fixed_z, self.fixed_labels
        return generate(self.generator, z, labels)

    def write_samples(self, path) -> Path:
        """The fixed-noise grid (a conditional model: class k in column k)."""
        ncols = self.n_classes if self.n_classes else None
        return save_image_grid(self.sample(), path, ncols=ncols)

    def write_interpolation(self, path, rows: int = 8, n_steps: int = 10) -> Path:
        """``rows`` slerp paths between pairs of fixed-noise vectors, ``n_steps`` images each."""
        rows = min(positive_int(rows, "rows"), self.fixed_z.shape[0] // 2)
        n_steps = positive_int(n_steps, "n_steps")
        z = torch.cat([interpolate_latents(self.fixed_z[2 * r], self.fixed_z[2 * r + 1], n_steps)
                       for r in range(rows)])
        labels = None
        if self.n_classes:
            labels = torch.repeat_interleave(self.fixed_labels[0:2 * rows:2], n_steps)
        return save_image_grid(generate(self.generator, z, labels), path, ncols=n_steps)

    # ---- checkpoints ----
    def state_dict(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": asdict(self.config),
            "generator_class": type(self.generator).__name__,
            "discriminator_class": type(self.discriminator).__name__,
            "generator_config": dict(getattr(self.generator, "config", {})),
            "discriminator_config": dict(getattr(self.discriminator, "config", {})),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "noise_rng": self.noise.get_state(),
            "fixed_z": self.fixed_z,
            "epoch": self.epoch,
            "iteration": self.iteration,
            "sums": dict(self._sums),
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a fastgen GAN checkpoint (format {state.get('format')!r}, expected "
                             f"{CHECKPOINT_FORMAT!r})")
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.noise.set_state(state["noise_rng"])
        self.fixed_z = state["fixed_z"].to(self.data.dtype)
        self.epoch, self.iteration = int(state["epoch"]), int(state["iteration"])
        self._sums = {k: float(v) for k, v in state["sums"].items()}
        self.history = list(state["history"])

    def save(self, path) -> Path:
        """Write the checkpoint atomically (a temporary file, fsync-ed, renamed over ``path``)."""
        from ...serialization import atomic_write

        state = self.state_dict()
        path = atomic_write(path, lambda fh: torch.save(state, fh))
        self.last_checkpoint = path
        return path


def load_checkpoint(path) -> dict:
    """A checkpoint written by :meth:`GANTrainer.save` (loaded with ``weights_only=True``: tensors
    and plain containers only, never code); ValueError naming the file for anything else."""
    from ...serialization import torch_load

    state = torch_load(path, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a fastgen GAN checkpoint")
    missing = [k for k in ("config", "generator_class", "discriminator_class", "generator_config",
                           "discriminator_config", "generator", "discriminator", "opt_g", "opt_d", "noise_rng",
                           "fixed_z", "epoch", "iteration", "sums", "history") if k not in state]
    if missing or not isinstance(state["config"], dict) or not isinstance(state["generator_config"], dict):
        raise ValueError(f"{path}: not a complete fastgen GAN checkpoint"
                         + (f" (no {', '.join(missing)})" if missing else ""))
    return state


def models_from_checkpoint(state: dict) -> tuple[nn.Module, nn.Module]:
    """Fresh generator and discriminator of the checkpoint's classes and settings, with its
    weights (and reference batches) loaded."""
    from . import dcgan

    models = []
    for role in ("generator", "discriminator"):
        cls = getattr(dcgan, state[f"{role}_class"], None)
        if cls is None or not isinstance(cls, type) or not issubclass(cls, nn.Module):
            raise ValueError(f"checkpoint {role} class {state[f'{role}_class']!r} is not one of fastgen's GAN models")
        model = cls(**state[f"{role}_config"])
        model.load_state_dict(state[role])
        models.append(model)
    return models[0], models[1]


def trainer_from_checkpoint(state: dict, data: torch.Tensor, labels: torch.Tensor | None = None) -> GANTrainer:
    """A :class:`GANTrainer` that continues the checkpointed run exactly."""
    generator, discriminator = models_from_checkpoint(state)
    config = dict(state["config"])
    config["betas"] = tuple(config["betas"])
    trainer = GANTrainer(generator, discriminator, data, labels, GANConfig(**config))
    trainer.load_state_dict(state)
    return trainer


__all__ = ["GANConfig", "GANTrainer", "NonFiniteLossError", "generate", "interpolate_latents", "save_image_grid",
           "load_checkpoint", "models_from_checkpoint", "trainer_from_checkpoint", "CHECKPOINT_FORMAT"]
