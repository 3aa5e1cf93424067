"""Datasets: scikit-learn's digits (the embedded default, no network), generated periodic
waveforms, and loaders for user files.

:mod:`fastgen.datasets.loaders` reads files (.npy, .npz, MNIST IDX, optionally gzip-compressed)
without unpickling, with every size checked before anything is allocated;
:mod:`fastgen.datasets.waveforms` generates the binary-coded signals of ``fastgen demo waveforms``.
Every public name of both is importable from here.
"""
from __future__ import annotations

from .._files import MAX_DECOMPRESSED_BYTES, existing_file, max_decompressed_bytes, read_npz_members
from .._png import save_image_grid
from .loaders import (SHARED_MNIST, gunzip, load_array, load_digits_binary, load_mnist_shared, read_idx,
                      read_labels, read_raw_array)
from .waveforms import (WAVEFORM_CODES, WAVEFORM_KINDS, corrupt_waveforms, decode_waveforms, encode_waveforms,
                        make_waveforms)

__all__ = ["load_digits_binary", "load_array", "read_idx", "load_mnist_shared", "save_image_grid",
           "SHARED_MNIST", "make_waveforms", "encode_waveforms", "decode_waveforms", "corrupt_waveforms",
           "WAVEFORM_KINDS", "WAVEFORM_CODES", "read_raw_array", "read_labels", "existing_file", "gunzip",
           "read_npz_members", "max_decompressed_bytes", "MAX_DECOMPRESSED_BYTES"]
