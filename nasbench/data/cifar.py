"""In-memory image datasets (CIFAR-10 and ImageFolder trees) as uint8 tensors.

Small-image datasets are decoded once and kept in memory as one
``torch.uint8`` tensor ``[N, 3, H, W]``; batching, augmentation and
normalisation happen on whole batches in :mod:`nasbench.data.loader`.
Decoded ImageFolder trees are cached next to the tree as ``<dir>.uint8.npz``
so later runs load in about a second.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from nasbench.errors import DataNotFoundError

from .files import (
    CIFAR10_JPG_ARCHIVE,
    CIFAR10_JPG_DIR,
    CIFAR10_JPG_UPSTREAM,
    CIFAR10_PYTHON_URL,
    MIRROR_ENV,
    fix_mode,
    downloads_allowed,
    resolve_dir_from_archive,
)

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "IMG_EXTENSIONS",
    "InMemoryImages",
    "cache_path",
    "load_imagefolder",
    "load_cifar10",
    "split_train_val",
]

#: CIFAR-10 class names in label order 0..9 (also ImageFolder's sorted order).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
#: Per-channel mean of the CIFAR-10 training images, RGB, pixel values in [0, 1].
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
#: Per-channel standard deviation of the CIFAR-10 training images, RGB, in [0, 1].
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

#: File name endings that :func:`load_imagefolder` treats as images.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

_CACHE_SUFFIX = ".uint8.npz"
_CACHE_VERSION = 1
_SPLIT_SIZES = {"train": 50000, "test": 10000}


class InMemoryImages:
    """A labelled image dataset held in memory.

    Attributes:
        images: ``torch.uint8`` tensor ``[N, C, H, W]`` (RGB, C == 3 for CIFAR), contiguous.
        targets: ``torch.int64`` tensor ``[N]`` of labels in ``[0, len(classes))``.
        classes: class names; ``classes[k]`` is the name of label ``k``.
        source: free-form origin tag, e.g. ``"cifar10-jpg"`` or ``"torchvision"``.

    Raises:
        TypeError / ValueError (constructor): wrong dtypes or shapes.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, classes: Sequence[str],
                 source: str = ""):
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            raise TypeError("images must be a torch.uint8 tensor [N, C, H, W]")
        targets = torch.as_tensor(targets)
        if targets.dtype != torch.int64 or targets.dim() != 1 or len(targets) != len(images):
            raise TypeError(f"targets must be a torch.int64 tensor [{len(images)}], "
                            f"got {targets.dtype} {tuple(targets.shape)}")
        self.images = images
        self.targets = targets
        self.classes = list(classes)
        self.source = source
        if len(targets) and (int(targets.min()) < 0 or int(targets.max()) >= len(self.classes)):
            raise ValueError(f"targets must lie in [0, {len(self.classes)})")

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        """``(image uint8 [C, H, W], label int)`` of sample ``i``."""
        return self.images[i], int(self.targets[i])

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.images.shape[1:])
        return (f"InMemoryImages(n={len(self)}, image={shape}, classes={len(self.classes)}, "
                f"source={self.source!r})")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> torch.Tensor:
        """``torch.int64 [num_classes]``: number of samples per label."""
        return torch.bincount(self.targets, minlength=len(self.classes))

    def subset(self, indices) -> "InMemoryImages":
        """New dataset with the samples ``indices`` (int sequence/tensor/ndarray), in that order.

        The pixel data is copied (advanced indexing), so the parent can be freed.
        """
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64).reshape(-1)
        return InMemoryImages(self.images[idx], self.targets[idx], self.classes, self.source)


# --------------------------------------------------------------------------- ImageFolder


