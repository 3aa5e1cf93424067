"""fastgen.serialization: RBMs saved as arrays + JSON (never pickles), atomic writes, weights-only
torch loading; and the size checks of fastgen.datasets' loaders that guard them."""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from fastgen import BernoulliRBM
from fastgen.serialization import RBM_FORMAT, atomic_write, load_rbm, save_rbm


def bars(n=40, side=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, side * side)) < 0.3).astype(np.float64)


def fitted(**kwargs):
    settings = dict(n_components=5, n_iter=2, batch_size=5, random_state=3)
    settings.update(kwargs)
    return BernoulliRBM(**settings).fit(bars())


# ---- RBM round trip ---------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [dict(), dict(momentum=0.5, dtype="float32"), dict(persistent=False),
                                    dict(n_temperatures=3, n_chains=4)],
                         ids=["pcd", "momentum-float32", "cd", "tempering"])
def test_rbm_round_trip_continues_bitwise(tmp_path, kwargs):
    """The saved arrays + settings are all the estimator needs: the loaded one transforms and
    scores the same and continues training bit for bit like the original."""
    X = bars()
    original = fitted(**kwargs)
    path = save_rbm(original, tmp_path / "m.npz")
    loaded = load_rbm(path)
    assert loaded.get_params() == original.get_params()
    for name in ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name))
        assert getattr(loaded, name).dtype == getattr(original, name).dtype
    np.testing.assert_array_equal(loaded.transform(X), original.transform(X))
    np.testing.assert_array_equal(loaded.score_samples(X), original.score_samples(X))
    original.partial_fit(X[:10])
    loaded.partial_fit(X[:10])
    np.testing.assert_array_equal(loaded.components_, original.components_)
    np.testing.assert_array_equal(loaded.h_samples_, original.h_samples_)


