"""Training of the autoencoder family: :mod:`.loop` (fit, evaluation, the PCA baseline),
:mod:`.checkpoints` (save, read, load for an exact resume) and :mod:`.command`, the body of the
``fastgen train vae|ae`` commands on them (imported as ``fastgen.torch.training``, which also
re-exports the loop's and checkpoints' names).

Nothing is imported here: the models import :mod:`.loop` (greedy pretraining fits layers), and
:mod:`.checkpoints` imports the models.
"""
