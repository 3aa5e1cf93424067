"""fastgen.ops.cd_gradients against the NumPy reference, the exact gradient of a tiny RBM,
the compiled trainer (fastgen.models.rbm.ContrastiveDivergence) against the op, and the epoch op
(fastgen.ops.cd_epoch) against the trainer and the reference pass.

On a GPU (``gpu`` marker): CD gradients and training epochs match the CPU's."""
import numpy as np
import pytest

import fastgen
import reference as ref
from fastgen.models.rbm import RBM, ContrastiveDivergence
from fastgen.ops import cd_epoch, cd_gradients
from cuda_helpers import dyadic_rbm

DTYPES = [np.float32, np.float64]
GRAD_TOL = {np.float32: 2e-5, np.float64: 1e-12}      # op vs float64 reference
TRAIN_TOL = {np.float32: 1e-5, np.float64: 1e-12}     # compiled trainer vs op


def rbm_params(n_visible=41, n_hidden=19, dtype=np.float64, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, scale, (n_hidden, n_visible)).astype(dtype),
            rng.normal(0, 0.5, n_visible).astype(dtype), rng.normal(0, 0.5, n_hidden).astype(dtype))


def binary(shape, seed=1, p=0.4, dtype=np.float64):
    return (np.random.default_rng(seed).random(shape) < p).astype(dtype)


