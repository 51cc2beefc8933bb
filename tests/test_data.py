"""MNIST reader, thesis split, binarisation, one-hot and mini-batches (learning/data.py)."""
import gzip
import shutil

import numpy as np
import pytest

from learning import data
from learning.data import (MnistFormatError, binarise, binarise_stochastic, downsample, load_mnist, minibatches,
                           one_hot, read_idx, thesis_split)


@pytest.fixture(scope="module")
def train():
    return load_mnist("train")


@pytest.fixture(scope="module")
def test_set():
    return load_mnist("test")


def test_files_are_in_the_repository():
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert (data.DEFAULT_ROOT / name).is_file(), name


def test_official_sets(train, test_set):
    for (x, y), n in ((train, 60_000), (test_set, 10_000)):
        assert x.shape == (n, 784) and x.dtype == np.float64
        assert y.shape == (n,) and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        assert set(np.unique(y)) == set(range(10))
    # well-known facts about the official files
    assert train[1][:5].tolist() == [5, 0, 4, 1, 9]
    assert test_set[1][:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(train[1]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(test_set[1]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # intensities are bytes / 255
    assert np.allclose(np.round(train[0][0] * 255), train[0][0] * 255)


def test_bad_split_name():
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation")


def test_thesis_split(train, test_set):
    s = thesis_split()
    assert s.sizes == {"train": 40_000, "validation": 20_000, "test": 10_000}
    assert np.array_equal(s.train_images, train[0][:40_000])
    assert np.array_equal(s.validation_labels, train[1][40_000:])
    assert np.array_equal(s.test_labels, test_set[1])
    assert s.train_images.shape == (40_000, 784) and s.train_labels.dtype == np.int64
    with pytest.raises(ValueError, match="n_train"):
        thesis_split(n_train=0)


# ------------------------------------------------------------------------ corrupt files
def _write_idx(path, magic, dims, payload, compress=True):
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + bytes(payload)
    if compress:
        with gzip.open(path, "wb") as fh:
            fh.write(raw)
    else:
        path.write_bytes(raw)
    return path


def test_reader_accepts_a_good_file(tmp_path):
    p = _write_idx(tmp_path / "ok.gz", 2051, (2, 28, 28), [7] * (2 * 784))
    out = read_idx(p, 2051, (28, 28))
    assert out.shape == (2, 28, 28) and out.dtype == np.uint8 and np.all(out == 7)
    p = _write_idx(tmp_path / "plain", 2049, (3,), [1, 2, 3], compress=False)
    assert read_idx(p, 2049).tolist() == [1, 2, 3]


@pytest.mark.parametrize("magic, dims, payload, message", [
    (2049, (2, 28, 28), [0] * (2 * 784), "magic number 2049"),       # labels magic on an image file
    (2051, (2, 28, 27), [0] * (2 * 28 * 27), "dimensions"),          # wrong image size
    (2051, (2, 28, 28), [0] * (2 * 784 - 1), "file length"),         # truncated
    (2051, (2, 28, 28), [0] * (2 * 784 + 5), "file length"),         # trailing bytes
])
def test_header_corruption(tmp_path, magic, dims, payload, message):
    p = _write_idx(tmp_path / "broken-idx3-ubyte.gz", magic, dims, payload)
    with pytest.raises(MnistFormatError, match=message) as err:
        read_idx(p, 2051, (28, 28))
    assert "broken-idx3-ubyte.gz" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_too_short_and_not_gzip(tmp_path):
    p = tmp_path / "short.gz"
    with gzip.open(p, "wb") as fh:
        fh.write(b"\x00\x00")
    with pytest.raises(MnistFormatError, match="short.gz.*too short"):
        read_idx(p, 2049)
    q = tmp_path / "header.gz"
    with gzip.open(q, "wb") as fh:
        fh.write((2051).to_bytes(4, "big") + b"\x00\x00\x00\x02")
    with pytest.raises(MnistFormatError, match="header.gz.*header"):
        read_idx(q, 2051, (28, 28))
    r = tmp_path / "notgzip.gz"
    r.write_bytes(b"this is not a gzip stream")
    with pytest.raises(MnistFormatError, match="notgzip.gz.*decompress"):
        read_idx(r, 2049)


def test_root_with_mismatched_counts_and_bad_labels(tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    shutil.copy(data.DEFAULT_ROOT / "t10k-images-idx3-ubyte.gz", root)
    _write_idx(root / "t10k-labels-idx1-ubyte.gz", 2049, (3,), [1, 2, 3])
    with pytest.raises(MnistFormatError, match="10000 images.*3 labels"):
        load_mnist("test", root=root)
    _write_idx(root / "t10k-labels-idx1-ubyte.gz", 2049, (10_000,), [11] * 10_000)
    with pytest.raises(MnistFormatError, match="label 11"):
        load_mnist("test", root=str(root))


def test_missing_files_never_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="offline"):
        load_mnist("train", root=tmp_path)


# ------------------------------------------------------------------------ transforms
def test_binarise(test_set):
    x = test_set[0][:100]
    b = binarise(x)
    assert b.dtype == np.float64 and b.shape == x.shape
    assert set(np.unique(b)) == {0.0, 1.0}
    assert np.array_equal(b, (np.round(x * 255) >= 128).astype(float))   # half intensity: byte >= 128
    assert binarise(np.array([0.0, 0.5, 0.51, 1.0])).tolist() == [0, 0, 1, 1]
    assert binarise(np.array([0.2, 0.3]), threshold=0.25).tolist() == [0, 1]
    with pytest.raises(ValueError, match="threshold"):
        binarise(x, threshold=1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binarise(np.array([2.0]))


def test_binarise_stochastic():
    x = np.tile(np.array([0.0, 0.25, 1.0]), (20_000, 1))
    b = binarise_stochastic(x, np.random.default_rng(0))
    assert set(np.unique(b)) <= {0.0, 1.0} and b.dtype == np.float64
    assert b[:, 0].sum() == 0 and b[:, 2].all()
    assert abs(b[:, 1].mean() - 0.25) < 0.02
    assert np.array_equal(b, binarise_stochastic(x, np.random.default_rng(0)))
    with pytest.raises(TypeError, match="Generator"):
        binarise_stochastic(x, 0)


def test_one_hot():
    out = one_hot(np.array([0, 3, 9]))
    assert out.shape == (3, 10) and out.dtype == np.float64
    assert out.sum(axis=1).tolist() == [1, 1, 1] and out[1, 3] == 1
    assert one_hot([1], n=2).tolist() == [[0, 1]]
    with pytest.raises(ValueError, match="0..9"):
        one_hot([10])
    with pytest.raises(ValueError, match="0..9"):
        one_hot([-1])


@pytest.mark.parametrize("n, bs", [(40_000, 100), (103, 10), (5, 7), (0, 3)])
def test_minibatches_cover_every_index_once(n, bs):
    batches = minibatches(n, bs, np.random.default_rng(1))
    assert len(batches) == -(-n // bs)
    assert all(len(b) == bs for b in batches[:-1])
    assert np.array_equal(np.sort(np.concatenate(batches)) if batches else np.array([]), np.arange(n))
    dropped = minibatches(n, bs, np.random.default_rng(1), drop_last=True)
    assert len(dropped) == n // bs and all(len(b) == bs for b in dropped)


def test_minibatches_are_random_and_seeded():
    a = minibatches(1000, 100, np.random.default_rng(42))
    b = minibatches(1000, 100, np.random.default_rng(42))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    rng = np.random.default_rng(42)
    e1, e2 = minibatches(1000, 100, rng), minibatches(1000, 100, rng)
    assert not np.array_equal(np.concatenate(e1), np.concatenate(e2))     # a new permutation per epoch
    assert not np.array_equal(np.concatenate(e1), np.arange(1000))
    with pytest.raises(ValueError, match="batch_size"):
        minibatches(10, 0, rng)
    with pytest.raises(TypeError, match="Generator"):
        minibatches(10, 2, 0)


def test_downsample_averages_blocks(test_set):
    x = test_set[0][:50]
    d = downsample(x, 14)
    assert d.shape == (50, 196)
    img = x.reshape(50, 28, 28)
    np.testing.assert_allclose(d.reshape(50, 14, 14)[:, 3, 5], img[:, 6:8, 10:12].mean(axis=(1, 2)))
    np.testing.assert_array_equal(downsample(x, 28), x)
    np.testing.assert_allclose(downsample(x, 1)[:, 0], x.mean(axis=1))
    with pytest.raises(ValueError, match="side"):
        downsample(x, 5)
    with pytest.raises(ValueError, match="784"):
        downsample(x[:, :100], 14)
