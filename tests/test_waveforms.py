"""fastgen.datasets' periodic waveforms (generation, bit codes, lost stretches) and
``fastgen demo waveforms``."""
import itertools
import re

import numpy as np
import pytest
from PIL import Image

from fastgen.cli import main
from fastgen.datasets import (WAVEFORM_CODES, WAVEFORM_KINDS, corrupt_waveforms, decode_waveforms,
                              encode_waveforms, make_waveforms)

LEVELS = np.arange(256, dtype=np.float64)


# ---- bit codes --------------------------------------------------------------------------------
@pytest.mark.parametrize("code", WAVEFORM_CODES)
@pytest.mark.parametrize("method", ["mean", "threshold"])
def test_round_trip_is_exact_for_every_level(code, method):
    signals = np.stack([LEVELS, LEVELS[::-1]])                       # (2, 256): every level 0..255
    bits = encode_waveforms(signals, code=code)
    assert bits.shape == (2, 256 * 8) and bits.dtype == np.float64
    assert set(np.unique(bits)) == {0.0, 1.0}
    np.testing.assert_array_equal(decode_waveforms(bits, code=code, method=method), signals)
    # one signal as a 1-D array stays 1-D
    np.testing.assert_array_equal(decode_waveforms(encode_waveforms(LEVELS, code=code), code=code), LEVELS)


