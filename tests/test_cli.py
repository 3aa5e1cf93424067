"""The fastgen command (fastgen.cli): demo, train rbm, bench forwarding, exit codes and errors."""
import gzip
import os
import pickle
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastgen import BernoulliRBM, cli
from fastgen.cli import main
from fastgen.serialization import load_rbm

REPO_ROOT = Path(__file__).resolve().parents[1]


def png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def grid_pixels(n_images, ncols, side, scale=4):
    """Width/height of save_image_grid's output: 1-pixel padding, ``scale``x nearest upscaling."""
    nrows = -(-n_images // ncols)
    return ((ncols * (side + 1) + 1) * scale, (nrows * (side + 1) + 1) * scale)


def binary_images(n, side, seed=0):
    """Bars: each image has one random row or column on, plus a little noise."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, side, side), np.uint8)
    for k in range(n):
        if rng.random() < 0.5:
            X[k, rng.integers(side), :] = 255
        else:
            X[k, :, rng.integers(side)] = 255
    flips = rng.random(X.shape) < 0.02
    X[flips] = 255 - X[flips]
    return X


def idx_bytes(array):
    codes = {np.dtype(np.uint8): 0x08}
    return (bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.tobytes())


def pseudo_likelihood_printed(text):
    match = re.search(r"mean exact pseudo-likelihood: (-?[0-9.]+)", text)
    assert match, text
    return float(match.group(1))


TRAIN_SMALL = ["--n-components", "8", "--epochs", "2", "--batch-size", "5"]


# ---- demo -------------------------------------------------------------------------------------
def test_demo_writes_pngs_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--epochs", "2", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert re.search(r"implementation\s+fit time \(s\)\s+speed\s+held-out pseudo-likelihood", stdout)
    rows = {m.group(1): m for m in re.finditer(r"^(fastgen|scikit-learn)\s+([0-9.]+)\s+([0-9.]+)x\s+(-[0-9.]+)$",
                                                 stdout, re.MULTILINE)}
    assert set(rows) == {"fastgen", "scikit-learn"}, stdout
    assert float(rows["scikit-learn"].group(3)) == 1.0
    for m in rows.values():
        assert -64 * np.log(2) * 2 < float(m.group(4)) < 0          # a pseudo-likelihood over 64 pixels
    assert re.search(r"fastgen fit \d+\.\dx (faster|slower) than scikit-learn", stdout)
    recipe = re.search(r"^fastgen, recipe\s+([0-9.]+)\s+-\s+(-[0-9.]+)$", stdout, re.MULTILINE)
    assert recipe and -64 * np.log(2) * 2 < float(recipe.group(2)) < 0, stdout
    assert "samples.png: 100 chains of parallel tempering in the recipe's model" in stdout
    assert "mean over the 297 held-out digits" in stdout
    samples, filters = out / "samples.png", out / "filters.png"
    assert f"wrote {samples}" in stdout and f"wrote {filters}" in stdout
    assert png_size(samples) == grid_pixels(100, 10, 8)             # 100 samples of 8x8, 10 a row
    assert png_size(filters) == grid_pixels(256, 16, 8)             # the 256 filters, 16 a row


def test_demo_samples_cover_most_digit_classes():
    # The recipe's model sampled by parallel tempering: each sample's nearest training digit
    # (by squared distance) names its class. The demo's earlier samples (Gibbs from noise in the
    # model trained at a constant rate) were 45% 0s and 38% 6s.
    from sklearn.datasets import load_digits

    from fastgen import BernoulliRBM
    from fastgen.cli.demo_digits import DEMO_N_TRAIN, DEMO_SETTINGS, RECIPE_CHAINS
    from fastgen.cli.plots import tempering_samples_for_display
    from fastgen.datasets import load_digits_binary

    X, labels = load_digits_binary(), load_digits().target
    model = BernoulliRBM.annealed_pcd(**DEMO_SETTINGS, n_chains=RECIPE_CHAINS, n_iter=20,
                                     random_state=0).fit(X[:DEMO_N_TRAIN])
    samples = tempering_samples_for_display(model._model(), 100, 1000, 10, seed=0)
    nearest = ((samples[:, None, :] - X[None, :DEMO_N_TRAIN]) ** 2).sum(axis=2).argmin(axis=1)
    counts = np.bincount(labels[:DEMO_N_TRAIN][nearest], minlength=10)
    assert (counts > 0).sum() >= 8 and counts.max() <= 30, counts


def test_demo_no_compare_and_seed(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--epochs", "1", "--no-compare", "--seed", "3", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "scikit-learn " not in stdout.split("implementation", 1)[1]
    assert "random_state=3" in stdout
    assert (out / "samples.png").is_file() and (out / "filters.png").is_file()


def test_demo_out_is_a_file(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("x")
    assert main(["demo", "--epochs", "1", "--no-compare", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastgen: error: ") and str(target) in err


# ---- train rbm --------------------------------------------------------------------------------
def test_train_npy_save_load_continue(tmp_path, capsys):
    data = tmp_path / "bars.npy"
    np.save(data, binary_images(60, 4))
    model, out = tmp_path / "models" / "rbm.pkl", tmp_path / "png"
    assert main(["train", "rbm", str(data), *TRAIN_SMALL, "--recipe", "scikit-learn", "--save", str(model),
                 "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "60 samples x 16 features" in stdout and "trained 2 epochs" in stdout
    pl = pseudo_likelihood_printed(stdout)
    assert model.is_file() and f"saved model to {model}" in stdout
    assert png_size(out / "samples.png") == grid_pixels(100, 10, 4)
    assert png_size(out / "filters.png") == grid_pixels(8, 3, 4)
    estimator = load_rbm(model)
    assert isinstance(estimator, BernoulliRBM) and estimator.components_.shape == (8, 16)
    assert estimator.progress is False                                 # no bar when used from Python
    assert estimator.components_.dtype == np.float32                 # the command's default dtype

    # --resume alone evaluates the saved model: same pseudo-likelihood, nothing trained
    assert main(["train", "rbm", str(data), "--resume", str(model), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "trained" not in stdout and pseudo_likelihood_printed(stdout) == pl

    # 2 epochs + 2 more from the saved state == 4 epochs in one go, bit for bit: the chains
    # and the random stream are saved with the model
    again = tmp_path / "continued.pkl"
    assert main(["train", "rbm", str(data), "--resume", str(model), "--epochs", "4", "--save", str(again),
                 "--out", str(out)]) == 0
    assert "continued training for 2 epochs" in capsys.readouterr().out
    whole = tmp_path / "whole.pkl"
    assert main(["train", "rbm", str(data), "--n-components", "8", "--epochs", "4", "--batch-size", "5",
                 "--recipe", "scikit-learn", "--save", str(whole), "--out", str(out)]) == 0
    capsys.readouterr()
    continued, direct = load_rbm(again), load_rbm(whole)
    np.testing.assert_array_equal(continued.components_, direct.components_)
    np.testing.assert_array_equal(continued.intercept_hidden_, direct.intercept_hidden_)
    np.testing.assert_array_equal(continued.h_samples_, direct.h_samples_)


def test_train_defaults_to_the_annealed_recipe_and_resume_stretches_its_schedule(tmp_path, capsys):
    """A new model gets BernoulliRBM.annealed_pcd's settings (and says so); resuming it to more
    epochs runs the linear schedule over the new total: the continued model is the one a single
    run with those per-pass rates gives, bit for bit."""
    from fastgen.models.schedules import ANNEALED_PCD

    data = tmp_path / "bars.npy"
    X = binary_images(60, 4)
    np.save(data, X)
    model, out = tmp_path / "rbm.npz", tmp_path / "png"
    assert main(["train", "rbm", str(data), *TRAIN_SMALL, "--save", str(model), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "recipe: annealed PCD (learning rate 0.05 decayed linearly to 0 over 2 epochs" in stdout
    saved = load_rbm(model)
    expected = {k: v for k, v in ANNEALED_PCD.items() if k not in ("n_iter", "batch_size")}
    assert {k: saved.get_params()[k] for k in expected} == expected
    assert saved.h_samples_.shape == (100, 8)

    assert main(["train", "rbm", str(data), "--resume", str(model), "--epochs", "4", "--save", str(model),
                 "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "the linear learning-rate schedule now runs over 4 epochs: epochs 3 to 4 get rates 0.025 down to 0.0125" \
        in stdout
    rates = [0.05, 0.025, 0.025, 0.0125]   # 2 epochs over 2, then epochs 3 and 4 over 4
    one_run = BernoulliRBM(n_components=8, n_iter=4, batch_size=5, random_state=0, dtype="float32",
                           **{**expected, "learning_rate_schedule": lambda i, n: rates[i]}).fit(
        (X.reshape(len(X), -1) / 255).astype(np.float32))   # the command scales uint8 by 255
    continued = load_rbm(model)
    for name in ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_"):
        np.testing.assert_array_equal(getattr(continued, name), getattr(one_run, name))
    # a resumed model keeps its recipe
    assert main(["train", "rbm", str(data), "--resume", str(model), "--recipe", "annealed", "--out", str(out)]) == 2
    assert "--recipe sets up a new model" in capsys.readouterr().err


def test_train_npz_options_and_float64(tmp_path, capsys):
    data = tmp_path / "bars.npz"
    np.savez(data, labels=np.arange(40), images=binary_images(40, 5))
    out = tmp_path / "png"
    model = tmp_path / "m.pkl"
    argv = ["train", "rbm", str(data), "--key", "images", "--binarize", "0.5", "--dtype", "float64", "--cd-k", "2",
            "--momentum", "0.5", "--weight-decay", "1e-4", "--n-chains", "7", "--learning-rate", "0.05",
            "--seed", "4", "--n-components", "6", "--epochs", "2", "--save", str(model), "--out", str(out)]
    assert main(argv) == 0
    assert "40 samples x 25 features" in capsys.readouterr().out
    estimator = load_rbm(model)
    assert estimator.components_.dtype == np.float64 and estimator.h_samples_.shape == (7, 6)
    assert (estimator.cd_k, estimator.momentum, estimator.weight_decay, estimator.learning_rate,
            estimator.random_state) == (2, 0.5, 1e-4, 0.05, 4)
    assert png_size(out / "samples.png") == grid_pixels(100, 10, 5)
    assert png_size(out / "filters.png") == grid_pixels(6, 3, 5)


def test_train_no_persistent(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, binary_images(30, 3).astype(bool))
    model = tmp_path / "m.pkl"
    assert main(["train", "rbm", str(data), *TRAIN_SMALL, "--no-persistent", "--save", str(model),
                 "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert load_rbm(model).persistent is False


@pytest.mark.parametrize("compress", [False, True])
def test_train_on_hand_written_idx(tmp_path, capsys, compress):
    raw = idx_bytes(binary_images(50, 6))
    data = tmp_path / ("train-images-idx3-ubyte" + (".gz" if compress else ""))
    data.write_bytes(gzip.compress(raw) if compress else raw)
    out = tmp_path / "png"
    assert main(["train", "rbm", str(data), *TRAIN_SMALL, "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "50 samples x 36 features" in stdout
    assert pseudo_likelihood_printed(stdout) < 0
    assert png_size(out / "samples.png") == grid_pixels(100, 10, 6)


def test_train_non_square_features_writes_no_images(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, (np.random.default_rng(0).random((20, 10)) < 0.3))
    out = tmp_path / "png"
    assert main(["train", "rbm", str(data), *TRAIN_SMALL, "--out", str(out)]) == 0
    assert "no images written: 10 features" in capsys.readouterr().out
    assert not (out / "samples.png").exists()


# ---- errors: one line on stderr, exit code 2 ----------------------------------------------------
def assert_one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("fastgen: error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in "\n".join(err)
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_missing_data_file(tmp_path, capsys):
    missing = tmp_path / "missing.npy"
    assert main(["train", "rbm", str(missing)]) == 2
    assert_one_line_error(capsys, str(missing), "no such file")


def test_garbage_data_file(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an archive")
    assert main(["train", "rbm", str(bad)]) == 2
    assert_one_line_error(capsys, str(bad))


def test_bad_hyperparameter(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, binary_images(10, 3))
    assert main(["train", "rbm", str(data), "--learning-rate", "-1", "--out", str(tmp_path)]) == 2
    assert_one_line_error(capsys, "learning_rate")
    assert main(["train", "rbm", str(data), "--momentum", "1.5", "--out", str(tmp_path)]) == 2
    assert_one_line_error(capsys, "momentum")


def test_load_errors(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, binary_images(20, 3))
    model = tmp_path / "m.pkl"
    assert main(["train", "rbm", str(data), *TRAIN_SMALL, "--save", str(model), "--out", str(tmp_path)]) == 0
    capsys.readouterr()

    assert main(["train", "rbm", str(data), "--resume", str(tmp_path / "none.pkl")]) == 2
    assert_one_line_error(capsys, "none.pkl", "no such file")

    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x00garbage")
    assert main(["train", "rbm", str(data), "--resume", str(junk)]) == 2
    assert_one_line_error(capsys, str(junk), "not a saved fastgen BernoulliRBM")

    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({"not": "a model"}))
    assert main(["train", "rbm", str(data), "--resume", str(other)]) == 2
    assert_one_line_error(capsys, str(other), "pickle")

    wider = tmp_path / "wide.npy"
    np.save(wider, binary_images(20, 4))
    assert main(["train", "rbm", str(wider), "--resume", str(model), "--out", str(tmp_path)]) == 2
    assert_one_line_error(capsys, "16 features", "9")

    assert main(["train", "rbm", str(data), "--resume", str(model), "--n-components", "5"]) == 2
    assert_one_line_error(capsys, "--n-components 5")


def test_usage_errors_and_help(capsys):
    assert main([]) == 2
    assert "usage: fastgen" in capsys.readouterr().err
    assert main(["train", "rbm", "x.npy", "--dtype", "float16"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["demo", "--n-iter", "0"]) == 2
    capsys.readouterr()
    assert main(["--help"]) == 0
    help_text = capsys.readouterr().out
    assert all(word in help_text for word in ("demo", "train", "bench"))
    assert main(["train", "rbm", "--help"]) == 0
    assert "--n-components" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert "fastgen 0.1.0" in capsys.readouterr().out


# ---- bench forwarding -------------------------------------------------------------------------
@pytest.fixture
def isolated_bench(monkeypatch):
    """Forget any imported ``bench`` package for the test, and restore sys.modules after."""
    saved = {name: mod for name, mod in sys.modules.items() if name == "bench" or name.startswith("bench.")}
    for name in saved:
        del sys.modules[name]
    yield monkeypatch
    for name in [n for n in sys.modules if n == "bench" or n.startswith("bench.")]:
        del sys.modules[name]
    sys.modules.update(saved)


def test_bench_forwards_arguments(tmp_path, isolated_bench, capsys):
    package = tmp_path / "fake" / "bench"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(
        "import sys\n"
        "print('bench got', sys.argv[1:])\n"
        "sys.exit(int(sys.argv[-1]) if sys.argv[-1].isdigit() else 0)\n"
    )
    isolated_bench.setattr(cli.bench, "repo_root", lambda: tmp_path / "not-a-checkout")
    isolated_bench.chdir(tmp_path)                                     # nor is the current directory
    isolated_bench.syspath_prepend(str(tmp_path / "fake"))
    argv_before = list(sys.argv)
    assert main(["bench", "rbm", "--quick", "--json"]) == 0
    assert "bench got ['rbm', '--quick', '--json']" in capsys.readouterr().out
    assert sys.argv == argv_before
    assert main(["bench", "rbm", "3"]) == 3                            # bench's exit code comes back


def test_bench_not_importable(tmp_path, isolated_bench, capsys):
    isolated_bench.setattr(cli.bench, "repo_root", lambda: tmp_path)
    isolated_bench.chdir(tmp_path)                                     # not a checkout either
    isolated_bench.setattr(sys, "path", [p for p in sys.path if not (Path(p or os.getcwd()) / "bench").exists()])
    assert main(["bench", "rbm"]) == 2
    assert_one_line_error(capsys, "benchmark harness is not importable")


def test_bench_help_from_the_checkout(isolated_bench, capsys):
    if not (REPO_ROOT / "bench" / "__main__.py").is_file() or cli.bench.repo_root() != REPO_ROOT:
        pytest.skip("fastgen is not imported from this checkout with its bench/ package")
    assert main(["bench", "--help"]) == 0
    assert "usage: python -m bench" in capsys.readouterr().out


# ---- python -m fastgen ------------------------------------------------------------------------
def test_python_m_fastgen_help(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fastgen", "--help"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: fastgen" in result.stdout and "demo" in result.stdout


def test_python_m_fastgen_error_exit_code(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fastgen", "train", "rbm", "missing.npy"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "fastgen: error: missing.npy: no such file"
