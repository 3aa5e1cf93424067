"""fastgen.datasets (digits, .npy/.npz/IDX loading, shared MNIST) and fastgen._png (image grids)."""
import gzip
import io
import struct

import numpy as np
import pytest

from fastgen import datasets
from fastgen._png import save_image_grid, tile_images
from fastgen.datasets import load_array, load_digits_binary, load_mnist_shared, read_idx, read_labels, read_raw_array

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
             np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def idx_bytes(array) -> bytes:
    """An IDX file written by hand: 00 00 <type> <ndim>, big-endian uint32 dims, big-endian data."""
    array = np.asarray(array)
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def images(n=5, h=4, w=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w), dtype=np.uint8)


# ---- digits -----------------------------------------------------------------------------------
def test_digits_shape_and_range():
    X = load_digits_binary()
    assert X.shape == (1797, 64) and X.dtype == np.float64 and X.flags.c_contiguous
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.all(np.isin(X * 16, np.arange(17)))  # the 17 grey levels, scaled
    X2, y = load_digits_binary(return_y=True)
    np.testing.assert_array_equal(X, X2)
    assert y.shape == (1797,) and set(np.unique(y)) == set(range(10))
    assert load_digits_binary(dtype=np.float32).dtype == np.float32


# ---- IDX --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip_every_type(tmp_path, dtype):
    rng = np.random.default_rng(1)
    array = (rng.random((3, 2, 5)) * 100).astype(dtype)
    path = tmp_path / "x-idx3"
    path.write_bytes(idx_bytes(array))
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


def test_idx_mnist_layout_header(tmp_path):
    # The published MNIST header of train-images-idx3-ubyte: magic 0x00000803, 60000, 28, 28.
    raw = idx_bytes(images(2, 28, 28))
    assert raw[:4] == b"\x00\x00\x08\x03" and struct.unpack(">3I", raw[4:16]) == (2, 28, 28)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(raw)
    X = load_array(path)
    assert X.shape == (2, 784) and X.dtype == np.float64
    np.testing.assert_allclose(X, images(2, 28, 28).reshape(2, -1) / 255.0)


def test_idx_gzip(tmp_path):
    array = images()
    plain, packed = tmp_path / "a-idx3-ubyte", tmp_path / "a-idx3-ubyte.gz"
    plain.write_bytes(idx_bytes(array))
    packed.write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(packed), array)
    np.testing.assert_array_equal(load_array(packed), load_array(plain))