def test_plain_binary_is_msb_first_and_gray_changes_one_bit_per_level():
    bits = encode_waveforms(np.array([[1.0, 128.0, 255.0]]), code="binary").reshape(3, 8)
    np.testing.assert_array_equal(bits[0], [0, 0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(bits[1], [1, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(bits[2], np.ones(8))
    gray = encode_waveforms(LEVELS, code="gray").reshape(256, 8)
    assert (np.abs(np.diff(gray, axis=0)).sum(axis=1) == 1).all()   # neighbouring levels: one bit apart
    np.testing.assert_array_equal(gray[[127, 128]], [[0, 1, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0]])


def test_other_bit_counts_and_rounding():
    for n_bits in (1, 3, 12):
        levels = np.arange(2 ** n_bits, dtype=np.float64)[None]
        for code in WAVEFORM_CODES:
            bits = encode_waveforms(levels, n_bits=n_bits, code=code)
            assert bits.shape == (1, levels.size * n_bits)
            np.testing.assert_array_equal(decode_waveforms(bits, n_bits=n_bits, code=code), levels)
    np.testing.assert_array_equal(decode_waveforms(encode_waveforms([[0.4, 9.6, 254.5001]])), [[0, 10, 255]])
    np.testing.assert_array_equal(decode_waveforms(encode_waveforms(np.array([[3, 200]], np.uint8))), [[3, 200]])


@pytest.mark.parametrize("code", WAVEFORM_CODES)
def test_decoding_probabilities(code):
    """method='mean' is the exact expected level when the units are independent Bernoulli
    variables (enumerated here for 3 bits); 'threshold' decodes p > 0.5."""
    rng = np.random.default_rng(1)
    probs = rng.random((5, 2 * 3))
    expected = np.zeros((5, 2))
    for states in itertools.product([0.0, 1.0], repeat=3):
        states = np.array(states)
        weight = np.prod(np.where(states, probs.reshape(5, 2, 3), 1 - probs.reshape(5, 2, 3)), axis=-1)
        expected += weight * decode_waveforms(states, n_bits=3, code=code)[0]
    np.testing.assert_allclose(decode_waveforms(probs, n_bits=3, code=code), expected, rtol=1e-12)
    np.testing.assert_array_equal(decode_waveforms(probs, n_bits=3, code=code, method="threshold"),
                                  decode_waveforms((probs > 0.5) * 1.0, n_bits=3, code=code))
    half = decode_waveforms(np.full(8, 0.5), code=code)
    np.testing.assert_allclose(half, [127.5])                      # uniform over all 256 levels


# ---- generator --------------------------------------------------------------------------------
def test_shapes_values_and_signals():
    X = make_waveforms(7)
    assert X.shape == (7, 480) and X.dtype == np.float64 and X.flags.c_contiguous
    assert set(np.unique(X)) <= {0.0, 1.0}
    X2, signals, kind = make_waveforms(7, return_signals=True)
    np.testing.assert_array_equal(X, X2)
    assert signals.shape == (7, 60) and kind.shape == (7,)
    assert (signals == np.rint(signals)).all() and signals.min() >= 0 and signals.max() <= 255
    np.testing.assert_array_equal(decode_waveforms(X), signals)
    X, signals, _ = make_waveforms(3, n_points=10, n_bits=4, code="binary", return_signals=True)
    assert X.shape == (3, 40) and signals.max() <= 15
    np.testing.assert_array_equal(decode_waveforms(X, n_bits=4, code="binary"), signals)


def test_deterministic_by_seed():
    a = make_waveforms(20, seed=5, return_signals=True)
    b = make_waveforms(20, seed=5, return_signals=True)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], make_waveforms(20, seed=6, return_signals=True)[1])
    # the bit code changes the units, not the waveforms
    np.testing.assert_array_equal(make_waveforms(20, seed=5, code="binary", return_signals=True)[1], a[1])


def test_every_kind_present_and_kinds_selectable():
    _, _, kind = make_waveforms(90, return_signals=True)
    counts = {k: int((kind == k).sum()) for k in WAVEFORM_KINDS}
    assert set(kind) == set(WAVEFORM_KINDS) and min(counts.values()) >= 15, counts
    _, _, kind = make_waveforms(10, kinds=("sine",), return_signals=True)
    assert set(kind) == {"sine"}
    _, _, kind = make_waveforms(30, kinds="square", return_signals=True)
    assert set(kind) == {"square"}


def _drops(row, amplitude_floor):
    """Sample indices where a sawtooth falls back (a drop larger than amplitude_floor)."""
    return np.flatnonzero(np.diff(row) < -amplitude_floor)


def test_variation_stays_within_the_ranges():
    full = 255
    n = 300
    _, signals, kind = make_waveforms(n, seed=3, return_signals=True)
    # defaults: amplitude 0.3..0.4, centre 0.45..0.55 of full scale -> levels inside [13, 242]
    assert signals.min() >= np.floor(0.05 * full) and signals.max() <= np.ceil(0.95 * full)

    square = signals[kind == "square"]
    half_span = (square.max(axis=1) - square.min(axis=1)) / 2
    middle = (square.max(axis=1) + square.min(axis=1)) / 2
    assert (half_span >= 0.3 * full - 1).all() and (half_span <= 0.4 * full + 1).all()
    assert (middle >= 0.45 * full - 1).all() and (middle <= 0.55 * full + 1).all()
    assert half_span.std() > 5 and middle.std() > 3                   # they do vary

    periods = []
    for row in signals[kind == "sawtooth"]:
        drops = _drops(row, 0.3 * full)
        periods.extend(np.diff(drops))
    periods = np.array(periods)
    assert periods.size > 50 and periods.min() >= 15 - 1 and periods.max() <= 25 + 1
    assert len(np.unique(periods)) > 5                                 # the period varies

    sine = signals[kind == "sine"]
    assert len({tuple(np.round(r[:3])) for r in sine}) == len(sine)    # phases differ

    # ranges are parameters
    _, flat, _ = make_waveforms(5, amplitude=(0, 0), centre=(0.5, 0.5), return_signals=True)
    np.testing.assert_array_equal(flat, np.full((5, 60), 128.0))
    _, s, _ = make_waveforms(50, kinds=("sawtooth",), period=(10, 10), return_signals=True)
    for row in s:
        assert set(np.diff(_drops(row, 0.3 * full))) <= {10}


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_samples=0), "n_samples must be an integer >= 1, got 0"),
    (dict(n_samples=-3), "n_samples must be an integer >= 1, got -3"),
    (dict(n_samples=2.5), "n_samples must be an integer >= 1, got 2.5"),
    (dict(n_samples=True), "n_samples must be an integer"),
    (dict(n_samples=2, kinds=("sine", "triangle")), "kinds: unknown waveform 'triangle' (known: sawtooth, sine, square)"),
    (dict(n_samples=2, kinds=()), "kinds must name at least one waveform"),
    (dict(n_samples=2, kinds=("sine", "sine")), "kinds must not repeat"),
    (dict(n_samples=2, code="thermometer"), "code must be one of 'gray', 'binary'"),
    (dict(n_samples=2, n_bits=0), "n_bits must be an integer between 1 and 16, got 0"),
    (dict(n_samples=2, n_bits=17), "n_bits must be an integer between 1 and 16, got 17"),
    (dict(n_samples=2, n_points=0), "n_points must be an integer >= 1"),
    (dict(n_samples=2, amplitude=(0.4, 0.3)), "amplitude must be a (min, max) pair with min <= max"),
    (dict(n_samples=2, amplitude=0.3), "amplitude must be a (min, max) pair of numbers"),
    (dict(n_samples=2, period=(0, 10)), "period must be a (min, max) pair with min <= max inside (0.0, inf)"),
    (dict(n_samples=2, centre=(0.5, 1.2)), "centre must be a (min, max) pair with min <= max inside [0.0, 1.0]"),
    (dict(n_samples=2, centre=(float("nan"), 0.5)), "centre must be a (min, max) pair"),
])
def test_generator_errors_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_waveforms(**kwargs)


