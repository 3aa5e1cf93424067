"""Regression tests for the validation the fuzzing (tests/test_fuzz.py) and the 32-bit index
audit asked for: each test is named after what it guards, and would fail (crash, pybind11
signature dump, NumPy "array is too big", wrong message) without its fix.

Huge extents are tested with zero-stride views (np.broadcast_to / Tensor.expand): the checks run
on shapes, before anything is copied, so nothing of that size is ever allocated.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastgen
from fastgen import ops
from fastgen.ops import conv as conv_ops
from fastgen.ops import pool as pool_ops
from fastgen.ops.validation import INT32_MAX, check_int32_extent, check_output_size
from fastgen.ops.sparse_linear import check_shapes

BIG = 2**31  # one past the largest extent a 32-bit index can hold


def huge(shape, dtype=np.float32):
    """A read-only zero-stride array of ``shape``: a few bytes of memory whatever the size."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def no_dump(excinfo):
    """The message names an argument, not pybind11's or NumPy's internals."""
    text = str(excinfo.value)
    assert "incompatible function arguments" not in text
    assert "array is too big" not in text and "Maximum allowed dimension" not in text
    assert "fastgen._C" not in text


# ---- the 32-bit index audit -----------------------------------------------------------------
def test_int32_extent_check_accepts_the_largest_and_refuses_one_more():
    assert check_int32_extent(INT32_MAX, "x", "columns") == INT32_MAX
    with pytest.raises(ValueError, match=r"^x has 2147483648 columns; .*32-bit"):
        check_int32_extent(BIG, "x", "columns")


@pytest.mark.parametrize("shape, what", [((1, BIG), "columns"), ((BIG, 1), "rows")])
def test_sparse_input_linear_refuses_extents_past_int32(shape, what):
    # the reported segfault: int32 column indices above 2**31 input features
    with pytest.raises(ValueError, match=rf"^x has {BIG} {what}") as exc:
        ops.sparse_input_linear(huge(shape), np.zeros((1, 1), np.float32))
    no_dump(exc)


def test_sparse_linear_check_shapes_refuses_int32_overflow_for_the_torch_op():
    with pytest.raises(ValueError, match=rf"^x has {BIG} columns"):
        check_shapes((1, BIG), (BIG, 4), None)
    with pytest.raises(ValueError, match=rf"^x has {BIG} rows"):
        check_shapes((BIG, 4), (4, 4), None)
    torch = pytest.importorskip("torch")
    from fastgen.torch.sparse_linear import sparse_input_linear

    x = torch.zeros(1, 1).expand(1, BIG)  # a view: validation must come before .contiguous()
    with pytest.raises(ValueError, match=rf"^x has {BIG} columns"):
        sparse_input_linear(x, torch.zeros(1, 1).expand(BIG, 1))


@pytest.mark.parametrize("transpose_a, shape, what", [(False, (1, BIG), "columns"), (True, (BIG, 1), "rows")])
def test_binary_matmul_refuses_extents_past_int32(transpose_a, shape, what):
    with pytest.raises(ValueError, match=rf"^a has {BIG} {what}") as exc:
        ops.binary_matmul(huge(shape, np.bool_), np.zeros((1, 1)), transpose_a=transpose_a)
    no_dump(exc)


def test_gibbs_refuses_rbm_and_batch_extents_past_int32():
    with pytest.raises(ValueError, match=rf"^W has {BIG} columns \(n_visible\)"):
        ops.gibbs(huge((1, BIG)), huge((1, BIG)), huge((BIG,)), np.zeros(1))
    with pytest.raises(ValueError, match=rf"^W has {BIG} rows \(n_hidden\)"):
        ops.cd_gradients(np.zeros((1, 1)), huge((BIG, 1)), np.zeros(1), huge((BIG,)))
    with pytest.raises(ValueError, match=rf"^v has {BIG} rows"):
        ops.gibbs(huge((BIG, 2)), np.zeros((3, 2)), np.zeros(2), np.zeros(3))


