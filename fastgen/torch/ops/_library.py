"""The one way fastgen's torch ops are registered: :func:`custom_op` defines ``fastgen::<name>``.

Usage mirrors ``torch.library.custom_op`` (and pytorch/extension-cpp's ``ops.py``)::

    @custom_op("max_pool2d")                      # the CPU kernel; the schema is read from its annotations
    def _max_pool2d(x: torch.Tensor, kernel_size: List[int], ...) -> tuple[torch.Tensor, torch.Tensor]: ...

    @_max_pool2d.register_kernel("cuda")          # optional
    @_max_pool2d.register_fake                    # shapes only, for torch.compile and opcheck
    _max_pool2d.register_autograd(backward, setup_context=setup)

but the op is defined on a ``torch.library.Library`` fragment, with one Python autograd kernel of
our own (an ``autograd.Function`` that calls the op below the autograd key) instead of
``custom_op``'s generated layers, which cost more per call than fastgen's small kernels
(``python -m bench.torch_dispatch`` measures both routes). An op without an autograd formula (the
backward ops) refuses to be differentiated: fastgen's torch ops have first derivatives only.

Kernels may be called with trailing arguments left out when they equal the schema's defaults
(the dispatcher drops them), so give kernels with defaults the same Python defaults.

Reduced precision: the kernels compute in float32 or float64. A call whose floating tensors are
all bfloat16 (or all float16) runs in float32 and its floating outputs are cast back, so a bf16 or
fp16 model works, accumulating in float32. Under ``torch.autocast`` (CPU and CUDA) every op runs
in float32, as torch's own reductions and losses do: bfloat16/float16 inputs are cast up (and,
as ``torch.library.register_autocast`` does, float64 ones down), the outputs are float32.
"""
from __future__ import annotations

import functools
from typing import Callable

import torch

NAMESPACE = "fastgen"
LIBRARY = torch.library.Library(NAMESPACE, "FRAGMENT")

_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA"}
REDUCED_FLOATS = (torch.bfloat16, torch.float16)


def in_float32(kernel: Callable) -> Callable:
    """``kernel`` for bfloat16/float16 calls too: when every floating tensor argument has one
    reduced dtype, they are computed in float32 and floating outputs cast back to that dtype."""

    import inspect

    names = list(inspect.signature(kernel).parameters)

    @functools.wraps(kernel)
    def run(*args):
        dtypes = {a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()}
        if len(dtypes) == 1 and next(iter(dtypes)) in REDUCED_FLOATS:
            reduced = dtypes.pop()
        elif len(dtypes) > 1 and any(d in REDUCED_FLOATS for d in dtypes):
            given = ", ".join(f"{name} {a.dtype}" for name, a in zip(names, args)
                              if isinstance(a, torch.Tensor) and a.is_floating_point())
            raise TypeError(f"the floating tensors of one call must have one dtype (bfloat16 and float16 run in "
                            f"float32 when all of them have it): got {given}")
        else:
            return kernel(*args)
        out = kernel(*(a.float() if isinstance(a, torch.Tensor) and a.dtype == reduced else a for a in args))
        return _cast_floats(out, reduced)

    return run


def _cast_floats(out, dtype):
    if isinstance(out, torch.Tensor):
        return out.to(dtype) if out.dtype == torch.float32 else out
    if isinstance(out, (tuple, list)):
        return type(out)(_cast_floats(o, dtype) for o in out)
    return out


class CustomOp:
    """``torch.ops.fastgen.<name>``, defined from its CPU kernel, with the registration methods of
    ``torch.library.CustomOpDef`` (``register_kernel``, ``register_fake``, ``register_autograd``)."""

    def __init__(self, name: str, cpu_kernel: Callable):
        self.name = name
        # pt2_compliant as custom_op tags its ops: every op has a fake kernel and passes opcheck
        LIBRARY.define(name + torch.library.infer_schema(cpu_kernel, mutates_args=()),
                       tags=(torch.Tag.pt2_compliant_tag,))
        LIBRARY.impl(name, in_float32(cpu_kernel), "CPU")
        LIBRARY.impl(name, self._autograd_kernel, "Autograd")
        for device_type in _DISPATCH_KEYS:
            torch.library.register_autocast(f"{NAMESPACE}::{name}", device_type, torch.float32, lib=LIBRARY)
        self.op = getattr(getattr(torch.ops, NAMESPACE), name).default
        self._setup_context = None
        self._backward = None
        self._materialize_grads = True
        self._function = self._autograd_function()

    def register_kernel(self, device_type: str):
        """Decorator: ``fn`` runs the op on ``device_type`` ("cuda") tensors. The dispatcher picks
        the CUDA kernel whenever any tensor argument is on CUDA, so a CUDA/CPU mix arrives there."""

        def register(fn):
            LIBRARY.impl(self.name, in_float32(fn), _DISPATCH_KEYS[device_type])
            return fn

        return register

    def register_fake(self, fn):
        """Decorator: the fake (meta) kernel: checks what it can and returns empty outputs."""
        torch.library.register_fake(f"{NAMESPACE}::{self.name}", fn, lib=LIBRARY)
        return fn

    def register_autograd(self, backward: Callable, *, setup_context: Callable,
                          materialize_grads: bool = True) -> None:
        """``setup_context(ctx, inputs, output)`` saves what ``backward(ctx, *grad_outputs)`` needs
        (as for ``torch.library.register_autograd``). ``materialize_grads=False``: an output
        nobody used reaches ``backward`` as None instead of zeros."""
        self._setup_context, self._backward = setup_context, backward
        self._materialize_grads = materialize_grads

    def _autograd_function(self) -> type:
        op_def = self

        class Function(torch.autograd.Function):
            @staticmethod
            def forward(ctx, *args):
                with torch._C._AutoDispatchBelowAutograd():  # on to the device / fake kernel, not back here
                    output = op_def.op(*args)
                ctx.set_materialize_grads(op_def._materialize_grads)
                if op_def._setup_context is not None:
                    op_def._setup_context(ctx, args, output)
                return output

            @staticmethod
            def backward(ctx, *grads):
                if op_def._backward is None:
                    raise RuntimeError(f"{NAMESPACE}::{op_def.name} has no derivative: fastgen's torch ops have "
                                       "first derivatives only (a double backward through it is not supported)")
                return op_def._backward(ctx, *grads)

        Function.__name__ = Function.__qualname__ = f"{_class_name(self.name)}Function"
        return Function

    def _autograd_kernel(self, *args):
        if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
            return self._function.apply(*args)
        with torch._C._AutoDispatchBelowAutograd():  # no graph to record
            return self.op(*args)


def _class_name(name: str) -> str:
    """``"max_pool2d_backward"`` -> ``"MaxPool2dBackward"``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def custom_op(name: str) -> Callable[[Callable], CustomOp]:
    """Decorator over an op's CPU kernel: defines ``torch.ops.fastgen.<name>`` (see the module's docstring)."""
    return lambda cpu_kernel: CustomOp(name, cpu_kernel)


U64 = 1 << 64


def int64_from_uint64(value: int) -> int:
    """A 64-bit Philox word (seed or offset, 0 <= value < 2**64) as the int64 an op's schema
    takes: two's complement, so values >= 2**63 become value - 2**64."""
    return value - U64 if value >= (1 << 63) else value


def uint64_from_int64(value: int, name: str) -> int:
    """The Philox word an op received as an int64 (the inverse of :func:`int64_from_uint64`);
    ValueError naming ``name`` when it does not fit an int64."""
    value = int(value)
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"{name} must fit an int64 (pass seeds >= 2**63 as seed - 2**64), got {value}")
    return value % U64
