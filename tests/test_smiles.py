"""fastgen.smiles (tokens, files, MOSES metrics), fastgen.torch.smiles (model, training with
exact resume, batched sampling) and the `fastgen train/sample smiles` commands. Tiny models only."""
import gzip

import numpy as np
import pytest

import fastgen
from fastgen import smiles as fs
from fastgen.cli import main
from fastgen.smiles import Vocabulary, evaluate_samples, load_smiles_csv, tokenize

TRAIN_FILE = "moses_train_20k.csv.gz"
SMALL = ["CCO", "c1ccccc1Cl", "CC(=O)Nc1ccc(Br)cc1", "C[nH]1cccc1", "CC#N", "O=C(O)c1ccccc1F", "CCN(CC)CC",
         "CS(=O)(=O)N", "c1ccncc1", "CC(C)Cl"]


# ---- tokens --------------------------------------------------------------------------------------
def test_tokenize_two_letter_atoms():
    assert tokenize("ClCC(Br)c1ccc[nH]1") == ["Cl", "C", "C", "(", "Br", ")", "c", "1", "c", "c", "c", "[", "n",
                                              "H", "]", "1"]
    assert tokenize("") == []


def test_vocabulary_specials_encode_decode():
    v = Vocabulary.from_strings(SMALL)
    assert v.tokens[:3] == ["<pad>", "<start>", "<stop>"]
    assert (v.pad_index, v.start_index, v.stop_index) == (0, 1, 2)
    assert "Cl" in v.index and "Br" in v.index and "l" not in v.index
    for s in SMALL:
        ids = v.encode(s)
        assert ids[0] == v.start_index and ids[-1] == v.stop_index
        assert v.decode(ids) == s
    assert v.decode([1, v.index["C"], 2, v.index["O"]]) == "C"  # stops at STOP
    assert Vocabulary(v.to_list()) == v


def test_encode_batch_pads_and_counts():
    v = Vocabulary.from_strings(SMALL)
    tokens, lengths = v.encode_batch(["CCO", "C", "c1ccccc1Cl"])
    assert tokens.dtype == np.int64 and lengths.tolist() == [5, 3, 11]
    assert tokens.shape == (3, 11)
    assert (tokens[1, 3:] == v.pad_index).all() and tokens[1, 2] == v.stop_index
    assert v.decode_batch(tokens) == ["CCO", "C", "c1ccccc1Cl"]


def test_unknown_character_named():
    v = Vocabulary.from_strings(["CCO"])
    with pytest.raises(ValueError, match="'N'"):
        v.encode("CCN")
    with pytest.raises(ValueError, match="'Br'"):
        v.encode_batch(["CO", "CBr"])
    with pytest.raises(ValueError, match="no"):
        Vocabulary.from_strings(["", ""])


def test_shared_data_round_trip(shared_data_dir):
    strings = load_smiles_csv(shared_data_dir / TRAIN_FILE)
    assert len(strings) == 20000
    v = Vocabulary.from_strings(strings)
    assert "Cl" in v.tokens and "Br" in v.tokens
    tokens, lengths = v.encode_batch(strings[:500])
    assert v.decode_batch(tokens) == strings[:500]


# ---- files ---------------------------------------------------------------------------------------
def test_load_csv_plain_and_gzip(tmp_path):
    text = "SMILES,SPLIT\nCCO,train\n\nc1ccccc1,train\n"
    (tmp_path / "a.csv").write_text(text)
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(text.encode()))
    assert load_smiles_csv(tmp_path / "a.csv") == ["CCO", "c1ccccc1"]
    assert load_smiles_csv(tmp_path / "a.csv.gz") == ["CCO", "c1ccccc1"]
    fs.save_smiles(["C", "N"], tmp_path / "out.csv")
    assert load_smiles_csv(tmp_path / "out.csv") == ["C", "N"]