def _list_imagefolder(root: Path, classes: Sequence[str] | None):
    if classes is None:
        classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    files, targets = [], []
    for label, name in enumerate(classes):
        cdir = root / name
        if not cdir.is_dir():
            raise DataNotFoundError(f"class directory {cdir.resolve()} is missing")
        names = sorted(e.name for e in os.scandir(cdir)
                       if e.is_file() and e.name.lower().endswith(IMG_EXTENSIONS))
        files.extend(f"{name}/{n}" for n in names)
        targets.extend([label] * len(names))
    return list(classes), files, targets


def _fingerprint(classes, files) -> str:
    h = hashlib.sha1()
    h.update(f"v{_CACHE_VERSION}\n".encode())
    h.update("\n".join(classes).encode())
    h.update(b"\0")
    h.update("\n".join(files).encode())
    return h.hexdigest()


def _decode_all(root: Path, files: list[str]) -> np.ndarray:
    """Decode every file with PIL into one ``uint8 [N, H, W, 3]`` array."""
    from PIL import Image
    from tqdm import tqdm

    out = None
    for i, rel in enumerate(tqdm(files, desc=f"decode {root.name}", unit="img",
                                 leave=False, disable=None, mininterval=1.0)):
        with Image.open(root / rel) as im:
            arr = np.asarray(im.convert("RGB"))
        if out is None:
            out = np.empty((len(files),) + arr.shape, dtype=np.uint8)
        elif arr.shape != out.shape[1:]:
            raise ValueError(f"{root / rel} has size {arr.shape[:2]}, expected {out.shape[1:3]} "
                             "(all images of an in-memory dataset must have the same size)")
        out[i] = arr
    return out


def cache_path(dir) -> Path:
    """Where :func:`load_imagefolder` caches the decoded tree ``dir``: ``<dir>.uint8.npz``."""
    d = Path(dir)
    return d.parent / (d.name + _CACHE_SUFFIX)


def _read_cache(path: Path, fingerprint: str):
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != fingerprint:
                return None
            return z["images"], z["targets"]
    except (OSError, KeyError, ValueError, EOFError):
        return None  # unreadable/old cache: rebuild it


