r"""Data sets for the training runs, none of them downloaded at run time.

Every loader returns a :class:`Dataset`: float32 inputs ``[N, *input_shape]``
and int64 labels for a train and a test part, the number of classes, and an
optional training-time augmentation ``augment(x, generator)``.

* :func:`load_digits` — scikit-learn's 8×8 handwritten digits (1797 images, ships
  with scikit-learn), ``[N, 1, 8, 8]`` in [0, 1], a stratified train/test split
  chosen by ``split_seed``.
* :func:`load_mnist1d` — the canonical MNIST-1D (Greydanus 2020, "Scaling down
  deep learning") built by the ``mnist1d`` package with its default arguments
  (procedurally, no download; cached), ``[N, 1, 40]``, the published 4000/1000
  split — the numbers are comparable with the literature (:data:`MNIST1D_BASELINES`).
* :func:`load_cifar10` — CIFAR-10 from the user's local copy of the python
  version (``cifar-10-python.tar.gz`` extracted), ``[N, 3, 32, 32]`` normalized
  per channel, read with a restricted unpickler (:func:`read_cifar_batch`) that
  admits only the globals the format needs, so a tampered file cannot run code;
  with :func:`augment_batch` (random crop with 4-pixel zero padding + random
  horizontal flip) as its augmentation.

:func:`batches` walks ``(x, y)`` in mini-batches in an order fixed by a
``torch.Generator``: the same generator state gives the same batches.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np
import torch

from lnegeom.checkpoint import save_npz_atomic

try:  # numpy >= 2 moved the multiarray module; both spellings occur in pickles
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct

__all__ = [
    "Dataset", "load_digits", "load_mnist1d", "MNIST1D_BASELINES", "load_cifar10", "read_cifar_batch",
    "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR10_TRAIN_FILES", "CIFAR10_TEST_FILE", "crop_flip", "augment_batch",
    "batches",
]

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set split into train and test parts.

    ``x_train``/``x_test`` are float32 ``[N, *input_shape]``, ``y_train``/``y_test``
    int64 ``[N]`` with values in ``range(classes)``.  ``augment``, when not
    ``None``, is the training-time augmentation ``augment(x_batch, generator)``
    (only :func:`load_cifar10` sets one).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int
    input_shape: tuple[int, ...]
    augment: Optional[Augment] = None


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")


def _stratified_split(y: np.ndarray, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test), both shuffled; each class sends round(test_fraction · count) to the test part."""
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(test_fraction * len(idx)))
        test.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


# --------------------------------------------------------------------------- scikit-learn digits
def load_digits(split_seed: int = 0, test_fraction: float = 0.25) -> Dataset:
    """scikit-learn's 8×8 digits as ``[N, 1, 8, 8]`` float32 in [0, 1] (pixel / 16), 10 classes.

    The 1797 images are split into train and test parts, stratified by class
    (each class sends ``round(test_fraction · count)`` images to the test part),
    in a random order fixed by ``split_seed`` — different seeds give different
    splits of the same images, for statistics over splits.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    _check_fraction(test_fraction)
    bunch = _sk_load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None]
    y = np.asarray(bunch.target, dtype=np.int64)
    train, test = _stratified_split(y, test_fraction, np.random.default_rng(split_seed))
    return Dataset(
        "digits", torch.from_numpy(x[train]), torch.from_numpy(y[train]), torch.from_numpy(x[test]),
        torch.from_numpy(y[test]), 10, (1, 8, 8),
    )


# --------------------------------------------------------------------------- MNIST-1D
#: the published MNIST-1D baselines on its test set (Greydanus 2020, the package's README):
#: logistic regression, MLP, CNN, GRU, human (test accuracy %)
MNIST1D_BASELINES: dict[str, float] = {"logistic regression": 32.0, "MLP": 68.0, "CNN": 94.0, "GRU": 91.0,
                                       "human": 96.0}


def _cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rfdnn_bridge`` (default ``~/.cache/rfdnn_bridge``), or
    ``$RFDNN_CACHE_DIR`` when set."""
    explicit = os.environ.get("RFDNN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rfdnn_bridge"


def _canonical_mnist1d(cache: bool) -> dict[str, np.ndarray]:
    """The canonical MNIST-1D arrays (x, y, x_test, y_test), built by the ``mnist1d`` package's
    ``make_dataset(get_dataset_args())`` — procedurally, never downloaded — and cached as an
    ``.npz`` keyed by the package's version and arguments (written atomically)."""
    try:
        import mnist1d
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:  # pragma: no cover - a declared requirement
        raise ImportError("--dataset mnist1d needs the mnist1d package: pip install mnist1d") from err
    args = get_dataset_args(as_dict=True)
    key = {k: v for k, v in args.items() if k != "url"}
    version = getattr(mnist1d, "__version__", "")
    digest = hashlib.sha256(json.dumps([version, key], sort_keys=True).encode()).hexdigest()[:16]
    path = _cache_dir() / f"mnist1d-{digest}.npz"
    names = ("x", "y", "x_test", "y_test")
    if cache and path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in names}
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is rebuilt below
    state = np.random.get_state()  # make_dataset seeds numpy's global generator: leave it as it was
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(state)
    out = {k: np.asarray(data[k]) for k in names}
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_npz_atomic(path, **out)
        except OSError:  # a read-only home: no cache, same data
            pass
    return out


