"""``fastgen.torch.reparam``, the older name of :mod:`fastgen.torch.ops.reparam` (the same module object)."""
import sys

from .ops import reparam

sys.modules[__name__] = reparam
