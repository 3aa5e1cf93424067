"""Model logic on top of fastgen.ops (NumPy arrays); the estimators built on it are in fastgen.sklearn."""
from .dbn import DeepBeliefNet
from .rbm import RBM, ContrastiveDivergence

__all__ = ["RBM", "ContrastiveDivergence", "DeepBeliefNet"]
