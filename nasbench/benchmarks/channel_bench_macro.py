"""Channel-Bench-Macro loader (xiusu/Channel-Bench-Macro, ``Results_{MobileNet,ResNet}.json``).

Each JSON maps a 7-digit key to ``{"acc": [3 seeds, %], "mean": %, "std": %,
"params": int, "flops": int (MACs)}``: 16,384 networks trained 60 epochs on
CIFAR-10. ``query`` returns ``mean_acc``, ``std``, ``acc`` (per-seed),
``params`` and ``flops``.
"""
from __future__ import annotations

import json

from ..errors import DataNotFoundError, NasbenchError
from ..spaces.channel_bench_macro import ChannelBenchMacroSpace
from . import BENCHMARKS
from .base import TabularBenchmark

UPSTREAM = "https://raw.githubusercontent.com/xiusu/Channel-Bench-Macro/HEAD/{file}"  # HEAD = default branch
FILES = {"mobilenet": "Results_MobileNet.json", "resnet": "Results_ResNet.json"}


@BENCHMARKS.register("channel_bench_macro")
def load_channel_bench_macro(variant: str, root) -> TabularBenchmark:
    """Load ``channel_bench_macro/<variant>`` from ``root/channel_bench_macro/<file>``.

    Missing files are copied from ``$NASBENCH_MIRROR/benchmarks/...`` or
    downloaded from the upstream repository.

    Raises:
        NasbenchError: unknown variant or malformed JSON.
        DataNotFoundError: file missing and not obtainable.
    """
    from ..data.files import resolve_file

    if variant not in FILES:
        raise NasbenchError(f"channel_bench_macro: unknown variant {variant!r}; use one of {sorted(FILES)}")
    rel = f"channel_bench_macro/{FILES[variant]}"
    path = resolve_file(rel, root, url=UPSTREAM.format(file=FILES[variant]), mirror_rel=f"benchmarks/{rel}")
    try:
        with open(path) as f:
            raw = json.load(f)
        records = {k: {"mean_acc": float(v["mean"]), "std": float(v["std"]), "acc": [float(a) for a in v["acc"]],
                       "params": int(v["params"]), "flops": int(v["flops"])} for k, v in raw.items()}
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as e:  # inf -> int overflows
        raise NasbenchError(f"{path}: not a Channel-Bench-Macro results file ({e.__class__.__name__}: {e})") from None
    space = ChannelBenchMacroSpace(variant)
    if len(records) != len(space):
        raise NasbenchError(f"{path}: {len(records)} architectures, expected {len(space)}")
    return TabularBenchmark(f"channel_bench_macro/{variant}", space, records, metric="mean_acc")


__all__ = ["load_channel_bench_macro", "DataNotFoundError"]