def test_encode_decode_errors():
    with pytest.raises(ValueError, match=r"signals must lie in \[0, 255\] \(n_bits=8\), got values from -1 to 3"):
        encode_waveforms([[-1.0, 3.0]])
    with pytest.raises(ValueError, match=r"signals must lie in \[0, 15\]"):
        encode_waveforms([[16.0]], n_bits=4)
    with pytest.raises(ValueError, match="signals contain NaN"):
        encode_waveforms([[np.nan]])
    with pytest.raises(ValueError, match="signals must be 1-D .* got shape"):
        encode_waveforms(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="multiple of n_bits=8 columns"):
        decode_waveforms(np.zeros((2, 12)))
    with pytest.raises(ValueError, match=r"bits must be 0/1 states or probabilities in \[0, 1\]"):
        decode_waveforms(np.full((1, 8), 1.5))
    with pytest.raises(ValueError, match="method must be 'mean' or 'threshold'"):
        decode_waveforms(np.zeros((1, 8)), method="round")


# ---- lost stretches ---------------------------------------------------------------------------
def test_corrupt_waveforms_loses_one_inner_stretch():
    X = make_waveforms(200, seed=1)
    corrupted, known = corrupt_waveforms(X, 12, seed=4)
    assert corrupted.shape == X.shape and known.shape == X.shape and known.dtype == np.bool_
    points = known.reshape(200, 60, 8)
    assert (points == points[:, :, :1]).all()                          # whole samples, all 8 bits
    lost = ~points[:, :, 0]
    assert (lost.sum(axis=1) == 12).all()
    assert (np.diff(lost.astype(int), axis=1) != 0).sum(axis=1).max() == 2   # one contiguous stretch
    assert not lost[:, 0].any() and not lost[:, -1].any()               # a known sample on each side
    starts = lost.argmax(axis=1)
    assert starts.min() == 1 and starts.max() == 60 - 12 - 1           # every inner start is drawn
    np.testing.assert_array_equal(corrupted[known], X[known])
    assert not corrupted[~known].any()
    again, _ = corrupt_waveforms(X, 12, seed=4)
    np.testing.assert_array_equal(again, corrupted)
    _, longest = corrupt_waveforms(X[:3], 58)
    assert (~longest[:, ::8]).sum(axis=1).tolist() == [58] * 3


@pytest.mark.parametrize("lost", [0, -2, 59, 100, 2.5])
def test_corrupt_waveforms_refuses_bad_lengths(lost):
    with pytest.raises(ValueError, match=rf"lost must be an integer between 1 and 58, got {re.escape(repr(lost))}"):
        corrupt_waveforms(make_waveforms(2), lost)


# ---- fastgen demo waveforms -------------------------------------------------------------------
SMALL = ["--n-train", "600", "--n-iter", "8", "--n-test", "60", "--chains", "4", "--steps", "6"]


