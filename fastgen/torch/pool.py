"""``fastgen.torch.pool``, the older name of :mod:`fastgen.torch.ops.pool` (the same module object)."""
import sys

from .ops import pool

sys.modules[__name__] = pool
