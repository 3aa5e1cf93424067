"""A character-level recurrent language model of SMILES strings: model, training, sampling.

* :class:`SmilesLM`: embedding -> LSTM (or GRU) layers -> linear head over the vocabulary
  (:class:`fastgen.smiles.Vocabulary`: PAD = 0, START = 1, STOP = 2, then the tokens);
* :class:`SmilesTrainer`: teacher-forced training (padding masked out of the cross-entropy), Adam with gradient-norm clipping, a tqdm bar with the training loss and
  the validation loss, checkpoints that resume exactly (model, optimizer, data order, RNG);
* :func:`generate`: many strings at once, next token drawn by
  ``torch.ops.fastgen.sample_categorical`` (temperature, top-k, Philox stream of a
  fastgen.Generator); a row stops at its STOP token and leaves the batch (the recurrent state
  is only computed for the rows still running).

Losses are mean cross-entropies per predicted token (STOP included), in nats.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..random import Generator, as_generator
from ..smiles import Vocabulary
from . import ops as _ops  # registers torch.ops.fastgen.*
from .optim import adam

CHECKPOINT_FORMAT = "fastgen.smiles_lm/1"


@dataclass
class SmilesLMConfig:
    vocab_size: int
    embedding_dim: int = 64
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.1
    cell: str = "lstm"


class SmilesLM(nn.Module):
    """Embedding -> ``num_layers`` LSTM/GRU layers (dropout between them and before the head)
    -> linear logits over the vocabulary."""

    def __init__(self, vocab_size: int, embedding_dim: int = 64, hidden_size: int = 256, num_layers: int = 2,
                 dropout: float = 0.1, cell: str = "lstm"):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("embedding_dim", embedding_dim),
                            ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        self.config = SmilesLMConfig(vocab_size, embedding_dim, hidden_size, num_layers, float(dropout), cell)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=Vocabulary.pad_index)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(embedding_dim, hidden_size, num_layers, batch_first=True,
                       dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: torch.Tensor, hidden=None):
        """tokens [B, L] -> logits [B, L, V], final hidden state."""
        out, hidden = self.rnn(self.embedding(tokens), hidden)
        return self.head(self.dropout(out)), hidden

    def loss(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Teacher-forced cross-entropy of a padded batch (tokens [B, L] START ... STOP PAD...,
        lengths [B]): summed over the real next-token predictions only, and their count."""
        # Padded rather than packed: torch's packed LSTM is the slower of the two on the CPU.
        del lengths  # the PAD targets mark the ends
        logits, _ = self(tokens[:, :-1])
        targets = tokens[:, 1:]
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                           ignore_index=Vocabulary.pad_index, reduction="sum")
        return loss, int((targets != Vocabulary.pad_index).sum())

    def step(self, tokens: torch.Tensor, hidden=None):
        """One step: tokens [B] -> logits [B, V], hidden."""
        out, hidden = self.rnn(self.embedding(tokens)[:, None, :], hidden)
        return self.head(out[:, 0]), hidden


def _select_rows(hidden, keep: torch.Tensor):
    if isinstance(hidden, tuple):
        return tuple(h[:, keep] for h in hidden)
    return hidden[:, keep]


@torch.inference_mode()
def generate(model: SmilesLM, vocab: Vocabulary, n: int, *, max_length: int = 120, temperature: float = 1.0,
             top_k: Optional[int] = None, generator=None, batch_size: int = 4096, prefix: str = "") -> list[str]:
    """``n`` strings sampled from the model, ``batch_size`` rows at a time.

    Each step draws the next token of every running row with one call of
    ``torch.ops.fastgen.sample_categorical`` (one Philox offset of ``generator`` per step);
    PAD and START are never drawn. A row that draws STOP is finished and dropped from the
    batch; rows still running after ``max_length`` tokens are cut there (usually invalid).
    ``prefix``: every string starts with it (the model reads it first, then continues); a
    character the vocabulary does not know raises ValueError naming it."""
    from ..ops.categorical import check_temperature, check_top_k

    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be an integer >= 1, got {max_length!r}")
    if model.config.vocab_size != len(vocab):
        raise ValueError(f"the model has {model.config.vocab_size} outputs, the vocabulary {len(vocab)} tokens")
    temperature = check_temperature(temperature)
    primer = vocab.encode(prefix, stop=False)  # START + the prefix's tokens; refuses unknown characters
    top_k = check_top_k(top_k, len(vocab) - 2) or None  # PAD and START never compete
    gen = as_generator(generator)
    was_training = model.training
    model.eval()
    strings: list[str] = []
    try:
        for first in range(0, n, batch_size):
            rows = min(batch_size, n - first)
            # one column per step actually taken (not rows x max_length up front: a huge
            # max_length costs only the steps the strings need)
            columns = []
            active = torch.arange(rows)
            hidden = None
            if len(primer) > 1:
                _, hidden = model(torch.tensor(primer[:-1], dtype=torch.int64).expand(rows, -1))
            tokens = torch.full((rows,), primer[-1], dtype=torch.int64)
            for _ in range(max_length):
                logits, hidden = model.step(tokens, hidden)
                # a very negative finite logit: never the largest Gumbel key, never in the top k
                logits[:, [vocab.pad_index, vocab.start_index]] = -1e9
                nxt = _ops.sample_categorical(logits, temperature, top_k, generator=gen)
                column = torch.full((rows,), vocab.pad_index, dtype=torch.int64)
                column[active] = nxt
                columns.append(column)
                running = nxt != vocab.stop_index
                if not bool(running.all()):
                    active, nxt, hidden = active[running], nxt[running], _select_rows(hidden, running)
                    if active.numel() == 0:
                        break
                tokens = nxt
            out = torch.stack(columns, dim=1) if columns else torch.empty((rows, 0), dtype=torch.int64)
            strings.extend(prefix + x for x in vocab.decode_batch(out.numpy()))
    finally:
        model.train(was_training)
    return strings


