"""Data: file lookup (local root -> ``$NASBENCH_MIRROR`` -> download), in-memory
image datasets (CIFAR-10) and the deterministic, resumable :class:`BatchLoader`."""

from .cifar import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    InMemoryImages,
    cache_path,
    load_cifar10,
    load_imagefolder,
    split_train_val,
)
from .files import (
    CIFAR10_JPG_ARCHIVE,
    CIFAR10_JPG_DIR,
    CIFAR10_JPG_UPSTREAM,
    CIFAR10_PYTHON_URL,
    COMPLETE_MARKER,
    MIRROR_ENV,
    UnsafeArchiveError,
    mirror_dir,
    resolve_dir_from_archive,
    resolve_file,
    safe_extract,
)
from .loader import BatchLoader, batch_seed, cutout, shift_flip

__all__ = [
    "CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "InMemoryImages", "cache_path",
    "load_cifar10", "load_imagefolder", "split_train_val",
    "CIFAR10_JPG_ARCHIVE", "CIFAR10_JPG_DIR", "CIFAR10_JPG_UPSTREAM", "CIFAR10_PYTHON_URL",
    "COMPLETE_MARKER", "MIRROR_ENV", "UnsafeArchiveError", "mirror_dir",
    "resolve_dir_from_archive", "resolve_file", "safe_extract",
    "BatchLoader", "batch_seed", "cutout", "shift_flip",
]
