"""Model logic on top of fastgen.ops (NumPy arrays)."""
from .rbm import RBM, ContrastiveDivergence

__all__ = ["RBM", "ContrastiveDivergence"]
