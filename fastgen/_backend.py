"""Which framework and device an array lives on, the compute form, and the way back.

Kinds of input (:func:`kind_of`):

==============  ====================================================  =====================
kind            what                                                  computed as
==============  ====================================================  =====================
``numpy``       NumPy arrays, lists, scalars                          NumPy
``torch``       torch tensors, CPU or CUDA                            NumPy / CuPy (DLPack)
``cupy``        CuPy arrays                                           CuPy
``cai``         other objects with ``__cuda_array_interface__``       CuPy (``cupy.asarray``)
``dlpack``      other objects with ``__dlpack__`` (CPU or CUDA)       NumPy / CuPy
==============  ====================================================  =====================

Every conversion is zero-copy where the layout allows. A result goes back with
:meth:`Placement.wrap`: NumPy for NumPy, a torch tensor on the caller's device for torch (through
DLPack, sharing memory), CuPy for CuPy and for the foreign CUDA producers (``cai`` and CUDA
``dlpack``: fastgen cannot build an arbitrary framework's array, and CuPy arrays speak both
protocols, so the caller can import the result zero-copy); CPU ``dlpack`` producers get NumPy.

Devices: all the arrays of one call must live on one device (:func:`placement` raises a
ValueError naming two arguments that disagree). CUDA work runs on the caller's current stream:
torch's current stream of the device for torch tensors, CuPy's current stream otherwise. CuPy is
imported only when a CUDA array is seen, so importing fastgen never needs CUDA; without CuPy (or
without a usable device) a CUDA array is refused with a TypeError naming the argument.
"""
from __future__ import annotations

import contextlib

import numpy as np

# DLPack device types (dlpack.h): CPU, CUDA, CUDA pinned host memory, CUDA managed memory.
_DL_CPU, _DL_CUDA, _DL_CUDA_HOST, _DL_CUDA_MANAGED = 1, 2, 3, 13