@pytest.mark.parametrize("x_shape, w_shape, name", [
    ((1, BIG, 1, 1), (BIG, 1, 1, 1), "x has 2147483648 channels"),
    ((1, 1, 1, 1), (1, 2**20, 2**6, 2**5), "weight has 2147483648 output taps"),
    ((1, 1, 2**16, 2**15), (1, 1, 1, 1), "x has 2147483648 pixels per image"),
])
def test_conv_transpose_geometry_refuses_blas_dimensions_past_int32(x_shape, w_shape, name):
    with pytest.raises(ValueError, match="^" + name):
        conv_ops.conv_transpose_geometry(x_shape, w_shape, None, 1, 0, 0)


# ---- pybind11 signature dumps and NumPy size errors ------------------------------------------
def test_gibbs_steps_past_the_kernels_int_is_refused_before_taking_offsets():
    gen = fastgen.Generator(0)
    v, W = np.zeros((2, 3)), np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"^steps must be an integer in 0\.\.2147483647") as exc:
        ops.gibbs(v, W, np.zeros(3), np.zeros(4), steps=2**40, generator=gen)
    no_dump(exc)
    assert gen.offset == 0
    with pytest.raises(ValueError, match=r"^k must be an integer in 1\.\.2147483647"):
        ops.cd_gradients(v, W, np.zeros(3), np.zeros(4), k=2**40, generator=gen)


@pytest.mark.parametrize("kwargs, name", [
    (dict(kernel_size=2, stride=2**70), "stride"),
    (dict(kernel_size=2**71, padding=2**70), "kernel_size"),
    (dict(kernel_size=2, stride=2**62), "stride"),
])
def test_max_pool2d_huge_window_integers_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must be at most 2\*\*31 - 1") as exc:
        pool_ops.max_pool2d(np.zeros((1, 1, 4, 4)), **kwargs)
    no_dump(exc)


def test_max_unpool2d_output_too_large_for_any_array_names_output_size():
    x = np.zeros((2, 3, 2, 2))
    with pytest.raises(ValueError, match=r"^output_size gives an output of shape") as exc:
        pool_ops.max_unpool2d(x, np.zeros(x.shape, np.int64), (2**31 - 1, 2**31 - 1))
    no_dump(exc)


def test_avg_unpool2d_output_too_large_for_any_array_names_kernel_size():
    with pytest.raises(ValueError, match=r"^kernel_size gives an output of shape") as exc:
        pool_ops.avg_unpool2d(np.zeros((1, 2, 4, 4)), 2**30)
    no_dump(exc)


def test_conv_transpose2d_huge_stride_names_stride():
    x, w = np.zeros((1, 2, 4, 4)), np.zeros((2, 3, 2, 2))
    with pytest.raises(ValueError, match=r"^stride gives an output of shape") as exc:
        conv_ops.conv_transpose2d(x, w, stride=2**30)
    no_dump(exc)
    # a stride past int64 on a 1 x 1 input would have reached the binding's std::array<int64_t>
    with pytest.raises(ValueError, match=r"^stride must be at most") as exc:
        conv_ops.conv_transpose2d(np.zeros((1, 2, 1, 1)), w, stride=2**70)
    no_dump(exc)


def test_check_output_size_leaves_symbolic_sizes_alone():
    class Sym:  # stands for a torch SymInt in a fake kernel: never converted
        def __int__(self):
            raise AssertionError("specialised")

    shape = (Sym(), 3)
    assert check_output_size(shape, "x") == shape


def test_unpool_indices_above_int64_report_their_true_value():
    x = np.zeros((1, 1, 2, 2))
    idx = np.full(x.shape, 2**63, np.uint64)  # was cast to int64 first and reported as -2**63
    with pytest.raises(ValueError, match=r"got values in \[9223372036854775808, 9223372036854775808\]"):
        pool_ops.max_unpool2d(x, idx, (4, 4))


def test_ragged_list_input_names_the_argument():
    with pytest.raises(ValueError, match=r"^v could not be read as an array"):
        ops.gibbs([[1.0, 0.0], [1.0]], np.zeros((2, 2)), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match=r"^clamp could not be read as an array"):
        ops.gibbs(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros(2), np.zeros(2), clamp=[[True], [True, False]])


