"""Datasets: scikit-learn's digits (the embedded default, no network), generated periodic
waveforms, and loaders for user files.

:func:`make_waveforms` generates binary-coded sawtooth, sine and square waves (the data of
``fastgen demo waveforms``); :func:`encode_waveforms` / :func:`decode_waveforms` convert
between signals and the RBM's binary units, :func:`corrupt_waveforms` loses a stretch of each.

:func:`load_array` reads what a user is likely to have on disk — a NumPy ``.npy``, a ``.npz``
archive or an MNIST IDX file (``train-images-idx3-ubyte``, optionally gzip-compressed) — and
returns what the RBM estimators take: a float array of shape (n_samples, n_features) with
values in [0, 1]. The format is recognised from the file's first bytes, not its name.
"""
from __future__ import annotations

import gzip
import io
import math
import numbers
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._png import save_image_grid  # noqa: F401  (re-exported: fastgen.datasets.save_image_grid)

__all__ = ["load_digits_binary", "load_array", "read_idx", "load_mnist_shared", "save_image_grid",
           "SHARED_MNIST", "make_waveforms", "encode_waveforms", "decode_waveforms", "corrupt_waveforms",
           "WAVEFORM_KINDS", "WAVEFORM_CODES"]

# IDX type codes (third byte of the magic number) -> big-endian NumPy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_GZIP_MAGIC = b"\x1f\x8b"

# ``../shared/data/mnist_test_10k.npz`` beside the repository checkout (tests and benchmarks).
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist_test_10k.npz"


def load_digits_binary(*, return_y: bool = False, dtype=np.float64):
    """scikit-learn's 8x8 handwritten digits as RBM input: ``X = data / 16``.

    Embedded in scikit-learn (no download). Values are the 17 grey levels 0, 1/16, ..., 1
    (probabilities, as in scikit-learn's RBM example), not thresholded to 0/1.

    Returns
    -------
    X : ndarray of shape (1797, 64), values in [0, 1]
    y : ndarray of shape (1797,), only with ``return_y=True``
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = np.ascontiguousarray(digits.data / 16.0, dtype=dtype)
    return (X, digits.target) if return_y else X


# ---- size limits ----------------------------------------------------------------------------------
# Compressed data (gzip files, deflated .npz members) is decompressed in chunks and never past what
# its header declares (a .npy or IDX header states the array's shape) nor past this maximum, which
# the environment variable FASTGEN_MAX_DECOMPRESSED_BYTES overrides (a byte count). Without the
# cap a small crafted file (a "zip bomb": 195 KB of gzip can hold gigabytes of zeros) would take
# all the memory. Uncompressed files are read as they are; their headers must agree with their
# size before anything is allocated.
MAX_DECOMPRESSED_BYTES = 1 << 30
_CHUNK = 1 << 20


def max_decompressed_bytes() -> int:
    """The cap on decompressed data: ``FASTGEN_MAX_DECOMPRESSED_BYTES`` when set (a positive
    integer), else :data:`MAX_DECOMPRESSED_BYTES` (1 GiB)."""
    text = os.environ.get("FASTGEN_MAX_DECOMPRESSED_BYTES", "").strip()
    if not text:
        return MAX_DECOMPRESSED_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"FASTGEN_MAX_DECOMPRESSED_BYTES must be a positive byte count, got {text!r}")
    return value


def _too_big(path, declared: int, limit: int, what: str = "decompressed data") -> ValueError:
    return ValueError(f"{path}: {what} of {declared:,} bytes exceeds the limit of {limit:,} bytes "
                      "(set FASTGEN_MAX_DECOMPRESSED_BYTES to allow more)")


# ---- IDX ------------------------------------------------------------------------------------------
def _idx_header(raw: bytes, name):
    """(header length, dims, dtype) of an IDX file's first bytes; ValueError when they are not one."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{name}: not an MNIST IDX file (bad magic number {raw[:4].hex() or 'none'})")
    if raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{name}: unknown IDX data type code 0x{raw[2]:02x} "
                         f"(known: {', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)})")
    ndim = raw[3]
    if ndim == 0:
        raise ValueError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions need {header})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    return header, dims, np.dtype(_IDX_DTYPES[raw[2]])


