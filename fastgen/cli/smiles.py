"""``fastgen train smiles DATA`` trains (or resumes) a character-level LSTM/GRU language model on
a MOSES-style SMILES CSV; ``fastgen sample smiles MODEL`` samples strings from one and prints the
MOSES metrics (validity, uniqueness, novelty)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import _argtypes
from .common import CommandError, import_torch, out_dir, set_torch_threads

# The few-minute recipe (README, "SMILES"): 7 epochs of batches of similar length, Adam peaking at
# 4e-3 after 100 warm-up batches and decaying on a cosine to 0, no dropout (the model underfits
# in this budget).
SMILES_DEFAULTS = dict(epochs=7, hidden=256, layers=2, embedding=64, dropout=0.0, cell="lstm", batch_size=64,
                       lr=4e-3, clip=1.0, val_fraction=0.05, lr_schedule="cosine", warmup=100)


def _split_smiles(strings, val_fraction: float, seed: int):
    """(train, val): a seeded random val_fraction of the strings held out."""
    n_val = int(round(len(strings) * val_fraction))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if n_val >= len(strings):
        raise CommandError(f"--val-fraction {val_fraction} leaves no training strings out of {len(strings)}")
    order = np.random.default_rng(seed).permutation(len(strings))
    val = set(order[:n_val].tolist())
    return [s for i, s in enumerate(strings) if i not in val], [s for i, s in enumerate(strings) if i in val]


def _smiles_checkpoint_path(args, resumed) -> Path:
    """The checkpoint file: --save, else the resumed file, else OUT/smiles_lm.pt. ``--out FILE``
    (ending in .pt, or an existing file) is the old spelling of ``--save FILE``."""
    if args.out and (args.out.endswith(".pt") or Path(args.out).is_file()):
        if args.save:
            raise CommandError(f"--out {args.out} names the checkpoint file, like --save {args.save}: give --save "
                               "only (--out is the output folder)")
        _argtypes.note_deprecated(args, "--out FILE", "use --save FILE for the checkpoint (--out is the output "
                                        "folder)")
        return Path(args.out)
    if args.save:
        return Path(args.save)
    if resumed is not None:
        return resumed
    return out_dir(args.out or "fastgen_output") / "smiles_lm.pt"


def train(args) -> int:
    """Run ``fastgen train smiles``, in this process or as one rank of a torchrun job
    (fastgen.torch.train.distributed: rank 0 prints and writes); returns the exit code."""
    import_torch("train smiles")
    from ..torch.train.distributed import run_command

    return run_command(_train, args)


def _train(args, job) -> int:
    torch = import_torch("train smiles")
    from ..serialization import fingerprint
    from ..smiles import Vocabulary, load_smiles_csv
    from ..torch.smiles import SmilesLM, SmilesTrainer, TrainConfig, load_checkpoint, trainer_from_checkpoint

    set_torch_threads(torch, args.threads)
    if args.resume:
        state = load_checkpoint(args.resume)  # first: a bad checkpoint is reported before the data is read
    strings = load_smiles_csv(args.data)
    data_hash = fingerprint("\n".join(strings))
    if args.resume:
        extra = state.get("extra", {})
        recorded = extra.get("data_fingerprint")
        if recorded is not None and recorded != data_hash:
            raise CommandError(f"{args.data}: not the data {args.resume} was trained on ({extra.get('data')}); "
                               "resume on the same data, or start a new run")
        val_fraction, seed = extra.get("val_fraction", 0.0), state["train_config"].get("seed", 0)
        if not isinstance(val_fraction, float) or not 0.0 <= val_fraction < 1.0:
            raise CommandError(f"{args.resume}: not a usable SMILES checkpoint (val_fraction {val_fraction!r})")
        train, val = _split_smiles(strings, val_fraction, seed)
        trainer = trainer_from_checkpoint(state, train, val)
        # the run's target: stored by this command; older checkpoints: the cosine schedule's length,
        # which the first run set to its --epochs
        target = extra.get("target_epochs", trainer.config.schedule_epochs)
        if args.epochs is not None:
            epochs = args.epochs
        elif isinstance(target, int) and not isinstance(target, bool):
            epochs = target
        else:
            raise CommandError(f"{args.resume}: the checkpoint does not record its run's epoch count; give --epochs "
                               "(the total to reach)")
        out = _smiles_checkpoint_path(args, Path(args.resume))
        c = trainer.config
        if c.lr_schedule == "cosine" and c.schedule_epochs is not None and epochs > c.schedule_epochs:
            print(f"the cosine learning-rate schedule ended at epoch {c.schedule_epochs}; it now runs to epoch "
                  f"{epochs} (the learning rate goes back up)")
            c.schedule_epochs = epochs
        print(f"resumed {args.resume}: {trainer.epoch} epochs done"
              + (f" and {trainer.step} batches of the next" if trainer.step else "") + f"; training to epoch {epochs}")
    else:
        d = SMILES_DEFAULTS
        val_fraction = d["val_fraction"] if args.val_fraction is None else args.val_fraction
        if not 0.0 <= val_fraction < 1.0:
            raise CommandError(f"--val-fraction must be in [0, 1), got {val_fraction}")
        train, val = _split_smiles(strings, val_fraction, args.seed)
        vocab = Vocabulary.from_strings(strings)  # all of them: a held-out string may hold a rare character
        torch.manual_seed(args.seed)  # the initial weights
        try:
            model = SmilesLM(len(vocab), embedding_dim=args.embedding or d["embedding"], hidden_size=args.hidden or
                             d["hidden"], num_layers=args.layers or d["layers"],
                             dropout=d["dropout"] if args.dropout is None else args.dropout,
                             cell=args.cell or d["cell"])
        except (MemoryError, RuntimeError, OverflowError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise CommandError(f"cannot build the model with these sizes (--hidden, --layers, --embedding): "
                               f"{first}") from None
        epochs = args.epochs if args.epochs is not None else d["epochs"]
        config = TrainConfig(learning_rate=args.lr or d["lr"], batch_size=args.batch_size or d["batch_size"],
                             clip_norm=d["clip"] if args.clip is None else args.clip, seed=args.seed,
                             lr_schedule=args.lr_schedule or d["lr_schedule"],
                             warmup_steps=d["warmup"] if args.warmup is None else args.warmup,
                             schedule_epochs=epochs, bucket_by_length=not args.no_bucketing)
        trainer = SmilesTrainer(model, vocab, train, val, config)
        out = _smiles_checkpoint_path(args, None)
        extra = {}
    if out.is_dir():
        raise CommandError(f"{out}: is a directory (the checkpoint needs a file name)")
    extra = {**extra, "data": str(Path(args.data).resolve()), "val_fraction": val_fraction,
             "data_fingerprint": data_hash, "target_epochs": int(epochs)}
    c, m = trainer.config, trainer.model.config
    print(f"data: {args.data}: {len(train)} training / {len(val)} validation strings, {len(trainer.vocab)} tokens")
    print(f"model: {m.num_layers}-layer {m.cell.upper()}, hidden {m.hidden_size}, embedding {m.embedding_dim}, "
          f"dropout {m.dropout}; Adam lr {c.learning_rate} ({c.lr_schedule}, {c.warmup_steps} warm-up batches), "
          f"batch {c.batch_size}{' by length' if c.bucket_by_length else ''}, clip {c.clip_norm}, "
          f"seed {c.seed}; {torch.get_num_threads()} threads", flush=True)
    trainer.set_job(job)
    if job is not None:
        print(f"data parallel: {job.world_size} processes x batch {c.batch_size} (torchrun, gloo)")
    start = time.perf_counter()
    first_epoch = trainer.epoch
    history = trainer.train(epochs, checkpoint=out, checkpoint_every=args.checkpoint_every, extra=extra)
    if not trainer.is_main:
        return 0
    seconds = time.perf_counter() - start
    trained = trainer.epoch > first_epoch
    if not trained and not args.resume:
        trainer.save(out, extra)  # --epochs 0: the untrained model
    for h in history:
        val_text = "-" if h["val_loss"] is None else f"{h['val_loss']:.4f}"
        print(f"epoch {h['epoch']}: train loss {h['train_loss']:.4f}, validation loss {val_text} (nats/token), "
              f"{h['seconds']:.0f} s")
    if trained:
        print(f"trained epochs {first_epoch + 1} to {trainer.epoch} in {seconds:.1f} s; saved {out}")
    else:
        print(f"nothing to train: the model has {trainer.epoch} of {epochs} epochs done"
              + (" (the run's target is reached; --epochs N with a larger N trains more)" if args.resume
                 else f"; saved {out}"))
    return 0



def sample(args) -> int:
    """Run ``fastgen sample smiles``; returns the exit code."""
    torch = import_torch("sample smiles")
    from ..random import Generator
    from ..smiles import evaluate_samples, format_metrics, load_smiles_csv, save_smiles
    from ..torch.smiles import generate, load_checkpoint, model_from_checkpoint

    set_torch_threads(torch, args.threads)
    state = load_checkpoint(args.model)
    model, vocab = model_from_checkpoint(state)
    train_path = args.train or state.get("extra", {}).get("data")
    if args.train and Path(args.train).is_dir():
        raise CommandError(f"{args.train}: is a directory, expected a SMILES CSV file (--train)")
    training = None
    if train_path and Path(train_path).is_file():
        training = load_smiles_csv(train_path)
    elif args.train:
        raise CommandError(f"{args.train}: no such file (--train)")
    start = time.perf_counter()
    strings = generate(model, vocab, args.n, max_length=args.max_length, temperature=args.temperature,
                       top_k=args.top_k, generator=Generator(args.seed), prefix=args.prefix)
    seconds = time.perf_counter() - start
    path = save_smiles(strings, args.out)
    print(f"sampled {len(strings)} strings in {seconds:.1f} s (temperature {args.temperature}, top_k "
          f"{args.top_k or 'all'}, seed {args.seed}); wrote {path}")
    metrics = evaluate_samples(strings, training)
    print(format_metrics(metrics))
    if training is None:
        print("novelty unavailable: no training data (--train DATA)")
    return 0



def add_train_parser(train_sub) -> None:
    """``smiles`` among the models of ``fastgen train`` (``train_sub``: its subparsers)."""
    sd = SMILES_DEFAULTS
    sm = train_sub.add_parser(
        "smiles", help="character-level LSTM/GRU language model on a SMILES CSV file (needs torch)",
        description="Train a character-level recurrent language model on the SMILES strings of DATA (a CSV "
                    "file with a header line 'SMILES', optionally gzipped, like the MOSES splits), holding out "
                    "a random --val-fraction for the validation loss. Checkpoints (model, optimizer, data "
                    "order, RNG) go to --save after every epoch; --resume continues one exactly.")
    sm.add_argument("data", metavar="DATA")
    sm.add_argument("--epochs", type=_argtypes.nonnegative_int,
                    help=f"total epochs (default: {sd['epochs']}; with --resume: the target of the checkpoint's run)")
    sm.add_argument("--hidden", type=_argtypes.positive_int, help=f"hidden units per layer (default: {sd['hidden']})")
    sm.add_argument("--layers", type=_argtypes.positive_int, help=f"recurrent layers (default: {sd['layers']})")
    sm.add_argument("--embedding", type=_argtypes.positive_int, help=f"embedding size (default: {sd['embedding']})")
    sm.add_argument("--dropout", type=_argtypes.finite_float, help=f"(default: {sd['dropout']})")
    sm.add_argument("--cell", choices=["lstm", "gru"], help=f"(default: {sd['cell']})")
    sm.add_argument("--batch-size", type=_argtypes.positive_int, help=f"(default: {sd['batch_size']})")
    sm.add_argument("--lr", type=_argtypes.finite_float, help=f"Adam's peak learning rate (default: {sd['lr']})")
    sm.add_argument("--lr-schedule", choices=["cosine", "constant"],
                    help=f"after the warm-up: cosine decay to 0 at the last epoch, or constant "
                         f"(default: {sd['lr_schedule']})")
    sm.add_argument("--warmup", type=_argtypes.nonnegative_int, metavar="N",
                    help=f"batches of linear learning-rate warm-up (default: {sd['warmup']})")
    sm.add_argument("--no-bucketing", action="store_true",
                    help="batches in plain random order instead of grouped by string length")
    sm.add_argument("--clip", type=_argtypes.finite_float,
                    help=f"gradient-norm clipping, 0 for none (default: {sd['clip']})")
    sm.add_argument("--val-fraction", type=_argtypes.finite_float,
                    help=f"held out for validation (default: {sd['val_fraction']})")
    sm.add_argument("--seed", type=_argtypes.seed, default=0,
                    help="initial weights, data split and order, dropout (default: %(default)s)")
    sm.add_argument("--save", metavar="MODEL",
                    help="checkpoint file (default: OUT/smiles_lm.pt; with --resume: the resumed file)")
    sm.add_argument("--out", metavar="OUT",
                    help="output folder (default: fastgen_output); an --out ending in .pt, or naming an "
                         "existing file, is the deprecated spelling of --save")
    sm.add_argument("--resume", metavar="MODEL", help="continue from a checkpoint (model settings come from it)")
    sm.add_argument("--checkpoint-every", type=_argtypes.positive_int, metavar="N",
                    help="also save every N batches (default: after every epoch only)")
    sm.add_argument("--threads", type=_argtypes.threads, help="torch CPU threads (default: torch's)")
    sm.set_defaults(func=train)


def add_sample_parser(sample_sub) -> None:
    """``smiles`` among the models of ``fastgen sample`` (``sample_sub``: its subparsers)."""
    ss = sample_sub.add_parser(
        "smiles", help="SMILES strings from a model trained with 'fastgen train smiles' (needs torch)",
        description="Sample -n strings from MODEL, write them to --out (CSV, header SMILES) and print the MOSES "
                    "metrics: validity (RDKit parses it; needs 'fastgen[chem]'), uniqueness among the valid "
                    "ones, novelty against the training data (--train, default: the file it was trained on).")
    ss.add_argument("model", metavar="MODEL")
    ss.add_argument("-n", type=_argtypes.positive_int, default=1000, help="strings to sample (default: %(default)s)")
    ss.add_argument("--temperature", type=_argtypes.finite_float, default=1.0, help="(default: %(default)s)")
    ss.add_argument("--top-k", type=_argtypes.positive_int,
                    help="draw among the k most likely tokens only (default: all)")
    ss.add_argument("--max-length", type=_argtypes.positive_int, default=120, help="tokens per string at most "
                                                                           "(default: %(default)s)")
    ss.add_argument("--prefix", default="", help="start every string with this (default: none)")
    ss.add_argument("--seed", type=_argtypes.seed, default=0, help="(default: %(default)s)")
    ss.add_argument("--train", metavar="DATA", help="training SMILES for novelty (default: the model's)")
    ss.add_argument("--out", default="fastgen_output/smiles_samples.csv", help="(default: %(default)s)")
    ss.add_argument("--threads", type=_argtypes.threads, help="torch CPU threads (default: torch's)")
    ss.set_defaults(func=sample)