def table_row(text, name):
    match = re.search(rf"^{re.escape(name)}\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)$", text, re.MULTILINE)
    assert match, text
    return [float(v) for v in match.groups()]


@pytest.mark.parametrize("code", ["gray", "binary"])
def test_demo_waveforms_repairs_and_writes_the_png(tmp_path, capsys, code):
    out = tmp_path / "waves"
    assert main(["demo", "waveforms", "--out", str(out), "--code", code, *SMALL]) == 0
    stdout = capsys.readouterr().out
    assert re.search(r"all\s+sawtooth\s+sine\s+square", stdout), stdout
    corrupted, linear, repaired = (table_row(stdout, name) for name in
                                   ("corrupted input", "linear interpolation", "RBM repair"))
    assert all(r < c for r, c in zip(repaired, corrupted)), stdout     # overall and for every kind
    assert repaired[0] < 0.6 * corrupted[0]
    assert "x below the corrupted input's" in stdout
    png = out / "waveforms.png"
    assert f"wrote {png}" in stdout
    with Image.open(png) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        width, height = image.size
        pixels = np.asarray(image)
    assert width >= 400 and height >= 6 * 100                          # 2 panels per kind
    for colour in [(0, 0, 0), (214, 39, 40), (255, 160, 40), (31, 90, 200)]:  # all four lines drawn
        assert (pixels == colour).all(axis=-1).sum() > 50, colour


def test_demo_waveforms_is_deterministic(tmp_path, capsys):
    def run():
        assert main(["demo", "waveforms", "--out", str(tmp_path), "--seed", "7", *SMALL]) == 0
        return capsys.readouterr().out.split("RMS error", 1)[1]
    assert run() == run()


def assert_one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    assert err.startswith("fastgen: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize("lost", ["0", "-3", "59", "200"])
def test_demo_waveforms_bad_lost_length(tmp_path, capsys, lost):
    assert main(["demo", "waveforms", "--out", str(tmp_path), "--lost", lost]) == 2
    assert_one_line_error(capsys, "--lost must be between 1 and 58", f"got {lost}")


def test_demo_waveforms_usage_errors(tmp_path, capsys):
    for bad in (["--n-train", "0"], ["--n-test", "-1"], ["--n-iter", "0"], ["--chains", "0"], ["--seed", "-1"]):
        assert main(["demo", "waveforms", "--out", str(tmp_path), *bad]) == 2
        err = capsys.readouterr().err
        assert f"argument {bad[0]}: must be >= " in err, err
    assert main(["demo", "waveforms", "--code", "thermometer"]) == 2
    assert "invalid choice: 'thermometer'" in capsys.readouterr().err
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["demo", "waveforms", "--out", str(target), *SMALL]) == 2
    assert_one_line_error(capsys, str(target), "--out")
    assert main(["demo", "sounds"]) == 2
    assert "invalid choice: 'sounds'" in capsys.readouterr().err
    assert main(["demo", "waveforms", "--no-compare"]) == 2            # a digits option
    assert "unrecognized arguments: --no-compare" in capsys.readouterr().err


def test_demo_help_names_both_demos(capsys):
    assert main(["demo", "--help"]) == 0
    text = capsys.readouterr().out
    assert "digits" in text and "waveforms" in text
    assert main(["demo", "waveforms", "--help"]) == 0
    text = capsys.readouterr().out
    assert all(option in text for option in ("--lost", "--n-train", "--code", "--out", "--seed"))
    assert main(["demo", "digits", "--help"]) == 0
    assert "--no-compare" in capsys.readouterr().out


def test_bare_demo_is_still_the_digits_demo(monkeypatch):
    from fastgen import cli

    seen = []
    monkeypatch.setattr(cli.demo_digits, "run", lambda args: seen.append(args) or 0)
    assert main(["demo"]) == 0
    assert main(["demo", "--n-iter", "3", "--no-compare"]) == 0
    assert main(["demo", "digits", "--seed", "5"]) == 0
    assert [(a.demo, a.epochs, a.no_compare, a.seed) for a in seen] == [
        ("digits", 20, False, 0), ("digits", 3, True, 0), ("digits", 20, False, 5)]