def load_mnist1d(split_seed: int = 0, cache: bool = True) -> Dataset:
    """The canonical MNIST-1D (Greydanus 2020, "Scaling down deep learning") as ``[N, 1, 40]``
    float32, 10 classes, from the ``mnist1d`` package with its default arguments: 5000
    signals, the published 4000/1000 train/test split (``split_seed=0``).

    Built procedurally by the package (about 2 s, no download) and cached under the user's
    cache folder (:func:`_cache_dir`).  ``split_seed = k > 0`` re-splits the same 5000 signals
    4000/1000, stratified by class, with a generator seeded by k — for statistics over
    splits; only ``split_seed=0`` is comparable with published numbers
    (:data:`MNIST1D_BASELINES`: logistic regression 32 %, MLP 68 %, CNN 94 %).
    """
    if isinstance(split_seed, bool) or not isinstance(split_seed, (int, np.integer)) or split_seed < 0:
        raise ValueError(f"split_seed must be an integer >= 0, got split_seed={split_seed!r}")
    d = _canonical_mnist1d(cache)
    x_train, y_train, x_test, y_test = d["x"], d["y"], d["x_test"], d["y_test"]
    if split_seed:
        x_all, y_all = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])
        train, test = _stratified_split(y_all, len(y_test) / len(y_all), np.random.default_rng(int(split_seed)))
        x_train, y_train, x_test, y_test = x_all[train], y_all[train], x_all[test], y_all[test]

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(x.astype(np.float32)[:, None, :]), torch.from_numpy(y.astype(np.int64))

    (xa, ya), (xb, yb) = tensors(x_train, y_train), tensors(x_test, y_test)
    return Dataset("mnist1d", xa, ya, xb, yb, 10, (1, x_train.shape[1]))


# --------------------------------------------------------------------------- CIFAR-10
#: the five training batches of the python version of CIFAR-10
CIFAR10_TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
#: its test batch
CIFAR10_TEST_FILE = "test_batch"
#: per-channel mean and (population) std of the 50 000 CIFAR-10 training images
#: on the [0, 1] scale — the documented constants, so the test set is normalized
#: with training-set statistics only and a partial copy is normalized the same way
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)

