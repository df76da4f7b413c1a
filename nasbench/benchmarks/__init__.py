"""Tabular NAS benchmarks: ``load_benchmark(name, root)``.

``root`` is laid out like ``shared/data/benchmarks`` (e.g.
``root/channel_bench_macro/Results_MobileNet.json``). Missing files come from
the mirror directory named by ``$NASBENCH_MIRROR`` (its ``benchmarks/``
folder) or from the upstream repository.

Names: ``channel_bench_macro/mobilenet``, ``channel_bench_macro/resnet``.
"""
from __future__ import annotations

from ..errors import NasbenchError
from .base import TabularBenchmark


def load_benchmark(name: str, root="data/benchmarks") -> TabularBenchmark:
    """Load the tabular benchmark ``name`` from ``root``.

    Raises:
        NasbenchError: unknown name or malformed file.
        DataNotFoundError: the file is missing and neither mirror nor download has it.
    """
    family, _, variant = str(name).partition("/")
    if family == "channel_bench_macro":
        from .channel_bench_macro import load_channel_bench_macro
        return load_channel_bench_macro(variant, root)
    raise NasbenchError(f"unknown benchmark {name!r}; known: channel_bench_macro/mobilenet, "
                        "channel_bench_macro/resnet")


__all__ = ["load_benchmark", "TabularBenchmark"]