def test_rbm_file_holds_no_pickle(tmp_path):
    path = save_rbm(fitted(), tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as archive:  # would raise on any object array
        meta = json.loads(str(archive["meta"]))
        assert meta["format"] == RBM_FORMAT and meta["params"]["n_components"] == 5
        assert all(archive[k].dtype != object for k in archive.files)


def test_pickle_still_works_for_scikit_learn_users():
    """Users who pickle the estimator themselves keep that (scikit-learn's way)."""
    rbm = fitted()
    again = pickle.loads(pickle.dumps(rbm))
    np.testing.assert_array_equal(again.components_, rbm.components_)


def test_rbm_load_never_unpickles(tmp_path):
    marker = tmp_path / "side-effect"
    payload = tmp_path / "evil.pkl"
    payload.write_bytes(pickle.dumps(_SideEffect(str(marker))))
    with pytest.raises(ValueError, match="pickle, which fastgen never loads"):
        load_rbm(payload)
    assert not marker.exists()
    # a pickled array inside an .npz is refused too (np.load with allow_pickle=False semantics)
    path = save_rbm(fitted(), tmp_path / "m.npz")
    arrays = dict(np.load(path))
    arrays["h_samples_"] = np.array([_SideEffect(str(marker))], dtype=object)
    np.savez(tmp_path / "objects.npz", **arrays)
    with pytest.raises(ValueError, match="Python objects"):
        load_rbm(tmp_path / "objects.npz")
    assert not marker.exists()


class _SideEffect:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _rewrite(path, out, **changes):
    arrays = dict(np.load(path))
    meta = json.loads(str(arrays["meta"]))
    for key, value in changes.items():
        if key == "params":
            meta["params"].update(value)
        elif key in ("format",):
            meta[key] = value
        elif value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize("changes, message", [
    (dict(intercept_visible_=np.zeros(9)), r"intercept_visible_ has shape \(9,\)"),
    (dict(components_=np.zeros((5, 3, 2))), "components_ must be a 2-D"),
    (dict(components_=np.zeros((6, 16))), "n_components is 5"),
    (dict(h_samples_=np.zeros((5, 7))), "h_samples_ has shape"),
    (dict(intercept_hidden_=np.full(5, np.nan)), "NaN"),
    (dict(components_=None), "no array 'components_'"),
    (dict(params={"learning_rate": -1.0}), "learning_rate"),
    (dict(params={"evil": 1}), "unknown parameters evil"),
    (dict(format="something/else"), "format"),
])
def test_load_rbm_refuses_inconsistent_files(tmp_path, changes, message):
    path = save_rbm(fitted(), tmp_path / "m.npz")
    bad = _rewrite(path, tmp_path / "bad.npz", **changes)
    with pytest.raises(ValueError, match=message) as info:
        load_rbm(bad)
    assert str(bad) in str(info.value)


def test_load_rbm_refuses_missing_empty_directory_and_foreign(tmp_path):
    for path, message in [(tmp_path / "none.npz", "no such file"), (tmp_path, "is a directory")]:
        with pytest.raises(ValueError, match=message):
            load_rbm(path)
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        load_rbm(tmp_path / "empty.npz")
    np.savez(tmp_path / "foreign.npz", data=np.zeros(3))
    with pytest.raises(ValueError, match="no settings record"):
        load_rbm(tmp_path / "foreign.npz")


def test_save_rbm_refuses_unfitted_and_unstorable_params(tmp_path):
    with pytest.raises(ValueError, match="fitted"):
        save_rbm(BernoulliRBM(), tmp_path / "m.npz")
    rbm = fitted()
    rbm.random_state = np.random.RandomState(0)
    with pytest.raises(ValueError, match="random_state"):
        save_rbm(rbm, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


# ---- atomic writes -----------------------------------------------------------------------------
def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"the last good model")

    def half_then_fail(fh):
        fh.write(b"half a new mod")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"the last good model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]   # no temporary file left


def test_atomic_write_replaces_and_fsyncs(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    real_fdopen = os.fdopen
    data_fds = []

    def fdopen(fd, *args, **kwargs):
        data_fds.append(fd)
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    monkeypatch.setattr(os, "fdopen", fdopen)
    target = tmp_path / "sub" / "m.bin"
    atomic_write(target, lambda fh: fh.write(b"new"))
    # the data file itself and then its folder (two fsyncs; the folder's alone is not enough)
    assert target.read_bytes() == b"new" and len(synced) == 2 and synced[0] == data_fds[0]
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.bin"]
    with pytest.raises(IsADirectoryError):
        atomic_write(tmp_path, lambda fh: fh.write(b"x"))


def test_save_rbm_interrupted_mid_write_keeps_the_old_model(tmp_path, monkeypatch):
    path = save_rbm(fitted(), tmp_path / "m.npz")
    before = path.read_bytes()

    def partial_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", partial_savez)
    with pytest.raises(KeyboardInterrupt):
        save_rbm(fitted(random_state=9), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


# ---- torch ------------------------------------------------------------------------------------
def test_torch_load_never_unpickles(tmp_path):
    torch = pytest.importorskip("torch")
    from fastgen.serialization import torch_load

    marker = tmp_path / "side-effect"
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "payload": _SideEffect(str(marker))}, path)
    with pytest.raises(ValueError, match="never loaded"):
        torch_load(path, "checkpoint")
    assert not marker.exists()


# ---- loader size checks -----------------------------------------------------------------------
def test_npz_member_declaring_more_than_it_stores_is_refused_before_allocation(tmp_path):
    from fastgen.datasets import load_array

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                   "shape": (2 ** 40, 2 ** 13)})
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.npy", header.getvalue() + bytes(16))
    with pytest.raises(ValueError, match=r"huge\.npz.*declares shape \(1099511627776, 8192\)"):
        load_array(path)


def test_atomic_write_gives_the_mode_open_would(tmp_path):
    """mkstemp's owner-only mode must not leak into saved models: a new file gets 0666 less the
    umask, a replaced file keeps its mode."""
    old = os.umask(0o022)
    try:
        new = atomic_write(tmp_path / "new.bin", lambda fh: fh.write(b"x"))
        assert new.stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "kept.bin"
        kept.write_bytes(b"old")
        kept.chmod(0o600)
        atomic_write(kept, lambda fh: fh.write(b"new"))
        assert kept.stat().st_mode & 0o777 == 0o600 and kept.read_bytes() == b"new"
    finally:
        os.umask(old)


def test_atomic_write_through_a_link_replaces_the_file_it_points_to(tmp_path):
    run = tmp_path / "run7.pt"
    run.write_bytes(b"old")
    latest = tmp_path / "latest.pt"
    latest.symlink_to(run.name)
    atomic_write(latest, lambda fh: fh.write(b"new"))
    assert latest.is_symlink() and run.read_bytes() == b"new"
