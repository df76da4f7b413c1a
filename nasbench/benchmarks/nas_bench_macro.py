"""NAS-Bench-Macro loader (xiusu/NAS-Bench-Macro, ``data/nas-bench-macro_cifar10.json``).

The JSON maps each of the 3^8 = 6,561 8-digit keys (one digit 0..2 per layer:
identity, MB3_K3, MB6_K5) to ``{"test_acc": [3 seeds, %], "mean_acc": %,
"std": % (population std of the 3 seeds), "params": int, "flops": int
(MACs at 32x32)}``: networks trained 50 epochs on CIFAR-10. Upstream trained
only canonical architectures and copied each result to every key with the same
canonical form (``train/collect_benchmark.py``, ``get_real_arch``), so there
are 3,969 distinct records. ``query`` returns ``mean_acc``, ``std``,
``test_acc`` (per seed), ``params``, ``flops`` and ``canonical`` (the
canonical key whose network was actually trained).
"""
from __future__ import annotations

import json

from ..errors import DataNotFoundError, NasbenchError
from ..spaces.nas_bench_macro import NASBenchMacroSpace
from . import BENCHMARKS
from .base import TabularBenchmark

UPSTREAM = "https://raw.githubusercontent.com/xiusu/NAS-Bench-Macro/HEAD/data/nas-bench-macro_cifar10.json"
FILE = "nas_bench_macro/nas-bench-macro_cifar10.json"


@BENCHMARKS.register("nas_bench_macro")
def load_nas_bench_macro(variant: str, root) -> TabularBenchmark:
    """Load ``nas_bench_macro`` from ``root/nas_bench_macro/nas-bench-macro_cifar10.json``.

    ``variant`` must be empty (name ``"nas_bench_macro"``) or ``"cifar10"``.
    Missing files are copied from ``$NASBENCH_MIRROR/benchmarks/...`` or
    downloaded from the upstream repository.

    Raises:
        NasbenchError: unknown variant, malformed JSON, or keys that are not
            exactly the 6,561 architectures of the space.
        DataNotFoundError: file missing and not obtainable.
    """
    from ..data.files import resolve_file

    if variant not in ("", None, "cifar10"):
        raise NasbenchError(f"nas_bench_macro: unknown variant {variant!r}; the benchmark has only 'cifar10' "
                            "(use the name 'nas_bench_macro')")
    path = resolve_file(FILE, root, url=UPSTREAM, mirror_rel=f"benchmarks/{FILE}")
    space = NASBenchMacroSpace()
    try:
        with open(path) as f:
            raw = json.load(f)
        records = {k: {"mean_acc": float(v["mean_acc"]), "std": float(v["std"]),
                       "test_acc": [float(a) for a in v["test_acc"]],
                       "params": int(v["params"]), "flops": int(v["flops"]),
                       "canonical": space.encode(space.canonical(k))} for k, v in raw.items()}
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as e:  # ArchError is a ValueError
        raise NasbenchError(f"{path}: not a NAS-Bench-Macro results file ({e.__class__.__name__}: {e})") from None
    if len(records) != len(space):
        raise NasbenchError(f"{path}: {len(records)} architectures, expected {len(space)}")
    return TabularBenchmark("nas_bench_macro", space, records, metric="mean_acc")


__all__ = ["load_nas_bench_macro", "DataNotFoundError"]
