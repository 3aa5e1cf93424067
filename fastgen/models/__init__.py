"""Model logic on top of fastgen.ops (NumPy arrays)."""
from .rbm import RBM, ContrastiveDivergence

__all__ = ["RBM", "ContrastiveDivergence", "DBN"]


def __getattr__(name: str):
    # DBN is a scikit-learn estimator: load it (and scikit-learn) only when asked for.
    if name == "DBN":
        from .dbn import DBN

        return DBN
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