# ---- cd_gradients vs reference --------------------------------------------------------------------
CASES = [("CD-1", 1, False), ("CD-3", 3, False), ("PCD-1", 1, True), ("PCD-2", 2, True)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,k,persistent", CASES, ids=[c[0] for c in CASES])
def test_cd_gradients_match_reference(dtype, name, k, persistent):
    W, b, c = rbm_params(dtype=dtype)
    v = binary((13, 41), dtype=dtype)
    chains = binary((7, 19), seed=4, p=0.5, dtype=dtype) if persistent else None
    chains_copy = None if chains is None else chains.copy()
    gen = fastgen.Generator(21, 3)
    got = cd_gradients(v, W, b, c, k=k, generator=gen, persistent_chains=chains)
    assert gen.offset == 3 + 2 * k + 1
    expected = ref.cd_gradients(v, W, b, c, k=k, generator=fastgen.Generator(21, 3), persistent_chains=chains)
    assert expected.n_ambiguous == 0  # fixed seeds: every draw is decided, compare tightly
    for field in ("weights", "visible_bias", "hidden_bias"):
        value = getattr(got, field)
        assert value.dtype == dtype
        np.testing.assert_allclose(value, getattr(expected, field), rtol=0, atol=GRAD_TOL[dtype], err_msg=field)
    assert got.weights.shape == W.shape and got.chains.shape == ((7, 19) if persistent else (13, 19))
    np.testing.assert_array_equal(got.chains, expected.chains.astype(dtype))
    if persistent:
        np.testing.assert_array_equal(chains, chains_copy)  # not modified: advanced copy returned
        assert not np.array_equal(got.chains, chains)


def test_cd_gradients_depend_on_the_stream_and_the_generator_seeds_them():
    W, b, c = rbm_params()
    v = binary((13, 41))
    a = cd_gradients(v, W, b, c, generator=1)
    again = cd_gradients(v, W, b, c, generator=fastgen.Generator(1))
    other = cd_gradients(v, W, b, c, generator=2)
    for x, y in zip(a, again):
        assert x.tobytes() == y.tobytes()
    assert not np.allclose(a.weights, other.weights)
    assert not np.array_equal(a.chains, other.chains)


def test_inputs_are_not_modified_and_conversions():
    W, b, c = rbm_params()
    v = binary((13, 41))
    copies = [x.copy() for x in (W, b, c, v)]
    grads = cd_gradients(v, W, b, c, k=2, generator=5)
    for x, copy in zip((W, b, c, v), copies):
        np.testing.assert_array_equal(x, copy)
    same = cd_gradients(v.astype(bool), W, b, c, k=2, generator=5)  # bool data -> W's dtype
    np.testing.assert_array_equal(same.weights, grads.weights)
    f32 = cd_gradients(v, W.astype(np.float32), b.astype(np.float32), c.astype(np.float32), generator=5)
    assert f32.weights.dtype == np.float32 and f32.chains.dtype == np.float32


def _exact_gradient(W, b, c, v):
    """Gradient of the mean exact log-likelihood: data term minus model term, by enumeration."""
    V = ref.all_states(W.shape[1])
    log_p = -ref.free_energy(V, W, b, c)
    p = np.exp(log_p - np.logaddexp.reduce(log_p))
    ph_data, ph_model = ref.hidden_probs(v, W, b, c), ref.hidden_probs(V, W, b, c)
    dW = ph_data.T @ v / len(v) - (ph_model * p[:, None]).T @ V
    return dW, v.mean(0) - p @ V, ph_data.mean(0) - p @ ph_model


def test_exact_gradient_formula_by_finite_differences():
    W, b, c = rbm_params(6, 4, seed=3, scale=0.8)
    v = binary((9, 6), seed=2)

    def mean_ll(W_, b_, c_):
        return np.mean(-ref.free_energy(v, W_, b_, c_) - ref.log_partition_brute_force(W_, b_, c_))

    dW, db, dc = _exact_gradient(W, b, c, v)
    eps = 1e-6
    for (j, i) in [(0, 0), (3, 5), (2, 1)]:
        Wp, Wm = W.copy(), W.copy()
        Wp[j, i] += eps
        Wm[j, i] -= eps
        assert (mean_ll(Wp, b, c) - mean_ll(Wm, b, c)) / (2 * eps) == pytest.approx(dW[j, i], abs=1e-7)
    bp, bm = b.copy(), b.copy()
    bp[2] += eps
    bm[2] -= eps
    assert (mean_ll(W, bp, c) - mean_ll(W, bm, c)) / (2 * eps) == pytest.approx(db[2], abs=1e-7)


def test_pcd_gradient_with_many_equilibrated_chains_is_the_exact_gradient():
    W, b, c = rbm_params(6, 4, seed=3, scale=0.8)
    v = binary((9, 6), seed=2)
    n_chains = 40_000
    chains = np.zeros((n_chains, 4))
    got = cd_gradients(v, W, b, c, k=30, generator=8, persistent_chains=chains)
    dW, db, dc = _exact_gradient(W, b, c, v)
    se = 0.5 / np.sqrt(n_chains)
    np.testing.assert_allclose(got.weights, dW, atol=6 * se)
    np.testing.assert_allclose(got.visible_bias, db, atol=6 * se)
    np.testing.assert_allclose(got.hidden_bias, dc, atol=6 * se)


# ---- the compiled trainer against the op ----------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,k,persistent", CASES, ids=[c[0] for c in CASES])
def test_trainer_single_batch_applies_lr_times_the_op_gradient(dtype, name, k, persistent):
    W, b, c = rbm_params(dtype=dtype, scale=0.2)
    v = binary((13, 41), seed=3, dtype=dtype)
    chains = binary((13, 19), seed=4, p=0.5, dtype=dtype)
    lr = 0.05
    grads = cd_gradients(v, W, b, c, k=k, generator=fastgen.Generator(21, 2),
                         persistent_chains=chains if persistent else None)
    model = RBM(W.copy(), b.copy(), c.copy())
    trainer = ContrastiveDivergence(learning_rate=lr, cd_k=k, persistent=persistent, momentum=0.0, weight_decay=0.0,
                                    chains=chains.copy() if persistent else None)
    gen = fastgen.Generator(21, 2)
    trainer.run(model, v, 13, gen)
    assert gen.offset == 2 + 2 * k + 1
    tol = TRAIN_TOL[dtype]
    np.testing.assert_allclose(model.weights, W + lr * grads.weights, rtol=0, atol=tol)
    np.testing.assert_allclose(model.visible_bias, b + lr * grads.visible_bias, rtol=0, atol=tol)
    np.testing.assert_allclose(model.hidden_bias, c + lr * grads.hidden_bias, rtol=0, atol=tol)
    assert np.abs(model.weights - W).max() > 100 * tol  # the update is not negligible
    if persistent:
        np.testing.assert_array_equal(trainer.chains, grads.chains)


def _numpy_training_loop(W, b, c, data, batch_size, *, k, persistent, chains, lr, momentum, weight_decay, seed,
                         first_offset):
    """Reference loop over consecutive mini-batches: op gradients + the documented update
    v = m v + lr (g - wd W) (no decay on biases), W += v; batch i uses offsets first + i (2k + 1)."""
    params = [W.astype(np.float64), b.astype(np.float64), c.astype(np.float64)]
    velocity = [np.zeros_like(p) for p in params]
    for i, start in enumerate(range(0, len(data), batch_size)):
        grads = cd_gradients(data[start:start + batch_size], W, b, c, k=k,
                             generator=fastgen.Generator(seed, first_offset + i * (2 * k + 1)),
                             persistent_chains=chains if persistent else None)
        chains = grads.chains
        for j, (g, wd) in enumerate(zip(grads[:3], (weight_decay, 0.0, 0.0))):
            params[j], velocity[j] = ref.sgd_step(params[j], velocity[j], g, learning_rate=lr, momentum=momentum,
                                                  weight_decay=wd)
        W, b, c = (p.astype(W.dtype) for p in params)
    return params, velocity, chains


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("persistent", [True, False], ids=["PCD", "CD"])
def test_trainer_momentum_and_weight_decay_over_two_batches(dtype, persistent):
    W, b, c = rbm_params(dtype=dtype, scale=0.2, seed=5)
    data = binary((20, 41), seed=6, dtype=dtype)
    chains = np.zeros((10, 19), dtype)
    lr, momentum, wd, k = 0.1, 0.7, 0.05, 2
    (W_ref, b_ref, c_ref), velocity, chains_ref = _numpy_training_loop(
        W, b, c, data, 10, k=k, persistent=persistent, chains=chains, lr=lr, momentum=momentum, weight_decay=wd,
        seed=9, first_offset=4)
    model = RBM(W.copy(), b.copy(), c.copy())
    trainer = ContrastiveDivergence(learning_rate=lr, cd_k=k, persistent=persistent, momentum=momentum,
                                    weight_decay=wd)
    gen = fastgen.Generator(9, 4)
    trainer.run(model, data, 10, gen)
    assert gen.offset == 4 + 2 * (2 * k + 1)
    tol = 2 * TRAIN_TOL[dtype]
    np.testing.assert_allclose(model.weights, W_ref, rtol=0, atol=tol)
    np.testing.assert_allclose(model.visible_bias, b_ref, rtol=0, atol=tol)
    np.testing.assert_allclose(model.hidden_bias, c_ref, rtol=0, atol=tol)
    for got, want in zip(trainer.velocities, velocity):
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)
    if persistent:
        np.testing.assert_array_equal(trainer.chains, chains_ref)
    # momentum and decay matter: without them the result is clearly different
    plain = RBM(W.copy(), b.copy(), c.copy())
    ContrastiveDivergence(learning_rate=lr, cd_k=k, persistent=persistent).run(plain, data, 10, fastgen.Generator(9, 4))
    assert np.abs(plain.weights - model.weights).max() > 1000 * tol


