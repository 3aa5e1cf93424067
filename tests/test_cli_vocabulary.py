"""One vocabulary across the fastgen commands (--epochs, --resume, --save, --out, --threads), the
old spellings as deprecated aliases, --help without torch and without stray %%, and the
benchmarks after a plain (non-editable) install. Commands run through the real entry point
(``python -m fastgen`` in a subprocess) where that is what is tested."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastgen import cli
from fastgen.cli import main
from fastgen.serialization import load_rbm

REPO_ROOT = Path(__file__).resolve().parents[1]


def fastgen(*argv, cwd=REPO_ROOT, timeout=120):
    return subprocess.run([sys.executable, "-m", "fastgen", *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def bars(path, n=40, side=4, seed=0):
    rng = np.random.default_rng(seed)
    X = np.zeros((n, side, side), np.uint8)
    for k in range(n):
        X[k, rng.integers(side), :] = 255
    np.save(path, X)
    return path


def notes(stderr):
    """The deprecation notes among stderr's lines (the progress bars write there too)."""
    return [line for line in stderr.splitlines() if line.startswith("note:")]


RBM_SMALL = ["--n-components", "6", "--batch-size", "5"]


# ---- train rbm: --epochs is the total, --resume continues, old spellings still work ----------------
def test_train_rbm_epochs_total_on_resume(tmp_path):
    data, model, out = bars(tmp_path / "x.npy"), tmp_path / "m.npz", tmp_path / "png"
    done = fastgen("train", "rbm", data, *RBM_SMALL, "--epochs", "2", "--save", model, "--out", out)
    assert done.returncode == 0, done.stderr
    assert "trained 2 epochs" in done.stdout and "deprecated" not in done.stderr
    assert load_rbm(model).n_iter == 2                                   # the epochs the model has

    done = fastgen("train", "rbm", data, "--resume", model, "--epochs", "3", "--save", model, "--out", out)
    assert done.returncode == 0, done.stderr
    assert "2 epochs done" in done.stdout
    assert re.search(r"continued training for 1 epochs in [0-9.]+ s \(epochs 3 to 3\)", done.stdout), done.stdout
    assert load_rbm(model).n_iter == 3

    done = fastgen("train", "rbm", data, "--resume", model, "--epochs", "3", "--out", out)
    assert done.returncode == 0 and "nothing to train: the model has 3 epochs" in done.stdout
    assert "continued" not in done.stdout


def test_train_rbm_old_spellings_are_aliases_with_their_old_meaning(tmp_path):
    data, model, out = bars(tmp_path / "x.npy"), tmp_path / "m.npz", tmp_path / "png"
    done = fastgen("train", "rbm", data, *RBM_SMALL, "--n-iter", "2", "--save", model, "--out", out)
    assert done.returncode == 0 and "trained 2 epochs" in done.stdout
    assert notes(done.stderr) == [
        "note: --n-iter is deprecated; use --epochs, the total epoch count (with --resume: the total to reach; "
        "--n-iter N still trains N more)"]
    # --load == --resume; with it --n-iter N still means N more epochs
    done = fastgen("train", "rbm", data, "--load", model, "--n-iter", "2", "--save", model, "--out", out)
    assert done.returncode == 0, done.stderr
    assert re.search(r"continued training for 2 epochs in [0-9.]+ s \(epochs 3 to 4\)", done.stdout), done.stdout
    assert "note: --load is deprecated; use --resume (same meaning)" in notes(done.stderr)
    assert len(notes(done.stderr)) == 2
    assert load_rbm(model).n_iter == 4

    done = fastgen("train", "rbm", data, "--epochs", "2", "--n-iter", "2", "--out", out)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "fastgen: error: give --epochs (the total) or the deprecated --n-iter (with --resume: epochs to add), not both"]


