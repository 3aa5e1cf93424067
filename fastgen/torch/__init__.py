"""PyTorch side of fastgen: ``torch.library`` custom ops over the compiled kernels, and
nn.Modules built on them. Importing this subpackage imports torch (fastgen itself does not).

* :mod:`.ops`: the custom ops, one module per op, registered through one helper
  (:mod:`.ops._library`): :func:`sample_categorical`, :func:`reparameterize` (z and KL, fused),
  :func:`bernoulli_log_likelihood` and :func:`gaussian_log_likelihood` (the ELBO's reconstruction
  terms as fused per-sample reductions), :func:`conv_transpose2d` (transposed convolution + bias
  + activation), :func:`max_pool2d`, :func:`max_unpool2d`, :func:`avg_unpool2d`,
  :func:`sparse_input_linear` (a linear layer computed on its input's nonzeros),
  :func:`stream_snapshot` (a Philox stream tensor's state before its owner advances it);
* :mod:`.random`: how the Philox stream meets torch's seeding, state_dict and torch.compile;
* :mod:`.nn`: layers (:class:`~fastgen.torch.nn.SparseInputLinear`, the fused ConvTranspose2d),
  autoencoders and VAEs;
* :mod:`.train`: the training loop and checkpoints of the autoencoder family, and the
  ``fastgen train vae|ae`` command on them (:mod:`.train.command`, imported as
  ``fastgen.torch.training``);
* :mod:`.smiles`: the character-level SMILES language model, its training loop and batched
  sampling;
* :mod:`.gan`: GAN losses, DCGAN (generator on the fused transposed convolution), stabilisers
  (minibatch discrimination, virtual batch norm, unrolled, conditional) and a trainer.

The modules' older names (``fastgen.torch.conv``, ``fastgen.torch.vae``, ``fastgen.torch.training``,
...) still import: each is the module of its new place.
"""
from .ops import (avg_unpool2d, bernoulli_log_likelihood, conv_transpose2d, gaussian_log_likelihood, max_pool2d,
                  max_unpool2d, reparameterize, sample_categorical, sparse_input_linear, stream_snapshot)

__all__ = ["sample_categorical", "reparameterize", "conv_transpose2d", "max_pool2d", "max_unpool2d", "avg_unpool2d",
           "bernoulli_log_likelihood", "gaussian_log_likelihood", "sparse_input_linear", "stream_snapshot"]