# ---- flags and scalars that silently meant something else ------------------------------------
@pytest.mark.parametrize("call, name", [
    (lambda: ops.sample_bernoulli(np.zeros((2, 2)), from_logits="no"), "from_logits"),
    (lambda: ops.binary_matmul(np.ones((2, 2)), np.ones((2, 2)), transpose_a="yes"), "transpose_a"),
    (lambda: ops.gibbs(np.zeros((1, 2)), np.zeros((2, 2)), np.zeros(2), np.zeros(2), return_hidden=None),
     "return_hidden"),
])
def test_bool_flags_refuse_non_bools(call, name):
    with pytest.raises(TypeError, match=f"^{name} must be a bool"):
        call()


def test_sample_gaussian_std_overflowing_float32_is_refused():
    mean = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"^std must be finite in the arrays' dtype float32"):
        ops.sample_gaussian(mean, std=1e300)
    out = ops.sample_gaussian(mean.astype(np.float64), std=1e300, generator=0)  # fits float64
    assert out.dtype == np.float64 and np.isfinite(out).all()


def test_conv_negative_slope_overflowing_float32_is_refused():
    x, w = np.zeros((1, 2, 3, 3), np.float32), np.zeros((2, 3, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"^negative_slope must be finite in the arrays' dtype float32"):
        conv_ops.conv_transpose2d(x, w, activation="leaky_relu", negative_slope=1e300)


def test_conv_unhashable_activation_names_activation():
    x, w = np.zeros((1, 2, 3, 3)), np.zeros((2, 3, 2, 2))
    with pytest.raises(ValueError, match="^activation must be one of"):
        conv_ops.conv_transpose2d(x, w, activation=["relu"])


def test_categorical_huge_temperature_check_emits_no_overflow_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="^temperature must be finite in the logits' dtype float32"):
            ops.sample_categorical(np.zeros((2, 3), np.float32), temperature=1e300)


