"""``fastgen.torch.sparse_linear``, the older name of :mod:`fastgen.torch.ops.sparse_linear` (the same
module object)."""
import sys

from .ops import sparse_linear

sys.modules[__name__] = sparse_linear