_ARCHIVE_HINT = (
    "the python version of CIFAR-10 (cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html) "
    "extracted: `tar xzf cifar-10-python.tar.gz` gives a folder cifar-10-batches-py/ holding "
    + ", ".join(CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,))
)


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the CIFAR-10 allow-list, or for ``_codecs.encode`` with other arguments."""


def _latin1_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` restricted to what pickle protocol ≤ 2 writes for ``bytes``: ``encode(str, "latin1")``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _RefusedGlobal(f"_codecs.encode is admitted only as encode(str, 'latin1'), got encoding={encoding!r}")
    return text.encode("latin-1")


def _np_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """numpy's ``_frombuffer``, which protocol-5 pickles of arrays name (numpy ≥ 1.16), restricted
    to its documented arguments: a bytes-like buffer, a dtype, a shape of ints and 'C'/'F'."""
    ok = (isinstance(buf, (bytes, bytearray, memoryview, pickle.PickleBuffer)) and isinstance(dtype, np.dtype)
          and isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape) and order in ("C", "F"))
    if not ok:
        raise _RefusedGlobal(f"numpy _frombuffer is admitted only with (buffer, dtype, shape, 'C'|'F'), got "
                             f"({type(buf).__name__}, {type(dtype).__name__}, {shape!r}, {order!r})")
    if dtype.hasobject:
        raise _RefusedGlobal(f"numpy _frombuffer with an object dtype {dtype} is refused")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


#: (module, name) → object: the only globals a CIFAR-10 batch pickle may name
_CIFAR_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,   # numpy 1.x (the original files)
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,  # numpy >= 2
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy._core.numeric", "_frombuffer"): _np_frombuffer,  # protocol 5 (out-of-band capable), numpy >= 2
    ("numpy.core.numeric", "_frombuffer"): _np_frombuffer,   # protocol 5, numpy 1.x
    ("_codecs", "encode"): _latin1_encode,  # bytes objects pickled by Python 3 with protocol <= 2
}


class _CifarUnpickler(pickle.Unpickler):
    """Admits only :data:`_CIFAR_GLOBALS`; any other global raises :class:`_RefusedGlobal`."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _CIFAR_GLOBALS[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in _CIFAR_GLOBALS)
            raise _RefusedGlobal(
                f"refused to load the global {module}.{name}; a CIFAR-10 batch needs only {allowed}"
            ) from None