def test_demo_epochs_and_old_n_iter(tmp_path, capsys):
    assert main(["demo", "--n-iter", "1", "--no-compare", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "n_iter=1," in captured.out
    assert notes(captured.err) == ["note: --n-iter is deprecated; use --epochs (same meaning)"]
    assert main(["demo", "waveforms", "--help"]) == 0
    assert "--epochs" in capsys.readouterr().out
    args = cli.build_parser().parse_args(["demo", "waveforms", "--n-iter", "3"])
    assert args.epochs == 3
    assert cli.build_parser().parse_args(["demo", "waveforms"]).epochs == 30


# ---- --threads ----------------------------------------------------------------------------------
def test_demo_threads_limits_fastgens_openmp(tmp_path):
    done = fastgen("demo", "--epochs", "1", "--no-compare", "--threads", "1", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "threads: 1 OpenMP (fastgen's compiled loops), BLAS limited to 1" in done.stdout
    data = bars(tmp_path / "x.npy")
    done = fastgen("train", "rbm", data, *RBM_SMALL, "--epochs", "1", "--threads", "1", "--out", tmp_path)
    assert done.returncode == 0 and "threads: 1 OpenMP" in done.stdout
    assert fastgen("train", "rbm", data, "--threads", "0").returncode == 2


def test_thread_limit_controls_the_libgomp_of_fastgen_C():
    from threadpoolctl import threadpool_info

    from fastgen._native.cpu import C

    before = C.max_threads()
    with cli.options.thread_limit(1):
        assert C.max_threads() == 1                       # omp_get_max_threads in _C's own libgomp
        openmp = [i for i in threadpool_info() if i["internal_api"] == "openmp"]
        assert openmp and all(i["num_threads"] == 1 for i in openmp)
        maps = Path("/proc/self/maps")
        if maps.is_file():  # the libgomp _C loaded is one threadpoolctl controls
            loaded = {os.path.realpath(line.split()[-1]) for line in maps.read_text().splitlines()
                      if "libgomp" in line and "/" in line}
            assert loaded <= {os.path.realpath(i["filepath"]) for i in openmp}
        blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
        assert all(i["num_threads"] == 1 for i in blas)
    assert C.max_threads() == before


# ---- vae / ae: options without torch, --resume with --epochs as the total ---------------------------
HIDE_TORCH = ("import sys; sys.modules['torch'] = None; from fastgen.cli import main; "
              "sys.exit(main(sys.argv[1:]))")


@pytest.mark.parametrize("family", ["vae", "ae"])
def test_autoencoder_help_without_torch(family):
    done = subprocess.run([sys.executable, "-c", HIDE_TORCH, "train", family, "--help"], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    for option in ("--epochs", "--resume", "--save", "--out", "--latent", "--threads"):
        assert option in done.stdout
    assert not re.search(r"^\s+rest\b", done.stdout, re.MULTILINE) and "%%" not in done.stdout and "10% of" in done.stdout
    done = subprocess.run([sys.executable, "-c", HIDE_TORCH, "train", family, "--epochs", "1"], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"fastgen: error: 'fastgen train {family}' needs PyTorch: pip install 'fastgen[torch]'"


def test_autoencoder_default_epochs_match_the_trainer():
    training = pytest.importorskip("fastgen.torch.training")
    assert cli.train_autoencoders.AUTOENCODER_EPOCHS == training.DEFAULT_EPOCHS


VAE_SMALL = ["--hidden", "8", "--latent", "2", "--threads", "1", "--batch-size", "256"]


def test_vae_resume_epochs_is_the_total_and_load_keeps_adding(tmp_path, capsys):
    pytest.importorskip("torch")
    from fastgen.torch.training import read_checkpoint

    ckpt = tmp_path / "vae.pt"
    assert main(["train", "vae", "--epochs", "1", *VAE_SMALL, "--save", str(ckpt), "--out", str(tmp_path)]) == 0
    assert read_checkpoint(ckpt)["epoch"] == 1
    capsys.readouterr()
    assert main(["train", "vae", "--resume", str(ckpt), "--epochs", "2", "--save", str(ckpt),
                 "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "continuing to epoch 2" in captured.out and captured.err.count("note:") == 0
    assert read_checkpoint(ckpt)["epoch"] == 2
    assert main(["train", "vae", "--resume", str(ckpt), "--epochs", "2", "--out", str(tmp_path)]) == 0
    assert "nothing to train: the checkpoint has 2 of its run's 2 epochs done" in capsys.readouterr().out
    # the old spelling: --epochs N still trains N more, and says what replaced it
    assert main(["train", "vae", "--load", str(ckpt), "--epochs", "1", "--save", str(ckpt),
                 "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "continuing to epoch 3" in captured.out
    assert notes(captured.err)[0].startswith("note: --load is deprecated; use --resume")
    assert read_checkpoint(ckpt)["epoch"] == 3


# ---- gan / smiles: --save is the checkpoint file, --out the folder ---------------------------------
def test_gan_save_names_the_checkpoint(tmp_path, capsys):
    pytest.importorskip("torch")
    out, ckpt = tmp_path / "o", tmp_path / "ck" / "gan.pt"
    args = ["train", "gan", "--epochs", "1", "--width", "4", "--latent-dim", "8", "--batch-size", "256",
            "--image-size", "28", "--out", str(out), "--save", str(ckpt), "--no-progress", "--threads", "1"]
    assert main(args) == 0
    assert ckpt.is_file() and not (out / "checkpoint.pt").exists() and (out / "samples.png").is_file()
    assert f"checkpoint {ckpt}" in capsys.readouterr().out
    assert main(["train", "gan", "--resume", str(ckpt), "--save", str(tmp_path), "--out", str(out),
                 "--no-progress"]) == 2
    assert "is a directory (--save needs a file name)" in capsys.readouterr().err


SMILES = ["CCO", "CCN", "c1ccccc1", "CC(=O)O", "CCCl", "CBr", "C1CC1", "CC=C"]


def test_smiles_save_and_out_folder_and_old_out_file(tmp_path, capsys):
    pytest.importorskip("torch")
    from fastgen.torch.smiles import load_checkpoint

    data = tmp_path / "train.csv"
    data.write_text("SMILES\n" + "\n".join(SMILES * 4) + "\n")
    small = ["--hidden", "8", "--layers", "1", "--embedding", "4", "--batch-size", "8", "--threads", "1"]
    folder = tmp_path / "out"
    assert main(["train", "smiles", str(data), "--epochs", "1", "--out", str(folder), *small]) == 0
    assert load_checkpoint(folder / "smiles_lm.pt")["epoch"] == 1       # --out: the folder
    model = tmp_path / "m.pt"
    assert main(["train", "smiles", str(data), "--epochs", "1", "--save", str(model), *small]) == 0
    assert load_checkpoint(model)["epoch"] == 1 and "deprecated" not in capsys.readouterr().err
    old = tmp_path / "old.pt"
    assert main(["train", "smiles", str(data), "--epochs", "1", "--out", str(old), *small]) == 0
    assert load_checkpoint(old)["epoch"] == 1                           # the old spelling still works
    assert notes(capsys.readouterr().err) == ["note: --out FILE is deprecated; use --save FILE for the "
                                              "checkpoint (--out is the output folder)"]


# ---- every --help: no stray %% -----------------------------------------------------------------
HELP_COMMANDS = [[], ["demo"], ["demo", "digits"], ["demo", "waveforms"], ["train"], ["train", "rbm"],
                 ["train", "smiles"], ["train", "gan"], ["train", "vae"], ["train", "ae"], ["sample"],
                 ["sample", "smiles"]]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=lambda c: " ".join(c) or "fastgen")
def test_help_has_no_stray_percent(command, capsys):
    assert main([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: fastgen") and "%%" not in text and "%(" not in text


def test_bench_help_has_no_stray_percent():
    done = subprocess.run([sys.executable, "-m", "bench", "rbm", "--help"], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0 and "%%" not in done.stdout


# ---- benchmarks after a plain `pip install .` ------------------------------------------------------
@pytest.fixture(scope="module")
def plain_install(tmp_path_factory):
    """A checkout whose fastgen/ has no compiled module (repo/) beside an "installed" fastgen with
    one (site/, on PYTHONPATH, after the checkout the way site-packages is), the editable install's
    finder switched off by a sitecustomize, and site/fastgen_script.py standing for the console script."""
    if not any((REPO_ROOT / "fastgen").glob("_C.*")):
        pytest.skip("the checkout has no compiled module to install")
    root = tmp_path_factory.mktemp("plain")
    ignore = shutil.ignore_patterns("__pycache__", "results", "wheels")
    shutil.copytree(REPO_ROOT / "bench", root / "repo" / "bench", ignore=ignore)
    shutil.copytree(REPO_ROOT / "fastgen", root / "repo" / "fastgen",
                    ignore=shutil.ignore_patterns("__pycache__", "_C.*"))
    shutil.copytree(REPO_ROOT / "fastgen", root / "site" / "fastgen", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "site" / "sitecustomize.py").write_text(
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in str(getattr(f, '__module__', ''))\n"
        "                    and 'editable' not in type(f).__module__]\n")
    (root / "site" / "fastgen_script.py").write_text("import sys\nfrom fastgen.cli import main\nsys.exit(main())\n")
    images = ((np.random.default_rng(2).random((200, 28, 28)) < 0.2) * 255).astype(np.uint8)
    np.savez(root / "mnist_test_10k.npz", data=images)
    env = dict(os.environ, PYTHONPATH=str(root / "site"), FASTGEN_DATA_DIR=str(root))
    return root, env


def test_python_m_bench_uses_the_installed_fastgen(plain_install):
    root, env = plain_install
    done = subprocess.run([sys.executable, "-m", "bench", "rbm", "--quick", "--repeats", "1", "--cooldown", "0",
                           "--dtype", "float32", "--only", "A"], capture_output=True, text=True,
                          cwd=root / "repo", env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "has no compiled module" in done.stderr and str(root / "site" / "fastgen") in done.stderr
    assert "Targets:" in done.stdout and "pip install" not in done.stdout + done.stderr.split("\n", 1)[1]


def test_fastgen_bench_finds_the_checkout_in_the_current_directory(plain_install):
    root, env = plain_install
    done = subprocess.run([sys.executable, str(root / "site" / "fastgen_script.py"), "bench", "--help"],
                          capture_output=True, text=True, cwd=root / "repo", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: python -m bench" in done.stdout and "rbm" in done.stdout
    elsewhere = subprocess.run([sys.executable, str(root / "site" / "fastgen_script.py"), "bench", "--help"],
                               capture_output=True, text=True, cwd=root, env=env, timeout=120)
    assert elsewhere.returncode == 2 and "run it from the repository root" in elsewhere.stderr


def test_source_tree_lookup(tmp_path):
    from importlib import import_module

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    bench_main = import_module("bench.__main__")
    (tmp_path / "fastgen").mkdir()
    (tmp_path / "fastgen" / "__init__.py").write_text("")
    assert bench_main.source_tree_is_compiled(tmp_path) is False
    (tmp_path / "fastgen" / "_C.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    assert bench_main.source_tree_is_compiled(tmp_path) is True
    assert bench_main.use_installed_fastgen(tmp_path) is None           # fastgen is imported already


def test_python_m_fastgen_runs_the_installed_fastgen_from_an_uncompiled_checkout(plain_install):
    root, env = plain_install
    data = root / "tiny.npy"
    np.save(data, (np.random.default_rng(0).random((40, 9)) < 0.3).astype(np.float32))
    done = subprocess.run([sys.executable, "-m", "fastgen", "train", "rbm", str(data), "--epochs", "1",
                           "--n-components", "4", "--out", str(root / "out")],
                          capture_output=True, text=True, cwd=root / "repo", env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "has no compiled module" in done.stderr and str(root / "site" / "fastgen") in done.stderr
    assert "pip install" not in done.stdout + done.stderr