def _parse_idx(raw: bytes, name) -> np.ndarray:
    """Parse the bytes of an IDX file: magic ``00 00 <type> <ndim>``, ``ndim`` big-endian uint32
    dimensions, then the values in C order, big-endian."""
    header, dims, dtype = _idx_header(raw, name)
    expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow, however large the dims
    if len(raw) - header != expected:
        raise ValueError(f"{name}: IDX header declares shape {dims} of {dtype.name} ({expected:,} bytes) "
                         f"but the file holds {len(raw) - header:,} bytes of data")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))  # native byte order (and a writable copy)


def read_idx(path) -> np.ndarray:
    """Read an MNIST IDX file (optionally gzip-compressed) as an array of its stored type and shape."""
    path = existing_file(path)
    raw = _read_bytes(path)
    if raw[:2] == _GZIP_MAGIC:
        raw = _gunzip(raw, path, array=True)
    return _parse_idx(raw, path)


# ---- generic loader -------------------------------------------------------------------------------
def existing_file(path, kind: str = "data") -> Path:
    """``path`` as a Path, or a ValueError naming it when it is a directory, missing, or not a
    regular file (a device, a pipe): what every loader checks before it reads."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, expected a {kind} file")
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file, expected a {kind} file")
    return path


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not raw:
        raise ValueError(f"{path}: empty file")
    return raw


def _npy_header(fh, name):
    """(shape, fortran_order, dtype, header bytes read) of a .npy stream positioned at its start;
    ValueError when the header is not one numpy writes (object arrays are refused)."""
    start = fh.tell() if hasattr(fh, "tell") else 0
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            shape, fortran, dtype = np.lib.format._read_array_header(fh, version)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, KeyError, struct.error, zlib.error,
            zipfile.BadZipFile, AttributeError) as exc:
        raise ValueError(f"{name}: cannot read as a .npy array ({exc})") from None
    if dtype.hasobject:
        raise ValueError(f"{name}: holds Python objects (dtype {dtype}); only numeric arrays are read "
                         "(pickles are never loaded)")
    consumed = (fh.tell() - start) if hasattr(fh, "tell") else None
    return shape, fortran, dtype, consumed


def _npy_nbytes(shape, dtype) -> int:
    return math.prod(int(d) for d in shape) * dtype.itemsize


def _declared_size(prefix: bytes, name="data", *, strict: bool = False):
    """Total bytes the data whose first bytes are ``prefix`` declares (header included), for a
    .npy or IDX header; None for other formats. ``strict``: the data must be a .npy array, an
    .npz archive or an IDX file (ValueError naming ``name`` otherwise, or for a bad header)."""
    try:
        if prefix.startswith(_NPY_MAGIC):
            fh = io.BytesIO(prefix)
            shape, _, dtype, consumed = _npy_header(fh, name)
            return consumed + _npy_nbytes(shape, dtype)
        if prefix[:2] == b"\x00\x00":
            header, dims, dtype = _idx_header(prefix, name)
            return header + math.prod(dims) * dtype.itemsize
    except ValueError:
        if strict:
            raise
        return None
    if strict and not (prefix.startswith(_ZIP_MAGIC) or prefix.startswith(_EMPTY_ZIP_MAGIC)):
        raise _unrecognised(name)
    return None


def _unrecognised(path) -> ValueError:
    return ValueError(f"{path}: unrecognised format (expected a .npy array, a .npz archive or an "
                      "MNIST IDX file, optionally gzip-compressed)")


def gunzip(raw: bytes, path, *, limit: int | None = None, array: bool = False) -> bytes:
    """Decompress gzip data in chunks, refusing (ValueError naming ``path``) corrupt data and
    more than ``limit`` bytes (default: :func:`max_decompressed_bytes`). When the decompressed
    data starts with a .npy or IDX header, it is also refused past the size that header declares,
    and the header's size against the limit is checked before the rest is decompressed.
    ``array``: the data must be a .npy array, an .npz archive or an IDX file, which is checked
    on the first chunk (so a bomb of anything else stops there)."""
    limit = max_decompressed_bytes() if limit is None else int(limit)
    out = bytearray()
    declared, sniffed = None, False
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw), mode="rb") as fh:
            while True:
                bound = limit if declared is None else declared
                chunk = fh.read(min(_CHUNK, bound + 1 - len(out)))
                if not chunk:
                    break
                out += chunk
                if declared is None and not sniffed and len(out) >= min(_CHUNK, 64 * 1024):
                    sniffed = True
                    declared = _declared_size(bytes(out[:_CHUNK]), path, strict=array)
                    if declared is not None and declared > limit:
                        raise _too_big(path, declared, limit, "its header declares data")
                if len(out) > (limit if declared is None else declared):
                    if declared is not None:
                        raise ValueError(f"{path}: the decompressed data runs past the {declared:,} bytes its "
                                         "header declares (a corrupt or crafted file)")
                    raise _too_big(path, len(out), limit, "decompressed data of more than")
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt gzip data ({exc})") from None
    if not out:
        raise ValueError(f"{path}: empty file (after gzip decompression)")
    return bytes(out)


_gunzip = gunzip


def _npz_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path, key, limit: int) -> np.ndarray:
    """One array of an .npz archive: its header's shape is checked against the member's stored
    size before the array is allocated; compressed members are capped at ``limit``."""
    what = f"{path} (array {key!r})"
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > limit:
        raise _too_big(what, info.file_size, limit)
    try:
        with archive.open(info) as fh:
            shape, fortran, dtype, consumed = _npy_header(fh, what)
            declared = _npy_nbytes(shape, dtype)
            if consumed is None or declared > info.file_size - consumed:
                raise ValueError(f"{what}: header declares shape {shape} of {dtype} ({declared:,} bytes) but "
                                 f"the archive stores {max(info.file_size - (consumed or 0), 0):,} bytes")
            data = fh.read(declared)
            if len(data) != declared:
                raise ValueError(f"{what}: truncated ({len(data):,} of {declared:,} bytes)")
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
        raise ValueError(f"{what}: cannot read ({exc})") from None
    array = np.frombuffer(data, dtype=dtype)
    if fortran:
        return array.reshape(shape[::-1]).T.copy()
    return array.reshape(shape).copy()


def _open_npz(raw: bytes, path) -> tuple[zipfile.ZipFile, dict]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        members = {info.filename[:-4]: info for info in archive.infolist() if info.filename.endswith(".npy")}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise ValueError(f"{path}: cannot read as a .npz archive ({exc})") from None
    return archive, members


def read_npz_members(raw: bytes, path, keys=None) -> dict:
    """The arrays (all, or ``keys``) of the .npz archive whose bytes are ``raw``, read without
    pickles and with every header checked against the stored sizes (see :func:`gunzip` for the
    cap on compressed members, which applies to their total)."""
    limit = max_decompressed_bytes()
    archive, members = _open_npz(raw, path)
    with archive:
        names = list(members) if keys is None else [k for k in keys if k in members]
        total = sum(members[k].file_size for k in names if members[k].compress_type != zipfile.ZIP_STORED)
        if total > limit:
            raise _too_big(path, total, limit)
        return {k: _npz_member(archive, members[k], path, k, limit) for k in names}


def _from_npz(raw: bytes, path, key):
    archive, members = _open_npz(raw, path)
    with archive:
        names = list(members)
        if not names:
            raise ValueError(f"{path}: the .npz archive holds no arrays")
        if key is None:
            key = "data" if "data" in names else names[0]
        elif key not in names:
            raise ValueError(f"{path}: no array {key!r} in the archive (it holds {', '.join(names)})")
        return _npz_member(archive, members[key], path, key, max_decompressed_bytes()), key


def _from_npy(raw: bytes, path):
    fh = io.BytesIO(raw)
    shape, fortran, dtype, consumed = _npy_header(fh, path)
    declared = _npy_nbytes(shape, dtype)
    if declared > len(raw) - consumed:
        raise ValueError(f"{path}: .npy header declares shape {shape} of {dtype} ({declared:,} bytes) but the "
                         f"file holds {len(raw) - consumed:,} bytes of data")
    array = np.frombuffer(raw, dtype=dtype, count=math.prod(int(d) for d in shape), offset=consumed)
    if fortran:
        return array.reshape(shape[::-1]).T.copy()
    return array.reshape(shape).copy()


def _read_raw_array(path: Path, key=None):
    raw = _read_bytes(path)
    if raw[:2] == _GZIP_MAGIC:
        raw = _gunzip(raw, path, array=True)
    if raw.startswith(_ZIP_MAGIC) or raw.startswith(_EMPTY_ZIP_MAGIC):
        return _from_npz(raw, path, key)
    if key is not None and (raw.startswith(_NPY_MAGIC) or raw[:2] == b"\x00\x00"):
        kind = ".npy array" if raw.startswith(_NPY_MAGIC) else "MNIST IDX file"
        raise ValueError(f"{path}: a {kind} holds one array; key {key!r} applies to .npz archives only")
    if raw.startswith(_NPY_MAGIC):
        return _from_npy(raw, path), None
    if raw[:2] == b"\x00\x00":
        return _parse_idx(raw, path), None
    raise _unrecognised(path)


def read_labels(path, key=None):
    """The labels array of a data file's .npz archive (``key``, else 'labels' or 'y'), or None
    when the file is not an .npz archive or holds none; read like :func:`load_array` reads data."""
    path = existing_file(path)
    raw = _read_bytes(path)
    if raw[:2] == _GZIP_MAGIC:
        raw = _gunzip(raw, path, array=True)
    if not (raw.startswith(_ZIP_MAGIC) or raw.startswith(_EMPTY_ZIP_MAGIC)):
        if key is not None:
            raise ValueError(f"{path}: not an .npz archive, so no array {key!r} (labels key)")
        return None
    _, members = _open_npz(raw, path)
    for name in ([key] if key else ["labels", "y"]):
        if name in members:
            return read_npz_members(raw, path, [name])[name]
    if key is not None:
        raise ValueError(f"{path}: no array {key!r} (labels key)")
    return None


def load_array(path, *, binarize: float | None = None, key: str | None = None, dtype=np.float64) -> np.ndarray:
    """Load a data file as RBM input: a float array of shape (n_samples, n_features).

    Parameters
    ----------
    path : str or Path
        A ``.npy`` array, a ``.npz`` archive (array ``key``; by default ``'data'`` if present,
        else the first array stored) or an MNIST IDX file such as ``train-images-idx3-ubyte``;
        any of them may be gzip-compressed. The format is recognised from the content.
    binarize : float, optional
        Threshold: after scaling, values ``> binarize`` become 1 and the rest 0. ``0.5`` on
        MNIST's uint8 pixels is the usual ``pixel > 127`` binarisation.
    key : str, optional
        Array to read from a ``.npz`` archive.
    dtype : float32 or float64, default=float64

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The first axis is the sample axis; the others are flattened (MNIST's (n, 28, 28)
        becomes (n, 784)). Integer data is divided by its dtype's maximum (uint8 by 255, so
        unsigned data lands in [0, 1]); booleans become 0/1; floats are kept as they are.

    Raises
    ------
    ValueError
        Naming the file, when it is missing, empty, unreadable, not numeric, has no samples or
        features, or holds NaN/infinity.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if binarize is not None and (isinstance(binarize, bool) or not isinstance(binarize, numbers.Real)
                                 or not np.isfinite(binarize)):
        raise ValueError(f"binarize must be a finite threshold, got {binarize!r}")
    path = existing_file(path)
    data, used_key = _read_raw_array(path, key)
    what = f"{path}" + (f" (array {used_key!r})" if used_key is not None else "")
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{what}: expected numeric data, got dtype {data.dtype}")
    if data.ndim < 2:
        raise ValueError(f"{what}: expected an array of samples (2-D or more, samples first), got shape {data.shape}")
    n_samples = data.shape[0]
    n_features = int(np.prod(data.shape[1:], dtype=np.int64))
    if n_samples == 0 or n_features == 0:
        raise ValueError(f"{what}: no data (shape {data.shape})")
    X = data.reshape(n_samples, n_features)
    if X.dtype.kind in "iu":
        X = X.astype(dtype) / dtype.type(np.iinfo(X.dtype).max)
    else:
        X = X.astype(dtype)
        if X.dtype.kind == "f" and not np.isfinite(X).all():
            raise ValueError(f"{what}: holds NaN or infinite values")
    if binarize is not None:
        X = (X > binarize).astype(dtype)
    return np.ascontiguousarray(X)