def read_cifar_batch(path: Union[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file → (images uint8 ``[N, 3, 32, 32]``, labels int64 ``[N]``).

    The file is a pickle of a dict with (bytes) keys ``b"data"`` — uint8 ``[N, 3072]``,
    each row the 1024 red, then green, then blue values of a 32×32 image in
    row-major order — and ``b"labels"`` (N ints in 0..9); ``b"batch_label"`` and
    ``b"filenames"`` are ignored.  It is unpickled by a restricted unpickler
    that admits only the globals the format needs to rebuild a numpy array
    (``numpy.core.multiarray._reconstruct`` or its numpy-2 spelling
    ``numpy._core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``)
    and ``_codecs.encode`` limited to ``encode(str, "latin1")``, which is how
    Python 3 writes bytes under protocol 2; any other global raises
    :class:`pickle.UnpicklingError` before it is imported or called.

    Raises ``FileNotFoundError`` if the file is missing and ``ValueError``
    naming the path and the expected format if it is not such a pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CIFAR-10 batch file not found; expected {_ARCHIVE_HINT}")
    expected = "a pickled dict with b'data' (uint8 array [N, 3072]) and b'labels' (N ints in 0..9)"
    with open(path, "rb") as f:
        try:
            obj = _CifarUnpickler(f, encoding="bytes").load()
        except _RefusedGlobal as e:
            raise _RefusedGlobal(
                f"{path}: {e} (the file is not a genuine CIFAR-10 batch and may be malicious)"
            ) from None
        except Exception as e:  # truncated or corrupt pickle: any error of the unpickler
            raise ValueError(f"{path}: not a readable pickle ({type(e).__name__}: {e}); expected {expected}") from e
    if not isinstance(obj, dict) or b"data" not in obj or b"labels" not in obj:
        got = f"a dict with keys {sorted(map(repr, obj))}" if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"{path}: got {got}; expected {expected}")
    data, labels = obj[b"data"], obj[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: b'data' is a {got}; expected {expected}")
    if not isinstance(labels, (list, np.ndarray)) or len(labels) != len(data) or not all(
        isinstance(v, (int, np.integer)) and 0 <= v <= 9 for v in labels
    ):
        raise ValueError(f"{path}: b'labels' is not {len(data)} ints in 0..9; expected {expected}")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _cifar_dir(data_dir: Path) -> Path:
    for d in (data_dir, data_dir / "cifar-10-batches-py"):
        if (d / CIFAR10_TRAIN_FILES[0]).is_file():
            return d
    return data_dir


def _normalize(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).float().div_(255.0)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


def load_cifar10(data_dir: Union[str, Path], augment: bool = True) -> Dataset:
    """CIFAR-10 from a local copy: ``[N, 3, 32, 32]`` float32, normalized per channel, 10 classes.

    Reads ``data_batch_1`` … ``data_batch_5`` (train) and ``test_batch`` (test)
    from ``data_dir`` or ``data_dir/cifar-10-batches-py`` with
    :func:`read_cifar_batch` (restricted unpickling).  Pixels are scaled to
    [0, 1] and normalized with the documented training-set constants
    :data:`CIFAR10_MEAN` / :data:`CIFAR10_STD`.  With ``augment`` the returned
    data set carries :func:`augment_batch` as its training-time augmentation.

    Raises ``FileNotFoundError`` naming the missing file, the expected files and
    the archive they come from; ``ValueError`` naming a malformed file;
    :class:`pickle.UnpicklingError` for a file that asks for any other global.
    """
    root = _cifar_dir(Path(data_dir))
    missing = [name for name in CIFAR10_TRAIN_FILES + (CIFAR10_TEST_FILE,) if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{root / missing[0]}: CIFAR-10 file not found (missing: {', '.join(missing)}); "
            f"looked in {Path(data_dir)} and {Path(data_dir) / 'cifar-10-batches-py'}; expected {_ARCHIVE_HINT}"
        )
    parts = [read_cifar_batch(root / name) for name in CIFAR10_TRAIN_FILES]
    x_test, y_test = read_cifar_batch(root / CIFAR10_TEST_FILE)
    return Dataset(
        "cifar10", _normalize(np.concatenate([p[0] for p in parts])),
        torch.from_numpy(np.concatenate([p[1] for p in parts])), _normalize(x_test), torch.from_numpy(y_test),
        10, (3, 32, 32), augment_batch if augment else None,
    )


def crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Crop and flip each image of ``x`` [B, C, H, W] as told (the deterministic half of :func:`augment_batch`).

    Image ``b`` is zero-padded by ``padding`` pixels on every side, the
    ``H × W`` window whose top-left corner is ``offsets[b] = (row, col)`` (each in
    ``0 … 2·padding``) is cut out, and mirrored left–right where ``flips[b]`` is true.
    """
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    offsets = offsets.to(x.device)
    rows = offsets[:, 0, None] + torch.arange(h, device=x.device)               # [B, H]
    cols = torch.arange(w, device=x.device).expand(b, w)
    cols = torch.where(flips.to(x.device)[:, None], cols.flip(1), cols) + offsets[:, 1, None]  # [B, W]
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # [B, H, W, C] → [B, C, H, W]


def augment_batch(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """The standard CIFAR augmentation on a batch ``[B, C, H, W]``: random crop with zero padding + random flip.

    Draws from ``generator`` (a CPU generator), in this order, the crop offsets
    ``torch.randint(0, 2·padding + 1, (B, 2))`` and the flips
    ``torch.rand(B) < 0.5``, then applies :func:`crop_flip`; the same generator
    state gives the same result.  The padding is zero on the normalized
    tensor, i.e. the channel mean.
    """
    offsets = torch.randint(0, 2 * padding + 1, (x.shape[0], 2), generator=generator)
    flips = torch.rand(x.shape[0], generator=generator) < 0.5
    return crop_flip(x, offsets, flips, padding)


# --------------------------------------------------------------------------- mini-batches
def batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: Optional[torch.Generator],
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """An iterator of ``(x[idx], y[idx])`` for consecutive chunks ``idx`` of ``batch_size`` indices.

    With ``shuffle`` the indices are ``torch.randperm(len(x), generator=generator)``,
    drawn once when ``batches`` is called, so the same generator state gives the
    same batches; without it they are in order and ``generator`` may be ``None``.
    ``drop_last`` skips a final batch smaller than ``batch_size``.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if shuffle and generator is None:
        raise ValueError("shuffle=True needs a torch.Generator")
    n = len(x)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    return ((x[idx], y[idx]) for idx in (order[i:i + batch_size] for i in range(0, stop, batch_size)))
