"""Low-level file reading and writing shared by the data loaders, the model files and the
pictures: atomic writes, the regular-file check, the cap on decompressed data, and .npy / .npz
parsing without pickles.

It imports nothing from fastgen, so that :mod:`fastgen.datasets`, :mod:`fastgen.serialization`
and :mod:`fastgen._png` can all build on it.
"""
from __future__ import annotations

import io
import math
import os
import secrets
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

# ---- atomic writes --------------------------------------------------------------------------------
def atomic_write(path, write) -> Path:
    """Call ``write(fh)`` on a binary file that becomes ``path`` only once complete.

    The data goes to a temporary file in ``path``'s folder (created if needed), is flushed and
    fsync-ed, and replaces ``path`` with :func:`os.replace` (atomic on POSIX and Windows). If
    ``write`` raises (or the process dies), ``path`` keeps its previous content and the temporary
    file is removed (or, after a kill, left under a hidden ``.NAME.*.tmp`` name, never as ``path``).
    """
    # through a link, the file it points to is replaced (as open() would write it), not the link
    path = Path(os.path.realpath(path))
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, expected a file name")
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(folder, path.name)
    try:
        # the mode open() would give: the replaced file's, or 0666 less the umask (applied by
        # the kernel when the temporary file was created)
        try:
            os.fchmod(fd, path.stat().st_mode & 0o7777)
        except (AttributeError, OSError):  # a new file, no fchmod (Windows), or no modes
            pass
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)
    return path


def _create_temporary(folder: Path, name: str):
    """(fd, path) of a new file ``.NAME.<random>.tmp`` in ``folder``, created with mode 0666 so
    that the kernel applies the umask (mkstemp's 0600 would need the umask read back, and reading
    it means setting it, which races with other threads)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), str(tmp)
        except FileExistsError:
            continue


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- size limits ----------------------------------------------------------------------------------
# Compressed data (gzip files, deflated .npz members) is decompressed in chunks and never past what
# its header declares (a .npy or IDX header states the array's shape) nor past this maximum, which
# the environment variable FASTGEN_MAX_DECOMPRESSED_BYTES overrides (a byte count). Without the
# cap a small crafted file (a "zip bomb": 195 KB of gzip can hold gigabytes of zeros) would take
# all the memory. Uncompressed files are read as they are; their headers must agree with their
# size before anything is allocated.
MAX_DECOMPRESSED_BYTES = 1 << 30


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


def too_big(path, declared: int, limit: int, what: str = "decompressed data") -> ValueError:
    return ValueError(f"{path}: {what} of {declared:,} bytes exceeds the limit of {limit:,} bytes "
                      "(set FASTGEN_MAX_DECOMPRESSED_BYTES to allow more)")


# ---- reading -------------------------------------------------------------------------------------
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


def read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not raw:
        raise ValueError(f"{path}: empty file")
    return raw


def npy_header(fh, name):
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


def npy_nbytes(shape, dtype) -> int:
    return math.prod(int(d) for d in shape) * dtype.itemsize


def npz_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path, key, limit: int) -> np.ndarray:
    """One array of an .npz archive: its header's shape is checked against the member's stored
    size before the array is allocated; compressed members are capped at ``limit``."""
    what = f"{path} (array {key!r})"
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > limit:
        raise too_big(what, info.file_size, limit)
    try:
        with archive.open(info) as fh:
            shape, fortran, dtype, consumed = npy_header(fh, what)
            declared = npy_nbytes(shape, dtype)
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


def open_npz(raw: bytes, path) -> tuple[zipfile.ZipFile, dict]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        members = {info.filename[:-4]: info for info in archive.infolist() if info.filename.endswith(".npy")}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise ValueError(f"{path}: cannot read as a .npz archive ({exc})") from None
    return archive, members


def read_npz_members(raw: bytes, path, keys=None) -> dict:
    """The arrays (all, or ``keys``) of the .npz archive whose bytes are ``raw``, read without
    pickles and with every header checked against the stored sizes (see :func:`fastgen.datasets.gunzip`
    for the cap on compressed members, which applies to their total)."""
    limit = max_decompressed_bytes()
    archive, members = open_npz(raw, path)
    with archive:
        names = list(members) if keys is None else [k for k in keys if k in members]
        total = sum(members[k].file_size for k in names if members[k].compress_type != zipfile.ZIP_STORED)
        if total > limit:
            raise too_big(path, total, limit)
        return {k: npz_member(archive, members[k], path, k, limit) for k in names}
