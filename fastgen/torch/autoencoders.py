"""``fastgen.torch.autoencoders``, the older name of :mod:`fastgen.torch.nn.autoencoders` (the same module object)."""
import sys

from .nn import autoencoders

sys.modules[__name__] = autoencoders
