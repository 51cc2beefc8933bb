"""MNIST for the thesis protocol: an offline IDX reader, the 40k/10k split, binarisation, mini-batches.

The four official IDX files (LeCun et al.) ship gzipped in the repository under
``data/mnist/``; nothing here ever downloads anything. Pass ``root=`` to read
them from somewhere else (the gzipped ``*.gz`` names or the uncompressed ones).

Choices the thesis leaves open (Part II §2, see ``shared/reference/thesis-notes.md``):

- **Split.** The thesis trains on 40,000 images and tests on 10,000. Here the
  training set is the *first* 40,000 images of the official training set, the
  test set is the official 10,000-image test set, and the remaining 20,000
  training images (indices 40,000-59,999) form a validation set that is
  available but unused by default. The split is deterministic (no shuffling),
  so every run sees the same images.
- **Binarisation.** The thesis says MNIST is binarised but not how. The default,
  :func:`binarise`, is a deterministic threshold at half intensity: a pixel is 1
  when its intensity (byte / 255) is strictly above 0.5, i.e. byte >= 128, and 0
  otherwise. :func:`binarise_stochastic` draws Bernoulli(intensity) instead, for
  those who want a fresh sample each time.
- **Mini-batches.** :func:`minibatches` keeps the last, partial batch by default
  (every sample is seen exactly once per epoch); ``drop_last=True`` drops it. The
  thesis protocol (40,000 samples, batches of 100) divides exactly, so the choice
  does not matter there.

Format checks: the IDX header is big-endian: a magic number (2049 for labels,
2051 for images: unsigned bytes, 1 or 3 dimensions), the dimensions, then the
data. Every inconsistency (wrong magic, wrong image size, a file longer or
shorter than its header says, labels outside 0-9, label and image counts that
differ, a corrupt gzip stream) raises :class:`MnistFormatError`, a
``ValueError`` naming the file and what was wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.npyio import DataSource

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "data" / "mnist"
"""The repository's copy of the official files."""

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
N_OFFICIAL = {"train": 60_000, "test": 10_000}
N_THESIS_TRAIN = 40_000
IMAGE_SIDE = 28
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE
N_CLASSES = 10

_MAGIC_LABELS = 2049    # 0x00000801: unsigned byte, 1 dimension
_MAGIC_IMAGES = 2051    # 0x00000803: unsigned byte, 3 dimensions


class MnistFormatError(ValueError):
    """An IDX file is inconsistent: the message names the file and what was wrong."""


# ---------------------------------------------------------------------------------------- IDX reader
def _read_bytes(path: Path) -> bytes:
    """The (decompressed) content of a local file; ``.gz`` files are gunzipped."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (MNIST is read offline only: copy the IDX files there "
                                f"or pass root=)")
    # numpy's DataSource opens .gz/.bz2/.xz transparently; the path is an existing local
    # file, so nothing is ever fetched.
    try:
        with DataSource(str(path.parent)).open(str(path), "rb") as fh:
            return fh.read()
    except (OSError, EOFError) as exc:
        raise MnistFormatError(f"{path}: cannot decompress ({exc})") from exc


def read_idx(path, magic: int, shape_tail: tuple[int, ...] = ()) -> np.ndarray:
    """Read one IDX file of unsigned bytes and check it against what it should hold.

    Parameters
    ----------
    path : str or Path
    magic : int
        The expected magic number (2049 labels, 2051 images).
    shape_tail : tuple of int
        The expected dimensions after the first (``(28, 28)`` for images).

    Returns a read-only uint8 array of shape ``(n, *shape_tail)``.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise MnistFormatError(f"{path}: file is {len(raw)} bytes long, too short for an IDX header")
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise MnistFormatError(f"{path}: magic number {got} (0x{got:08x}); expected {magic} (0x{magic:08x})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MnistFormatError(f"{path}: file is {len(raw)} bytes long, shorter than its {header}-byte header")
    dims = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    if dims[1:] != tuple(shape_tail):
        raise MnistFormatError(f"{path}: dimensions {dims}; expected (n, {', '.join(map(str, shape_tail))})"
                               if shape_tail else f"{path}: dimensions {dims}; expected (n,)")
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        raise MnistFormatError(f"{path}: file length {len(raw)} bytes does not match its header "
                               f"(dimensions {dims} need {expected} bytes)")
    out = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    return out   # frombuffer over bytes: already read-only


def _locate(root: Path, name: str) -> Path:
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{root / (name + '.gz')} not found (nor uncompressed {name}); MNIST is read "
                            f"offline only: copy the official IDX files there or pass root=")


def _root(root) -> Path:
    return DEFAULT_ROOT if root is None else Path(root).expanduser()


