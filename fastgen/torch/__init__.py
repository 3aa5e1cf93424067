"""PyTorch side of fastgen: ``torch.library`` custom ops over the compiled kernels, and
nn.Modules built on them. Importing this subpackage imports torch (fastgen itself does not).

* :func:`sample_categorical` / ``torch.ops.fastgen.sample_categorical`` (see :mod:`.ops`);
* :func:`reparameterize` (``torch.ops.fastgen.reparameterize``: z and KL, fused), see :mod:`.reparam`;
* :func:`bernoulli_log_likelihood`, :func:`gaussian_log_likelihood`: the ELBO's reconstruction
  terms as fused per-sample reductions, see :mod:`.elbo`;
* :func:`conv_transpose2d` (transposed convolution + bias + activation), see :mod:`.conv`;
* :func:`max_pool2d`, :func:`max_unpool2d`, :func:`avg_unpool2d`, see :mod:`.pool`;
* :func:`sparse_input_linear` (``torch.ops.fastgen.sparse_input_linear``: a linear layer computed
  on its input's nonzeros), see :mod:`.sparse_linear`, and its module
  :class:`fastgen.torch.layers.SparseInputLinear`;
* :mod:`fastgen.torch.smiles`: the character-level SMILES language model, its training loop
  and batched sampling.
* :mod:`fastgen.torch.gan`: GAN losses, DCGAN (generator on the fused transposed convolution),
  stabilisers (minibatch discrimination, virtual batch norm, unrolled, conditional) and a trainer.
"""
from .conv import conv_transpose2d
from .elbo import bernoulli_log_likelihood, gaussian_log_likelihood
from .ops import sample_categorical
from .pool import avg_unpool2d, max_pool2d, max_unpool2d
from .reparam import reparameterize
from .sparse_linear import sparse_input_linear

__all__ = ["sample_categorical", "reparameterize", "conv_transpose2d", "max_pool2d", "max_unpool2d", "avg_unpool2d",
           "bernoulli_log_likelihood", "gaussian_log_likelihood", "sparse_input_linear"]
