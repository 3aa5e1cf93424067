"""fastgen's torch custom ops (``torch.ops.fastgen.*``), one module per op over the kernels of
:mod:`fastgen.ops`, each registered through :mod:`._library` (schema, CPU and CUDA kernels, fake
kernel, autograd) and checked by :mod:`._validate`:

* :mod:`.categorical`: ``sample_categorical``;
* :mod:`.reparam`: ``reparameterize`` (z and KL, fused);
* :mod:`.elbo`: ``bernoulli_log_likelihood``, ``gaussian_log_likelihood``;
* :mod:`.conv`: ``conv_transpose2d`` (transposed convolution + bias + activation);
* :mod:`.pool`: ``max_pool2d``, ``max_unpool2d``, ``avg_unpool2d``;
* :mod:`.sparse_linear`: ``sparse_input_linear``;
* :mod:`.stream`: ``stream_snapshot`` (a stream tensor's (seed, offset) before its owner advances it).
"""
from .categorical import sample_categorical
from .conv import conv_transpose2d
from .elbo import bernoulli_log_likelihood, gaussian_log_likelihood
from .pool import avg_unpool2d, max_pool2d, max_unpool2d
from .reparam import reparameterize
from .sparse_linear import sparse_input_linear
from .stream import stream_snapshot

__all__ = ["sample_categorical", "reparameterize", "conv_transpose2d", "max_pool2d", "max_unpool2d", "avg_unpool2d",
           "bernoulli_log_likelihood", "gaussian_log_likelihood", "sparse_input_linear", "stream_snapshot"]
