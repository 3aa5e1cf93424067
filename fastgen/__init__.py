"""fastgen: compiled kernels for the classic generative models.

Importing fastgen is cheap: the compiled module, SciPy's BLAS and scikit-learn load on first
use of what needs them.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .random import Generator  # noqa: E402  (pure Python, light)

_LAZY = {
    "BernoulliRBM": ("fastgen.sklearn", "BernoulliRBM"),
    "RBM": ("fastgen.models.rbm", "RBM"),
    "ContrastiveDivergence": ("fastgen.models.rbm", "ContrastiveDivergence"),
    "GaussianBernoulliRBM": ("fastgen.sklearn", "GaussianBernoulliRBM"),
    "DBN": ("fastgen.sklearn", "DBN"),
    "ops": ("fastgen.ops", None),
    "models": ("fastgen.models", None),
}

__all__ = ["Generator", "__version__", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'fastgen' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__():
    """The module's names and the lazy ones (``BernoulliRBM``, ``DBN``, ...) not loaded yet."""
    return sorted(set(globals()) | set(__all__))
