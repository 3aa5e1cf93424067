"""CUDA launchers of the transposed convolution, kernels/conv.cu (csrc/conv.cpp on the device):
the output pass (bias + activation fused into the col2im gather), the backward's im2col and the
activation backward, with the GEMMs on cuBLAS.

Every function takes CuPy arrays the ops have validated and launches on CuPy's current stream.
"""
from __future__ import annotations

from .cuda_runtime import gemm, launch, pack_record, struct_dtypes, suffix

# kernels/include/fastgen/params/conv.h
GEOMETRY_FIELDS = tuple((f, "i") for f in ("batch", "in_c", "in_h", "in_w", "out_c", "out_h", "out_w", "kernel_h",
                                           "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w"))
STRUCTS = {
    "ConvTransposeGpuParams": (("cols", "p"), ("bias", "p"), ("out", "p")) + GEOMETRY_FIELDS + (("activation", "i"),
                                                                                               ("slope", "d")),
    "ActivationBackwardGpuParams": (("grad_out", "p"), ("y", "p"), ("grad_in", "p"), ("n", "i"),
                                    ("activation", "i"), ("slope", "d")),
}
DTYPES = struct_dtypes(STRUCTS)


def _geometry_fields(geometry) -> dict:
    return {name: int(v) for (name, _), v in zip(GEOMETRY_FIELDS, geometry)}

def conv_transpose2d_output(cols, bias, out, geometry, activation: int, slope: float) -> None:
    """out [N, C_out, H_out, W_out] = act(bias + the taps gathered from cols [C_out kh kw, N H W]);
    ``geometry`` as :func:`fastgen.ops.conv.conv_transpose_geometry` returns it."""
    params = pack_record(DTYPES["ConvTransposeGpuParams"], cols=cols, bias=bias, out=out,
                         activation=int(activation), slope=float(slope), **_geometry_fields(geometry))
    launch("conv", f"fg_conv_transpose2d_output_{suffix(out.dtype)}", out.size, params)


def conv_transpose2d_im2col(grad, cols, geometry) -> None:
    """cols [C_out kh kw, N H W] gathered from grad [N, C_out, H_out, W_out] (the backward)."""
    params = pack_record(DTYPES["ConvTransposeGpuParams"], cols=cols, out=grad, **_geometry_fields(geometry))
    launch("conv", f"fg_conv_transpose2d_im2col_{suffix(grad.dtype)}", cols.size, params)


def activation_backward(grad_out, y, grad_in, activation: int, slope: float) -> None:
    """grad_in = grad_out act'(x), from the activation's output y (all the same size)."""
    params = pack_record(DTYPES["ActivationBackwardGpuParams"], grad_out=grad_out, y=y, grad_in=grad_in,
                         n=grad_out.size, activation=int(activation), slope=float(slope))
    launch("conv", f"fg_activation_backward_{suffix(grad_out.dtype)}", grad_out.size, params)


def conv_transpose2d(x, weight, bias, geometry, activation: int, slope: float):
    """The whole forward on the GPU: cols = W^T X (cuBLAS, X = x as [C_in, N H W]) then the output
    pass. Returns out [N, C_out, H_out, W_out]."""
    import cupy as cp

    n, c_in, h, w = x.shape
    c_out, out_h, out_w = geometry[4:7]
    X = cp.ascontiguousarray(x.reshape(n, c_in, h * w).transpose(1, 0, 2)).reshape(c_in, n * h * w)
    W2 = weight.reshape(c_in, -1)
    cols = cp.empty((W2.shape[1], n * h * w), x.dtype)
    gemm("T", "N", W2, X, cols)
    out = cp.empty((n, c_out, out_h, out_w), x.dtype)
    conv_transpose2d_output(cols, bias, out, geometry, activation, slope)
    return out


def conv_transpose2d_backward(grad_out, y, x, weight, geometry, activation: int, slope: float, *,
                              need_bias: bool = True):
    """(grad_x, grad_weight, grad_bias) of the forward above, given its output y (the activation's
    derivative is taken from y): g = grad_out act'(y); cols = im2col(g); grad_x = W cols,
    grad_weight = X cols^T (cuBLAS); grad_bias = g summed over (N, H_out, W_out) (None unless
    need_bias)."""
    import cupy as cp

    n, c_in, h, w = x.shape
    g = grad_out
    if activation != 0:
        g = cp.empty_like(grad_out)
        activation_backward(grad_out, y, g, activation, slope)
    W2 = weight.reshape(c_in, -1)
    cols = cp.empty((W2.shape[1], n * h * w), x.dtype)
    conv_transpose2d_im2col(g, cols, geometry)
    gx = cp.empty((c_in, n * h * w), x.dtype)
    gemm("N", "N", W2, cols, gx)
    grad_x = cp.ascontiguousarray(gx.reshape(c_in, n, h * w).transpose(1, 0, 2)).reshape(n, c_in, h, w)
    X = cp.ascontiguousarray(x.reshape(n, c_in, h * w).transpose(1, 0, 2)).reshape(c_in, n * h * w)
    gw = cp.empty((c_in, W2.shape[1]), x.dtype)
    gemm("N", "T", X, cols, gw)
    grad_bias = g.sum(axis=(0, 2, 3)) if need_bias else None
    return grad_x, gw.reshape(weight.shape), grad_bias