def load_mnist_shared(path=None, *, binary: bool = True, dtype=np.float32) -> np.ndarray:
    """The MNIST test set from the shared data folder (``../shared/data/mnist_test_10k.npz``
    beside the checkout; key ``'data'``, uint8 of shape (10000, 28, 28)).

    ``binary=True`` applies the benchmarks' convention ``data.reshape(-1, 784) > 127``;
    ``binary=False`` gives ``data / 255``. Returns shape (10000, 784) in ``dtype``.
    """
    path = SHARED_MNIST if path is None else Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (the shared MNIST file is only beside a checkout "
                         "of the repository; pass its path)")
    data, _ = _read_raw_array(path, "data")
    if data.dtype != np.uint8 or data.ndim != 3 or data.shape[1:] != (28, 28):
        raise ValueError(f"{path}: expected uint8 images of shape (n, 28, 28), got {data.dtype} {data.shape}")
    flat = data.reshape(-1, 784)
    return (flat > 127).astype(dtype) if binary else (flat / 255.0).astype(dtype)


# ---- periodic waveforms ---------------------------------------------------------------------------
WAVEFORM_KINDS = ("sawtooth", "sine", "square")
WAVEFORM_CODES = ("gray", "binary")
_MAX_BITS = 16

# Bit code of the quantised samples. Both codes spend n_bits units on a sample, most significant
# bit first. "gray" (the reflected binary code, g = b ^ (b >> 1)) is the default because an RBM
# repairs signals better with it: neighbouring levels differ in exactly one bit, so a slowly
# varying signal changes one unit at a time, whereas in plain binary a small step can flip many
# bits at once (127 -> 128 flips all 8), jumps the RBM has to learn as rare, highly correlated
# events.
# Measured with `fastgen demo waveforms --seed S [--code binary]` (CD-1, 256 hidden units, 3000
# training waveforms, 12 of 60 samples lost) for S = 0, 1, 2: RMS repair error 30-31 levels with
# Gray code against 33-34 with plain binary (sine waves alone: 15-16 against 21-22; linear
# interpolation: 80-81). Probabilities decode to expected levels for either code (see
# decode_waveforms), so nothing is lost by leaving plain binary's linear weights. A thermometer code
# would need 2**n_bits - 1 units a sample (255 for 8 bits), so it is not offered.


