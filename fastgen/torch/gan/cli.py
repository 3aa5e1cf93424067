"""The body of ``fastgen train gan DATA`` (the parser lives in :mod:`fastgen.cli`)."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from .dcgan import DCGANDiscriminator, DCGANGenerator
from .data import load_images
from .trainer import GANConfig, GANTrainer, load_checkpoint, trainer_from_checkpoint

# What a new run gets when an option is not given (argparse default None = "not given").
DEFAULTS = dict(epochs=20, latent_dim=100, width=32, batch_size=64, loss="nonsaturating", smoothing="none",
                d_steps=1, unrolled_steps=0, lr=2e-4, norm="batch", minibatch_kernels=0)


def train_from_cli(args) -> int:
    """Run ``fastgen train gan`` with parsed ``args``; returns the exit code. Input errors raise
    ValueError (the command prints them as one line)."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k, None) is not None}
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory (--out)")
    checkpoint = out / "checkpoint.pt"
    if args.resume:
        state = load_checkpoint(args.resume)
        g_config = state["generator_config"]
        size = g_config["image_size"]
        if args.image_size is not None and args.image_size != size:
            raise ValueError(f"--image-size {args.image_size} differs from the checkpoint's {size}")
        images, labels = load_images(args.data, size, key=args.key)
        conditional = g_config["n_classes"] > 0
        trainer = trainer_from_checkpoint(state, images, labels if conditional else None)
        epochs = given.get("epochs", trainer.epoch)
        print(f"resumed {args.resume}: {trainer.epoch} epochs done"
              + (f" and {trainer.iteration} iterations of the next" if trainer.iteration else ""))
    else:
        settings = {**DEFAULTS, **given}
        images, labels = load_images(args.data, args.image_size, key=args.key)
        n_classes = 0
        if args.conditional:
            if labels is None:
                raise ValueError(f"{args.data}: --conditional needs labels (scikit-learn's digits have them; a .npz "
                                 "file can hold them as 'labels' or 'y')")
            if labels.shape[0] != images.shape[0]:
                raise ValueError(f"{args.data}: {labels.shape[0]} labels for {images.shape[0]} images")
            n_classes = int(labels.max()) + 1
        size, channels = images.shape[2], images.shape[1]
        torch.manual_seed(args.seed)  # the initial weights
        generator = DCGANGenerator(settings["latent_dim"], size, channels, settings["width"], n_classes,
                                   settings["norm"])
        discriminator = DCGANDiscriminator(size, channels, settings["width"], n_classes, settings["norm"],
                                           settings["minibatch_kernels"])
        config = GANConfig(loss=settings["loss"], smoothing=settings["smoothing"], d_steps=settings["d_steps"],
                           unrolled_steps=settings["unrolled_steps"], lr_g=settings["lr"], lr_d=settings["lr"],
                           batch_size=settings["batch_size"], seed=args.seed)
        trainer = GANTrainer(generator, discriminator, images, labels if n_classes else None, config)
        epochs = settings["epochs"]
    g, c = trainer.generator, trainer.config
    print(f"data: {args.data}: {images.shape[0]} images, {images.shape[1]} channel(s), "
          f"{images.shape[2]}x{images.shape[3]}" + (f", {g.n_classes} classes (conditional)" if g.n_classes else ""))
    print(f"DCGAN: latent {g.latent_dim}, width {g.width}, norm {g.norm}; loss {c.loss}, smoothing {c.smoothing}, "
          f"{c.d_steps} D step(s) per G step" + (f", unrolled {c.unrolled_steps}" if c.unrolled_steps else "")
          + f"; Adam lr {c.lr_g}, batch {c.batch_size}, seed {c.seed}; {torch.get_num_threads()} threads", flush=True)
    start, first = time.perf_counter(), trainer.epoch
    history = trainer.train(epochs, checkpoint=checkpoint, checkpoint_every=args.checkpoint_every, out_dir=out,
                            progress=not args.no_progress)
    seconds = time.perf_counter() - start
    for h in history[first:] if len(history) > first else []:
        print(f"epoch {h['epoch']}: D loss {h['d_loss']:.4f}, G loss {h['g_loss']:.4f}, {h['seconds']:.1f} s")
    if trainer.epoch > first:
        print(f"trained epochs {first + 1} to {trainer.epoch} in {seconds:.1f} s; checkpoint {checkpoint}")
    else:
        trainer.save(checkpoint)
        print(f"nothing to train: {trainer.epoch} of {epochs} epochs done; checkpoint {checkpoint}")
    print(f"wrote {trainer.write_samples(out / 'samples.png')} (fixed noise)")
    print(f"wrote {trainer.write_interpolation(out / 'interpolation.png')} (slerp between fixed-noise pairs)")
    return 0
