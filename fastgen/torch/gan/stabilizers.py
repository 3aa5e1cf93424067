"""GAN stabilisers: minibatch discrimination and virtual batch norm (Salimans et al. 2016), and
the unrolled-GAN generator loss (Metz et al. 2017) written with ``torch.func``.

(The conditional GAN -- labels into both networks -- is the ``n_classes`` option of the models
in :mod:`.dcgan` and :mod:`.mlp`.)
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call, grad as func_grad

from ..._checks import positive_int
from ._checks import float_tensor, positive_float
from .losses import check_loss, discriminator_loss, generator_loss


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (Salimans et al. 2016, section 3.2): lets D compare each sample
    with the rest of its batch, so a generator that collapses to one mode is easy to spot.

    ``M = x @ T`` reshaped to (N, B, C); ``c_b(i, j) = exp(-||M[i, b] - M[j, b]||_1)``;
    ``o(i)_b = sum_j c_b(i, j)`` over the whole batch (j = i included, as in the paper: it adds
    the constant 1). The output is ``[x, o]``.

    Parameters
    ----------
    in_features : int
        A, the features of x.
    n_kernels : int, default=50
        B.
    kernel_dim : int, default=5
        C.

    Shapes: x (N, A) -> (N, A + B).
    """

    def __init__(self, in_features: int, n_kernels: int = 50, kernel_dim: int = 5):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.n_kernels = positive_int(n_kernels, "n_kernels")
        self.kernel_dim = positive_int(kernel_dim, "kernel_dim")
        self.T = nn.Parameter(torch.randn(self.in_features, self.n_kernels * self.kernel_dim) * 0.1)

    @property
    def out_features(self) -> int:
        return self.in_features + self.n_kernels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        float_tensor(x, "x")
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"x must have shape (N, {self.in_features}), got {tuple(x.shape)}")
        per_kernel = (x @ self.T).view(x.shape[0], self.n_kernels, self.kernel_dim).transpose(0, 1)  # (B, N, C)
        # torch.cdist's L1 kernel: (B, N, N) distances without the (N, N, B, C) difference tensor
        # of the broadcast form
        l1 = torch.cdist(per_kernel, per_kernel, p=1)
        return torch.cat([x, torch.exp(-l1).sum(dim=2).t()], dim=1)


