"""``fastgen.torch.elbo``, the older name of :mod:`fastgen.torch.ops.elbo` (the same module object)."""
import sys

from .ops import elbo

sys.modules[__name__] = elbo