@pytest.mark.parametrize("content, match", [
    (b"", "empty"), (b"  \n", "empty"), (gzip.compress(b""), "empty"),
    (b"smiles_x\nCCO\n", "no column 'SMILES'"), (b"SMILES\n\n", "no strings"),
])
def test_load_csv_errors(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load_smiles_csv(path)


# ---- metrics -------------------------------------------------------------------------------------
def test_metrics_with_rdkit():
    pytest.importorskip("rdkit")
    generated = ["CCO", "OCC", "C1CC", "c1ccccc1", "", "CCN", "xyz"]  # OCC == CCO as molecules
    m = evaluate_samples(generated, training=["CCO", "C(C)N"])
    assert m["rdkit"] and m["n_valid"] == 4
    assert m["validity"] == pytest.approx(4 / 7)
    assert m["uniqueness"] == pytest.approx(3 / 4)            # CCO, c1ccccc1, CCN
    assert m["novelty"] == pytest.approx(1 / 3)               # CCN is C(C)N; only benzene is new
    assert "validity:   57.1%" in fs.format_metrics(m)


def test_metrics_without_rdkit(monkeypatch):
    monkeypatch.setattr(fs, "rdkit_available", lambda: False)
    m = evaluate_samples(["CCO", "CCO", "CCN", ""], training=["CCO"])
    assert m["validity"] is None and not m["rdkit"]
    assert m["uniqueness"] == pytest.approx(2 / 3) and m["novelty"] == pytest.approx(1 / 2)
    text = fs.format_metrics(m)
    assert "validity:   unavailable" in text and "RDKit" in text


# ---- model, training, sampling -------------------------------------------------------------------
try:  # the model, training and sampling tests need torch (in the [test] extra); the rest do not
    import torch
    from fastgen.torch.smiles import (SmilesLM, SmilesTrainer, TrainConfig, generate, load_checkpoint,
                                      trainer_from_checkpoint)
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch (pip install 'fastgen[torch]')")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models: one thread is fastest and leaves the machine's other cores alone."""
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(vocab, cell="lstm", dropout=0.2):
    torch.manual_seed(0)
    return SmilesLM(len(vocab), embedding_dim=8, hidden_size=16, num_layers=2, dropout=dropout, cell=cell)


@needs_torch
def test_loss_ignores_padding():
    v = Vocabulary.from_strings(SMALL)
    model = tiny(v).eval()
    tokens, lengths = (torch.from_numpy(a) for a in v.encode_batch(SMALL))
    total, count = model.loss(tokens, lengths)
    parts = [model.loss(*(torch.from_numpy(a) for a in v.encode_batch([s]))) for s in SMALL]
    assert count == sum(n for _, n in parts) == int((lengths - 1).sum())
    torch.testing.assert_close(total, sum(l for l, _ in parts), rtol=1e-5, atol=1e-5)


@needs_torch
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_training_lowers_loss(cell):
    v = Vocabulary.from_strings(SMALL)
    trainer = SmilesTrainer(tiny(v, cell, dropout=0.0), v, SMALL * 4, SMALL,
                            TrainConfig(learning_rate=1e-2, batch_size=8))
    before = trainer.validation_loss()
    history = trainer.train(6, progress=False)
    assert len(history) == 6 and history[-1]["val_loss"] < before - 0.5


@needs_torch
def test_resume_is_exact(tmp_path):
    v = Vocabulary.from_strings(SMALL)
    data, config = SMALL * 3, TrainConfig(learning_rate=5e-3, batch_size=4, seed=3)  # 8 batches per epoch
    straight = SmilesTrainer(tiny(v), v, data, SMALL, config)
    straight.train(2, progress=False)

    first = SmilesTrainer(tiny(v), v, data, SMALL, config)
    first.train(2, progress=False, stop_after_steps=11)  # stops inside epoch 2
    first.save(tmp_path / "ckpt.pt")
    torch.manual_seed(999)  # the global stream moves on; the checkpoint restores it
    resumed = trainer_from_checkpoint(load_checkpoint(tmp_path / "ckpt.pt"), data, SMALL)
    assert (resumed.epoch, resumed.step) == (1, 3)
    resumed.train(2, progress=False)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert [h["train_loss"] for h in straight.history] == [h["train_loss"] for h in resumed.history]


@needs_torch
def test_trainer_leaves_the_callers_torch_random_stream_alone():
    v = Vocabulary.from_strings(SMALL)
    models = [tiny(v, dropout=0.5), tiny(v, dropout=0.5)]  # tiny() seeds torch for the weights
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    trainer = SmilesTrainer(models[0], v, SMALL * 2, SMALL, TrainConfig(batch_size=4, seed=7))
    trainer.train(1, progress=False)
    assert torch.equal(torch.rand(3), expected)
    # and its own stream (dropout) does not depend on the caller's
    torch.manual_seed(999)
    other = SmilesTrainer(models[1], v, SMALL * 2, SMALL, TrainConfig(batch_size=4, seed=7))
    other.train(1, progress=False)
    for a, b in zip(trainer.model.state_dict().values(), other.model.state_dict().values()):
        assert torch.equal(a, b)


@needs_torch
def test_resume_is_exact_with_bucketing_and_cosine_schedule(tmp_path):
    v = Vocabulary.from_strings(SMALL)
    config = TrainConfig(learning_rate=5e-3, batch_size=4, seed=3, lr_schedule="cosine", warmup_steps=3,
                         bucket_by_length=True)
    straight = SmilesTrainer(tiny(v), v, SMALL * 3, SMALL, config)
    straight.train(2, progress=False)
    first = SmilesTrainer(tiny(v), v, SMALL * 3, SMALL, config)
    first.train(2, progress=False, stop_after_steps=11)
    first.save(tmp_path / "ckpt.pt")
    resumed = trainer_from_checkpoint(load_checkpoint(tmp_path / "ckpt.pt"), SMALL * 3, SMALL)
    assert resumed.config.schedule_epochs == 2 and config.schedule_epochs is None  # the caller's config untouched
    resumed.train(2, progress=False)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert straight.optimizer.param_groups[0]["lr"] == resumed.optimizer.param_groups[0]["lr"] < 5e-3 * 0.05


@needs_torch
def test_learning_rate_schedule_warms_up_then_follows_the_cosine_to_zero():
    c = TrainConfig(learning_rate=1.0, lr_schedule="cosine", warmup_steps=4, schedule_epochs=2)
    steps = 10  # per epoch: 20 in all, 16 after the warm-up
    assert [c.learning_rate_at(i, steps) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert c.learning_rate_at(4, steps) == 1.0
    assert c.learning_rate_at(12, steps) == pytest.approx(0.5)  # half-way through the cosine
    assert c.learning_rate_at(20, steps) == pytest.approx(0.0, abs=1e-12)
    assert c.learning_rate_at(50, steps) == pytest.approx(0.0, abs=1e-12)  # stays at the end value
    values = [c.learning_rate_at(i, steps) for i in range(4, 21)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    constant = TrainConfig(learning_rate=0.1, warmup_steps=2)
    assert [constant.learning_rate_at(i, steps) for i in range(4)] == [0.05, 0.1, 0.1, 0.1]


@needs_torch
def test_length_buckets_cover_every_string_once_with_little_padding():
    strings = [("C" * n) + "O" for n in np.random.default_rng(0).integers(1, 40, size=1000)]
    v = Vocabulary.from_strings(strings)
    plain = SmilesTrainer(tiny(v), v, strings, (), TrainConfig(batch_size=16, seed=1))
    bucketed = SmilesTrainer(tiny(v), v, strings, (), TrainConfig(batch_size=16, seed=1, bucket_by_length=True))
    lengths = bucketed.train_lengths

    def padded_fraction(batches):
        return 1 - sum(int(lengths[b].sum()) for b in batches) / sum(len(b) * int(lengths[b].max()) for b in batches)

    for epoch in range(2):
        batches = bucketed._batches(epoch)
        assert sorted(torch.cat(batches).tolist()) == list(range(len(strings)))
        assert len(batches) == bucketed.batches_per_epoch == plain.batches_per_epoch
        assert all(len(b) <= 16 for b in batches)
        assert padded_fraction(batches) < 0.1 < padded_fraction(plain._batches(epoch))
        assert all(torch.equal(a, b) for a, b in zip(batches, bucketed._batches(epoch)))  # a function of the epoch
    assert not torch.equal(bucketed._batches(0)[0], bucketed._batches(1)[0])


@needs_torch
@pytest.mark.parametrize("field, value, match", [("lr_schedule", "linear", "lr_schedule must be"),
                                                 ("warmup_steps", -1, "warmup_steps must be"),
                                                 ("schedule_epochs", 1.5, "schedule_epochs must be")])
def test_bad_schedule_settings_are_refused(field, value, match):
    v = Vocabulary.from_strings(SMALL)
    with pytest.raises(ValueError, match=match):
        SmilesTrainer(tiny(v), v, SMALL, (), TrainConfig(**{field: value}))


@needs_torch
def test_checkpoint_every_and_bad_checkpoint(tmp_path):
    v = Vocabulary.from_strings(SMALL)
    trainer = SmilesTrainer(tiny(v), v, SMALL * 3, (), TrainConfig(batch_size=4))
    trainer.train(1, progress=False, checkpoint=tmp_path / "c.pt", checkpoint_every=3, stop_after_steps=4)
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 3
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


@needs_torch
def test_generate_stops_rows_and_is_reproducible():
    v = Vocabulary.from_strings(SMALL)
    model = tiny(v)
    a = generate(model, v, 50, max_length=12, generator=fastgen.Generator(5), batch_size=16)
    b = generate(model, v, 50, max_length=12, generator=fastgen.Generator(5), batch_size=16)
    assert a == b and len(a) == 50
    assert all(len(tokenize(s)) <= 12 for s in a)
    assert all("<" not in s for s in a)
    with torch.no_grad():  # make STOP overwhelmingly likely: every row stops at once
        model.head.bias[v.stop_index] = 100.0
    assert generate(model, v, 20, generator=1) == [""] * 20
    assert generate(model, v, 3, generator=1, prefix="CC") == ["CC"] * 3


@needs_torch
def test_generate_top_k_one_is_greedy_and_finished_rows_stop():
    v = Vocabulary.from_strings(SMALL)
    model = tiny(v)
    with torch.no_grad():
        model.head.bias[v.index["C"]] = 3.0
    out = generate(model, v, 30, max_length=8, top_k=1, generator=2)
    assert len(set(out)) == 1  # the same greedy path for every row


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=0.0), "temperature"), (dict(temperature=-2.0), "temperature"),
    (dict(top_k=0), "top_k"), (dict(top_k=10_000), "top_k"), (dict(prefix="CXC"), "'X'"),
    (dict(max_length=0), "max_length"),
])
@needs_torch
def test_generate_bad_arguments(kwargs, match):
    v = Vocabulary.from_strings(SMALL)
    with pytest.raises(ValueError, match=match):
        generate(tiny(v), v, 4, generator=0, **kwargs)