# ---- the torch backward ops: inconsistent shapes refused, naming the argument ----------------
def _backward_cases():
    torch = pytest.importorskip("torch")
    stream = torch.zeros(2, dtype=torch.int64)  # (seed, offset) of reparameterize's stream
    import fastgen.torch  # noqa: F401  (registers the ops)
    import fastgen.torch.conv  # noqa: F401
    import fastgen.torch.pool  # noqa: F401

    O, z = torch.ops.fastgen, torch.zeros
    i64 = dict(dtype=torch.int64)
    return [
        ("max_pool2d_backward indices shape", lambda: O.max_pool2d_backward(z(1, 1, 2, 2), z(1, 1, 3, 3, **i64), 4, 4),
         r"^indices must have shape \(1, 1, 2, 2\)"),
        ("max_pool2d_backward index range", lambda: O.max_pool2d_backward(
            z(1, 1, 2, 2), torch.full((1, 1, 2, 2), 99, **i64), 4, 4), r"^indices must lie in \[0, 16\)"),
        ("max_pool2d_backward huge input", lambda: O.max_pool2d_backward(z(1, 1, 2, 2), z(1, 1, 2, 2, **i64), 2**40, 2),
         r"^\(in_h, in_w\) must be at most"),
        ("max_pool2d_backward 1-D grad", lambda: O.max_pool2d_backward(z(2), z(2, **i64), 4, 4),
         r"^grad_out must be 4-D"),
        ("gather_planes planes", lambda: O.gather_planes(z(1, 1, 2, 2), z(2, 1, 2, 2, **i64)),
         r"^indices must have grad_out's \(N, C\)"),
        ("gather_planes range", lambda: O.gather_planes(z(1, 1, 2, 2), torch.full((1, 1, 2, 2), 99, **i64)),
         r"^indices must lie in \[0, 4\)"),
        ("gather_planes int32", lambda: O.gather_planes(z(1, 1, 2, 2), z(1, 1, 2, 2, dtype=torch.int32)),
         r"^indices must be a 4-D int64"),
        ("avg_unpool2d_backward", lambda: O.avg_unpool2d_backward(z(1, 1, 3, 3), [2, 2]),
         r"^grad_out's \(H, W\) \(3, 3\) must be multiples"),
        ("conv backward grad_out", lambda: O.conv_transpose2d_backward(
            z(1, 3, 9, 9), z(1, 3, 9, 9), z(1, 2, 4, 4), z(2, 3, 2, 2), [1, 1], [0, 0], [0, 0], "relu", 0.01),
         r"^grad_out must have the output's shape \(1, 3, 5, 5\)"),
        ("conv backward y", lambda: O.conv_transpose2d_backward(
            z(1, 3, 17, 17), z(1, 3, 5, 5), z(1, 2, 16, 16), z(2, 3, 2, 2), [1, 1], [0, 0], [0, 0], "relu", 0.01),
         r"^y must have the output's shape \(1, 3, 17, 17\)"),
        ("bernoulli backward grad", lambda: O.bernoulli_log_likelihood_backward(z(5), z(2, 3), z(2, 3)),
         r"^grad must have shape \(2,\)"),
        ("bernoulli backward logits", lambda: O.bernoulli_log_likelihood_backward(z(2), z(2, 3), z(1, 3)),
         r"^logits must have x's shape \(2, 3\)"),
        ("gaussian backward grad", lambda: O.gaussian_log_likelihood_backward(z(5), z(2, 3), z(2, 3), z(2, 3)),
         r"^grad must have shape \(2,\)"),
        ("gaussian backward logvar", lambda: O.gaussian_log_likelihood_backward(z(2), z(2, 3), z(2, 3), z(7)),
         r"^logvar must have x's shape"),
        ("reparameterize backward grad_z", lambda: O.reparameterize_backward(z(3, 3), None, z(2, 3), z(2, 3), stream),
         r"^grad_z must have shape \(2, 3\)"),
        ("reparameterize backward grad_kl", lambda: O.reparameterize_backward(None, z(5), z(2, 3), z(2, 3), stream),
         r"^grad_kl must have shape \(2,\)"),
        ("reparameterize backward 3-D", lambda: O.reparameterize_backward(None, None, z(2, 3, 1), z(2, 3, 1), stream),
         r"^mu must be 2-D"),
        ("sparse_linear backward grad", lambda: O.sparse_input_linear_backward(
            z(2, 5), z(2, 3), z(3, 4), True, True, True), r"^grad must have shape \(2, 4\)"),
        ("sparse_linear backward weight_t", lambda: O.sparse_input_linear_backward(
            z(2, 4), z(2, 3), z(5, 4), True, True, True), r"^weight_t must have x.shape\[1\] = 3 rows"),
    ]


def test_internal_torch_backward_ops_refuse_inconsistent_shapes():
    cases = _backward_cases()
    for label, call, message in cases:
        with pytest.raises((ValueError, TypeError), match=message) as exc:
            call()
        no_dump(exc)
        assert "RuntimeError" not in type(exc.value).__name__, label


def test_internal_torch_backward_fake_kernels_refuse_inconsistent_shapes():
    torch = pytest.importorskip("torch")
    from torch._subclasses.fake_tensor import FakeTensorMode

    import fastgen.torch.sparse_linear  # noqa: F401

    with FakeTensorMode():
        grad, x, w = torch.zeros(2, 5), torch.zeros(2, 3), torch.zeros(3, 4)
        with pytest.raises(ValueError, match=r"^grad must have shape \(2, 4\)"):
            torch.ops.fastgen.sparse_input_linear_backward(grad, x, w, True, True, True)


# ---- found by tests/test_fuzz.py -------------------------------------------------------------
@pytest.mark.parametrize("generator", [-1, 2**64])
def test_out_of_range_int_seed_names_generator(generator):
    with pytest.raises(ValueError, match=r"^generator \(a fastgen.Generator or an int seed\): seed must be"):
        ops.sample_gaussian(np.zeros(2), generator=generator)
    with pytest.raises(ValueError, match=r"^generator"):
        ops.sample_categorical(np.zeros(3), generator=generator)


def test_reparameterize_one_empty_row():
    # was "cannot reshape array of size 0 into shape (0)" (reshape(-1, 0))
    z, kl = ops.reparameterize(np.zeros(0), np.zeros(0), generator=0)
    assert z.shape == (0,) and kl.shape == () and kl == 0.0
