"""SMILES strings as token sequences, MOSES-style CSV files, and the MOSES sample metrics.

No torch here (the model is in :mod:`fastgen.torch.smiles`); RDKit is optional
(``pip install fastgen[chem]``) and only the validity-based metrics need it.

Tokens are characters, except the two-letter atoms ``Cl`` and ``Br``, which are one token each
(bracket atoms such as ``[nH]`` stay character-level). Three special tokens come first:
padding (index 0), start and stop.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

PAD, START, STOP = "<pad>", "<start>", "<stop>"
SPECIAL_TOKENS = (PAD, START, STOP)
_TOKEN_RE = re.compile(r"Cl|Br|.", re.DOTALL)


def tokenize(smiles: str) -> list[str]:
    """``"ClCCBr"`` -> ``["Cl", "C", "C", "Br"]``."""
    return _TOKEN_RE.findall(smiles)


class Vocabulary:
    """Token <-> index maps: PAD = 0, START = 1, STOP = 2, then the data's tokens, sorted."""

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tuple(tokens[:3]) != SPECIAL_TOKENS:
            tokens = [*SPECIAL_TOKENS, *[t for t in tokens if t not in SPECIAL_TOKENS]]
        if len(set(tokens)) != len(tokens):
            raise ValueError("tokens must be distinct")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}

    pad_index, start_index, stop_index = 0, 1, 2

    @classmethod
    def from_strings(cls, strings: Iterable[str]) -> "Vocabulary":
        seen: set[str] = set()
        for s in strings:
            seen.update(tokenize(s))
        if not seen:
            raise ValueError("cannot build a vocabulary from no (or only empty) strings")
        return cls(sorted(seen))

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    def to_list(self) -> list[str]:
        return list(self.tokens)

    def encode(self, smiles: str, *, start: bool = True, stop: bool = True) -> list[int]:
        """Token indices of one string, with the start / stop tokens around it. A character
        the vocabulary does not know raises ValueError naming it."""
        ids = [self.start_index] if start else []
        for tok in tokenize(smiles):
            i = self.index.get(tok)
            if i is None or i < len(SPECIAL_TOKENS):
                raise ValueError(f"character {tok!r} in SMILES {smiles!r} is not in the vocabulary "
                                 f"({len(self) - len(SPECIAL_TOKENS)} tokens built from the training data)")
            ids.append(i)
        if stop:
            ids.append(self.stop_index)
        return ids

    def encode_batch(self, strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, lengths)``: int64 [n, max_len] with START ... STOP, right-padded with PAD,
        and int64 [n] the unpadded lengths (tokens + 2)."""
        encoded = [self.encode(s) for s in strings]
        lengths = np.array([len(e) for e in encoded], dtype=np.int64)
        out = np.full((len(encoded), int(lengths.max(initial=0))), self.pad_index, dtype=np.int64)
        for row, e in enumerate(encoded):
            out[row, : len(e)] = e
        return out, lengths

    def decode(self, ids: Iterable[int]) -> str:
        """Tokens up to the first STOP (exclusive), START and PAD skipped."""
        parts = []
        for i in ids:
            i = int(i)
            if i == self.stop_index:
                break
            if i in (self.pad_index, self.start_index):
                continue
            parts.append(self.tokens[i])
        return "".join(parts)

    def decode_batch(self, rows) -> list[str]:
        return [self.decode(r) for r in np.asarray(rows)]


# ---- files --------------------------------------------------------------------------------------
def load_smiles_csv(path, column: str = "SMILES") -> list[str]:
    """The ``column`` of a MOSES-style CSV file (header line ``SMILES``, possibly more columns),
    plain or gzip-compressed (recognised by its magic bytes). Blank lines are skipped. Raises
    ValueError naming the file for a missing, empty, unreadable or corrupt file (gzip data is
    decompressed in chunks, up to :func:`fastgen.datasets.max_decompressed_bytes`), a missing
    column or no strings at all."""
    from ._files import existing_file
    from .datasets import gunzip

    path = existing_file(path, "CSV")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw[:2] == b"\x1f\x8b":
        raw = gunzip(raw, path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    if not text.strip():
        raise ValueError(f"{path}: the file is empty (expected a CSV with a header line {column!r})")
    if "\x00" in text:
        raise ValueError(f"{path}: not a CSV text file (it holds NUL bytes)")
    try:
        reader = csv.reader(io.StringIO(text))
        header = [h.strip() for h in next(reader)]
        if column not in header:
            raise ValueError(f"{path}: no column {column!r} in the header line {','.join(header)!r}")
        at = header.index(column)
        strings = [row[at].strip() for row in reader if len(row) > at and row[at].strip()]
    except csv.Error as exc:
        raise ValueError(f"{path}: not a readable CSV file (line {reader.line_num}: {exc})") from None
    if not strings:
        raise ValueError(f"{path}: the {column!r} column holds no strings")
    return strings


def save_smiles(strings: Sequence[str], path) -> Path:
    """One string a line, under a ``SMILES`` header (readable by :func:`load_smiles_csv`);
    written atomically (the previous file stays whole until the new one is complete)."""
    from ._files import atomic_write

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, expected a file name")
    text = "SMILES\n" + "".join(s + "\n" for s in strings)

    def write(fh):
        fh.write(text.encode("utf-8"))

    return atomic_write(path, write)


# ---- metrics --------------------------------------------------------------------------------------
def rdkit_available() -> bool:
    try:
        import rdkit  # noqa: F401
    except ImportError:
        return False
    return True


def _canonical(smiles: str):
    """RDKit canonical SMILES, or None when RDKit cannot parse the string."""
    from rdkit import Chem

    if not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def evaluate_samples(generated: Sequence[str], training: Sequence[str] | None = None) -> dict:
    """The MOSES sample metrics.

    * validity: fraction of ``generated`` that RDKit parses (``Chem.MolFromSmiles(s) is not None``;
      an empty string is invalid);
    * uniqueness: distinct molecules (canonical SMILES) among the valid ones / valid count;
    * novelty: distinct valid molecules absent from ``training`` (compared as canonical SMILES) /
      distinct valid molecules (None without ``training``).

    Without RDKit, ``validity`` is None (unavailable), ``rdkit`` False, and uniqueness and novelty
    are computed on the raw strings (non-empty ones), as ``note`` says.
    """
    generated = list(generated)
    result = {"n": len(generated), "rdkit": rdkit_available(), "validity": None, "n_valid": None,
              "uniqueness": None, "novelty": None, "note": ""}
    if result["rdkit"]:
        from rdkit import RDLogger

        RDLogger.DisableLog("rdApp.*")
        try:
            canon = [_canonical(s) for s in generated]
            valid = [c for c in canon if c is not None]
            train_set = None
            if training is not None:
                train_set = set(training)
                train_set.update(c for c in (_canonical(s) for s in training) if c is not None)
        finally:
            RDLogger.EnableLog("rdApp.*")
        result["n_valid"] = len(valid)
        result["validity"] = len(valid) / len(generated) if generated else None
    else:
        valid = [s for s in generated if s]
        train_set = None if training is None else set(training)
        result["note"] = ("RDKit is not installed (pip install 'fastgen[chem]'): validity unavailable; "
                          "uniqueness and novelty computed on the raw strings")
    unique = set(valid)
    if valid:
        result["uniqueness"] = len(unique) / len(valid)
        if train_set is not None:
            result["novelty"] = len(unique - train_set) / len(unique)
    return result


def format_metrics(metrics: dict) -> str:
    def pct(v):
        return "unavailable" if v is None else f"{100 * v:.1f}%"

    n = metrics["n"]
    lines = []
    if metrics["validity"] is None and not metrics["rdkit"]:
        lines.append("validity:   unavailable (RDKit not installed; pip install 'fastgen[chem]')")
    else:
        lines.append(f"validity:   {pct(metrics['validity'])} ({metrics['n_valid']} of {n} parsed by RDKit)")
    lines.append(f"uniqueness: {pct(metrics['uniqueness'])} (distinct among valid)")
    lines.append(f"novelty:    {pct(metrics['novelty'])} (distinct valid not in the training set)")
    if metrics["note"]:
        lines.append(f"note: {metrics['note']}")
    return "\n".join(lines)
