"""The command line with hostile or broken input, as users met it: files that would run code,
interrupted writes, files that lie about their size, huge numbers, resumes without --epochs or
DATA. Every input error is one line on stderr (``fastgen: error: ...``), exit code 2, no
traceback, and no side effect."""
import gzip
import io
import pickle
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from fastgen.cli import main
from fastgen.serialization import load_rbm

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")
REPO_ROOT = Path(__file__).resolve().parents[1]
RBM_SMALL = ["--n-components", "4", "--n-iter", "1", "--batch-size", "5"]
VAE_SMALL = ["--hidden", "8", "--latent", "2", "--threads", "1"]
GAN_SMALL = ["--width", "4", "--latent-dim", "8", "--batch-size", "256", "--image-size", "28", "--no-progress",
             "--threads", "1"]
SMILES = ["CCO", "c1ccccc1Cl", "CC(=O)Nc1ccc(Br)cc1", "C[nH]1cccc1", "CC#N", "O=C(O)c1ccccc1F", "CCN(CC)CC"]
SMILES_SMALL = ["--hidden", "8", "--layers", "1", "--embedding", "4", "--batch-size", "8", "--threads", "1"]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def one_line_error(capsys, *fragments):
    """The captured stderr holds exactly one 'fastgen: error:' line (progress bars aside) and
    no traceback; returns that line."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("fastgen")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def data_file(tmp_path, n=40, side=4, seed=0, name="x.npy"):
    path = tmp_path / name
    np.save(path, (np.random.default_rng(seed).random((n, side, side)) < 0.3).astype(np.uint8) * 255)
    return path


class SideEffect:
    """Unpickling this creates the file ``path``: the proof that a loader ran code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


# ---- 1. files never run code -------------------------------------------------------------------
def test_rbm_load_never_unpickles(tmp_path, capsys):
    data, marker, evil = data_file(tmp_path), tmp_path / "pwned", tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps(SideEffect(marker)))
    assert main(["train", "rbm", str(data), "--load", str(evil), "--out", str(tmp_path)]) == 2
    one_line_error(capsys, str(evil), "pickle")
    assert not marker.exists()