# ---- command line ------------------------------------------------------------------------------
@needs_torch
def test_cli_train_resume_sample(tmp_path, capsys):
    data = tmp_path / "train.csv"
    data.write_text("SMILES\n" + "\n".join(SMALL * 4) + "\n")
    model = tmp_path / "m.pt"
    common = ["--hidden", "12", "--layers", "1", "--embedding", "8", "--batch-size", "8", "--threads", "1"]
    assert main(["train", "smiles", str(data), "--epochs", "1", "--out", str(model), *common]) == 0
    state = load_checkpoint(model)["train_config"]
    assert (state["lr_schedule"], state["schedule_epochs"], state["bucket_by_length"]) == ("cosine", 1, True)
    assert main(["train", "smiles", str(data), "--resume", str(model), "--epochs", "2"]) == 0
    assert "now runs to epoch 2" in capsys.readouterr().out
    assert load_checkpoint(model)["epoch"] == 2 and load_checkpoint(model)["train_config"]["schedule_epochs"] == 2
    plain = tmp_path / "plain.pt"
    assert main(["train", "smiles", str(data), "--epochs", "1", "--out", str(plain), "--lr-schedule", "constant",
                 "--warmup", "0", "--no-bucketing", *common]) == 0
    state = load_checkpoint(plain)["train_config"]
    assert (state["lr_schedule"], state["warmup_steps"], state["bucket_by_length"]) == ("constant", 0, False)
    out = tmp_path / "samples.csv"
    assert main(["sample", "smiles", str(model), "-n", "20", "--top-k", "3", "--temperature", "0.8",
                 "--max-length", "30", "--out", str(out), "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert "uniqueness" in text and "novelty" in text and "validity" in text
    assert out.read_text().startswith("SMILES\n")


@needs_torch
def test_cli_errors(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["train", "smiles", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "empty" in err and err.count("\n") == 1
    data = tmp_path / "train.csv"
    data.write_text("SMILES\n" + "\n".join(SMALL * 2) + "\n")
    model = tmp_path / "m.pt"
    assert main(["train", "smiles", str(data), "--epochs", "1", "--hidden", "8", "--layers", "1", "--out",
                 str(model)]) == 0
    capsys.readouterr()
    for args, match in [(["--temperature", "0"], "temperature"), (["--top-k", "500"], "top_k"),
                        (["--prefix", "CQ"], "'Q'")]:
        assert main(["sample", "smiles", str(model), "-n", "3", "--out", str(tmp_path / "s.csv"), *args]) == 2
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1
    assert main(["sample", "smiles", str(empty)]) == 2
    assert "checkpoint" in capsys.readouterr().err


# ---- reading SMILES files: every problem named in one line ---------------------------------------
def test_load_smiles_csv_names_each_problem(tmp_path):
    cases = {
        "missing.csv": None,
        "folder": "dir",
        "nul.csv": b"SMILES\nCC\x00O\n",
        "corrupt.csv.gz": gzip.compress(b"SMILES\nCCO\n" * 100)[:12] + b"\xff" * 40,
        "huge_field.csv": b'SMILES\n"' + b"C" * 200_000 + b'"\n',
    }
    expected = {"missing.csv": "no such file", "folder": "is a directory", "nul.csv": "NUL bytes",
                "corrupt.csv.gz": "corrupt gzip", "huge_field.csv": "not a readable CSV file"}
    for name, content in cases.items():
        path = tmp_path / name
        if content == "dir":
            path.mkdir()
        elif content is not None:
            path.write_bytes(content)
        with pytest.raises(ValueError, match=expected[name]) as info:
            load_smiles_csv(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_save_smiles_is_atomic(tmp_path, monkeypatch):
    path = fs.save_smiles(["CCO"], tmp_path / "s.csv")
    before = path.read_bytes()

    def fail(fh):
        raise OSError(28, "No space left on device")

    import fastgen._files as files
    real = files.atomic_write
    monkeypatch.setattr(files, "atomic_write", lambda p, write: real(p, fail))
    with pytest.raises(OSError):
        fs.save_smiles(["CCN"] * 10, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["s.csv"]
