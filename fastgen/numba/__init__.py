"""fastgen's stream, stable formulas and samplers inside numba code.

Each function here is callable from ``@numba.njit`` code (nopython, ``parallel=True`` and
``prange`` included) and from plain Python, and returns bitwise what the array ops return for the
same element: ``uniform(seed, offset, i)`` is element ``i`` of ``Generator(seed, offset).uniform(n)``,
``bernoulli_logit(x, seed, offset, i)`` is element ``i`` of
``sample_bernoulli(x, generator=Generator(seed, offset))``, and so on. The draw of element ``i``
depends only on ``(seed, offset, i)``, so a loop that numbers its elements gets the same numbers
on any thread count, in any order.

There is one definition of each formula: the functions are C entry points of ``fastgen._C``
compiled from the same headers as the array kernels (``kernels/include/fastgen/stream_at.h``),
which numba calls by symbol name. A call costs a function call plus the formula (a Philox block,
10 rounds, for each draw); nothing is inlined into the caller. Functions compiled with
``@njit(cache=True)`` keep working in a new process once ``fastgen.numba`` has been imported.

How to number draws: take one offset per pass (``seed, offset = fastgen.numba.take(generator)``,
or a counter of your own) and give every element drawn in that pass its own index, e.g. the flat
index of the site it updates. Two draws with the same (seed, offset, index) are the same number.

Values are not checked inside compiled code (a probability above 1, a negative std or a
temperature of 0 give a number there, where ``fastgen.ops`` and the Python calls raise); types
are, when the function is compiled (a float seed, offset or index is refused). From Python,
seeds, offsets and indices must be integers in [0, 2**64). A Python int of 2**63 or more does not
fit numba's int64: pass seeds as ``np.uint64`` (``take`` does).

``fastgen.numba.cuda`` holds the same functions for ``@numba.cuda.jit`` kernels.
"""
from __future__ import annotations

import ctypes
import numbers

import numpy as np

try:
    import numba
except ImportError as exc:  # pragma: no cover - exercised only without numba
    raise ImportError("fastgen.numba needs numba: pip install 'fastgen[numba]' (or pip install numba)") from exc

from llvmlite import binding as _llvm
from numba import types as _t
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

from .._native import cpu as _cpu

_U64_MAX = (1 << 64) - 1

_u64, _i64, _u32 = _t.uint64, _t.int64, _t.uint32
_f32, _f64 = _t.float32, _t.float64

# C entry point -> its numba signature (csrc/numba.cpp declares the same names).
SIGNATURES = {"fastgen_bits": _u32(_u64, _u64, _u64)}
for _name, _f in (("float32", _f32), ("float64", _f64)):
    SIGNATURES.update({
        f"fastgen_uniform_{_name}": _f(_u64, _u64, _u64),
        f"fastgen_normal_{_name}": _f(_u64, _u64, _u64),
        f"fastgen_sigmoid_{_name}": _f(_f),
        f"fastgen_softplus_{_name}": _f(_f),
        f"fastgen_log_sigmoid_{_name}": _f(_f),
        f"fastgen_log_add_exp_{_name}": _f(_f, _f),
        f"fastgen_bernoulli_{_name}": _f(_f, _u64, _u64, _u64),
        f"fastgen_bernoulli_logit_{_name}": _f(_f, _u64, _u64, _u64),
        f"fastgen_gaussian_{_name}": _f(_f, _f, _u64, _u64, _u64),
        f"fastgen_categorical_{_name}": _i64(_t.CPointer(_f), _i64, _f, _u64, _u64, _u64),
    })
del _name, _f

ENTRY_POINTS = _cpu.C.numba_entry_points()  # name -> address in fastgen._C
if set(ENTRY_POINTS) != set(SIGNATURES):  # pragma: no cover - a stale build
    raise ImportError("fastgen._C's numba entry points do not match fastgen.numba: rebuild fastgen (pip install -e .)")
for _name, _address in ENTRY_POINTS.items():
    _llvm.add_symbol(_name, _address)  # numba's linker resolves the name to this address
del _name, _address

