"""NAS-Bench-201 as shipped with NCP ([NCP] dingmyu/NCP, ``data/nas-bench-201/trainval.pkl``).

The pickle is a list of 15,625 dicts, one per NB201 cell:

* ``embedding``: float32[30], one-hot per edge (layout in
  :mod:`nasbench.spaces.nas_bench_201`: NB201 edge order, slot order
  :data:`~nasbench.spaces.nas_bench_201.EMBED_OPS`);
* ``Acc``: ImageNet16-120 accuracy in % (best 47.33; the chance level
  100/120 % appears for cells whose output is disconnected). All values are
  multiples of 1/30 %, i.e. measured on 3,000 images; 5 of 9 spot-checked
  cells equal the ImageNet16-120 ``val_accuracy`` of NASLib's
  ``naslib/data/zc_nasbench201.json`` exactly (which split/seed NCP used is
  not documented);
* ``Flops``: millions of MACs, ``Params``: millions of parameters. These are
  the cost of the NB201 *CIFAR-100* network (32x32 input, 100 classes), see
  :class:`~nasbench.spaces.nas_bench_201.NASBench201Space`; 150 records differ
  from the analytic count by exactly one conv edge and are kept as shipped.

Records (key = NB201 arch string): ``acc`` (%), ``flops`` (int MACs =
round(Flops * 1e6)), ``flops_m`` (M, as shipped), ``params`` (int =
round(Params * 1e6)), ``params_m`` (M, as shipped), ``index`` (position in the pickle).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ArchError, DataNotFoundError, NasbenchError
from ..spaces.nas_bench_201 import EMBED_DIM, NUM_EDGES, NUM_OPS, NASBench201Space
from . import BENCHMARKS
from .base import TabularBenchmark
from .pickle_io import load_pickle

UPSTREAM = "https://raw.githubusercontent.com/dingmyu/NCP/HEAD/data/nas-bench-201/trainval.pkl"
FILES = {"imagenet16_120": "trainval.pkl"}


def _number(path, i, item, name) -> float:
    v = item.get(name) if isinstance(item, dict) else None
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise NasbenchError(f"{path}: record {i} has no numeric {name!r} (got {v!r})")
    v = float(v)
    if not math.isfinite(v):
        raise NasbenchError(f"{path}: record {i} has a non-finite {name!r}")
    return v


def parse_records(path, items, space: NASBench201Space) -> dict[str, dict]:
    """Validate NCP's NB201 record list and return ``{arch string: metrics}``.

    Every embedding must be a 30-vector of 0/1 with exactly one 1 per edge
    block; the 15,625 decoded cells must be distinct.

    Raises:
        NasbenchError: not a list, a missing/malformed field, an embedding that
            is not a valid one-hot cell, a duplicate cell, or a wrong record count.
    """
    if not isinstance(items, list):
        raise NasbenchError(f"{path}: expected a list of records, got {type(items).__name__}")
    records = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "embedding" not in item:
            raise NasbenchError(f"{path}: record {i} is not a dict with an 'embedding'")
        try:
            emb = np.asarray(item["embedding"], dtype=np.float64)
        except (TypeError, ValueError):
            raise NasbenchError(f"{path}: record {i}: embedding is not numeric") from None
        if emb.shape != (EMBED_DIM,):
            raise NasbenchError(f"{path}: record {i}: embedding has shape {emb.shape}, expected ({EMBED_DIM},)")
        blocks = emb.reshape(NUM_EDGES, NUM_OPS)
        if not (np.isin(emb, (0.0, 1.0)).all() and (blocks.sum(axis=1) == 1).all()):
            raise NasbenchError(f"{path}: record {i}: embedding {emb.tolist()} is not one-hot per edge")
        try:
            key = space.encode(space.from_one_hot(emb))
        except ArchError as e:
            raise NasbenchError(f"{path}: record {i}: {e}") from None
        if key in records:
            raise NasbenchError(f"{path}: records {records[key]['index']} and {i} are the same cell {key!r}")
        flops_m, params_m = _number(path, i, item, "Flops"), _number(path, i, item, "Params")
        records[key] = {"acc": _number(path, i, item, "Acc"),
                        "flops": int(round(flops_m * 1e6)), "flops_m": flops_m,
                        "params": int(round(params_m * 1e6)), "params_m": params_m,
                        "index": i}
    if len(records) != len(space):
        raise NasbenchError(f"{path}: {len(records)} architectures, expected {len(space)}")
    return records


@BENCHMARKS.register("nas_bench_201")
def load_nas_bench_201(variant: str, root) -> TabularBenchmark:
    """Load ``nas_bench_201/imagenet16_120`` from ``root/nas_bench_201/trainval.pkl``.

    Missing files are copied from ``$NASBENCH_MIRROR/benchmarks/...`` or
    downloaded from the upstream repository (dingmyu/NCP,
    ``data/nas-bench-201/trainval.pkl``). The pickle is read with the
    restricted unpickler (:func:`~nasbench.benchmarks.pickle_io.load_pickle`).
    Metric ``acc`` (ImageNet16-120 accuracy, %); ``flops`` in MACs.

    Raises:
        NasbenchError: unknown variant, a forbidden/corrupt pickle, malformed records.
        DataNotFoundError: file missing and not obtainable.
    """
    from ..data.files import resolve_file

    variant = variant or "imagenet16_120"
    if variant not in FILES:
        raise NasbenchError(f"nas_bench_201: unknown variant {variant!r}; use one of {sorted(FILES)} "
                            "(NCP ships only the ImageNet16-120 accuracies)")
    rel = f"nas_bench_201/{FILES[variant]}"
    path = resolve_file(rel, root, url=UPSTREAM, mirror_rel=f"benchmarks/{rel}")
    space = NASBench201Space(variant)
    records = parse_records(path, load_pickle(path), space)
    return TabularBenchmark(f"nas_bench_201/{variant}", space, records, metric="acc")


__all__ = ["load_nas_bench_201", "parse_records", "DataNotFoundError"]