@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_decay_alone_shrinks_weights_not_biases(dtype):
    W, b, c = rbm_params(dtype=dtype, seed=7)
    data = binary((10, 41), seed=8, dtype=dtype)
    lr, wd = 0.1, 0.3
    grads = cd_gradients(data, W, b, c, generator=fastgen.Generator(2))
    model = RBM(W.copy(), b.copy(), c.copy())
    ContrastiveDivergence(learning_rate=lr, persistent=False, weight_decay=wd).run(model, data, 10, fastgen.Generator(2))
    tol = TRAIN_TOL[dtype]
    np.testing.assert_allclose(model.weights, W + lr * (grads.weights - wd * W), rtol=0, atol=tol)
    np.testing.assert_allclose(model.visible_bias, b + lr * grads.visible_bias, rtol=0, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pcd_chain_count_is_independent_of_batch_size(dtype):
    # 7 chains, batches of 5 rows; 12 rows make batches of 5, 5 and 2
    W, b, c = rbm_params(dtype=dtype, scale=0.2, seed=11)
    data = binary((12, 41), seed=12, dtype=dtype)
    model = RBM(W.copy(), b.copy(), c.copy())
    trainer = ContrastiveDivergence(learning_rate=0.05, cd_k=1, persistent=True, n_chains=7)
    gen = fastgen.Generator(13)
    trainer.run(model, data, 5, gen)
    assert trainer.chains.shape == (7, 19) and trainer.chains.dtype == dtype
    assert gen.offset == 3 * 3 == trainer.offsets_per_epoch(12, 5)
    (W_ref, b_ref, c_ref), _, chains_ref = _numpy_training_loop(
        W, b, c, data, 5, k=1, persistent=True, chains=np.zeros((7, 19), dtype), lr=0.05, momentum=0.0,
        weight_decay=0.0, seed=13, first_offset=0)
    tol = 2 * TRAIN_TOL[dtype]
    np.testing.assert_allclose(model.weights, W_ref, rtol=0, atol=tol)
    np.testing.assert_allclose(model.visible_bias, b_ref, rtol=0, atol=tol)
    np.testing.assert_allclose(model.hidden_bias, c_ref, rtol=0, atol=tol)
    np.testing.assert_array_equal(trainer.chains, chains_ref)


def test_cd_with_a_short_last_batch_matches_the_loop():
    W, b, c = rbm_params(scale=0.2, seed=14)
    data = binary((23, 41), seed=15)
    model = RBM(W.copy(), b.copy(), c.copy())
    ContrastiveDivergence(learning_rate=0.05, cd_k=2, persistent=False).run(model, data, 10, fastgen.Generator(1))
    (W_ref, b_ref, c_ref), _, _ = _numpy_training_loop(
        W, b, c, data, 10, k=2, persistent=False, chains=None, lr=0.05, momentum=0.0, weight_decay=0.0, seed=1,
        first_offset=0)
    np.testing.assert_allclose(model.weights, W_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.hidden_bias, c_ref, rtol=0, atol=1e-12)


# ---- bad input -------------------------------------------------------------------------------------
W0, B0, C0 = np.zeros((3, 5)), np.zeros(5), np.zeros(3)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: cd_gradients(np.ones((2, 5)), W0, B0, C0, k=0), ValueError, "k must be an integer >= 1"),
        (lambda: cd_gradients(np.ones((2, 5)), W0, B0, C0, k=1.0), ValueError, "k must be an integer"),
        (lambda: cd_gradients(np.ones((0, 5)), W0, B0, C0), ValueError, "v is empty"),
        (lambda: cd_gradients(np.ones((2, 4)), W0, B0, C0), ValueError, "v must have 5 columns"),
        (lambda: cd_gradients(np.ones(5), W0, B0, C0), ValueError, "v must be 2-D"),
        (lambda: cd_gradients(np.full((2, 5), np.nan), W0, B0, C0), ValueError, "v contains NaN"),
        (lambda: cd_gradients(np.ones((2, 5)), W0, np.zeros(3), C0), ValueError, "b_vis must have shape"),
        (lambda: cd_gradients(np.ones((2, 5)), W0, B0, np.zeros(5)), ValueError, "b_hid must have shape"),
        (lambda: cd_gradients(np.ones((2, 5)), W0, B0, C0, persistent_chains=np.zeros((4, 5))), ValueError,
         "persistent_chains must have 3 columns"),
        (lambda: cd_gradients(np.ones((2, 5)), W0, B0, C0, persistent_chains=np.zeros((0, 3))), ValueError,
         "persistent_chains is empty"),
        (lambda: cd_gradients(np.ones((2, 5)), W0, B0, C0, persistent_chains=np.zeros(3)), ValueError,
         "persistent_chains must be 2-D"),
        (lambda: cd_gradients(np.ones((2, 5)), W0, B0, C0, generator="x"), TypeError, "generator must be"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(learning_rate=-0.1), "learning_rate"),
        (dict(learning_rate=np.nan), "learning_rate"),
        (dict(cd_k=0), "cd_k"),
        (dict(n_chains=0), "n_chains"),
        (dict(momentum=1.0), "momentum"),
        (dict(momentum=-0.1), "momentum"),
        (dict(weight_decay=-1e-3), "weight_decay"),
    ],
)
def test_trainer_bad_configuration_raises_naming_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContrastiveDivergence(**kwargs)


