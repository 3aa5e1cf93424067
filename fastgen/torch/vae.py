"""``fastgen.torch.vae``, the older name of :mod:`fastgen.torch.nn.vae` (the same module object)."""
import sys

from .nn import vae

sys.modules[__name__] = vae
