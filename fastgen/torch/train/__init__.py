"""Training of the autoencoder family: :mod:`.loop` (fit, evaluation, the PCA baseline) and
:mod:`.checkpoints` (save, read, load for an exact resume). The ``fastgen train vae|ae`` command
built on them is :mod:`fastgen.torch.training`, which also re-exports these names.

Nothing is imported here: the models import :mod:`.loop` (greedy pretraining fits layers), and
:mod:`.checkpoints` imports the models.
"""