# ---- cd_epoch: the op behind ContrastiveDivergence ------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("persistent, momentum", [(True, 0.0), (False, 0.6)])
def test_cd_epoch_is_the_trainers_pass_bitwise(dtype, persistent, momentum):
    W, b, c = rbm_params(dtype=dtype, seed=20)
    data = binary((37, 41), seed=21, dtype=dtype)
    model = RBM(W.copy(), b.copy(), c.copy())
    trainer = ContrastiveDivergence(learning_rate=0.05, cd_k=2, persistent=persistent, n_chains=6,
                                    momentum=momentum, weight_decay=1e-3)
    trainer.run(model, data, 10, fastgen.Generator(5, 2))
    W2, b2, c2 = W.copy(), b.copy(), c.copy()
    chains = np.zeros((6, 19), dtype) if persistent else None
    velocities = tuple(np.zeros_like(a) for a in (W2, b2, c2)) if momentum else None
    gen = fastgen.Generator(5, 2)
    cd_epoch(W2, b2, c2, data, batch_size=10, cd_k=2, learning_rate=0.05, momentum=momentum, weight_decay=1e-3,
             chains=chains, velocities=velocities, generator=gen)
    assert gen.offset == 2 + 4 * (2 * 2 + 1)  # 4 batches (the last of 7 rows), 2k + 1 offsets each
    for got, want in zip((W2, b2, c2), (model.weights, model.visible_bias, model.hidden_bias)):
        assert got.tobytes() == want.tobytes()
    if persistent:
        assert chains.tobytes() == trainer.chains.tobytes()
    if momentum:
        assert velocities[0].tobytes() == trainer.velocities[0].tobytes()