class VirtualBatchNorm(nn.Module):
    """Virtual batch normalisation (Salimans et al. 2016, section 3.4): each sample is
    normalised with the statistics of a fixed reference batch combined with its own, so its
    output does not depend on the other samples of its batch.

    A forward pass in reference mode (see :func:`reference_pass`) normalises the reference batch
    by its own mean and variance (over the batch and any spatial axes) and keeps them, with
    their gradient paths; a normal forward pass then uses, for each sample i and channel c,
    ``mean = (m_i + R m_ref) / (R + 1)`` and the same mixture of mean squares, where m_i is the
    sample's own (spatial) mean and R the reference batch size.

    Shapes: (N, C) or (N, C, *spatial) -> same.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = positive_int(num_features, "num_features")
        self.eps = positive_float(eps, "eps")
        self.weight = nn.Parameter(torch.ones(self.num_features))
        self.bias = nn.Parameter(torch.zeros(self.num_features))
        self.collecting_reference = False
        self._reference = None   # (mean, mean of squares, R), set by a reference pass

    def _shape(self, x):
        return (1, self.num_features) + (1,) * (x.dim() - 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        float_tensor(x, "x")
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"x must have shape (N, {self.num_features}, ...), got {tuple(x.shape)}")
        shape = self._shape(x)
        spatial = tuple(range(2, x.dim()))
        if self.collecting_reference:
            axes = (0,) + spatial
            mean, meansq = x.mean(dim=axes), (x * x).mean(dim=axes)
            self._reference = (mean, meansq, x.shape[0])
        else:
            if self._reference is None:
                raise RuntimeError("VirtualBatchNorm has no reference statistics: run the model inside "
                                   "reference_pass() (the DCGAN/MLP models do this when given a reference batch)")
            ref_mean, ref_meansq, r = self._reference
            own_mean = x.mean(dim=spatial) if spatial else x
            own_meansq = (x * x).mean(dim=spatial) if spatial else x * x
            mean = (own_mean + r * ref_mean) / (r + 1)
            meansq = (own_meansq + r * ref_meansq) / (r + 1)
            shape = mean.shape + (1,) * len(spatial)
        var = (meansq - mean * mean).clamp_min(0.0)
        out = (x - mean.reshape(shape)) * torch.rsqrt(var.reshape(shape) + self.eps)
        return out * self.weight.reshape(self._shape(x)) + self.bias.reshape(self._shape(x))


@contextmanager
def reference_pass(module: nn.Module):
    """Within the block, every :class:`VirtualBatchNorm` in ``module`` records the statistics of
    the batch it sees (run the reference batch through the model here)."""
    layers = [m for m in module.modules() if isinstance(m, VirtualBatchNorm)]
    for m in layers:
        m.collecting_reference = True
    try:
        yield layers
    finally:
        for m in layers:
            m.collecting_reference = False


def forward_with_reference(module: nn.Module, reference_args: tuple, args: tuple):
    """``module(*args)`` with the virtual batch norms' statistics taken from
    ``module(*reference_args)`` run just before (same parameters, so gradients flow through
    the reference statistics too, as in Salimans et al.)."""
    with reference_pass(module):
        module(*reference_args)
    return module(*args)


# ---- unrolled GAN --------------------------------------------------------------------------
_RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _look_ahead_buffers(module: nn.Module, buffers: dict) -> dict:
    """``buffers`` (name -> tensor, e.g. copies of ``module``'s) as the look-ahead passes them to
    ``functional_call``.

    A batch norm (any ``_NormBase``: BatchNorm1d/2d/3d, an InstanceNorm tracking statistics) in
    training mode normalises with the batch's own statistics and updates its running statistics
    in place -- which ``torch.func.grad`` refuses ("would mutate a captured Tensor"). As the
    torch.func docs advise for batch norm ("Patching Batch Norm", what
    ``torch.func.replace_all_batch_norm_modules_`` does to a module), such a layer gets None for
    its running mean, variance and batch count: it still normalises with batch statistics, as a
    real discriminator step does (running statistics never enter a training-mode output), and
    nothing is updated. The module itself is not touched. Layers in eval mode keep their running
    statistics, which they only read.
    """
    look_ahead = dict(buffers)
    for prefix, m in module.named_modules():
        if isinstance(m, nn.modules.batchnorm._NormBase) and m.training and m.track_running_stats:
            for stat in _RUNNING_STATS:
                name = f"{prefix}.{stat}" if prefix else stat
                if name in look_ahead:
                    look_ahead[name] = None
    return look_ahead


def unrolled_discriminator(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, steps: int,
                           lr: float, *, loss: str = "nonsaturating", real_target: float = 1.0,
                           fake_target: float = 0.0, real_labels=None, fake_labels=None, optimizer=None):
    """The discriminator's parameters after ``steps`` optimiser steps on its loss against
    ``real`` and ``fake``, kept differentiable (``torch.func.grad`` inside the caller's autograd
    graph) with respect to the current parameters and to ``fake`` -- hence to the generator.

    Without ``optimizer`` the steps are plain gradient descent with step ``lr``. With a
    ``torch.optim.Adam`` (the discriminator's own, as in Metz et al. 2017), they are Adam steps
    with its learning rate, betas and eps, starting from its moment estimates (read, not
    changed); ``lr`` is then ignored.

    Parameters
    ----------
    discriminator : nn.Module
        Called as ``discriminator(x)`` or ``discriminator(x, labels)``; returns (N,) logits.
    real, fake : Tensor of shape (N, ...)
        One batch each, reused for every unrolled step.
    steps : int >= 0
    lr : float > 0

    Returns
    -------
    (params, buffers) : dicts for ``torch.func.functional_call(discriminator, (params, buffers), ...)``.
        Buffers (batch-norm running statistics) are copies of the discriminator's: the unrolled
        steps leave the real discriminator's parameters, buffers and optimiser state untouched.
        Batch norms in training mode normalise each unrolled step with its batch statistics, as
        a real step does, but do not track running statistics (see :func:`_look_ahead_buffers`), so
        the copies are the current running statistics.
    """
    steps = positive_int(steps, "steps", minimum=0)
    lr = positive_float(lr, "lr")
    check_loss(loss)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Adam):
        raise TypeError(f"optimizer must be a torch.optim.Adam or None, got {type(optimizer).__name__}")
    params = dict(discriminator.named_parameters())
    buffers = {name: b.clone() for name, b in discriminator.named_buffers()}
    look_ahead = _look_ahead_buffers(discriminator, buffers)

    def d_of(p, x, labels):
        args = (x,) if labels is None else (x, labels)
        return functional_call(discriminator, (p, look_ahead), args)

    def d_loss(p):
        return discriminator_loss(d_of(p, real, real_labels), d_of(p, fake, fake_labels), loss, real_target,
                                  fake_target)

    if optimizer is None:
        for _ in range(steps):
            grads = func_grad(d_loss)(params)
            params = {name: params[name] - lr * grads[name] for name in params}
        return params, buffers
    group = optimizer.param_groups[0]
    a_lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
    moments = {}
    for name, p in params.items():
        state = optimizer.state.get(p, {})
        if "exp_avg" in state:
            moments[name] = (state["exp_avg"].detach(), state["exp_avg_sq"].detach(), int(state["step"]))
        else:
            moments[name] = (torch.zeros_like(p), torch.zeros_like(p), 0)
    for _ in range(steps):
        grads = func_grad(d_loss)(params)
        new_params, new_moments = {}, {}
        for name, p in params.items():
            m, v, t = moments[name]
            g = grads[name]
            m, v, t = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g, t + 1
            # eps**2 under the root: sqrt's derivative at an all-zero second moment would be
            # infinite (NaN after multiplying by the zero gradient); the value moves by < 1e-16.
            step = a_lr / (1 - beta1 ** t) * m / ((v / (1 - beta2 ** t) + eps * eps).sqrt() + eps)
            new_params[name], new_moments[name] = p - step, (m, v, t)
        params, moments = new_params, new_moments
    return params, buffers


def unrolled_generator_loss(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, steps: int,
                            lr: float, *, loss: str = "nonsaturating", real_target: float = 1.0,
                            fake_target: float = 0.0, real_labels=None, fake_labels=None,
                            optimizer=None) -> torch.Tensor:
    """The unrolled-GAN surrogate loss (Metz et al. 2017): the generator's loss against the
    discriminator ``steps`` gradient steps ahead, ``L_G(theta_G, theta_D^k(theta_D, theta_G))``,
    differentiated through the unrolled steps. ``steps=0`` is the ordinary generator loss.

    Metz et al. unroll with the discriminator's own optimiser: pass it as ``optimizer`` (an
    Adam); without it the unrolled steps are plain gradient descent with step ``lr``.

    Shapes: real (N, ...), fake (M, ...) with fake depending on the generator; returns ().
    """
    params, buffers = unrolled_discriminator(discriminator, real, fake, steps, lr, loss=loss,
                                             real_target=real_target, fake_target=fake_target,
                                             real_labels=real_labels, fake_labels=fake_labels,
                                             optimizer=optimizer)
    # the stepped discriminator's batch norms as in the look-ahead: batch statistics, no update
    # of the running statistics (of copies, here; the output is the same either way)
    look_ahead = _look_ahead_buffers(discriminator, buffers)
    args = (fake,) if fake_labels is None else (fake, fake_labels)
    return generator_loss(functional_call(discriminator, (params, look_ahead), args), loss)


__all__ = ["MinibatchDiscrimination", "VirtualBatchNorm", "reference_pass", "forward_with_reference",
           "unrolled_discriminator", "unrolled_generator_loss"]
