"""``fastgen.torch.conv``, the older name of :mod:`fastgen.torch.ops.conv` (the same module object)."""
import sys

from .ops import conv

sys.modules[__name__] = conv