def _check_int(value, name, minimum, maximum=None) -> int:
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum
            or (maximum is not None and value > maximum)):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def _check_range(value, name, low, high=None, *, low_open=False) -> tuple[float, float]:
    """A (min, max) pair of finite reals with ``min <= max`` inside [low, high]."""
    try:
        lo, hi = value
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (min, max) pair of numbers, got {value!r}") from None
    below = lo <= low if low_open else lo < low
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi or below or (high is not None and hi > high):
        interval = f"{'(' if low_open else '['}{low}, {'inf)' if high is None else f'{high}]'}"
        raise ValueError(f"{name} must be a (min, max) pair with min <= max inside {interval}, got {value!r}")
    return lo, hi


def _check_kinds(kinds) -> tuple[str, ...]:
    if isinstance(kinds, str):
        kinds = (kinds,)
    try:
        kinds = tuple(kinds)
    except TypeError:
        raise ValueError(f"kinds must be a sequence of waveform names, got {kinds!r}") from None
    if not kinds:
        raise ValueError(f"kinds must name at least one waveform ({', '.join(WAVEFORM_KINDS)})")
    for kind in kinds:
        if kind not in WAVEFORM_KINDS:
            raise ValueError(f"kinds: unknown waveform {kind!r} (known: {', '.join(WAVEFORM_KINDS)})")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"kinds must not repeat a waveform, got {kinds!r}")
    return kinds