def test_idx_labels_file_is_refused_as_training_data(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(idx_bytes(np.arange(10, dtype=np.uint8)))
    assert read_idx(path).shape == (10,)
    with pytest.raises(ValueError, match="labels-idx1-ubyte.*2-D"):
        load_array(path)


@pytest.mark.parametrize("raw, message", [
    (b"\x00\x00\x08", "bad magic"),                                   # shorter than a magic number
    (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "unknown IDX data type code 0x07"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03" + struct.pack(">2I", 1, 2), "truncated IDX header"),
    (b"\x00\x00\x08\x02" + struct.pack(">2I", 2, 3) + bytes(5), "holds 5 bytes"),   # one short
    (b"\x00\x00\x08\x02" + struct.pack(">2I", 2, 3) + bytes(7), "holds 7 bytes"),   # one extra
    (b"\x00\x00\x0c\x02" + struct.pack(">2I", 1, 2) + bytes(6), "holds 6 bytes"),   # int32: 8 needed
])
def test_idx_bad_headers(tmp_path, raw, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=message) as info:
        load_array(path)
    assert str(path) in str(info.value)


# ---- .npy / .npz ----------------------------------------------------------------------------------
def test_npy_uint8_scaled_and_flattened(tmp_path):
    array = images()
    path = tmp_path / "x.npy"
    np.save(path, array)
    X = load_array(path)
    assert X.shape == (5, 12) and X.dtype == np.float64 and X.flags.c_contiguous
    np.testing.assert_allclose(X, array.reshape(5, -1) / 255.0)
    assert load_array(path, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("dtype, maximum", [(np.uint16, 65535), (np.int16, 32767), (np.int32, 2**31 - 1)])
def test_integer_scaling_by_dtype_max(tmp_path, dtype, maximum):
    array = np.array([[0, 1], [maximum // 2, maximum]], dtype=dtype)
    path = tmp_path / "x.npy"
    np.save(path, array)
    np.testing.assert_allclose(load_array(path), array / maximum)


def test_bool_and_float_kept(tmp_path):
    np.save(tmp_path / "b.npy", np.array([[True, False], [False, True]]))
    np.testing.assert_array_equal(load_array(tmp_path / "b.npy"), [[1, 0], [0, 1]])
    floats = np.array([[0.25, 0.5], [0.75, 1.0]], dtype=np.float32)
    np.save(tmp_path / "f.npy", floats)
    np.testing.assert_array_equal(load_array(tmp_path / "f.npy"), floats)


def test_binarize_threshold(tmp_path):
    array = np.array([[0, 127, 128, 255]], dtype=np.uint8)
    np.save(tmp_path / "x.npy", array)
    X = load_array(tmp_path / "x.npy", binarize=0.5)
    np.testing.assert_array_equal(X, [[0, 0, 1, 1]])                 # MNIST's pixel > 127
    np.testing.assert_array_equal(load_array(tmp_path / "x.npy", binarize=0.0), [[0, 1, 1, 1]])
    assert X.dtype == np.float64
    with pytest.raises(ValueError, match="binarize"):
        load_array(tmp_path / "x.npy", binarize=float("nan"))


def test_npz_key_handling(tmp_path):
    a, b = images(3), images(4, seed=1)
    np.savez(tmp_path / "with_data.npz", other=b, data=a)
    assert load_array(tmp_path / "with_data.npz").shape == (3, 12)            # 'data' wins
    assert load_array(tmp_path / "with_data.npz", key="other").shape == (4, 12)
    np.savez(tmp_path / "first.npz", b, a)                                      # arr_0, arr_1
    np.testing.assert_allclose(load_array(tmp_path / "first.npz"), b.reshape(4, -1) / 255.0)
    np.savez_compressed(tmp_path / "only.npz", images=a)
    assert load_array(tmp_path / "only.npz").shape == (3, 12)
    with pytest.raises(ValueError, match=r"only\.npz.*no array 'nope'.*images"):
        load_array(tmp_path / "only.npz", key="nope")


def test_format_is_sniffed_not_taken_from_the_name(tmp_path):
    array = images()
    np.save(tmp_path / "x.npy", array)
    renamed = tmp_path / "data.bin"
    renamed.write_bytes((tmp_path / "x.npy").read_bytes())
    np.testing.assert_array_equal(load_array(renamed), load_array(tmp_path / "x.npy"))
    gz = tmp_path / "x.npy.gz"
    gz.write_bytes(gzip.compress((tmp_path / "x.npy").read_bytes()))
    np.testing.assert_array_equal(load_array(gz), load_array(tmp_path / "x.npy"))


# ---- errors name the file ------------------------------------------------------------------------
def _bad(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("name, content, message", [
    ("empty.npy", b"", "empty file"),
    ("empty.npz", b"", "empty file"),
    ("empty-idx3-ubyte", b"", "empty file"),
    ("garbage.npy", b"this is not an array\n", "unrecognised format"),
    ("garbage.npz", b"PK\x03\x04 truncated zip", "cannot read as a .npz"),
    ("truncated.npy", b"\x93NUMPY\x01\x00", "cannot read as a .npy"),
    ("garbage.gz", b"\x1f\x8b\x08\x00 not really gzip", "corrupt gzip"),
    ("empty.gz", gzip.compress(b""), "empty file"),
])
def test_unreadable_files(tmp_path, name, content, message):
    path = _bad(tmp_path, name, content)
    with pytest.raises(ValueError, match=message) as info:
        load_array(path)
    assert str(path) in str(info.value)


def test_unusable_arrays(tmp_path):
    cases = {
        "objects.npy": np.array([[1, "a"]], dtype=object),
        "strings.npy": np.array([["a", "b"]]),
        "vector.npy": np.arange(5, dtype=np.uint8),
        "scalar.npy": np.array(3.0),
        "no_rows.npy": np.zeros((0, 4)),
        "no_cols.npy": np.zeros((4, 0)),
        "nan.npy": np.array([[0.0, np.nan]]),
        "inf.npy": np.array([[0.0, np.inf]]),
    }
    for name, array in cases.items():
        np.save(tmp_path / name, array, allow_pickle=True)
        with pytest.raises(ValueError, match=name.replace(".", r"\.")):
            load_array(tmp_path / name)
    np.savez(tmp_path / "nothing.npz")
    with pytest.raises(ValueError, match=r"nothing\.npz.*no arrays"):
        load_array(tmp_path / "nothing.npz")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.npy: no such file"):
        load_array(tmp_path / "missing.npy")
    with pytest.raises(ValueError, match="is a directory"):
        load_array(tmp_path)
    with pytest.raises(ValueError, match="dtype"):
        load_array(tmp_path / "missing.npy", dtype=np.int32)


# ---- shared MNIST -------------------------------------------------------------------------------
def test_load_mnist_shared_on_a_small_copy(tmp_path):
    data = images(6, 28, 28, seed=3)
    np.savez(tmp_path / "mnist.npz", data=data)
    X = load_mnist_shared(tmp_path / "mnist.npz")
    assert X.shape == (6, 784) and X.dtype == np.float32
    np.testing.assert_array_equal(X, (data.reshape(-1, 784) > 127).astype(np.float32))
    np.testing.assert_allclose(load_mnist_shared(tmp_path / "mnist.npz", binary=False), data.reshape(-1, 784) / 255.0,
                               rtol=1e-6)
    np.savez(tmp_path / "wrong.npz", data=images(2, 4, 4))
    with pytest.raises(ValueError, match="28, 28"):
        load_mnist_shared(tmp_path / "wrong.npz")
    with pytest.raises(ValueError, match="no such file"):
        load_mnist_shared(tmp_path / "absent.npz")


def test_load_mnist_shared_default(shared_data_dir):
    if datasets.SHARED_MNIST != shared_data_dir / "mnist_test_10k.npz":
        pytest.skip("fastgen is not imported from the checkout beside ../shared/data")
    X = load_mnist_shared()
    assert X.shape == (10000, 784) and X.dtype == np.float32
    assert set(np.unique(X)) == {0.0, 1.0}
    assert 0.1 < X.mean() < 0.15                   # about 13% of binarised MNIST pixels are on
    np.testing.assert_array_equal(load_array(shared_data_dir / "mnist_test_10k.npz", binarize=0.5, dtype=np.float32), X)


# ---- image grids --------------------------------------------------------------------------------
def test_tile_layout_padding_and_values():
    imgs = np.stack([np.full((2, 3), v) for v in (0.0, 0.25, 0.5, 1.0, 0.75)])
    grid = tile_images(imgs.reshape(5, -1), (2, 3), ncols=2, padding=1)
    assert grid.shape == (3 * 3 + 1, 2 * 4 + 1)                     # 3 rows x 2 cols of 2x3 images
    assert grid[1, 1] == 0.0 and grid[1, 5] == 0.25 and grid[4, 1] == 0.5 and grid[7, 1] == 0.75
    assert grid[0, 0] == 0.5 and grid[7, 5] == 0.5                   # padding and the empty cell
    assert tile_images(imgs, (2, 3), padding=0).shape == (4, 9)      # default: ceil(sqrt(5)) = 3 columns, 2 rows


def test_normalize_per_image():
    imgs = np.array([[-2.0, 0.0, 2.0, 0.0], [5.0, 5.0, 5.0, 5.0], [0.1, 0.2, 0.3, 0.4]])
    grid = tile_images(imgs, (2, 2), ncols=3, padding=0, normalize=True)
    np.testing.assert_allclose(grid[:, 0:2].ravel(), [0, 0.5, 1, 0.5])
    np.testing.assert_allclose(grid[:, 2:4], 0.5)                     # a constant filter is mid-grey
    np.testing.assert_allclose(grid[:, 4:6].ravel(), [0, 1 / 3, 2 / 3, 1])


def test_save_image_grid_png(tmp_path):
    from PIL import Image

    imgs = np.random.default_rng(0).random((12, 64))
    path = save_image_grid(imgs, tmp_path / "sub" / "grid.png", (8, 8), ncols=4, scale=3)
    assert path == tmp_path / "sub" / "grid.png"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "L"
        assert image.size == ((4 * 9 + 1) * 3, (3 * 9 + 1) * 3)
        pixels = np.asarray(image)
    np.testing.assert_array_equal(pixels[3:3 + 24:3, 3:3 + 24:3], np.rint(imgs[0].reshape(8, 8) * 255))
    assert datasets.save_image_grid is save_image_grid


@pytest.mark.parametrize("kwargs, message", [
    (dict(images=np.zeros((2, 10)), image_shape=(3, 3)), "cannot be cut"),
    (dict(images=np.zeros((0, 9)), image_shape=(3, 3)), "cannot be cut"),
    (dict(images=np.full((1, 9), np.nan), image_shape=(3, 3)), "NaN"),
    (dict(images=np.zeros((1, 9)), image_shape=(3, 3), ncols=0), "ncols"),
    (dict(images=np.zeros((1, 9)), image_shape=(9,)), "height, width"),
])
def test_tile_images_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tile_images(**kwargs)


# ---- the readers check what headers declare before allocating ------------------------------------
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", ["<f8", ">f4", ">i2", "u1", "?"])
def test_npy_and_npz_layouts_round_trip(tmp_path, order, dtype):
    """The size-checking readers give what np.load gives: any byte order, C or Fortran order."""
    array = np.asarray(np.random.default_rng(0).random((7, 3, 2)) * 100, dtype=dtype, order=order)
    np.save(tmp_path / "a.npy", array)
    np.savez_compressed(tmp_path / "a.npz", data=array)
    expected = np.load(tmp_path / "a.npy")
    for name in ("a.npy", "a.npz"):
        got, _ = read_raw_array(tmp_path / name)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_npy_shorter_than_its_header_declares_is_refused(tmp_path):
    raw = io.BytesIO()
    np.save(raw, np.zeros((10, 10)))
    path = tmp_path / "short.npy"
    path.write_bytes(raw.getvalue()[:-8])
    with pytest.raises(ValueError, match=r"short\.npy: \.npy header declares shape \(10, 10\) of float64 "
                                         r"\(800 bytes\) but the file holds 792 bytes"):
        load_array(path)


def test_gzip_of_something_else_stops_at_the_first_chunk(tmp_path):
    """A gzip file whose content is not an array is refused from its first bytes, not after
    decompressing all of it."""
    path = tmp_path / "zeros.gz"
    path.write_bytes(gzip.compress(bytes(16 << 20), 9))
    calls = []
    real = gzip.GzipFile.read

    def counting_read(self, size=-1):
        calls.append(size)
        return real(self, size)

    gzip.GzipFile.read = counting_read
    try:
        with pytest.raises(ValueError, match="zeros.gz: unknown IDX data type code 0x00"):
            load_array(path)
    finally:
        gzip.GzipFile.read = real
    assert len(calls) <= 2 and all(0 < size <= 1 << 20 for size in calls), calls


def test_labels_are_read_without_pickles(tmp_path):
    np.savez(tmp_path / "x.npz", data=np.zeros((3, 4)), labels=np.array([1, 2, 3]))
    np.testing.assert_array_equal(read_labels(tmp_path / "x.npz"), [1, 2, 3])
    np.save(tmp_path / "x.npy", np.zeros((3, 4)))
    assert read_labels(tmp_path / "x.npy") is None
    np.savez(tmp_path / "objects.npz", data=np.zeros((3, 4)), labels=np.array([object()] * 3))
    with pytest.raises(ValueError, match="Python objects"):
        read_labels(tmp_path / "objects.npz")