def _write_cache(path: Path, fingerprint: str, images: np.ndarray, targets: np.ndarray,
                 classes: list[str]) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        warnings.warn(f"cannot write decoded-image cache {path}: {exc}")
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, images=images, targets=targets, classes=np.asarray(classes),
                     fingerprint=np.asarray(fingerprint))
        fix_mode(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(f"cannot write decoded-image cache {path}: {exc}")
        try:
            os.unlink(tmp)
        except OSError:
            pass


def load_imagefolder(dir, classes: Sequence[str] | None = None, cache: bool = True) -> InMemoryImages:
    """Load an ImageFolder tree ``dir/<class>/<image>`` into memory.

    Every image is decoded once with PIL (converted to RGB); all images must
    have the same size. Labels follow ``classes`` (default: sorted
    sub-directory names); files within a class are in sorted name order.
    With ``cache=True`` the decoded arrays are stored in ``<dir>.uint8.npz``
    (atomic write) and reused while the list of class/file names is unchanged.

    Returns:
        :class:`InMemoryImages` with ``images`` uint8 ``[N, 3, H, W]`` and
        ``targets`` int64 ``[N]``.

    Raises:
        DataNotFoundError: ``dir`` or a requested class directory is missing,
            or the tree holds no images.
        ValueError: images of different sizes.
    """
    root = Path(dir)
    if not root.is_dir():
        raise DataNotFoundError(f"image folder {root.resolve()} not found")
    classes, files, targets = _list_imagefolder(root, classes)
    if not files:
        raise DataNotFoundError(f"no images ({', '.join(IMG_EXTENSIONS)}) found under "
                                f"{root.resolve()}/<class>/")
    fp = _fingerprint(classes, files)
    cpath = cache_path(root)
    cached = _read_cache(cpath, fp) if cache and cpath.is_file() else None
    if cached is not None:
        images, tgt = cached
        images_t = torch.from_numpy(images)
    else:
        hwc = _decode_all(root, files)
        images_t = torch.from_numpy(hwc).permute(0, 3, 1, 2).contiguous()
        tgt = np.asarray(targets, dtype=np.int64)
        if cache:
            _write_cache(cpath, fp, images_t.numpy(), tgt, classes)
    return InMemoryImages(images_t, torch.from_numpy(np.ascontiguousarray(tgt, dtype=np.int64)),
                          classes, source=f"imagefolder:{root.name}")


# --------------------------------------------------------------------------- CIFAR-10


def _load_torchvision_cifar10(root: Path, train: bool, download: bool) -> InMemoryImages:
    import torchvision

    ds = torchvision.datasets.CIFAR10(str(root), train=train, download=download)
    images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    targets = torch.as_tensor(ds.targets, dtype=torch.int64)
    if list(ds.classes) != list(CIFAR10_CLASSES):
        raise RuntimeError(f"unexpected torchvision CIFAR-10 classes {ds.classes}")
    return InMemoryImages(images, targets, CIFAR10_CLASSES, source="torchvision")


def load_cifar10(root="data", split: str = "train", download: bool = True) -> InMemoryImages:
    """Load a CIFAR-10 split into memory (uint8 ``[N, 3, 32, 32]``, int64 labels 0..9).

    Order of preference:

    1. the JPEG ImageFolder tree ``root/cifar10/{train,test}`` (extracted from
       ``cifar10-jpg.tar.gz`` found in ``root`` or in ``$NASBENCH_MIRROR``;
       decoded once and cached as ``root/cifar10/<split>.uint8.npz``);
       ``source == "cifar10-jpg"``;
    2. the original binary CIFAR-10 via ``torchvision.datasets.CIFAR10(root,
       download=download)`` (``root/cifar-10-batches-py``);
       ``source == "torchvision"``. Its pixels are not JPEG-compressed, so
       accuracies differ slightly from the JPEG version.

    Args:
        root: data root directory.
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000 images).
        download: allow torchvision to download the binary CIFAR-10 (fallback 2).

    Raises:
        ValueError: unknown ``split``.
        DataNotFoundError: neither source is available; the message says where
            to put the archive or how to point ``NASBENCH_MIRROR`` at a mirror.
    """
    if split not in _SPLIT_SIZES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    try:
        tree = resolve_dir_from_archive(CIFAR10_JPG_DIR, CIFAR10_JPG_ARCHIVE, root,
                                        upstream=CIFAR10_JPG_UPSTREAM)
        split_dir = tree / split
        if not split_dir.is_dir():
            raise DataNotFoundError(f"{split_dir.resolve()} is missing: {CIFAR10_JPG_ARCHIVE} must "
                                    "contain top-level train/ and test/ directories")
        ds = load_imagefolder(split_dir, classes=CIFAR10_CLASSES)
        ds.source = "cifar10-jpg"
        if len(ds) != _SPLIT_SIZES[split]:
            warnings.warn(f"CIFAR-10 {split} tree {split_dir} has {len(ds)} images, "
                          f"expected {_SPLIT_SIZES[split]}")
        return ds
    except DataNotFoundError as exc:
        jpg_error = exc

    local = (root / "cifar-10-batches-py").is_dir()
    reason = "download disabled"
    download = download and downloads_allowed()
    if download or local:
        try:
            return _load_torchvision_cifar10(root, split == "train", download)
        except (RuntimeError, OSError) as exc:  # URLError is an OSError
            reason = str(getattr(exc, "reason", None) or exc)
    detail = "" if str(jpg_error).startswith("data file '") else f" ({jpg_error})"
    raise DataNotFoundError(
        f"CIFAR-10 not found: put {CIFAR10_JPG_ARCHIVE} at {(root / CIFAR10_JPG_ARCHIVE).resolve()} "
        f"(or run tools/prepare_data.py --archive PATH --root {root}), or set {MIRROR_ENV} to a "
        f"mirror directory that contains {CIFAR10_JPG_ARCHIVE} (e.g. a copy of shared/data); "
        f"upstream: {CIFAR10_JPG_UPSTREAM}{detail}. The torchvision fallback that downloads "
        f"{CIFAR10_PYTHON_URL} into {root.resolve()} failed: {reason}") from None


# --------------------------------------------------------------------------- splits


def _quotas(counts: torch.Tensor, n: int) -> torch.Tensor:
    """Split ``n`` over classes proportionally to ``counts`` (largest remainder)."""
    total = int(counts.sum())
    exact = counts.double() * n / total
    q = exact.floor().long()
    rest = n - int(q.sum())
    if rest > 0:
        frac = exact - q.double()
        # ties broken by class index (stable sort of -frac)
        order = torch.sort(-frac, stable=True).indices
        q[order[:rest]] += 1
    return torch.minimum(q, counts)


def _pick(targets: torch.Tensor, pool: torch.Tensor, n: int, gen: torch.Generator,
          stratified: bool):
    """Randomly take ``n`` indices of ``pool``; returns (picked, remaining), both sorted."""
    if stratified:
        labels = targets[pool]
        num_classes = int(targets.max()) + 1 if len(targets) else 0
        counts = torch.bincount(labels, minlength=num_classes)
        quota = _quotas(counts, n)
        picked = []
        for c in range(num_classes):
            members = pool[labels == c]
            perm = torch.randperm(len(members), generator=gen)
            picked.append(members[perm[: int(quota[c])]])
        picked = torch.cat(picked) if picked else pool[:0]
    else:
        picked = pool[torch.randperm(len(pool), generator=gen)[:n]]
    mask = torch.ones(len(targets), dtype=torch.bool)
    mask[picked] = False
    keep = torch.zeros(len(targets), dtype=torch.bool)
    keep[pool] = True
    remaining = torch.nonzero(mask & keep).reshape(-1)
    return torch.sort(picked).values, remaining


def _as_count(size, n: int, what: str) -> int:
    """An int count, or a float fraction in (0, 1) of ``n`` (rounded)."""
    if isinstance(size, float):
        if not 0 < size < 1:
            raise ValueError(f"{what} as a fraction must lie in (0, 1), got {size}")
        return int(round(size * n))
    size = int(size)
    if not 0 <= size <= n:
        raise ValueError(f"{what}={size} does not fit in {n} samples")
    return size


def split_train_val(dataset: InMemoryImages, val_size, seed: int, train_size=None,
                    stratified: bool = True):
    """Split a training set into a supernet-training part and a search-validation part.

    Args:
        dataset: the full training set.
        val_size: number of validation samples (int) or fraction in (0, 1).
        seed: seed of the split (a private ``torch.Generator``; the global RNG
            is not touched). The same seed gives the same split.
        train_size: if given (int or fraction of the dataset), a seeded subset
            of this many samples of the remainder is used for training;
            default: the whole remainder.
        stratified: keep class proportions in both parts (per-class quotas by
            largest remainder; totals are exact).

    Returns:
        ``(train, val)``: disjoint :class:`InMemoryImages`, each in ascending
        index order of ``dataset``.

    Raises:
        ValueError: sizes that do not fit.
    """
    n = len(dataset)
    n_val = _as_count(val_size, n, "val_size")
    gen = torch.Generator().manual_seed(int(seed))
    all_idx = torch.arange(n)
    val_idx, rest = _pick(dataset.targets, all_idx, n_val, gen, stratified)
    if train_size is not None:
        n_train = _as_count(train_size, n, "train_size")
        if n_train > len(rest):
            raise ValueError(f"train_size={n_train} exceeds the {len(rest)} samples left "
                             f"after taking val_size={n_val}")
        train_idx, _ = _pick(dataset.targets, rest, n_train, gen, stratified)
    else:
        train_idx = rest
    return dataset.subset(train_idx), dataset.subset(val_idx)