def _check_code(code) -> str:
    if code not in WAVEFORM_CODES:
        raise ValueError(f"code must be one of {', '.join(map(repr, WAVEFORM_CODES))}, got {code!r}")
    return code


def make_waveforms(n_samples, *, n_points=60, n_bits=8, kinds=WAVEFORM_KINDS, code="gray",
                   amplitude=(0.3, 0.4), period=(15.0, 25.0), centre=(0.45, 0.55), seed=0,
                   return_signals=False):
    """Periodic waveforms, each sample point quantised and coded as binary visible units.

    Every waveform is one of ``kinds``, chosen uniformly at random, with its own amplitude,
    period, centre (vertical offset) and phase:

    * ``sawtooth``: ramps from centre - amplitude up to centre + amplitude, then drops;
    * ``sine``: centre + amplitude * sin(2 pi (t / period + phase));
    * ``square``: centre + amplitude for the first half of each period, centre - amplitude for
      the second.

    Sample point t = 0 .. n_points - 1 is at cycle position ``t / period + phase``. The value is
    rounded to an integer *level* 0 .. 2**n_bits - 1 (0 .. 255 for 8 bits) and coded in
    ``n_bits`` binary units (see :func:`encode_waveforms`).

    Parameters
    ----------
    n_samples : int >= 1
    n_points : int >= 1, default=60
        Sample points per waveform.
    n_bits : int in [1, 16], default=8
        Bits per sample point: levels 0 .. 2**n_bits - 1.
    kinds : sequence of {"sawtooth", "sine", "square"}, default=all three
    code : {"gray", "binary"}, default="gray"
        Bit code of each level, most significant bit first (Gray code: see the comment above
        ``WAVEFORM_CODES`` for why it is the default).
    amplitude : (min, max), default=(0.3, 0.4)
        Peak deviation from the centre, as a fraction of the full scale 2**n_bits - 1; drawn
        uniformly.
    period : (min, max), default=(15, 25)
        Period in sample points, drawn uniformly (real-valued); must be > 0.
    centre : (min, max), default=(0.45, 0.55)
        Vertical offset as a fraction of the full scale, drawn uniformly. With the defaults no
        waveform leaves the range (levels 13 .. 242 of 255); otherwise values are clipped to
        [0, full scale].
    seed : int, default=0
        Seed of ``numpy.random.default_rng``: the same seed gives the same waveforms. Per
        waveform the draws are, in this order over all waveforms: kind, amplitude, period,
        centre, phase (uniform in [0, 1) cycles).
    return_signals : bool, default=False
        Also return the quantised signals and each waveform's kind.

    Returns
    -------
    X : ndarray of shape (n_samples, n_points * n_bits), float64 0/1
        Column ``t * n_bits + k`` holds bit k (k = 0 most significant) of sample point t.
    signals : ndarray of shape (n_samples, n_points), float64 (only with ``return_signals``)
        The levels, integers in [0, 2**n_bits - 1]; ``decode_waveforms(X) == signals``.
    kind : ndarray of shape (n_samples,), str (only with ``return_signals``)

    Raises
    ------
    ValueError
        Naming the argument, for a bad count, an unknown kind or code, or a bad range.
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_points = _check_int(n_points, "n_points", 1)
    n_bits = _check_int(n_bits, "n_bits", 1, _MAX_BITS)
    kinds = _check_kinds(kinds)
    code = _check_code(code)
    amp_lo, amp_hi = _check_range(amplitude, "amplitude", 0.0)
    per_lo, per_hi = _check_range(period, "period", 0.0, low_open=True)
    cen_lo, cen_hi = _check_range(centre, "centre", 0.0, 1.0)
    full = float(2 ** n_bits - 1)

    rng = np.random.default_rng(seed)
    which = rng.integers(len(kinds), size=n_samples)
    amp = rng.uniform(amp_lo, amp_hi, n_samples) * full
    per = rng.uniform(per_lo, per_hi, n_samples)
    cen = rng.uniform(cen_lo, cen_hi, n_samples) * full
    phase = rng.uniform(0.0, 1.0, n_samples)

    cycle = (np.arange(n_points) / per[:, None] + phase[:, None]) % 1.0   # position in the cycle, [0, 1)
    shape = np.empty_like(cycle)
    for index, kind in enumerate(kinds):
        rows = which == index
        u = cycle[rows]
        if kind == "sawtooth":
            shape[rows] = 2.0 * u - 1.0
        elif kind == "sine":
            shape[rows] = np.sin(2.0 * np.pi * u)
        else:  # square
            shape[rows] = np.where(u < 0.5, 1.0, -1.0)
    signals = np.clip(np.rint(cen[:, None] + amp[:, None] * shape), 0.0, full)
    X = encode_waveforms(signals, n_bits=n_bits, code=code)
    if return_signals:
        return X, signals, np.asarray(kinds)[which]
    return X


def encode_waveforms(signals, *, n_bits=8, code="gray") -> np.ndarray:
    """Code signals as binary units: ``n_bits`` units a sample point, most significant bit first.

    Parameters
    ----------
    signals : array of shape (n, n_points) or (n_points,)
        Levels in [0, 2**n_bits - 1]; non-integers are rounded to the nearest level.
    n_bits : int in [1, 16], default=8
    code : {"gray", "binary"}, default="gray"
        ``"binary"``: the plain binary digits of the level. ``"gray"``: those of its reflected
        Gray code ``level ^ (level >> 1)``, so neighbouring levels differ in one unit.

    Returns
    -------
    X : float64 0/1 array of shape (n, n_points * n_bits) (or (n_points * n_bits,) for 1-D
        input); column ``t * n_bits + k`` is bit k of point t, k = 0 the most significant.

    Raises
    ------
    ValueError
        When signals are not finite or fall outside [0, 2**n_bits - 1].
    """
    n_bits = _check_int(n_bits, "n_bits", 1, _MAX_BITS)
    code = _check_code(code)
    a = np.asarray(signals)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"signals must be numeric, got dtype {a.dtype}")
    if a.ndim not in (1, 2):
        raise ValueError(f"signals must be 1-D (one signal) or 2-D (n, n_points), got shape {a.shape}")
    levels = np.rint(a.astype(np.float64))
    full = 2 ** n_bits - 1
    if not np.isfinite(levels).all():
        raise ValueError("signals contain NaN or infinity")
    if levels.size and (levels.min() < 0 or levels.max() > full):
        raise ValueError(f"signals must lie in [0, {full}] (n_bits={n_bits}), "
                         f"got values from {a.min():g} to {a.max():g}")
    v = levels.astype(np.int64)
    if code == "gray":
        v = v ^ (v >> 1)
    bits = (v[..., None] >> np.arange(n_bits - 1, -1, -1)) & 1
    return bits.reshape(*a.shape[:-1], a.shape[-1] * n_bits).astype(np.float64)


def decode_waveforms(bits, *, n_bits=8, code="gray", method="mean") -> np.ndarray:
    """Signals (levels) from binary units or from their probabilities: the inverse of
    :func:`encode_waveforms`.

    Parameters
    ----------
    bits : array of shape (n, n_points * n_bits) or (n_points * n_bits,), values in [0, 1]
        0/1 states, or probabilities P(unit = 1) such as an RBM's P(v | h).
    n_bits : int in [1, 16], default=8
    code : {"gray", "binary"}, default="gray"
    method : {"mean", "threshold"}, default="mean"
        ``"mean"``: the expected level when each unit is an independent Bernoulli variable with
        the given probability: exact for 0/1 input, and the least-squares estimate for
        probabilities (for Gray code, binary bit k is the parity of Gray bits 0..k, whose
        probability of being 1 is ``(1 - prod_j (1 - 2 p_j)) / 2``). ``"threshold"``: each unit
        is set to ``p > 0.5`` first, giving integer levels.

    Returns
    -------
    signals : float64 array of shape (n, n_points) (or (n_points,) for 1-D input).
    """
    n_bits = _check_int(n_bits, "n_bits", 1, _MAX_BITS)
    code = _check_code(code)
    if method not in ("mean", "threshold"):
        raise ValueError(f"method must be 'mean' or 'threshold', got {method!r}")
    p = np.asarray(bits)
    if p.dtype.kind not in "biuf":
        raise ValueError(f"bits must be numeric, got dtype {p.dtype}")
    if p.ndim not in (1, 2):
        raise ValueError(f"bits must be 1-D or 2-D (n, n_points * n_bits), got shape {p.shape}")
    if p.shape[-1] % n_bits:
        raise ValueError(f"bits must have a multiple of n_bits={n_bits} columns, got shape {p.shape}")
    p = p.astype(np.float64)
    if not np.isfinite(p).all():
        raise ValueError("bits contain NaN or infinity")
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"bits must be 0/1 states or probabilities in [0, 1], "
                         f"got values from {p.min():g} to {p.max():g}")
    p = p.reshape(*p.shape[:-1], p.shape[-1] // n_bits, n_bits)
    if method == "threshold":
        p = (p > 0.5).astype(np.float64)
    if code == "gray":
        # P(binary bit k = 1) = P(odd number of ones among Gray bits 0..k); for 0/1 input this
        # is the exact XOR prefix.
        p = 0.5 * (1.0 - np.cumprod(1.0 - 2.0 * p, axis=-1))
    return p @ (2.0 ** np.arange(n_bits - 1, -1, -1))


def corrupt_waveforms(X, lost, *, n_bits=8, seed=0):
    """Lose a contiguous stretch of ``lost`` sample points in each coded waveform.

    The stretch starts at a uniformly drawn point in [1, n_points - lost - 1], so at least one
    known point remains on each side (the linear-interpolation baseline needs both ends). All
    ``n_bits`` units of a lost point are set to 0 (level 0).

    Parameters
    ----------
    X : array of shape (n, n_points * n_bits)
        Coded waveforms (from :func:`make_waveforms` or :func:`encode_waveforms`).
    lost : int in [1, n_points - 2]
    n_bits : int in [1, 16], default=8
    seed : int, default=0
        Seed of ``numpy.random.default_rng`` for the stretch positions.

    Returns
    -------
    corrupted : float64 array like X, with the lost units set to 0
    known : bool array of X's shape, False on the lost units (``clamp=known`` for Gibbs)
    """
    n_bits = _check_int(n_bits, "n_bits", 1, _MAX_BITS)
    X = np.asarray(X)
    if X.dtype.kind not in "biuf" or X.ndim != 2 or X.shape[1] % n_bits or X.shape[1] == 0:
        raise ValueError(f"X must be a 2-D numeric array with a multiple of n_bits={n_bits} columns, "
                         f"got {X.dtype} of shape {X.shape}")
    n, n_points = X.shape[0], X.shape[1] // n_bits
    if n_points < 3:
        raise ValueError(f"X holds {n_points} sample points a waveform; losing an inner stretch needs at least 3")
    lost = _check_int(lost, "lost", 1, n_points - 2)
    start = np.random.default_rng(seed).integers(1, n_points - lost, size=n)   # start + lost <= n_points - 1
    points = np.arange(n_points)
    lost_points = (points >= start[:, None]) & (points < start[:, None] + lost)
    known = ~np.repeat(lost_points, n_bits, axis=1)
    return np.where(known, X.astype(np.float64), 0.0), known
