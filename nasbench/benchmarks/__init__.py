"""Tabular NAS benchmarks: ``load_benchmark(name, root)``.

``root`` is laid out like ``shared/data/benchmarks`` (e.g.
``root/channel_bench_macro/Results_MobileNet.json``). Missing files come from
the mirror directory named by ``$NASBENCH_MIRROR`` (its ``benchmarks/``
folder) or from the upstream repository.

A benchmark family is one module here that registers a loader
``loader(variant: str, root) -> TabularBenchmark`` under its family name with
``@BENCHMARKS.register("family")``; ``name`` is ``"family/variant"`` or
``"family"``.
"""
from __future__ import annotations

import importlib
import os

from ..errors import NasbenchError
from ..registry import Registry
from .base import TabularBenchmark

BENCHMARKS = Registry("benchmark")

# family name -> module that registers it (imported on first use)
_FAMILIES = {
    "channel_bench_macro": ".channel_bench_macro",
    "nas_bench_macro": ".nas_bench_macro",
    "nats_sss": ".nats_sss",
    "nas_bench_201": ".nas_bench_201",
    "nas_bench_mr": ".nas_bench_mr",
}


def load_benchmark(name: str, root="data/benchmarks") -> TabularBenchmark:
    """Load the tabular benchmark ``name`` (``family/variant``) from ``root``.

    Raises:
        NasbenchError: unknown name or malformed file.
        DataNotFoundError: the file is missing and neither mirror nor download has it.
    """
    family, _, variant = str(name).partition("/")
    if os.path.exists(root) and not os.path.isdir(root):
        raise NasbenchError(f"benchmark root {root} is a file; pass the folder holding <family>/... "
                            "(like shared/data/benchmarks)")
    if family not in _FAMILIES:
        raise NasbenchError(f"unknown benchmark {name!r}; known families: {sorted(_FAMILIES)}")
    importlib.import_module(_FAMILIES[family], __name__)
    return BENCHMARKS.get(family)(variant, root)


__all__ = ["load_benchmark", "TabularBenchmark", "BENCHMARKS"]