def test_cd_epoch_matches_the_numpy_reference_pass():
    W, b, c = rbm_params(seed=22)
    data = binary((25, 41), seed=23)
    chains = binary((5, 19), seed=24, p=0.5)
    want = ref.train_pass(data, W, b, c, 8, k=1, chains=chains, learning_rate=0.1, seed=3, first_offset=4)
    cd_epoch(W, b, c, data, batch_size=8, learning_rate=0.1, chains=chains, generator=fastgen.Generator(3, 4))
    np.testing.assert_allclose(W, want.weights, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(chains, want.chains)


def test_cd_epoch_binary_and_dense_products_agree():
    W, b, c = rbm_params(seed=25)
    data = binary((30, 41), seed=26, p=0.2)
    out = {}
    for enabled in (True, False):
        W2 = W.copy()
        cd_epoch(W2, b.copy(), c.copy(), data, batch_size=10, learning_rate=0.05, chains=np.zeros((10, 19)),
                 generator=fastgen.Generator(9), binary_products=enabled)
        out[enabled] = W2
    np.testing.assert_allclose(out[True], out[False], rtol=0, atol=1e-10)


def _epoch_args(**overrides):
    args = dict(weights=np.zeros((3, 5)), visible_bias=np.zeros(5), hidden_bias=np.zeros(3), data=np.ones((4, 5)),
                batch_size=2, learning_rate=0.1)
    args.update(overrides)
    return args


@pytest.mark.parametrize(
    "overrides,error,match",
    [
        (dict(weights=np.zeros((3, 5), np.int64)), TypeError, "weights must be float32 or float64"),
        (dict(weights=np.zeros((5, 3)).T), ValueError, "weights must be a writeable C-contiguous array"),
        (dict(visible_bias=np.zeros(4)), ValueError, r"visible_bias must have shape \(5,\)"),
        (dict(hidden_bias=np.zeros(3, np.float32)), TypeError, "hidden_bias must have the weights' dtype"),
        (dict(data=np.ones((4, 6))), ValueError, "data must have 5 columns"),
        (dict(data=np.full((4, 5), np.nan)), ValueError, "data contains NaN"),
        (dict(batch_size=0), ValueError, "batch_size must be an integer >= 1"),
        (dict(cd_k=0), ValueError, "cd_k must be an integer >= 1"),
        (dict(learning_rate=0.0), ValueError, "learning_rate must be > 0"),
        (dict(momentum=1.0), ValueError, "momentum must be < 1"),
        (dict(weight_decay=-1.0), ValueError, "weight_decay must be >= 0"),
        (dict(chains=np.zeros((2, 4))), ValueError, r"chains must have shape \(n_chains >= 1, 3\)"),
        (dict(velocities=(np.zeros((3, 5)), np.zeros(5))), ValueError, "velocities must be 3 arrays"),
        (dict(velocities=(np.zeros((3, 5)), np.zeros(5), np.zeros(4))), ValueError,
         r"velocities\[2\] must have shape \(3,\)"),
        (dict(binary_products="no"), TypeError, "binary_products must be a bool"),
        (dict(hidden_slices=None), TypeError, "hidden_slices must be a bool"),
    ],
)
def test_cd_epoch_bad_input_raises_naming_the_argument(overrides, error, match):
    args = _epoch_args(**overrides)
    before = args["weights"].copy()
    with pytest.raises(error, match=match):
        cd_epoch(**args)
    assert np.array_equal(args["weights"], before, equal_nan=True)


def test_cd_epoch_trains_cpu_torch_tensors_in_place():
    torch = pytest.importorskip("torch")
    W, b, c = rbm_params(seed=27)
    data = binary((12, 41), seed=28)
    want = [a.copy() for a in (W, b, c)]
    cd_epoch(*want, data, batch_size=5, learning_rate=0.1, generator=fastgen.Generator(2))
    tensors = [torch.from_numpy(a.copy()) for a in (W, b, c)]
    cd_epoch(*tensors, torch.from_numpy(data), batch_size=5, learning_rate=0.1, generator=fastgen.Generator(2))
    for t, w in zip(tensors, want):
        assert t.numpy().tobytes() == w.tobytes()


# ==== on a GPU (CuPy arrays: the CPU's results where the arithmetic is exact) =====================


@pytest.mark.gpu
def test_cd_gradients_on_gpu_match_the_cpu(cp):
    W, b_vis, b_hid = dyadic_rbm(30, 16, np.float64)
    v = (np.random.default_rng(5).random((32, 30)) < 0.4).astype(np.float64)
    chains = (np.random.default_rng(6).random((32, 16)) < 0.5).astype(np.float64)
    for persistent in (None, chains):
        want = cd_gradients(v, W, b_vis, b_hid, k=3, generator=4, persistent_chains=persistent)
        got = cd_gradients(cp.asarray(v), *(cp.asarray(a) for a in (W, b_vis, b_hid)), k=3, generator=4,
                           persistent_chains=None if persistent is None else cp.asarray(persistent))
        np.testing.assert_array_equal(got.chains.get(), want.chains)
        for g, w in zip(got[:3], want[:3]):
            np.testing.assert_allclose(g.get(), w, rtol=1e-10, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("momentum,persistent", [(0.0, True), (0.5, True), (0.0, False)])
def test_gpu_training_epochs_match_the_cpu_loop(cp, momentum, persistent):
    # float64 and dyadic data/parameters: the first batches agree to rounding; over epochs the
    # trajectories may part at near-ties, so later epochs are compared loosely.
    W, b_vis, b_hid = dyadic_rbm(24, 12, np.float64, seed=7)
    data = (np.random.default_rng(8).random((64, 24)) < 0.4).astype(np.float64)

    def train(xp, epochs):
        rbm = RBM(*(xp.asarray(a).copy() for a in (W, b_vis, b_hid)))
        trainer = ContrastiveDivergence(learning_rate=0.125, persistent=persistent, n_chains=16, momentum=momentum,
                                        weight_decay=0.001)
        gen = fastgen.Generator(12)
        X = xp.asarray(data)
        for _ in range(epochs):
            trainer.run(rbm, X, 16, gen)
        return rbm, gen

    cpu, gen_cpu = train(np, 1)
    gpu, gen_gpu = train(cp, 1)
    assert gen_cpu.offset == gen_gpu.offset
    np.testing.assert_allclose(gpu.weights.get(), cpu.weights, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.visible_bias.get(), cpu.visible_bias, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.hidden_bias.get(), cpu.hidden_bias, rtol=1e-9, atol=1e-12)
    cpu5, _ = train(np, 5)   # epochs 2-5 replay the captured epoch graph on the GPU
    gpu5, _ = train(cp, 5)
    assert np.abs(gpu5.weights.get() - cpu5.weights).mean() < 0.05 * np.abs(cpu5.weights).mean()