# Callable in nopython code: a direct call of the symbol.
_EXTERNAL = {name: _t.ExternalFunction(name, sig) for name, sig in SIGNATURES.items()}

_CTYPES = {_u64: ctypes.c_uint64, _i64: ctypes.c_int64, _u32: ctypes.c_uint32, _f32: ctypes.c_float,
           _f64: ctypes.c_double}


def _ctype(ty):
    return ctypes.c_void_p if isinstance(ty, _t.CPointer) else _CTYPES[ty]


# Callable from Python: the same addresses through ctypes.
_PYTHON = {name: ctypes.CFUNCTYPE(_ctype(sig.return_type), *(_ctype(a) for a in sig.args))(ENTRY_POINTS[name])
           for name, sig in SIGNATURES.items()}


@intrinsic
def data_pointer(typingctx, array):
    """The address of a contiguous array's first element, typed as a pointer to its dtype
    (numba code; the array must stay alive while the pointer is used)."""
    if not isinstance(array, _t.Array):
        raise TypingError(f"fastgen.numba: expected an array, got {array}")

    def codegen(context, builder, signature, args):
        return context.make_array(array)(context, builder, args[0]).data

    return _t.CPointer(array.dtype)(array), codegen


# ---------------------------------------------------------------------------------------------
# Python side: checks, then the ctypes call


