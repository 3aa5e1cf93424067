"""What ``fastgen train vae|ae`` shows: a real bottleneck for the convolutional kinds, every
promised PNG written, interpolation between test images of different classes (or, without
labels, the farthest pair), labelled reconstruction rows, the VAE-vs-PCA explanation, and the
randomized PCA baseline against the exact one."""
from __future__ import annotations

import re
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from fastgen._png import save_image_grid, tile_images  # noqa: E402
from fastgen.cli import main  # noqa: E402
from fastgen.torch.autoencoders import Autoencoder  # noqa: E402
from fastgen.torch.train import loop  # noqa: E402
from fastgen.torch.training import (_build_ae, _write_pngs, interpolation_pair, load_training_data,  # noqa: E402
                                    pca_reconstruction_mse)

SMALL = ["--epochs", "1", "--hidden", "16", "--channels", "4", "8", "--threads", "1"]


def run(capsys, *args):
    assert main(["train", *args]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("kind", ["conv", "conv-pool"])
def test_convolutional_kinds_have_a_code_of_latent_size(kind):
    args = types.SimpleNamespace(latent=12, hidden=[16], likelihood="bernoulli", channels=[32, 64])
    model = _build_ae(kind, 64, (8, 8), args)
    code = model.encode(torch.rand(3, 1, 8, 8))
    assert code.shape == (3, 12) and model.code_size == 12 < 64
    # conv-pool's decoder gets nothing but the code: it decodes codes no image produced
    assert not model.needs_indices
    assert model.decode_output(torch.zeros(2, 12)).shape == (2, 1, 8, 8)


@pytest.mark.parametrize("family, options, expected", [
    ("vae", [], {"reconstructions.png", "interpolation.png", "samples.png"}),
    ("vae", ["--conv"], {"reconstructions.png", "interpolation.png", "samples.png"}),
    *[("ae", ["--kind", kind, "--pretrain-epochs", "1"], {"reconstructions.png", "interpolation.png"})
      for kind in ("ae", "dae", "cae", "stacked", "conv", "conv-pool")],
], ids=["vae", "vae-conv", "ae", "dae", "cae", "stacked", "conv", "conv-pool"])
def test_every_promised_png_is_written(tmp_path, capsys, family, options, expected):
    # README and `fastgen train vae|ae --help` promise reconstructions.png and interpolation.png
    # for every kind, and samples.png for VAEs
    out = run(capsys, family, *options, *SMALL, "--latent", "6", "--out", str(tmp_path))
    wrote = {line.split("wrote ", 1)[1].strip() for line in out.splitlines() if line.startswith("wrote ")}
    assert {p.rsplit("/", 1)[-1] for p in wrote} == expected
    assert {p.name for p in tmp_path.iterdir()} == expected
    assert "PCA with 6 components" in out  # the code is 6 numbers for every kind, conv-pool included
    for name in expected:
        assert Image.open(tmp_path / name).size[0] > 0


def test_interpolation_runs_between_different_classes_deterministically():
    for seed in range(6):
        _, X_test, _, _, y_test = load_training_data(None, binarize=None, key=None, seed=seed, return_labels=True)
        i, j, description = interpolation_pair(X_test, y_test, seed)
        assert y_test[i] != y_test[j]
        assert description == f"from {y_test[i]} to {y_test[j]}"
        assert interpolation_pair(X_test, y_test, seed) == (i, j, description)
    # a single class: the farthest pair, as without labels
    X = np.random.default_rng(0).random((30, 16))
    assert interpolation_pair(X, np.zeros(30, int)) == interpolation_pair(X)


def test_without_labels_the_interpolation_runs_between_the_farthest_pair():
    X = np.random.default_rng(1).random((40, 16))
    i, j, description = interpolation_pair(X)
    d = ((X[:, None] - X[None]) ** 2).sum(-1)
    assert d[i, j] == pytest.approx(d.max()) and i < j and description == "farthest pair"
    assert interpolation_pair(X[:1]) == (0, 0, "one test image")


def test_the_command_interpolates_between_the_chosen_pair(tmp_path, monkeypatch):
    _, X_test, _, _, y_test = load_training_data(None, binarize=None, key=None, seed=3, return_labels=True)
    seen = []
    real = Autoencoder.interpolate

    def record(self, a, b, steps=8):
        seen.append((a.numpy().copy(), b.numpy().copy()))
        return real(self, a, b, steps)

    monkeypatch.setattr(Autoencoder, "interpolate", record)
    torch.manual_seed(0)
    _write_pngs(Autoencoder(64, (8,), 4), X_test, (8, 8), tmp_path, is_vae=False, seed=3, y_test=y_test)
    i, j, _ = interpolation_pair(X_test, y_test, 3)
    (a, b), = seen
    np.testing.assert_array_equal(a, X_test[i])
    np.testing.assert_array_equal(b, X_test[j])
    assert y_test[i] != y_test[j]


def dark_rows(pixels):
    return np.flatnonzero((pixels < 100).any(axis=1))


def test_labelled_grid_has_text_beside_each_row(tmp_path):
    images = np.random.default_rng(0).random((32, 64))
    plain = np.asarray(Image.open(save_image_grid(images, tmp_path / "plain.png", (8, 8), ncols=8)))
    labelled = np.asarray(Image.open(save_image_grid(images, tmp_path / "labelled.png", (8, 8), ncols=8,
                                                     row_labels=("input", "reconstruction"))))
    margin = labelled.shape[1] - plain.shape[1]
    assert labelled.shape[0] == plain.shape[0] and margin > 30
    np.testing.assert_array_equal(labelled[:, margin:], plain)  # the grid itself is unchanged
    text = dark_rows(labelled[:, :margin])
    tile, pitch = 8 * 4, 9 * 4
    for row in range(4):  # text in each of the 4 grid rows' bands
        top = 4 + row * pitch
        assert ((text >= top) & (text < top + tile)).any(), row
    # "reconstruction" is wider than "input"
    columns = lambda band: np.flatnonzero((labelled[band, :margin] < 100).any(axis=0))  # noqa: E731
    first, second = columns(slice(4, 4 + tile)), columns(slice(4 + pitch, 4 + pitch + tile))
    assert second.size and first.size and second.min() < first.min()


def test_reconstructions_png_is_labelled_input_over_reconstruction(tmp_path, capsys):
    run(capsys, "ae", *SMALL, "--latent", "6", "--out", str(tmp_path))
    pixels = np.asarray(Image.open(tmp_path / "reconstructions.png"))
    grid = tile_images(np.zeros((32, 64)), (8, 8), ncols=8)
    assert pixels.shape[0] == grid.shape[0] * 4 and pixels.shape[1] > grid.shape[1] * 4 + 30
    margin = pixels.shape[1] - grid.shape[1] * 4
    assert len(dark_rows(pixels[:, :margin])) > 0


def test_vae_output_explains_the_gap_to_pca(tmp_path, capsys):
    out = run(capsys, "vae", *SMALL, "--latent", "4", "--out", str(tmp_path))
    line = re.search(r"PCA with 4 components.*\n(.*)\n", out).group(1)
    assert "KL term" in line and "sampling noise" in line and "best linear reconstruction" in line
    assert "KL term" not in run(capsys, "ae", *SMALL, "--latent", "4", "--out", str(tmp_path))


def low_rank_data(seed=0, n=600, d=80, rank=30):
    rng = np.random.default_rng(seed)
    scales = 0.8 ** np.arange(rank)  # a decaying spectrum, like images'
    X = (rng.normal(size=(n, rank)) * scales) @ rng.normal(size=(rank, d)) + 0.01 * rng.normal(size=(n, d))
    return X[:500], X[500:]


@pytest.mark.parametrize("k", [5, 12, 20])
def test_randomized_pca_matches_the_exact_error(k):
    train, test = low_rank_data()
    exact = pca_reconstruction_mse(train, test, k, solver="full")
    fast = pca_reconstruction_mse(train, test, k, solver="randomized", seed=1)
    assert fast == pytest.approx(exact, rel=1e-4)
    assert pca_reconstruction_mse(train, test, k, solver="randomized", seed=1) == fast  # seeded


def test_auto_solver_is_randomized_for_large_data(monkeypatch):
    train, test = low_rank_data(1)
    chosen = []
    from sklearn import decomposition

    real_fit = decomposition.PCA.fit

    def fit(self, X, y=None):
        chosen.append(self.svd_solver)
        return real_fit(self, X, y)

    monkeypatch.setattr(decomposition.PCA, "fit", fit)
    pca_reconstruction_mse(train, test, 10)
    monkeypatch.setattr(loop, "PCA_EXACT_MAX_SIZE", 1000)
    auto = pca_reconstruction_mse(train, test, 10, seed=2)
    pca_reconstruction_mse(train, test, 70)  # over 80 % of min(n, d): exact
    assert chosen == ["full", "randomized", "full"]
    assert auto == pca_reconstruction_mse(train, test, 10, solver="randomized", seed=2)
    with pytest.raises(ValueError, match="solver must be"):
        pca_reconstruction_mse(train, test, 3, solver="arpack")


def test_contractive_autoencoder_learns_more_than_the_mean_image(tmp_path, capsys):
    # at Adam's 1e-3 its one sigmoid layer stayed at the mean image (test MSE 0.064 after 30
    # epochs, every reconstruction the same blob); the cae default rate leaves it within 10
    out = run(capsys, "ae", "--kind", "cae", "--epochs", "10", "--out", str(tmp_path))
    mse = float(re.search(r"test reconstruction MSE per feature: ([0-9.]+)", out).group(1))
    assert mse < 0.045
