"""CD-k / PCD-k training of a Gaussian-Bernoulli RBM, one mini-batch at a time in NumPy GEMMs
and the compiled samplers (see the package docstring for the gradients)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..._checks import positive_int, real
from ...ops.sampling import sample_bernoulli_numpy, sample_gaussian_numpy, sigmoid_numpy
from ...ops.sgd import sgd_momentum_update_numpy
from ...random import Generator
from .._divergence import guarded_pass
from ..data_parallel import check_agreement, gather_rows, share
from ..rbm import check_trainer_params
from ._model import GaussianRBM, Gradients

# A pass that ends with some |W_ji| / sigma_i above this has diverged (GaussianContrastiveDivergence.run).
_DIVERGED = 1e6


@dataclass
class GaussianContrastiveDivergence:
    """CD-k / PCD-k training of a :class:`GaussianRBM` with momentum and L2 weight decay.

    Per mini-batch: the positive phase uses P(h | v_data); the negative phase runs ``cd_k``
    block-Gibbs steps (h sampled, v sampled from N(b + W^T h, sigma^2)) from the data (CD) or
    from persistent hidden states (PCD) and uses P(h | v_k) for the hidden statistics. The
    update is ``param += velocity``, ``velocity = momentum * velocity + learning_rate * (step -
    weight_decay * param)`` (weight decay on the weights only), where ``step`` is the gradient
    of the package docstring (sample means over the batch rows and over the chains) with, when
    ``precondition``, the W and b entries of visible unit i multiplied by ``sigma_i^2``.

    Why the preconditioning: rescaling feature i by a (v_i -> a v_i) maps a model to an
    equivalent one (W_:i, b_i, sigma_i -> a W_:i, a b_i, a sigma_i) but scales the exact
    gradients of W_:i and b_i by 1 / a; plain gradient steps then act like a learning rate
    divided by a^2 (hopeless on data in [0, 255], explosive for sigma -> 0). Multiplying by
    sigma_i^2, a positive diagonal preconditioner (still an ascent direction, same fixed
    points), makes the whole trajectory equivariant to the units of each feature (the log
    sigma gradient is unit-free already). With ``sigma = 1`` it changes nothing.

    Parameters
    ----------
    learning_rate : float > 0
        Default 0.005, as :class:`fastgen.sklearn.GaussianBernoulliRBM` (which documents the
        measurement behind it).
    cd_k : int >= 1
        Gibbs steps per negative phase.
    persistent : bool
        Persistent chains (PCD, Tieleman 2008) instead of restarting from the data (CD).
    n_chains : int >= 1, optional
        Number of persistent chains (default: the batch size).
    momentum : float in [0, 1)
    weight_decay : float >= 0
        L2 penalty on the weights.
    learn_sigma : bool
        Also learn ``log_sigma`` (otherwise it stays fixed).
    precondition : bool
        Scale the W and b gradient entries of visible unit i by sigma_i^2 (see above).
    min_sigma : float > 0, or array of shape (n_visible,) > 0
        Learned standard deviations are kept >= min_sigma (the likelihood is unbounded when a
        Gaussian collapses onto one data point, e.g. a constant feature, and the gradients grow
        like 1 / sigma^2).
    """

    learning_rate: float = 0.005
    cd_k: int = 1
    persistent: bool = True
    n_chains: int | None = None
    momentum: float = 0.0
    weight_decay: float = 0.0
    learn_sigma: bool = False
    precondition: bool = True
    min_sigma: float = 1e-2
    chains: np.ndarray | None = field(default=None, repr=False)
    velocities: tuple | None = field(default=None, repr=False)
    # A data-parallel job (fastgen.models.data_parallel): run() then takes this rank's share of
    # each global batch and of the chains, and sums the gradients over the ranks.
    job: object = field(default=None, repr=False)

    def __post_init__(self):
        check_trainer_params(self)
        if np.ndim(self.min_sigma) == 0:
            real(self.min_sigma, "min_sigma", low=0.0, low_open=True)
        else:
            floor = np.asarray(self.min_sigma, dtype=np.float64)
            if floor.ndim != 1 or not (np.isfinite(floor).all() and (floor > 0).all()):
                raise ValueError("min_sigma must be a finite number > 0 or a 1-D array of them")
        if not isinstance(self.persistent, (bool, np.bool_)):
            raise ValueError(f"persistent must be a bool, got {self.persistent!r}")
        for name in ("learn_sigma", "precondition"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")

    def offsets_per_batch(self) -> int:
        return 2 * self.cd_k + 1

    def offsets_per_epoch(self, n_samples: int, batch_size: int) -> int:
        return -(-n_samples // batch_size) * self.offsets_per_batch()

    def prepare(self, model: GaussianRBM, batch_size: int) -> None:
        """Create the chains (zero hidden states, as scikit-learn) and momentum buffers if missing."""
        if self.persistent and (self.chains is None or self.chains.shape[1] != model.n_hidden):
            self.chains = np.zeros((self.n_chains or batch_size, model.n_hidden), model.dtype)
        if self.momentum > 0 and self.velocities is None:
            self.velocities = tuple(np.zeros_like(a) for a in
                                    (model.weights, model.visible_bias, model.hidden_bias, model.log_sigma))

    def batch_gradients(self, model: GaussianRBM, batch: np.ndarray, seed: int, offset: int, *, first_row: int = 0,
                        first_chain: int = 0, batch_rows: int | None = None,
                        total_chains: int | None = None) -> Gradients:
        """The CD/PCD gradient estimate of one mini-batch (data minus model statistics).

        Uses offsets ``offset .. offset + 2 cd_k`` of the stream ``seed``: ``offset`` draws
        h ~ P(h | v_data) to start CD (unused by PCD); step s draws v with ``offset + 1 + 2 s``
        and h with ``offset + 2 + 2 s`` (not on the last step of CD, which keeps P(h | v_k)).
        Advances the persistent chains (PCD).

        For a shard of a larger batch (as :func:`fastgen.ops.cd_gradients`): ``batch`` is rows
        ``first_row ..`` of ``batch_rows`` and the chains are chains ``first_chain ..`` of
        ``total_chains`` (CD: the batch's rows); each draws what it draws in the whole batch,
        and each term is a sum divided by the whole batch's count, so shards add up.
        """
        W, b, c = model.weights, model.visible_bias, model.hidden_bias
        dt = model.dtype.type
        unit = not model.log_sigma.any()  # sigma = 1: skip the scalings by 1 / sigma^2
        inv_var = None if unit else model._inv_var()
        sigma = None if unit else np.ascontiguousarray(model.sigma)
        sigma_scalar = 1.0 if unit else 0.0

        def scaled(v):  # v / sigma^2
            return v if unit else v * inv_var

        vs_pos = scaled(batch)
        ph_pos = vs_pos @ W.T
        if self.persistent:
            sigmoid_numpy(ph_pos, bias=c, out=ph_pos)
            chains = self.chains
        else:
            chains = np.empty_like(ph_pos)
            sample_bernoulli_numpy(ph_pos, bias=c, probs=ph_pos, states=chains, seed=seed, offset=offset,
                                   first_row=first_row)
            first_chain = first_row
        for step in range(self.cd_k):
            v_neg = chains @ W
            sample_gaussian_numpy(v_neg, out=v_neg, bias=b, std=sigma, std_scalar=sigma_scalar, seed=seed,
                                  offset=offset + 1 + 2 * step, first_row=first_chain)
            vs_neg = scaled(v_neg)
            ph_neg = vs_neg @ W.T
            if step + 1 == self.cd_k and not self.persistent:
                sigmoid_numpy(ph_neg, bias=c, out=ph_neg)
            else:
                chains = np.empty_like(ph_neg)
                sample_bernoulli_numpy(ph_neg, bias=c, probs=ph_neg, states=chains, seed=seed,
                                       offset=offset + 2 + 2 * step, first_row=first_chain)
        if self.persistent:
            self.chains = chains
        n_data = batch.shape[0] if batch_rows is None else batch_rows
        n_model = v_neg.shape[0] if total_chains is None else total_chains
        # data minus model averages of -dE/dtheta (package docstring), h at P(h | v); the
        # b / sigma^2 part of -dE/db is the same in both phases and cancels
        g_w = ph_pos.T @ vs_pos
        g_w *= dt(1.0 / n_data)
        neg = ph_neg.T @ vs_neg
        neg *= dt(1.0 / n_model)
        g_w -= neg
        g_b = vs_pos.sum(axis=0) / n_data - vs_neg.sum(axis=0) / n_model
        g_c = ph_pos.sum(axis=0) / n_data - ph_neg.sum(axis=0) / n_model
        if self.learn_sigma:
            def sigma_statistic(v, ph):
                d = v - b
                d *= d
                d -= 2.0 * v * (ph @ W)
                return scaled(d).sum(axis=0)

            g_s = sigma_statistic(batch, ph_pos) / n_data - sigma_statistic(v_neg, ph_neg) / n_model
        else:
            g_s = np.zeros_like(b)
        return Gradients(g_w, g_b, g_c, g_s)

    def apply(self, model: GaussianRBM, grads: Gradients) -> None:
        """One momentum / weight-decay step along ``grads`` (preconditioned, see the class
        docstring), updating ``model`` in place."""
        vel = self.velocities if self.momentum > 0 else (None, None, None, None)
        lr, mom, wd = float(self.learning_rate), float(self.momentum), float(self.weight_decay)
        g_w, g_b = grads.weights, grads.visible_bias
        if self.precondition and model.log_sigma.any():
            var = np.exp(2.0 * model.log_sigma).astype(model.dtype, copy=False)
            g_w = g_w * var
            g_b = g_b * var
        step = dict(learning_rate=lr, momentum=mom)
        sgd_momentum_update_numpy(model.weights, g_w, velocity=vel[0], weight_decay=wd, **step)
        sgd_momentum_update_numpy(model.visible_bias, g_b, velocity=vel[1], weight_decay=0.0, **step)
        sgd_momentum_update_numpy(model.hidden_bias, grads.hidden_bias, velocity=vel[2], weight_decay=0.0, **step)
        if self.learn_sigma:
            sgd_momentum_update_numpy(model.log_sigma, grads.log_sigma, velocity=vel[3], weight_decay=0.0, **step)
            np.maximum(model.log_sigma, np.log(self.min_sigma).astype(model.dtype), out=model.log_sigma)

    def run(self, model: GaussianRBM, data: np.ndarray, batch_size: int, generator: Generator) -> None:
        """One pass over ``data`` (rows of n_visible values) in consecutive mini-batches of
        ``batch_size`` rows (the last may be shorter), updating ``model`` in place. Takes
        ``(2 cd_k + 1)`` offsets per batch. Raises FloatingPointError when the parameters end
        the pass non-finite or with a weight |W_ji| above 1e6 sigma_i (a hidden unit moving the
        visible mean by a million standard deviations: the learning rate was too large)."""
        batch_size = positive_int(batch_size, "batch_size")
        data = np.ascontiguousarray(data, dtype=model.dtype)
        if data.ndim != 2 or data.shape[1] != model.n_visible:
            raise ValueError(f"data must have shape (n, {model.n_visible}), got {data.shape}")
        for name in ("weights", "visible_bias", "hidden_bias", "log_sigma"):
            a = getattr(model, name)
            if a.dtype != model.dtype or not a.flags.c_contiguous or not a.flags.writeable:
                raise ValueError(f"model.{name} must be a writeable C-contiguous {model.dtype} array")
        self.prepare(model, batch_size)
        per_batch = self.offsets_per_batch()
        first = generator.take(self.offsets_per_epoch(data.shape[0], batch_size))
        job = self.job if self.job is not None and self.job.world_size > 1 else None
        all_chains = self.chains
        if job is not None:
            check_agreement(job, **{"the rows of X": data.shape[0], "the columns of X": data.shape[1],
                                    "n_components": model.n_hidden, "the rows of a step": batch_size,
                                    "the persistent chains": all_chains.shape[0] if self.persistent else 0,
                                    "cd_k": self.cd_k, "learning_rate": self.learning_rate,
                                    "momentum": self.momentum, "weight_decay": self.weight_decay,
                                    "learn_sigma": bool(self.learn_sigma), "precondition": bool(self.precondition),
                                    "the dtype's size": model.dtype.itemsize,
                                    "the stream's offset": generator.offset})
        if job is not None and self.persistent:  # this rank's share of the chains, gathered after the pass
            start, stop = share(all_chains.shape[0], job.rank, job.world_size)
            self.chains = np.ascontiguousarray(all_chains[start:stop])

        def run():
            for k, start in enumerate(range(0, data.shape[0], batch_size)):
                rows = data[start:start + batch_size]
                if job is None:
                    grads = self.batch_gradients(model, rows, generator.seed, first + k * per_batch)
                else:
                    grads = self._summed_gradients(job, model, rows, all_chains, generator.seed,
                                                   first + k * per_batch)
                self.apply(model, grads)

        def diverged():
            finite = all(np.isfinite(a).all() for a in (model.weights, model.visible_bias, model.hidden_bias,
                                                         model.log_sigma))
            return not finite or bool(model.weights.size and np.max(np.abs(model.weights) / model.sigma) > _DIVERGED)

        chains = all_chains  # batch_gradients may replace it
        try:
            guarded_pass(
                run, (model.weights, model.visible_bias, model.hidden_bias, model.log_sigma),
                (self.chains, *(self.velocities or ())), diverged=diverged,
                message=(f"training diverged (non-finite parameters, or a weight above {_DIVERGED:g} sigma) with "
                         f"learning_rate={self.learning_rate}: the model keeps its parameters from before this "
                         "pass; lower learning_rate (or momentum), or standardise the data"),
            )
        except BaseException:  # the pass was undone: so are its chains
            self.chains = chains
            raise
        if job is not None and self.persistent:
            all_chains[...] = gather_rows(job, self.chains, all_chains.shape[0])
            self.chains = all_chains

    def _summed_gradients(self, job, model, rows, all_chains, seed, offset) -> Gradients:
        """The gradient of one global batch: this rank's share of its rows and of the chains,
        summed over the ranks by one all-reduce."""
        n = rows.shape[0]
        lo, hi = share(n, job.rank, job.world_size)
        n_chains = all_chains.shape[0] if self.persistent else n
        part = self.batch_gradients(model, np.ascontiguousarray(rows[lo:hi]), seed, offset, first_row=lo,
                                    first_chain=share(n_chains, job.rank, job.world_size)[0], batch_rows=n,
                                    total_chains=n_chains)
        flat = np.concatenate([g.ravel() for g in part])
        job.all_reduce(flat)
        sizes = np.cumsum([g.size for g in part])[:-1]
        return Gradients(*(a.reshape(g.shape) for a, g in zip(np.split(flat, sizes), part)))

