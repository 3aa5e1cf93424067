"""``fastgen.torch.layers``, the older name of :mod:`fastgen.torch.nn.layers` (the same module object)."""
import sys

from .nn import layers

sys.modules[__name__] = layers
