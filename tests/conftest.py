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