def _counter(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if not 0 <= value <= _U64_MAX:
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")
    return value


def _stream(seed, offset, index) -> tuple[int, int, int]:
    return _counter(seed, "seed"), _counter(offset, "offset"), _counter(index, "index")


def _dtype_name(dtype, name: str = "dtype") -> str:
    if isinstance(dtype, str):  # numba refuses strings too: code that runs here must compile there
        raise TypeError(f"{name} must be np.float32 or np.float64 (not a string), got {dtype!r}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt.name


def _value_name(x) -> str:
    """float32 for a NumPy float32 scalar, float64 for any other real number."""
    return "float32" if isinstance(x, np.float32) else "float64"


def _as_real(x, name: str, dtype_name: str):
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    return np.dtype(dtype_name).type(x)


def _typed(result, dtype_name: str):
    return np.dtype(dtype_name).type(result)


# ---------------------------------------------------------------------------------------------
# numba side: the float width from the argument types


def _numba_float_name(ty, name: str) -> str:
    if isinstance(ty, _t.Float) and ty.bitwidth == 32:
        return "float32"
    if isinstance(ty, (_t.Float, _t.Integer, _t.Boolean)):
        return "float64"
    raise TypingError(f"fastgen.numba: {name} must be a real number, got {ty}")


def _numba_dtype_name(ty) -> str:
    if isinstance(ty, _t.Omitted):
        ty = ty.value
    if ty in (np.float32, np.float64):  # the default, not a numba type
        return np.dtype(ty).name
    if isinstance(ty, _t.NumberClass):
        ty = ty.instance_type
    elif isinstance(ty, _t.DType):
        ty = ty.dtype
    if ty in (_f32, _f64):
        return ty.name
    raise TypingError(f"fastgen.numba: dtype must be np.float32 or np.float64, got {ty}")


def _require_counters(**counters) -> None:
    for name, ty in counters.items():
        if not isinstance(ty, _t.Integer):
            raise TypingError(f"fastgen.numba: {name} must be an integer, got {ty}")


# ---------------------------------------------------------------------------------------------
# The stream


def take(generator, n: int = 1) -> tuple[np.uint64, np.uint64]:
    """``(seed, offset)`` for numba code: reserves ``n`` offsets of ``generator`` (a
    fastgen.Generator, or an int seed) and returns its seed and the first of them as np.uint64,
    which numba accepts whole (a Python int of 2**63 or more does not fit its int64)."""
    from .._checks import as_generator

    gen = as_generator(generator)
    return np.uint64(gen.seed), np.uint64(gen.take(n))


def bits(seed, offset, index):
    """The raw 32-bit Philox word of element ``index`` of the call ``(seed, offset)``
    (``Generator(seed, offset).bits(n)[index]``)."""
    return np.uint32(_PYTHON["fastgen_bits"](*_stream(seed, offset, index)))


def uniform(seed, offset, index, dtype=np.float64):
    """Uniform on [0, 1) of element ``index``: ``Generator(seed, offset).uniform(n, dtype)[index]``
    (float32 keeps 24 random bits, float64 32)."""
    name = _dtype_name(dtype)
    return _typed(_PYTHON[f"fastgen_uniform_{name}"](*_stream(seed, offset, index)), name)


def normal(seed, offset, index, dtype=np.float64):
    """Standard normal of element ``index``: ``Generator(seed, offset).normal(n, dtype)[index]``
    (Box-Muller on the pair of words that holds it)."""
    name = _dtype_name(dtype)
    return _typed(_PYTHON[f"fastgen_normal_{name}"](*_stream(seed, offset, index)), name)


@overload(bits, target="cpu", jit_options={"nogil": True})
def _bits_numba(seed, offset, index):
    _require_counters(seed=seed, offset=offset, index=index)
    fn = _EXTERNAL["fastgen_bits"]
    return lambda seed, offset, index: fn(seed, offset, index)


def _stream_overload(python_fn, kind):
    @overload(python_fn, target="cpu", jit_options={"nogil": True})
    def _numba(seed, offset, index, dtype=np.float64):
        _require_counters(seed=seed, offset=offset, index=index)
        fn = _EXTERNAL[f"fastgen_{kind}_{_numba_dtype_name(dtype)}"]

        def impl(seed, offset, index, dtype=np.float64):
            return fn(seed, offset, index)
        return impl


_stream_overload(uniform, "uniform")
_stream_overload(normal, "normal")


# ---------------------------------------------------------------------------------------------
# Stable formulas (the float width follows the argument: float32 stays float32)


def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exactly 1 for large x; for very negative x, the
    smallest value fastgen's exp returns (about the smallest normal number), not 0."""
    name = _value_name(x)
    return _typed(_PYTHON[f"fastgen_sigmoid_{name}"](_as_real(x, "x", name)), name)


def softplus(x):
    """log(1 + exp(x)) without overflow (for very negative x, about the smallest normal number, not 0)."""
    name = _value_name(x)
    return _typed(_PYTHON[f"fastgen_softplus_{name}"](_as_real(x, "x", name)), name)


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x) (for large x, minus about the smallest normal number, not 0)."""
    name = _value_name(x)
    return _typed(_PYTHON[f"fastgen_log_sigmoid_{name}"](_as_real(x, "x", name)), name)


def log_add_exp(a, b):
    """log(exp(a) + exp(b)) without overflow (float32 only when both are float32)."""
    name = "float32" if _value_name(a) == _value_name(b) == "float32" else "float64"
    return _typed(_PYTHON[f"fastgen_log_add_exp_{name}"](_as_real(a, "a", name), _as_real(b, "b", name)), name)


def _unary_overload(python_fn, kind):
    @overload(python_fn, target="cpu", jit_options={"nogil": True})
    def _numba(x):
        fn = _EXTERNAL[f"fastgen_{kind}_{_numba_float_name(x, 'x')}"]
        return lambda x: fn(x)


for _fn, _kind in ((sigmoid, "sigmoid"), (softplus, "softplus"), (log_sigmoid, "log_sigmoid")):
    _unary_overload(_fn, _kind)
del _fn, _kind


@overload(log_add_exp, target="cpu", jit_options={"nogil": True})
def _log_add_exp_numba(a, b):
    narrow = _numba_float_name(a, "a") == _numba_float_name(b, "b") == "float32"
    fn = _EXTERNAL["fastgen_log_add_exp_float32" if narrow else "fastgen_log_add_exp_float64"]
    return lambda a, b: fn(a, b)


# ---------------------------------------------------------------------------------------------
# Samplers (element index = the flat index the array op would give the element)


def bernoulli(p, seed, offset, index):
    """State (0.0 or 1.0) of element ``index`` drawn with probability ``p``: what
    ``sample_bernoulli(probs, from_logits=False, generator=Generator(seed, offset))`` gives there."""
    name = _value_name(p)
    p = _as_real(p, "p", name)
    if not 0 <= p <= 1:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    return _typed(_PYTHON[f"fastgen_bernoulli_{name}"](p, *_stream(seed, offset, index)), name)


def bernoulli_logit(x, seed, offset, index):
    """State (0.0 or 1.0) of element ``index`` drawn with probability ``sigmoid(x)``: what
    ``sample_bernoulli(logits, generator=Generator(seed, offset))`` gives there."""
    name = _value_name(x)
    return _typed(_PYTHON[f"fastgen_bernoulli_logit_{name}"](_as_real(x, "x", name), *_stream(seed, offset, index)),
                  name)


def gaussian(mean, std, seed, offset, index):
    """``mean + std * normal`` of element ``index``: what ``sample_gaussian(mean, std,
    generator=Generator(seed, offset))`` gives there (float32 when ``mean`` is float32)."""
    name = _value_name(mean)
    std = _as_real(std, "std", name)
    if not (np.isfinite(std) and std >= 0):
        raise ValueError(f"std must be a finite number >= 0, got {std!r}")
    return _typed(_PYTHON[f"fastgen_gaussian_{name}"](_as_real(mean, "mean", name), std,
                                                       *_stream(seed, offset, index)), name)


def categorical(logits, temperature, seed, offset, row):
    """Category drawn from row ``row`` of a [rows, n_categories] logits array, given that row
    (1-D, float32 or float64): what ``sample_categorical(logits, temperature=temperature,
    generator=Generator(seed, offset))`` gives for the row (Gumbel-max, ties to the lowest
    category; no top-k). Returns -1 for an empty row."""
    x = np.asarray(logits)
    if x.ndim != 1 or x.dtype not in (np.float32, np.float64):
        raise TypeError(f"logits must be a 1-D float32 or float64 array (one row), got {x.ndim}-D {x.dtype}")
    x = np.ascontiguousarray(x)
    t = _as_real(temperature, "temperature", x.dtype.name)
    if not t > 0 or not np.isfinite(t):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return int(_PYTHON[f"fastgen_categorical_{x.dtype.name}"](x.ctypes.data, x.shape[0], t,
                                                              *_stream(seed, offset, row)))


def _sampler_overload(python_fn, kind):
    @overload(python_fn, target="cpu", jit_options={"nogil": True})
    def _numba(p, seed, offset, index):
        _require_counters(seed=seed, offset=offset, index=index)
        fn = _EXTERNAL[f"fastgen_{kind}_{_numba_float_name(p, 'p')}"]
        return lambda p, seed, offset, index: fn(p, seed, offset, index)


_sampler_overload(bernoulli, "bernoulli")
_sampler_overload(bernoulli_logit, "bernoulli_logit")


@overload(gaussian, target="cpu", jit_options={"nogil": True})
def _gaussian_numba(mean, std, seed, offset, index):
    _require_counters(seed=seed, offset=offset, index=index)
    fn = _EXTERNAL[f"fastgen_gaussian_{_numba_float_name(mean, 'mean')}"]
    _numba_float_name(std, "std")
    return lambda mean, std, seed, offset, index: fn(mean, std, seed, offset, index)


@overload(categorical, target="cpu", jit_options={"nogil": True})
def _categorical_numba(logits, temperature, seed, offset, row):
    _require_counters(seed=seed, offset=offset, row=row)
    if not (isinstance(logits, _t.Array) and logits.ndim == 1 and logits.dtype in (_f32, _f64)):
        raise TypingError(f"fastgen.numba.categorical: logits must be a 1-D float32 or float64 array, got {logits}")
    fn = _EXTERNAL[f"fastgen_categorical_{logits.dtype.name}"]

    def impl(logits, temperature, seed, offset, row):
        x = np.ascontiguousarray(logits)
        drawn = fn(data_pointer(x), x.shape[0], temperature, seed, offset, row)
        if x.shape[0] < 0:  # keeps x alive until after the call (never true)
            drawn = -1
        return drawn
    return impl


__all__ = ["take", "bits", "uniform", "normal", "sigmoid", "softplus", "log_sigmoid", "log_add_exp", "bernoulli",
           "bernoulli_logit", "gaussian", "categorical", "SIGNATURES", "ENTRY_POINTS"]
