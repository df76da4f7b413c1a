"""Shared fixtures: the data mirror (../shared/data) and small configs."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO.parent / "shared" / "data"


def mirror_path() -> Path | None:
    p = Path(os.environ.get("NASBENCH_MIRROR", DEFAULT_MIRROR))
    return p if p.is_dir() else None


@pytest.fixture(scope="session")
def mirror():
    """The offline data mirror laid out like shared/data (skips the test if absent)."""
    p = mirror_path()
    if p is None:
        pytest.skip("no data mirror: set NASBENCH_MIRROR to a copy of shared/data")
    return p


@pytest.fixture(scope="session")
def bench_root(mirror):
    """Benchmark folder laid out like shared/data/benchmarks."""
    return mirror / "benchmarks"


@pytest.fixture(scope="session")
def data_root(mirror, tmp_path_factory):
    """A data root filled from the mirror once per session (CIFAR-10 extracted + decoded)."""
    os.environ["NASBENCH_MIRROR"] = str(mirror)
    root = Path(os.environ.get("NASBENCH_TEST_DATA", tmp_path_factory.mktemp("data")))
    from nasbench.data import load_cifar10
    load_cifar10(root, "train")
    load_cifar10(root, "test")
    return root


@pytest.fixture(scope="session")
def bench_of(bench_root):
    """``bench_of(name)``: ``load_benchmark(name, bench_root)``, each benchmark loaded once per session."""
    from functools import lru_cache

    from nasbench.benchmarks import load_benchmark
    return lru_cache(maxsize=None)(lambda name: load_benchmark(name, bench_root))


def make_tiny_imagefolder(root: Path, classes=3, per_class=6, size=64, ext="png") -> Path:
    """``root/{train,val}/n0<c>/<i>.<ext>``: ``classes`` x ``per_class`` random ``size`` x ``size``
    RGB images per split (seeded), an ImageFolder tree for ImageNet-config smoke tests."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(classes):
            d = root / split / f"n0{c}"
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(d / f"{i}.{ext}")
    return root


@pytest.fixture
def tiny_imagefolder(tmp_path):
    """``make(classes=3, per_class=6, size=64, ext="png") -> root``: a tiny ImageFolder under ``tmp_path``."""
    return lambda **kw: make_tiny_imagefolder(tmp_path / "imnet", **kw)