# ---- training -------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Optimisation settings of :class:`SmilesTrainer`.

    learning_rate : Adam's peak learning rate.
    batch_size : strings per batch.
    clip_norm : gradient-norm clipping (0: none).
    seed : the data order of every epoch (and dropout's stream).
    lr_schedule : ``"cosine"`` (from the peak down to 0 at the end of ``schedule_epochs``) or
        ``"constant"``; either after a linear warm-up over ``warmup_steps`` batches.
    schedule_epochs : the cosine's length in epochs; None: the ``epochs`` of the first
        :meth:`SmilesTrainer.train` call (stored, so a resumed run follows the same curve).
    bucket_by_length : batches of strings of similar length (shuffled in windows of 32 batches,
        sorted by length inside each window, batches in random order), so that the LSTM spends
        little time on padding.
    """

    learning_rate: float = 2e-3
    batch_size: int = 128
    clip_norm: float = 1.0
    seed: int = 0
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    schedule_epochs: Optional[int] = None
    bucket_by_length: bool = False

    def learning_rate_at(self, step: int, steps_per_epoch: int) -> float:
        """The learning rate of the ``step``-th batch of training (0-based, over all epochs)."""
        if step < self.warmup_steps:
            return self.learning_rate * (step + 1) / self.warmup_steps
        if self.lr_schedule == "constant" or not self.schedule_epochs:
            return self.learning_rate
        total = self.schedule_epochs * steps_per_epoch - self.warmup_steps
        t = min(1.0, (step - self.warmup_steps) / max(1, total))
        return self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * t))


class SmilesTrainer:
    """Trains a :class:`SmilesLM` on encoded strings; ``state_dict()`` holds everything needed to
    continue exactly where it stopped (parameters, Adam state, epoch and batch position, the
    torch RNG that drives dropout, the running epoch loss). The data order of epoch e is the
    permutation of ``np.random.default_rng([seed, e])``, so it is not stored."""

    def __init__(self, model: SmilesLM, vocab: Vocabulary, train_strings: Sequence[str],
                 val_strings: Sequence[str] = (), config: TrainConfig | None = None, job=None):
        self.model, self.vocab = model, vocab
        self.set_job(job)
        self.config = replace(config) if config is not None else TrainConfig()  # train() may set schedule_epochs
        c = self.config
        if not c.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {c.learning_rate!r}")
        if isinstance(c.batch_size, bool) or not isinstance(c.batch_size, int) or c.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {c.batch_size!r}")
        if c.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {c.lr_schedule!r}")
        for name in ("warmup_steps", "schedule_epochs"):
            value = getattr(c, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if len(train_strings) == 0:
            raise ValueError("no training strings")
        self.train_tokens, self.train_lengths = (torch.from_numpy(a) for a in vocab.encode_batch(train_strings))
        self.val_tokens, self.val_lengths = ((torch.from_numpy(a) for a in vocab.encode_batch(val_strings))
                                             if len(val_strings) else (None, None))
        self.optimizer = adam(model.parameters(), lr=c.learning_rate)
        self.epoch = 0          # completed epochs
        self.step = 0           # batches done in the current epoch
        self._loss_sum = 0.0    # over the current epoch so far
        self._token_count = 0
        self.history: list[dict] = []
        # Dropout draws from torch's global stream; the trainer keeps its own state of it, swapped
        # in while it trains (and saved in checkpoints), so the caller's stream is left alone.
        self._rng_state = torch.Generator().manual_seed(c.seed).get_state()
        self._rng_is_live = False

    def set_job(self, job) -> None:
        """Train as one rank of ``job`` (fastgen.torch.train.distributed; None: one process): a
        step's global batch is ``batch_size`` strings per rank, shared out; the loss is the global
        batch's per-token mean and the gradients its average, so the update is the single
        process's with the global batch (dropout's draws are per rank)."""
        self.job, self.world_size = job, 1 if job is None else job.world_size
        self.is_main = job is None or job.is_main

    @property
    def _global_batch(self) -> int:
        return self.config.batch_size * self.world_size

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.train_lengths) / self._global_batch)

    def _batches(self, epoch: int) -> list[torch.Tensor]:
        """The row indices of each batch of ``epoch``: a function of (seed, epoch) only."""
        rng = np.random.default_rng([self.config.seed, epoch])
        order = rng.permutation(len(self.train_lengths))
        b = self._global_batch
        if not self.config.bucket_by_length:
            return [torch.from_numpy(order[i:i + b]) for i in range(0, len(order), b)]
        lengths = self.train_lengths.numpy()
        window = 32 * b
        batches = []
        for first in range(0, len(order), window):
            part = order[first:first + window]
            part = part[np.argsort(lengths[part], kind="stable")]
            batches += [part[i:i + b] for i in range(0, len(part), b)]
        return [torch.from_numpy(batches[i]) for i in rng.permutation(len(batches))]

    def _distributed_backward(self, index: torch.Tensor):
        """This rank's share of the global batch ``index``: gradients of the global per-token mean
        loss, averaged over the ranks; returns the global (summed loss, token count)."""
        first, stop = self.job.share(len(index))
        share = index[first:stop] if stop > first else index[:1]
        loss, n = self.model.loss(*self._batch(self.train_tokens, self.train_lengths, share))
        if stop == first:  # no rows for this rank: it joins the average with nothing
            loss, n = loss * 0.0, 0
        total_n = int(self.job.sum(n))
        self.optimizer.zero_grad(set_to_none=True)
        (loss * (self.world_size / total_n)).backward()
        self.job.average_gradients(self.model.parameters())
        return torch.tensor(self.job.sum(float(loss.detach()))), total_n

    def _batch(self, tokens, lengths, index):
        lengths = lengths[index]
        return tokens[index, : int(lengths.max())], lengths

    def validation_loss(self, batch_size: int = 1024) -> Optional[float]:
        if self.val_tokens is None:
            return None
        was_training = self.model.training
        self.model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for first in range(0, len(self.val_lengths), batch_size):
                index = torch.arange(first, min(first + batch_size, len(self.val_lengths)))
                loss, n = self.model.loss(*self._batch(self.val_tokens, self.val_lengths, index))
                total, count = total + float(loss), count + n
        self.model.train(was_training)
        return total / count

    def train(self, epochs: int, *, checkpoint: str | Path | None = None, checkpoint_every: int | None = None,
              progress: bool = True, extra: dict | None = None, stop_after_steps: int | None = None) -> list[dict]:
        """Train until ``epochs`` epochs are complete (counting those already done). Saves to
        ``checkpoint`` after every epoch and every ``checkpoint_every`` batches. ``extra`` is
        stored in the checkpoint as is. ``stop_after_steps`` stops early after that many batches
        of this call (for tests of resuming). Returns the history (one dict per epoch)."""
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self._rng_state)
            self._rng_is_live = True
            try:
                return self._train(epochs, checkpoint, checkpoint_every, progress, extra, stop_after_steps)
            finally:
                self._rng_is_live = False
                self._rng_state = torch.get_rng_state()

    def _train(self, epochs, checkpoint, checkpoint_every, progress, extra, stop_after_steps) -> list[dict]:
        from tqdm.auto import tqdm

        if self.config.schedule_epochs is None:
            self.config.schedule_epochs = epochs
        self.model.train()
        done_steps = 0
        while self.epoch < epochs:
            batches = self._batches(self.epoch)
            bar = tqdm(total=self.batches_per_epoch, initial=self.step, disable=not (progress and self.is_main), leave=True,
                       desc=f"epoch {self.epoch + 1}/{epochs}", unit="batch", dynamic_ncols=True)
            last = self.history[-1]["val_loss"] if self.history else None
            start = time.perf_counter()
            while self.step < self.batches_per_epoch:
                lr = self.config.learning_rate_at(self.epoch * self.batches_per_epoch + self.step,
                                                  self.batches_per_epoch)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                index = batches[self.step]
                if self.job is None:
                    loss, n = self.model.loss(*self._batch(self.train_tokens, self.train_lengths, index))
                    self.optimizer.zero_grad(set_to_none=True)
                    (loss / n).backward()
                else:
                    loss, n = self._distributed_backward(index)
                if self.config.clip_norm:
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_norm)
                self.optimizer.step()
                self._loss_sum += float(loss.detach())
                self._token_count += n
                self.step += 1
                done_steps += 1
                bar.update(1)
                postfix = {"train_loss": f"{self._loss_sum / self._token_count:.4f}"}
                if last is not None:
                    postfix["val_loss"] = f"{last:.4f}"
                bar.set_postfix(postfix, refresh=False)
                if checkpoint and checkpoint_every and self.step % checkpoint_every == 0 \
                        and self.step < self.batches_per_epoch and self.is_main:
                    self.save(checkpoint, extra)
                if stop_after_steps is not None and done_steps >= stop_after_steps:
                    bar.close()
                    return self.history
            val = self.validation_loss()
            record = {"epoch": self.epoch + 1, "train_loss": self._loss_sum / self._token_count, "val_loss": val,
                      "seconds": time.perf_counter() - start}
            bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k.endswith("loss") and v is not None})
            bar.close()
            self.history.append(record)
            self.epoch, self.step, self._loss_sum, self._token_count = self.epoch + 1, 0, 0.0, 0
            if checkpoint and self.is_main:
                self.save(checkpoint, extra)
        return self.history

    # ---- checkpoints ----
    def state_dict(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "model_config": asdict(self.model.config),
            "vocab": self.vocab.to_list(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "train_config": asdict(self.config),
            "epoch": self.epoch,
            "step": self.step,
            "loss_sum": self._loss_sum,
            "token_count": self._token_count,
            "torch_rng": torch.get_rng_state() if self._rng_is_live else self._rng_state,
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self._loss_sum, self._token_count = float(state["loss_sum"]), int(state["token_count"])
        self.history = list(state["history"])
        self._rng_state = state["torch_rng"].clone()

    def save(self, path, extra: dict | None = None) -> Path:
        """Write the checkpoint atomically (a temporary file, fsync-ed, renamed over ``path``):
        never a half-written checkpoint, and the previous one stays whole until then."""
        from ..serialization import atomic_write

        state = self.state_dict()
        state["extra"] = dict(extra or {})
        return atomic_write(path, lambda fh: torch.save(state, fh))


_CHECKPOINT_KEYS = ("model_config", "vocab", "model", "optimizer", "train_config", "epoch", "step", "loss_sum",
                    "token_count", "torch_rng", "history")


def load_checkpoint(path) -> dict:
    """A checkpoint written by :meth:`SmilesTrainer.save` (plain tensors and containers only:
    loaded with ``weights_only=True``, never code); ValueError naming the file for a missing,
    empty, corrupt, foreign or incomplete one."""
    from ..serialization import torch_load

    state = torch_load(path, "SMILES model checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a fastgen SMILES model checkpoint (format {CHECKPOINT_FORMAT})")
    missing = [k for k in _CHECKPOINT_KEYS if k not in state]
    if missing or not isinstance(state["model_config"], dict) or not isinstance(state["train_config"], dict) \
            or not isinstance(state["vocab"], list) or not isinstance(state.get("extra", {}), dict):
        raise ValueError(f"{path}: not a complete fastgen SMILES model checkpoint"
                         + (f" (no {', '.join(missing)})" if missing else ""))
    return state


def _usable(build, state):
    try:
        return build()
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError, IndexError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ValueError(f"not a usable fastgen SMILES model checkpoint ({type(exc).__name__}: {first})") from None


def model_from_checkpoint(state: dict) -> tuple[SmilesLM, Vocabulary]:
    def build():
        vocab = Vocabulary(state["vocab"])
        model = SmilesLM(**state["model_config"])
        model.load_state_dict(state["model"])
        model.eval()
        return model, vocab

    return _usable(build, state)


def trainer_from_checkpoint(state: dict, train_strings, val_strings=()) -> SmilesTrainer:
    model, vocab = model_from_checkpoint(state)
    config = _usable(lambda: TrainConfig(**state["train_config"]), state)
    trainer = SmilesTrainer(model, vocab, train_strings, val_strings, config)
    _usable(lambda: trainer.load_state_dict(state), state)
    return trainer


__all__ = ["SmilesLM", "SmilesLMConfig", "SmilesTrainer", "TrainConfig", "generate", "load_checkpoint",
           "model_from_checkpoint", "trainer_from_checkpoint", "Generator"]
