"""The body of ``fastgen train gan DATA`` (the parser lives in :mod:`fastgen.cli`)."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from .dcgan import DCGANDiscriminator, DCGANGenerator
from ...serialization import fingerprint
from .data import load_images
from .trainer import GANConfig, GANTrainer, load_checkpoint, trainer_from_checkpoint

# What a new run gets when an option is not given (argparse default None = "not given").
DEFAULTS = dict(epochs=20, latent_dim=100, width=32, batch_size=64, loss="nonsaturating", smoothing="none",
                d_steps=1, unrolled_steps=0, lr=2e-4, norm="batch", minibatch_kernels=0)


def train_from_cli(args) -> int:
    """Run ``fastgen train gan`` with parsed ``args``, in this process or as one rank of a torchrun
    job (fastgen.torch.train.distributed: rank 0 prints and writes); returns the exit code."""
    from ..train.distributed import run_command

    return run_command(_train, args)


def _train(args, job) -> int:
    """The command's body; input errors raise ValueError (the command prints them as one line)."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k, None) is not None}
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory (--out)")
    checkpoint = Path(args.save) if getattr(args, "save", None) else out / "checkpoint.pt"
    if checkpoint.is_dir():
        raise ValueError(f"{checkpoint}: is a directory (--save needs a file name)")
    if args.resume:
        state = load_checkpoint(args.resume)
        try:
            g_config = state["generator_config"]
            size = int(g_config["image_size"])
            conditional = int(g_config["n_classes"]) > 0
            saved_extra = state["config"].get("extra") or {}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{args.resume}: not a complete fastgen GAN checkpoint ({type(exc).__name__}: {exc})") \
                from None
        run = saved_extra.get("run") if isinstance(saved_extra, dict) else None
        run = run if isinstance(run, dict) else {}
        recorded = run.get("data") if isinstance(run.get("data"), dict) else None
        if args.image_size is not None and args.image_size != size:
            raise ValueError(f"--image-size {args.image_size} differs from the checkpoint's {size}")
        source, key = args.data, args.key
        if source is None:
            if recorded is None:
                raise ValueError(f"{args.resume}: the checkpoint does not record the data it was trained on; "
                                 "give DATA ('digits' or the file)")
            source = recorded.get("source")
            key = key if key is not None else recorded.get("key")
            if source != "digits" and not Path(source).is_file():
                raise ValueError(f"{args.resume}: was trained on {source}, which is no longer there; give DATA")
        elif key is None and recorded is not None and source != "digits" \
                and str(Path(source).resolve()) == recorded.get("source"):
            key = recorded.get("key")  # the same file: the same array of it
        images, labels = load_images(source, size, key=key)
        data_hash = fingerprint(images, *(() if labels is None else (labels,)))
        if recorded is not None and recorded.get("fingerprint") not in (None, data_hash):
            raise ValueError(f"{source}: not the data {args.resume} was trained on ({recorded.get('source')}"
                             + (f", key {recorded['key']!r}" if recorded.get("key") else "")
                             + "); resume on the same data, or start a new run")
        try:
            trainer = trainer_from_checkpoint(state, images, labels if conditional else None)
        except (KeyError, TypeError, RuntimeError, AttributeError, IndexError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise ValueError(f"{args.resume}: not a usable fastgen GAN checkpoint ({type(exc).__name__}: {first})") \
                from None
        trainer.set_job(job)
        if "epochs" in given:
            epochs = given["epochs"]
        elif isinstance(run.get("target_epochs"), int):
            epochs = run["target_epochs"]
        else:
            raise ValueError(f"{args.resume}: the checkpoint does not record its run's epoch count; give --epochs "
                             "(the total to reach)")
        print(f"resumed {args.resume}: {trainer.epoch} epochs done"
              + (f" and {trainer.iteration} iterations of the next" if trainer.iteration else "")
              + f"; training to epoch {epochs}")
    else:
        source = "digits" if args.data is None else args.data
        settings = {**DEFAULTS, **given}
        images, labels = load_images(source, args.image_size, key=args.key)
        data_hash = fingerprint(images, *(() if labels is None else (labels,)))
        n_classes = 0
        if args.conditional:
            if labels is None:
                raise ValueError(f"{source}: --conditional needs labels (scikit-learn's digits have them; a .npz "
                                 "file can hold them as 'labels' or 'y')")
            if labels.shape[0] != images.shape[0]:
                raise ValueError(f"{source}: {labels.shape[0]} labels for {images.shape[0]} images")
            n_classes = int(labels.max()) + 1
        size, channels = images.shape[2], images.shape[1]
        torch.manual_seed(args.seed)  # the initial weights
        try:
            generator = DCGANGenerator(settings["latent_dim"], size, channels, settings["width"], n_classes,
                                       settings["norm"])
            discriminator = DCGANDiscriminator(size, channels, settings["width"], n_classes, settings["norm"],
                                               settings["minibatch_kernels"])
        except (MemoryError, RuntimeError, OverflowError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ValueError(f"cannot build the DCGAN with these sizes (--latent-dim, --width, --minibatch-kernels): "
                             f"{first}") from None
        config = GANConfig(loss=settings["loss"], smoothing=settings["smoothing"], d_steps=settings["d_steps"],
                           unrolled_steps=settings["unrolled_steps"], lr_g=settings["lr"], lr_d=settings["lr"],
                           batch_size=settings["batch_size"], seed=args.seed)
        trainer = GANTrainer(generator, discriminator, images, labels if n_classes else None, config, job=job)
        epochs = settings["epochs"]
        key = args.key
    # what a resumed run needs to continue this one: its target and its data (see --resume)
    trainer.config.extra = {**trainer.config.extra, "run": {
        "target_epochs": int(epochs),
        "data": {"source": source if source == "digits" else str(Path(source).resolve()), "key": key,
                 "fingerprint": data_hash}}}
    g, c = trainer.generator, trainer.config
    print(f"data: {source}: {images.shape[0]} images, {images.shape[1]} channel(s), "
          f"{images.shape[2]}x{images.shape[3]}" + (f", {g.n_classes} classes (conditional)" if g.n_classes else ""))
    print(f"DCGAN: latent {g.latent_dim}, width {g.width}, norm {g.norm}; loss {c.loss}, smoothing {c.smoothing}, "
          f"{c.d_steps} D step(s) per G step" + (f", unrolled {c.unrolled_steps}" if c.unrolled_steps else "")
          + f"; Adam lr {c.lr_g}, batch {c.batch_size}, seed {c.seed}; {torch.get_num_threads()} threads", flush=True)
    if job is not None:
        print(f"data parallel: {job.world_size} processes x batch {c.batch_size} (torchrun, gloo)")
    start, first = time.perf_counter(), trainer.epoch
    history = trainer.train(epochs, checkpoint=checkpoint, checkpoint_every=args.checkpoint_every, out_dir=out,
                            progress=not args.no_progress)
    seconds = time.perf_counter() - start
    for h in history[first:] if len(history) > first else []:
        print(f"epoch {h['epoch']}: D loss {h['d_loss']:.4f}, G loss {h['g_loss']:.4f}, {h['seconds']:.1f} s")
    if not trainer.is_main:
        return 0
    if trainer.epoch > first:
        print(f"trained epochs {first + 1} to {trainer.epoch} in {seconds:.1f} s; checkpoint {checkpoint}")
    else:
        trainer.save(checkpoint)
        print(f"nothing to train: {trainer.epoch} of {epochs} epochs done (the run's target is reached; "
              f"--epochs N with N > {trainer.epoch} trains more); checkpoint {checkpoint}")
    print(f"wrote {trainer.write_samples(out / 'samples.png')} (fixed noise)")
    print(f"wrote {trainer.write_interpolation(out / 'interpolation.png')} (slerp between fixed-noise pairs)")
    return 0