def is_torch_tensor(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def is_cupy_array(x) -> bool:
    return type(x).__module__.startswith("cupy") and hasattr(x, "__cuda_array_interface__")


def kind_of(x) -> str:
    """``numpy``, ``torch``, ``cupy``, ``cai`` or ``dlpack`` (see the module docstring)."""
    if isinstance(x, np.ndarray):
        return "numpy"
    if is_torch_tensor(x):
        return "torch"
    if is_cupy_array(x):
        return "cupy"
    if hasattr(x, "__cuda_array_interface__"):
        return "cai"
    if hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__") and not hasattr(x, "__array__"):
        return "dlpack"
    return "numpy"


def device_of(x):
    """``"cpu"`` or the CUDA device ordinal (int) that ``x`` lives on."""
    kind = kind_of(x)
    if kind == "torch":
        return (x.device.index or 0) if x.device.type == "cuda" else "cpu"
    if kind == "cupy":
        return int(x.device.id)
    if kind == "cai":
        return _cai_device(x)
    if kind == "dlpack":
        device_type, device_id = x.__dlpack_device__()
        return int(device_id) if int(device_type) in (_DL_CUDA, _DL_CUDA_MANAGED) else "cpu"
    return "cpu"


def _cai_device(x) -> int:
    """The device of a ``__cuda_array_interface__`` producer, asked of the driver when CuPy is
    importable (the interface itself does not name the device); 0 otherwise."""
    try:
        import cupy
    except ImportError:
        return 0
    ptr = x.__cuda_array_interface__["data"][0]
    try:
        return int(cupy.cuda.runtime.pointerGetAttributes(ptr).device) if ptr else 0
    except Exception:  # no driver, or a pointer the runtime does not know: validated later
        return 0


def is_cuda_array(x) -> bool:
    return device_of(x) != "cpu"


def describe(device) -> str:
    return "the CPU" if device == "cpu" else f"cuda:{device}"


# ---- CPU side -------------------------------------------------------------------------------
def to_numpy(x, name: str):
    """View ``x`` as a NumPy array (zero-copy for NumPy, CPU torch and DLPack producers).

    A CUDA array raises a TypeError naming ``name``: the CPU paths never copy device memory to
    the host behind the caller's back (the ops send CUDA arrays to the CUDA backend before this).
    """
    if isinstance(x, np.ndarray):
        return x
    if is_cuda_array(x):
        raise TypeError(f"{name} lives on a CUDA device; this operation runs on the CPU here "
                        "(move it to the CPU, e.g. tensor.cpu() or cupy.asnumpy(array))")
    if is_torch_tensor(x):
        if x.requires_grad:
            x = x.detach()
        return np.from_dlpack(x)
    if kind_of(x) == "dlpack":
        return np.from_dlpack(x)
    return np.asarray(x)


def to_host(x, name: str):
    """Like :func:`to_numpy`, but copies CUDA arrays to the host (for the methods documented to
    run on the CPU)."""
    if is_cuda_array(x):
        cp = cuda_module(name)
        return cp.asnumpy(to_cupy(x, name))
    return to_numpy(x, name)


def wrap_like(result, like):
    """Return ``result`` (NumPy or CuPy) in the framework of ``like``, zero-copy."""
    kind = kind_of(like)
    if kind == "torch":
        import torch

        if isinstance(result, np.ndarray):
            return torch.from_numpy(result)
        return torch.from_dlpack(result)
    return result


# ---- CUDA side ------------------------------------------------------------------------------
def cuda_module(name: str):
    """CuPy, checked to reach a CUDA device; a TypeError naming ``name`` otherwise."""
    from ._native import cuda as _cuda

    reason = _cuda.unavailable_reason()
    if reason is not None:
        raise TypeError(f"{name} lives on a CUDA device, but fastgen's CUDA backend is unavailable: {reason}")
    import cupy

    return cupy


def to_cupy(x, name: str):
    """The CuPy view of a CUDA array (zero-copy), or a host array copied to the current device."""
    cp = cuda_module(name)
    kind = kind_of(x)
    if kind == "cupy":
        return x
    if kind == "torch":
        if x.requires_grad:
            x = x.detach()
        if x.device.type != "cuda":
            return cp.asarray(x.numpy())
        return cp.from_dlpack(x)
    if kind == "cai":
        return cp.asarray(x)
    if kind == "dlpack":
        if device_of(x) == "cpu":
            return cp.asarray(np.from_dlpack(x))
        return cp.from_dlpack(x)
    return cp.asarray(x)


class Placement:
    """Where one op call runs: ``device`` ("cpu" or a CUDA ordinal) and the array whose kind the
    results take (``like``)."""

    __slots__ = ("device", "like", "like_name")

    def __init__(self, device, like, like_name):
        self.device, self.like, self.like_name = device, like, like_name

    @property
    def cuda(self) -> bool:
        return self.device != "cpu"

    @contextlib.contextmanager
    def activate(self):
        """On CUDA: make the call's device current and, for torch input, torch's current stream
        CuPy's current stream (so kernels, cuBLAS and the DLPack exchanges all run on it)."""
        if not self.cuda:
            yield
            return
        cp = cuda_module(self.like_name)
        with cp.cuda.Device(self.device):
            if kind_of(self.like) == "torch":
                import torch

                stream = torch.cuda.current_stream(self.device)
                with cp.cuda.ExternalStream(stream.cuda_stream, self.device):
                    yield
            else:
                yield

    def array(self, x, name: str):
        """``x`` in this call's compute form: NumPy on the CPU, CuPy on CUDA (zero-copy for
        arrays already there)."""
        return to_cupy(x, name) if self.cuda else to_numpy(x, name)

    def wrap(self, result):
        return wrap_like(result, self.like)


def placement(**arrays) -> Placement:
    """The device of the call whose array arguments are ``arrays`` (name -> value; None values are
    skipped); the first array is the one results imitate. Arrays with no device of their own
    (lists, scalars) follow the others. Mixed devices raise a ValueError naming both arguments."""
    first = None
    device = None
    device_name = None
    for name, value in arrays.items():
        if value is None:
            continue
        if first is None:
            first = (name, value)
        if isinstance(value, (list, tuple, int, float, bool)):
            continue
        d = device_of(value)
        if device is None:
            device, device_name = d, name
        elif d != device:
            raise ValueError(
                f"{name} is on {describe(d)} but {device_name} is on {describe(device)}: "
                "pass every array of one call on the same device")
    if first is None:
        return Placement("cpu", None, None)
    if device is not None and device != "cpu":
        cuda_module(device_name)  # a clear error now if CuPy / the device is missing
    return Placement(device if device is not None else "cpu", first[1], first[0])