def load_mnist(split: str, root=None) -> tuple[np.ndarray, np.ndarray]:
    """The official ``"train"`` (60,000) or ``"test"`` (10,000) set.

    Returns ``(images, labels)``: images float64 ``(n, 784)`` in [0, 1] (byte / 255,
    row-major 28 x 28), labels int64 ``(n,)`` in 0..9. ``root`` defaults to the
    repository's ``data/mnist``.
    """
    if split not in FILES:
        raise ValueError(f"split = {split!r}; allowed: 'train', 'test'")
    root = _root(root)
    img_name, lab_name = FILES[split]
    img_path, lab_path = _locate(root, img_name), _locate(root, lab_name)
    images = read_idx(img_path, _MAGIC_IMAGES, (IMAGE_SIDE, IMAGE_SIDE))
    labels = read_idx(lab_path, _MAGIC_LABELS)
    if len(images) != len(labels):
        raise MnistFormatError(f"{img_path} holds {len(images)} images but {lab_path} holds {len(labels)} labels")
    if labels.size and labels.max() >= N_CLASSES:
        raise MnistFormatError(f"{lab_path}: label {int(labels.max())} outside the allowed range 0..9")
    x = images.reshape(len(images), N_PIXELS).astype(np.float64)
    x /= 255.0
    return x, labels.astype(np.int64)


# ---------------------------------------------------------------------------------------- thesis split
@dataclass
class ThesisSplit:
    """The thesis protocol: 40,000 training, 10,000 test and 20,000 (unused) validation images.

    Images are float64 (n, 784) in [0, 1], labels int64 (n,). The training and
    validation arrays are views into one copy of the official training set.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    @property
    def sizes(self) -> dict:
        return {"train": len(self.train_labels), "validation": len(self.validation_labels),
                "test": len(self.test_labels)}


def thesis_split(root=None, n_train: int = N_THESIS_TRAIN) -> ThesisSplit:
    """Training = the first ``n_train`` (40,000) official training images, validation = the rest
    (20,000), test = the official 10,000 test images. Deterministic: no shuffling."""
    x, y = load_mnist("train", root)
    if not (isinstance(n_train, (int, np.integer)) and 0 < n_train <= len(y)):
        raise ValueError(f"n_train = {n_train!r} is outside the allowed range 1..{len(y)}")
    xt, yt = load_mnist("test", root)
    return ThesisSplit(train_images=x[:n_train], train_labels=y[:n_train],
                       validation_images=x[n_train:], validation_labels=y[n_train:],
                       test_images=xt, test_labels=yt)


# ---------------------------------------------------------------------------------------- transforms
def _check_intensities(images) -> np.ndarray:
    x = np.asarray(images, dtype=np.float64)
    if x.size and (not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1):
        raise ValueError("images must be intensities in the allowed range [0, 1]")
    return x


def downsample(images, side: int) -> np.ndarray:
    """Average-pool flattened 28x28 images to ``side`` x ``side`` (``side`` must divide 28).

    For chips too small for the full image: the circuit-effect studies solve the
    wires at every write, which costs far more per line than an ideal tile.
    Returns float64 ``(n, side * side)`` intensities, still in [0, 1].
    """
    x = _check_intensities(images)
    if x.ndim != 2 or x.shape[1] != 28 * 28:
        raise ValueError(f"images must be (n, 784) flattened 28x28 images; got shape {x.shape}")
    if not (isinstance(side, (int, np.integer)) and 1 <= side <= 28 and 28 % side == 0):
        raise ValueError(f"side = {side!r} is outside the allowed values (divisors of 28: 1, 2, 4, 7, 14, 28)")
    f = 28 // side
    return x.reshape(len(x), side, f, side, f).mean(axis=(2, 4)).reshape(len(x), side * side)


def binarise(images, threshold: float = 0.5) -> np.ndarray:
    """Deterministic binarisation: 1.0 where intensity > ``threshold``, else 0.0 (float64, same shape)."""
    if not (np.isfinite(threshold) and 0 <= threshold <= 1):
        raise ValueError(f"threshold = {threshold!r} is outside the allowed range [0, 1]")
    return (_check_intensities(images) > threshold).astype(np.float64)


def binarise_stochastic(images, rng: np.random.Generator) -> np.ndarray:
    """Stochastic binarisation: each pixel is Bernoulli(intensity), drawn from ``rng`` (float64 {0, 1})."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    x = _check_intensities(images)
    return (rng.random(x.shape) < x).astype(np.float64)


def one_hot(labels, n: int = N_CLASSES) -> np.ndarray:
    """float64 ``(len(labels), n)`` with a single 1 per row at the label's index."""
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise ValueError(f"labels must be 1-D; got shape {lab.shape}")
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"n = {n!r} is outside the allowed range n >= 1")
    if lab.size and (not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0 or lab.max() >= n):
        raise ValueError(f"labels must be integers in the allowed range 0..{n - 1}")
    out = np.zeros((lab.size, n))
    out[np.arange(lab.size), lab] = 1.0
    return out


def minibatches(n: int, batch_size: int, rng: np.random.Generator, *, drop_last: bool = False) -> list[np.ndarray]:
    """Index arrays of one epoch: a fresh random permutation of ``range(n)`` cut into batches.

    The last batch is shorter when ``batch_size`` does not divide ``n``; it is kept
    (every index appears exactly once) unless ``drop_last``. The permutation is
    drawn from ``rng`` when this is called, so a seeded Generator gives the same
    batches every time.
    """
    if not (isinstance(n, (int, np.integer)) and n >= 0):
        raise ValueError(f"n = {n!r} is outside the allowed range n >= 0")
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise ValueError(f"batch_size = {batch_size!r} is outside the allowed range batch_size >= 1")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator; got {type(rng).__name__}")
    perm = rng.permutation(int(n))
    stop = n - n % batch_size if drop_last else n
    return [perm[s:s + batch_size] for s in range(0, stop, batch_size)]