def test_rbm_load_never_unpickles_through_the_real_entry_point(tmp_path):
    data, marker, evil = data_file(tmp_path), tmp_path / "pwned", tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps(SideEffect(marker)))
    done = subprocess.run([sys.executable, "-m", "fastgen", "train", "rbm", str(data), "--load", str(evil),
                           "--out", str(tmp_path)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("fastgen: error: ")
    assert not marker.exists()


@needs_torch
@pytest.mark.parametrize("command", [["train", "vae", "--epochs", "1", "--load"],
                                     ["train", "ae", "--epochs", "1", "--load"],
                                     ["train", "gan", "--no-progress", "--resume"],
                                     ["train", "smiles", "DATA", "--resume"],
                                     ["sample", "smiles"]],
                         ids=["vae", "ae", "gan", "smiles", "sample-smiles"])
def test_torch_checkpoints_never_unpickle(tmp_path, capsys, command):
    marker, evil = tmp_path / "pwned", tmp_path / "ckpt.pt"
    torch.save({"format": 1, "kind": "VAE", "payload": SideEffect(marker)}, evil)
    smiles = tmp_path / "s.csv"
    smiles.write_text("SMILES\n" + "\n".join(SMILES) + "\n")
    argv = [str(smiles) if a == "DATA" else a for a in command] + [str(evil), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    one_line_error(capsys, str(evil), "never loaded")
    assert not marker.exists()


# ---- 2. --save is atomic ------------------------------------------------------------------------
def test_rbm_save_interrupted_keeps_the_last_good_model(tmp_path, capsys, monkeypatch):
    data, model = data_file(tmp_path), tmp_path / "models" / "rbm.npz"
    assert main(["train", "rbm", str(data), *RBM_SMALL, "--save", str(model), "--out", str(tmp_path)]) == 0
    good = model.read_bytes()
    capsys.readouterr()

    def disk_full(fh, **arrays):
        fh.write(b"PK\x03\x04 the first bytes of a new model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    assert main(["train", "rbm", str(data), *RBM_SMALL, "--seed", "5", "--save", str(model),
                 "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "No space left on device")
    assert model.read_bytes() == good
    assert [p.name for p in model.parent.iterdir()] == ["rbm.npz"]
    load_rbm(model)  # still a readable model


@needs_torch
def test_vae_checkpoint_interrupted_keeps_the_last_good_one(tmp_path, capsys, monkeypatch):
    ckpt = tmp_path / "vae.pt"
    assert main(["train", "vae", "--epochs", "1", *VAE_SMALL, "--save", str(ckpt), "--out", str(tmp_path)]) == 0
    good = ckpt.read_bytes()
    capsys.readouterr()
    real_save = torch.save

    def partial(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", partial)
    assert main(["train", "vae", "--epochs", "1", "--load", str(ckpt), "--save", str(ckpt),
                 "--out", str(tmp_path)]) == 2
    monkeypatch.setattr(torch, "save", real_save)
    one_line_error(capsys, "No space left on device")
    assert ckpt.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".pt", ".tmp")) == ["vae.pt"]


# ---- 3. one-line errors for broken files and huge numbers --------------------------------------
@needs_torch
@pytest.mark.parametrize("kind", ["corrupt", "empty", "foreign", "truncated", "directory", "rbm-model"])
def test_vae_load_of_a_bad_file_is_one_line(tmp_path, capsys, kind):
    ckpt = tmp_path / "vae.pt"
    if kind == "corrupt":
        ckpt.write_bytes(np.random.default_rng(0).bytes(300))
    elif kind == "empty":
        ckpt.write_bytes(b"")
    elif kind == "foreign":
        torch.save({"weights": torch.zeros(3)}, ckpt)
    elif kind == "truncated":
        assert main(["train", "vae", "--epochs", "1", *VAE_SMALL, "--save", str(ckpt), "--out", str(tmp_path)]) == 0
        capsys.readouterr()
        ckpt.write_bytes(ckpt.read_bytes()[:2000])
    elif kind == "directory":
        ckpt.mkdir()
    else:
        assert main(["train", "rbm", str(data_file(tmp_path)), *RBM_SMALL, "--save", str(ckpt),
                     "--out", str(tmp_path)]) == 0
        capsys.readouterr()
    assert main(["train", "vae", "--epochs", "1", "--load", str(ckpt), "--out", str(tmp_path)]) == 2
    one_line_error(capsys, str(ckpt))


def test_corrupt_smiles_csv_gz_is_one_line(tmp_path, capsys):
    bad = tmp_path / "train.csv.gz"
    good = gzip.compress(("SMILES\n" + "\n".join(SMILES * 50) + "\n").encode())
    bad.write_bytes(good[:20] + bytes(b ^ 0x5A for b in good[20:60]) + good[60:])
    assert main(["train", "smiles", str(bad), "--epochs", "1"]) == 2
    one_line_error(capsys, str(bad), "corrupt gzip")


def test_npy_header_declaring_55_pib_is_one_line(tmp_path, capsys):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                   "shape": (2 ** 40, 2 ** 13)})   # 64 PiB of float64
    path = tmp_path / "huge.npy"
    path.write_bytes(header.getvalue() + bytes(64))
    assert main(["train", "rbm", str(path), "--out", str(tmp_path)]) == 2
    one_line_error(capsys, str(path), "declares shape (1099511627776, 8192)")


def test_huge_n_components_is_one_line(tmp_path, capsys, monkeypatch):
    import fastgen.cli.train_rbm

    monkeypatch.setattr(fastgen.cli.train_rbm, "memory_bytes", lambda: 24 << 30)  # the same on every machine
    data = data_file(tmp_path)
    assert main(["train", "rbm", str(data), "--n-components", str(10 ** 12), "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "--n-components", "1000000000000")
    # within the option's range, but 16 x 2**31 float32 weights (plus momentum) need 256 GiB
    assert main(["train", "rbm", str(data), "--n-components", str(2 ** 31 - 1), "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "--n-components 2147483647", "more than this machine's memory")
    assert main(["train", "rbm", str(data), "--n-iter", str(10 ** 30), "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "--n-iter")


def test_loaded_model_of_another_shape_is_one_line(tmp_path, capsys):
    data, model = data_file(tmp_path), tmp_path / "m.npz"
    assert main(["train", "rbm", str(data), *RBM_SMALL, "--save", str(model), "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    # data of another width than the model
    wide = data_file(tmp_path, side=5, name="wide.npy")
    assert main(["train", "rbm", str(wide), "--load", str(model), "--n-iter", "1", "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "25 features", "16")
    # a model file whose arrays disagree with each other (components_ 4 x 9, biases for 16)
    arrays = dict(np.load(model))
    arrays["components_"] = np.zeros((4, 9), arrays["components_"].dtype)
    np.savez(tmp_path / "bad.npz", **arrays)
    assert main(["train", "rbm", str(data), "--load", str(tmp_path / "bad.npz"), "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "bad.npz", "intercept_visible_ has shape (16,)")


# ---- 4. --resume without --epochs finishes the run ------------------------------------------------
def Interrupt(real, at):
    """``real``, except that its ``at``-th call raises KeyboardInterrupt (a user's Ctrl-C, a kill)."""
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    return wrapper


@needs_torch
def test_vae_resume_without_epochs_finishes_the_run(tmp_path, capsys, monkeypatch):
    from fastgen.torch import training

    ckpt = tmp_path / "vae.pt"
    monkeypatch.setattr(training, "evaluate", Interrupt(training.evaluate, at=2))   # killed in epoch 2 of 3
    assert main(["train", "vae", "--epochs", "3", *VAE_SMALL, "--save", str(ckpt), "--out", str(tmp_path)]) == 130
    monkeypatch.undo()
    assert training.load_checkpoint(ckpt)[2] == 1
    capsys.readouterr()
    assert main(["train", "vae", "--load", str(ckpt), "--save", str(ckpt), "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "continuing to epoch 3" in text and "epoch 3: train loss" in text and "epoch 4" not in text
    assert training.load_checkpoint(ckpt)[2] == 3
    assert main(["train", "vae", "--load", str(ckpt), "--save", str(ckpt), "--out", str(tmp_path)]) == 0
    assert "nothing to train: the checkpoint has 3 of its run's 3 epochs done" in capsys.readouterr().out
    assert training.load_checkpoint(ckpt)[2] == 3


@needs_torch
def test_gan_resume_without_epochs_finishes_the_run(tmp_path, capsys, monkeypatch):
    from fastgen.torch.gan import trainer as gan_trainer

    out = tmp_path / "run"
    monkeypatch.setattr(gan_trainer.GANTrainer, "write_samples",
                        Interrupt(gan_trainer.GANTrainer.write_samples, at=2))
    assert main(["train", "gan", "--epochs", "2", *GAN_SMALL, "--out", str(out)]) == 130
    monkeypatch.undo()
    assert gan_trainer.load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    capsys.readouterr()
    assert main(["train", "gan", "--resume", str(out / "checkpoint.pt"), "--out", str(out), "--no-progress",
                 "--threads", "1"]) == 0
    assert "training to epoch 2" in capsys.readouterr().out
    assert gan_trainer.load_checkpoint(out / "checkpoint.pt")["epoch"] == 2
    assert main(["train", "gan", "--resume", str(out / "checkpoint.pt"), "--out", str(out), "--no-progress",
                 "--threads", "1"]) == 0
    assert "nothing to train: 2 of 2 epochs done (the run's target is reached" in capsys.readouterr().out


@needs_torch
def test_smiles_resume_without_epochs_finishes_the_run(tmp_path, capsys, monkeypatch):
    from fastgen.torch import smiles as torch_smiles

    data, model = tmp_path / "train.csv", tmp_path / "lm.pt"
    data.write_text("SMILES\n" + "\n".join(SMILES * 4) + "\n")
    monkeypatch.setattr(torch_smiles.SmilesTrainer, "validation_loss",
                        Interrupt(torch_smiles.SmilesTrainer.validation_loss, at=2))
    assert main(["train", "smiles", str(data), "--epochs", "2", "--out", str(model), *SMILES_SMALL]) == 130
    monkeypatch.undo()
    state = torch_smiles.load_checkpoint(model)
    assert state["epoch"] == 1 and state["extra"]["target_epochs"] == 2
    capsys.readouterr()
    assert main(["train", "smiles", str(data), "--resume", str(model), "--threads", "1"]) == 0
    assert "trained epochs 2 to 2" in capsys.readouterr().out
    assert torch_smiles.load_checkpoint(model)["epoch"] == 2
    assert main(["train", "smiles", str(data), "--resume", str(model), "--threads", "1"]) == 0
    assert "the run's target is reached" in capsys.readouterr().out


# ---- 5. a checkpoint remembers its data ------------------------------------------------------------
@needs_torch
def test_gan_resume_refuses_other_data_and_defaults_to_its_own(tmp_path, capsys):
    images = tmp_path / "images.npy"
    np.save(images, np.random.default_rng(0).integers(0, 256, (300, 28, 28), dtype=np.uint8))
    out = tmp_path / "run"
    argv = [*GAN_SMALL[:4], "--batch-size", "64", "--no-progress", "--threads", "1"]
    assert main(["train", "gan", str(images), "--epochs", "1", *argv, "--out", str(out)]) == 0
    capsys.readouterr()
    ckpt = str(out / "checkpoint.pt")
    # without DATA: the checkpoint's own file, not scikit-learn's digits
    assert main(["train", "gan", "--resume", ckpt, "--epochs", "2", "--out", str(out), "--no-progress",
                 "--threads", "1"]) == 0
    assert f"data: {images.resolve()}: 300 images" in capsys.readouterr().out
    # other data: refused, nothing trained
    assert main(["train", "gan", "digits", "--resume", ckpt, "--epochs", "3", "--out", str(out),
                 "--no-progress", "--threads", "1"]) == 2
    one_line_error(capsys, "digits", "not the data", str(images.resolve()))
    assert torch.load(ckpt, weights_only=True)["epoch"] == 2


@needs_torch
def test_vae_and_smiles_resume_refuse_other_data(tmp_path, capsys):
    ckpt = tmp_path / "vae.pt"
    assert main(["train", "vae", "--epochs", "1", *VAE_SMALL, "--save", str(ckpt), "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    other = tmp_path / "other.npy"
    np.save(other, np.random.default_rng(1).random((50, 64)).astype(np.float32))
    assert main(["train", "vae", str(other), "--load", str(ckpt), "--epochs", "1", "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "not the data", "scikit-learn digits")
    assert main(["train", "vae", "--load", str(ckpt), "--seed", "3", "--epochs", "1", "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "--seed 3 differs")

    data, model = tmp_path / "a.csv", tmp_path / "lm.pt"
    data.write_text("SMILES\n" + "\n".join(SMILES * 3) + "\n")
    assert main(["train", "smiles", str(data), "--epochs", "1", "--out", str(model), *SMILES_SMALL]) == 0
    capsys.readouterr()
    changed = tmp_path / "b.csv"
    changed.write_text("SMILES\n" + "\n".join(SMILES[::-1] * 3) + "\n")
    assert main(["train", "smiles", str(changed), "--resume", str(model), "--epochs", "2"]) == 2
    one_line_error(capsys, "not the data")


# ---- 6. IDX overflow, decompression caps ---------------------------------------------------------------
def test_idx_header_with_huge_dims_is_refused_without_overflow(tmp_path, capsys):
    from fastgen.datasets import read_idx

    path = tmp_path / "train-images-idx3-ubyte"
    # 2**32-1 cubed overflows int64: np.prod would wrap to a small or negative count
    path.write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1) + bytes(1))
    with pytest.raises(ValueError, match=r"79,228,162,458,924,105,385,300,197,375 bytes"):
        read_idx(path)
    # dims whose int64 product wraps to exactly the stored size
    path.write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1)[:8]
                     + struct.pack(">I", 1) + bytes(1))
    assert main(["train", "rbm", str(path), "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "IDX header declares shape")


def test_gzip_bomb_is_stopped_at_the_size_its_header_declares(tmp_path):
    from fastgen.datasets import load_array

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10, 10)})
    path = tmp_path / "bomb.npy.gz"
    path.write_bytes(gzip.compress(header.getvalue() + bytes(100) + bytes(64 << 20), 9))   # 64 MiB of zeros
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="runs past the 228 bytes its header declares"):
            load_array(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak     # never decompressed in full


def test_decompression_cap_is_documented_and_enforced(tmp_path, monkeypatch, capsys):
    from fastgen.datasets import load_array

    path = tmp_path / "x.npy.gz"
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((200, 16), np.uint8))
    path.write_bytes(gzip.compress(buffer.getvalue()))
    assert load_array(path).shape == (200, 16)
    monkeypatch.setenv("FASTGEN_MAX_DECOMPRESSED_BYTES", "1000")
    with pytest.raises(ValueError, match="exceeds the limit of 1,000 bytes.*FASTGEN_MAX_DECOMPRESSED_BYTES"):
        load_array(path)
    smiles = tmp_path / "s.csv.gz"
    smiles.write_bytes(gzip.compress(("SMILES\n" + "CCO\n" * 1000).encode()))
    assert main(["train", "smiles", str(smiles), "--epochs", "1"]) == 2
    one_line_error(capsys, str(smiles), "FASTGEN_MAX_DECOMPRESSED_BYTES")


# ---- 7. more bad input, as users typed it -------------------------------------------------------
@pytest.mark.parametrize("argv, fragment", [
    (["train", "rbm", "DIR"], "is a directory"),
    (["train", "rbm", "/dev/null"], "not a regular file"),
    (["train", "rbm", "EMPTY"], "empty file"),
    (["train", "rbm", "DATA", "--key", "images"], "applies to .npz archives only"),
    (["train", "rbm", "DATA", "--load", "DIR"], "is a directory"),
    (["train", "rbm", "DATA", "--seed", "-1"], "--seed"),
    (["train", "rbm", "DATA", "--cd-k", str(10 ** 20)], "--cd-k"),
    (["train", "rbm", "DATA", "--learning-rate", "nan"], "--learning-rate"),
    (["train", "rbm", "DATA", "--save", "FILE/model.npz"], "cannot create the folder"),
])
def test_bad_rbm_input_is_one_line(tmp_path, capsys, argv, fragment):
    (tmp_path / "dir").mkdir()
    (tmp_path / "empty.npy").write_bytes(b"")
    data = data_file(tmp_path)
    names = {"DIR": str(tmp_path / "dir"), "EMPTY": str(tmp_path / "empty.npy"), "DATA": str(data),
             "FILE/model.npz": str(data / "model.npz")}
    argv = [names.get(a, a) for a in argv] + ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and fragment in err, err


@needs_torch
@pytest.mark.parametrize("argv, fragment", [
    (["train", "vae", "--latent", str(10 ** 20), "--epochs", "1"], "--latent"),
    (["train", "vae", "--hidden", str(10 ** 9), str(10 ** 9), "--epochs", "1"], "cannot build the model"),
    (["train", "vae", "--threads", str(10 ** 9)], "--threads"),
    (["train", "vae", "--seed", str(10 ** 24)], "--seed"),
    (["train", "vae", "--epochs", "-1"], "--epochs"),
    (["train", "vae", "--batch-size", "0"], "--batch-size"),
    (["train", "vae", "--save", "DIR", "--epochs", "1"], "is a directory"),
    (["train", "gan", "--latent-dim", str(10 ** 20)], "--latent-dim"),
    (["train", "gan", "--width", str(10 ** 8), "--epochs", "1"], "cannot build the DCGAN"),
    (["train", "gan", "--resume", "DIR"], "is a directory"),
    (["train", "smiles", "DIR"], "is a directory"),
    (["sample", "smiles", "DIR"], "is a directory"),
])
def test_bad_torch_command_input_is_one_line(tmp_path, capsys, argv, fragment):
    (tmp_path / "dir").mkdir()
    argv = [str(tmp_path / "dir") if a == "DIR" else a for a in argv] + ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and fragment in err, err


@needs_torch
def test_sample_smiles_huge_max_length_allocates_only_what_it_uses(tmp_path, capsys):
    data, model = tmp_path / "train.csv", tmp_path / "lm.pt"
    data.write_text("SMILES\n" + "\n".join(SMILES * 3) + "\n")
    assert main(["train", "smiles", str(data), "--epochs", "1", "--out", str(model), *SMILES_SMALL]) == 0
    out = tmp_path / "samples.csv"
    assert main(["sample", "smiles", str(model), "-n", "4", "--max-length", str(2 ** 31 - 1), "--out", str(out),
                 "--threads", "1"]) == 0
    assert out.read_text().startswith("SMILES\n")


@needs_torch
def test_vae_resume_reuses_the_recorded_key_and_binarization(tmp_path, capsys):
    data, ckpt = tmp_path / "d.npz", tmp_path / "vae.pt"
    rng = np.random.default_rng(0)
    np.savez(data, labels=np.arange(60), images=rng.random((60, 16)).astype(np.float32))
    assert main(["train", "vae", str(data), "--key", "images", "--binarize", "0.5", "--epochs", "1", *VAE_SMALL,
                 "--save", str(ckpt), "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    for argv in ([str(data)], []):   # the same file named again, or not named at all
        assert main(["train", "vae", *argv, "--load", str(ckpt), "--epochs", "1", "--save", str(ckpt),
                     "--out", str(tmp_path)]) == 0, capsys.readouterr().err
        assert f"data: {data.resolve() if not argv else data}" in capsys.readouterr().out
    # binarized differently: other data
    assert main(["train", "vae", str(data), "--binarize", "0.2", "--load", str(ckpt), "--epochs", "1",
                 "--out", str(tmp_path)]) == 2
    one_line_error(capsys, "not the data", "binarized at 0.5")


@needs_torch
def test_vae_load_of_a_plain_pickle_never_unpickles(tmp_path, capsys):
    """A plain pickle (not torch's zip format) with a side effect: refused, nothing run."""
    marker, evil = tmp_path / "pwned", tmp_path / "ckpt.pt"
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        evil.write_bytes(pickle.dumps({"format": 1, "payload": SideEffect(marker)}, protocol=protocol))
        assert main(["train", "vae", "--epochs", "1", "--load", str(evil), "--out", str(tmp_path)]) == 2
        line = one_line_error(capsys, str(evil), "not a readable checkpoint")
        assert "never loaded" in line or "nothing in it was run" in line
        assert not marker.exists()
