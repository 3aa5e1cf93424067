"""``fastgen.torch.training``, the older name of :mod:`fastgen.torch.train.command` (the same module
object): the ``fastgen train vae|ae`` command, with the loop's and checkpoints' names."""
import sys

from .train import command

sys.modules[__name__] = command
