"""The estimators' parameters: scikit-learn's ``_parameter_constraints`` table and fastgen's own
limits, both raising scikit-learn's ``InvalidParameterError`` (a ValueError and a TypeError).

The table is checked as scikit-learn checks it (and skipped, as there, under
``sklearn.set_config(skip_parameter_validation=True)``); the limits always hold, because the
compiled loops take 32-bit extents and finite rates. The limits use the one set of scalar checks
(:mod:`fastgen._checks`), re-raised as ``InvalidParameterError`` by :func:`parameter_errors`.
"""
from __future__ import annotations

import contextlib
from numbers import Integral, Real

import numpy as np
from sklearn import get_config
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    Options,
    validate_parameter_constraints,
)

from .._checks import INT32_MAX, flag, positive_int, real
from ..random import Generator

__all__ = ["DEVICES", "DeviceOption", "FloatDtypeOption", "RBM_PARAMETER_CONSTRAINTS", "check_random_state_named",
           "generator_from", "parameter_errors", "parse_device", "validate_params"]

DEVICES = "'auto', 'cpu', 'cuda' or 'cuda:N'"


@contextlib.contextmanager
def parameter_errors():
    """A ValueError or TypeError of :mod:`fastgen._checks` inside re-raised as scikit-learn's
    InvalidParameterError, with the same message."""
    try:
        yield
    except InvalidParameterError:
        raise
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError(str(exc)) from None


def parse_device(device):
    """"auto", "cpu", "cuda", or a CUDA ordinal for "cuda:N"; InvalidParameterError naming
    ``device`` otherwise."""
    if isinstance(device, str):
        text = device.strip().lower()
        if text in ("auto", "cpu", "cuda"):
            return text
        if text.startswith("cuda:") and text[5:].isdigit():
            return int(text[5:])
    raise InvalidParameterError(f"device must be {DEVICES}, got {device!r}")


def check_random_state_named(random_state):
    """scikit-learn's check_random_state, its errors re-raised naming random_state."""
    try:
        return check_random_state(random_state)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"random_state must be None, an int in [0, 2**32) or a numpy RandomState, "
                                    f"got {random_state!r} ({exc})") from None


def generator_from(random_state) -> Generator:
    """The fastgen Generator an estimator draws from: seeded by one draw of
    ``check_random_state(random_state)``."""
    rng = check_random_state_named(random_state)
    return Generator(int(rng.randint(np.iinfo(np.int64).max, dtype=np.int64)))


# scikit-learn's validate_parameter_constraints takes only its own constraint classes, so the two
# options it has no constraint for are Options with their own test.
class FloatDtypeOption(Options):
    """The ``dtype`` option: anything ``np.dtype`` maps to float32 or float64."""

    def __init__(self):
        super().__init__(object, {"float32", "float64"})

    def is_satisfied_by(self, val):
        try:
            return np.dtype(val) in (np.float32, np.float64)
        except TypeError:
            return False

    def __str__(self):
        return "a float32 or float64 dtype ('float32', 'float64', numpy.float32, ...)"


class DeviceOption(Options):
    """The ``device`` option (see :func:`parse_device`)."""

    def __init__(self):
        super().__init__(str, {"auto", "cpu", "cuda"})

    def is_satisfied_by(self, val):
        try:
            parse_device(val)
        except InvalidParameterError:
            return False
        return True

    def __str__(self):
        return f"one of {DEVICES}"


# The parameters every RBM estimator has; the first six are scikit-learn's BernoulliRBM's, with
# the same constraints.
RBM_PARAMETER_CONSTRAINTS = {
    "n_components": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "n_iter": [Interval(Integral, 0, None, closed="left")],
    "verbose": ["verbose"],
    "random_state": ["random_state"],
    "cd_k": [Interval(Integral, 1, None, closed="left")],
    "persistent": ["boolean"],
    "n_chains": [Interval(Integral, 1, None, closed="left"), None],
    "momentum": [Interval(Real, 0, 1, closed="left")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "dtype": [None, FloatDtypeOption()],
    "progress": ["boolean"],
}

# fastgen's limits, whichever of these parameters an estimator has: integers (minimum, maximum;
# the extents are BLAS dimensions, 32-bit ints, in the compiled loops) ...
_INTEGER_LIMITS = {
    "n_components": (1, INT32_MAX),
    "batch_size": (1, INT32_MAX),
    "n_iter": (0, None),
    "cd_k": (1, INT32_MAX),
    "n_chains": (1, INT32_MAX),  # or None
    "n_temperatures": (1, None),
}
# ... finite reals (low, low excluded, an excluded upper bound) ...
_REAL_LIMITS = {
    "learning_rate": (0.0, True, None),
    "momentum": (0.0, False, 1.0),
    "weight_decay": (0.0, False, None),
    "min_beta": (0.0, False, 1.0),
    "final_learning_rate": (0.0, False, None),
}
# ... and flags.
_FLAGS = ("persistent", "learn_sigma")

# fastgen's wording of two errors, which callers match, appended to scikit-learn's.
_WORDING = {
    "random_state": "random_state must be None, an int in [0, 2**32) or a numpy RandomState",
    "device": f"device must be {DEVICES}",
}


def _check_limits(params: dict) -> None:
    with parameter_errors():
        for name, (minimum, maximum) in _INTEGER_LIMITS.items():
            if params.get(name) is None:  # absent, or n_chains=None
                continue
            value = positive_int(params[name], name, minimum=minimum)
            if maximum is not None and value > maximum:
                raise InvalidParameterError(f"{name} must be at most {maximum}, got {value!r}")
        for name, (low, low_open, below) in _REAL_LIMITS.items():
            if name not in params:
                continue
            value = real(params[name], name, low=low, low_open=low_open)
            if below is not None and value >= below:
                raise InvalidParameterError(f"{name} must be < {below}, got {value!r}")
        for name in _FLAGS:
            if name in params:
                flag(params[name], name)
    dtype = params.get("dtype")
    if dtype is not None and not FloatDtypeOption().is_satisfied_by(dtype):
        raise InvalidParameterError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
    if "device" in params:
        parse_device(params["device"])


def validate_params(estimator, caller_name=None) -> None:
    """Every parameter of ``estimator`` checked, or InvalidParameterError naming the first bad
    one: its ``_parameter_constraints`` table first (unless scikit-learn's validation is
    skipped), then fastgen's limits. ``caller_name``: the estimator scikit-learn's messages
    name (DBN for its layers)."""
    params = estimator.get_params(deep=False)
    if not get_config().get("skip_parameter_validation", False):
        caller_name = caller_name or type(estimator).__name__
        for name, value in params.items():
            try:  # one parameter at a time, so that the message can keep fastgen's wording too
                validate_parameter_constraints(estimator._parameter_constraints, {name: value},
                                               caller_name=caller_name)
            except InvalidParameterError as exc:
                if name not in _WORDING:
                    raise
                raise InvalidParameterError(f"{exc} ({_WORDING[name]})") from None
    check_random_state_named(params["random_state"])
    _check_limits(params)
