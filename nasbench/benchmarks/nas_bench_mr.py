"""NAS-Bench-MR (NCP, [NCP] dingmyu/NCP ``data/<setting>/trainval.pkl``): ``nas_bench_mr/<setting>``.

Each setting's pickle is a list of about 2,507 dicts: ``embedding`` (the 27-int
code, see :mod:`nasbench.spaces.nas_bench_mr`), task metrics, ``flops`` (G),
``params`` (M), ``input_channel``, ``inverted_residual_setting`` (a list, or a
string holding a Python literal of one) and ``last_channel``.

Any folder ``root/nas_bench_mr/<setting>/trainval.pkl`` loads; the metrics are
discovered from the records: every numeric key other than ``embedding``,
``flops``, ``params``, ``input_channel``, ``last_channel`` and
``inverted_residual_setting`` (seg: ``mIoU, mAcc, aAcc``; cls/video:
``top1, top5``; 3ddet: ``moderate``...). Every record must have the same metric set.

Main metric (the ``score``/``metric`` of the benchmark): the first of
``mIoU`` (segmentation), ``top1`` (classification, video), ``moderate`` (3D
detection) present, else the first discovered metric in record order.

Records (key = code string): the metrics as shipped, ``flops_g`` and ``params_m``
(the pickle's ``flops`` in G and ``params`` in M, as shipped), ``flops`` = int
MACs = round(flops_g * 1e9) and ``params`` = int round(params_m * 1e6) for the
:class:`TabularBenchmark` interface. These are the pickle's values, *not*
recounted (NCP's own FLOPs convention, see METHODS.md 5.7). ``index`` = position in the pickle.

Repeated embeddings: the first record is kept, later ones are listed in
``bench.duplicates`` as ``(key, kept_index, dropped_index)`` and a warning is
issued (none occur in the shipped settings).
"""
from __future__ import annotations

import ast
import math
import warnings

import numpy as np

from ..errors import ArchError, NasbenchError
from ..spaces.nas_bench_mr import NASBenchMRSpace
from . import BENCHMARKS
from .base import TabularBenchmark
from .pickle_io import load_pickle

UPSTREAM = "https://raw.githubusercontent.com/dingmyu/NCP/HEAD/data/{setting}/trainval.pkl"
#: settings shipped with NCP (others load the same way when their folder exists)
SETTINGS = ("cls-10-1000", "cls-10c", "cls-50-100", "cls-50-1000", "seg", "seg-4x", "3ddet", "video", "video-p")
NON_METRIC_KEYS = ("embedding", "flops", "params", "input_channel", "last_channel", "inverted_residual_setting")
MAIN_METRIC_PRIORITY = ("mIoU", "top1", "moderate")


def _is_number(v) -> bool:
    return (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)))


def _number(path, i, item, name) -> float:
    v = item.get(name)
    if not _is_number(v) or not math.isfinite(float(v)):
        raise NasbenchError(f"{path}: record {i} has no finite numeric {name!r} (got {v!r})")
    return float(v)


def main_metric(metrics) -> str:
    """Main metric of a setting from its metric names (see module doc)."""
    for m in MAIN_METRIC_PRIORITY:
        if m in metrics:
            return m
    return list(metrics)[0]


class NASBenchMRBenchmark(TabularBenchmark):
    """:class:`TabularBenchmark` with ``metrics`` (task metric names), ``setting`` and ``duplicates``."""

    def __init__(self, name, space, records, metric, metrics, setting, duplicates=()):
        super().__init__(name, space, records, metric=metric)
        self.metrics = list(metrics)
        self.setting = setting
        self.duplicates = list(duplicates)

    def embedding(self, arch) -> np.ndarray:
        """27-int code of ``arch`` as float32 (predictor input)."""
        return np.asarray(self.space.validate(arch), dtype=np.float32)


def parse_records(path, items, space: NASBenchMRSpace):
    """Validate a NAS-Bench-MR record list.

    Returns ``(records, metrics, duplicates)``: ``{code string: record}``, the
    task metric names, and the repeated embeddings (see module doc).

    Raises:
        NasbenchError: not a non-empty list of dicts, a bad embedding (the
            message names the record and gene), a network setting
            (``input_channel``, ``inverted_residual_setting``, ``last_channel``)
            that :meth:`NASBenchMRSpace.from_setting` rejects or that gives
            another code than the embedding (the message names the record and
            what was wrong), missing or non-numeric metrics/flops/params.
    """
    if not isinstance(items, list) or not items:
        raise NasbenchError(f"{path}: expected a non-empty list of records, got {type(items).__name__}")
    first = items[0]
    if not isinstance(first, dict):
        raise NasbenchError(f"{path}: record 0 is not a dict")
    metrics = [k for k, v in first.items() if k not in NON_METRIC_KEYS and _is_number(v)]
    if not metrics:
        raise NasbenchError(f"{path}: record 0 has no numeric metric (keys {sorted(first)})")
    records, duplicates = {}, []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "embedding" not in item:
            raise NasbenchError(f"{path}: record {i} is not a dict with an 'embedding'")
        try:
            code = space.validate(np.asarray(item["embedding"]).reshape(-1).tolist())
        except (ArchError, ValueError, TypeError) as e:
            raise NasbenchError(f"{path}: record {i}: bad embedding: {e}") from None
        key = space.encode(code)
        if "inverted_residual_setting" in item:
            setting = item["inverted_residual_setting"]
            if isinstance(setting, str):
                try:
                    setting = ast.literal_eval(setting)  # literals only: no names, calls or attributes
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    raise NasbenchError(f"{path}: record {i}: inverted_residual_setting is not a literal list") from None
            try:  # absent input_channel / last_channel: the embedding's own
                got = space.from_setting(item.get("input_channel", code[:2]), setting,
                                         item.get("last_channel", code[-1]))
            except (ArchError, TypeError, ValueError) as e:
                why = (str(e).removeprefix(f"{space.name}: ") if isinstance(e, ArchError) else
                       f"inverted_residual_setting {setting!r} is not a list of [branches, [convs], [channels]]")
                raise NasbenchError(f"{path}: record {i}: network setting does not match embedding {key!r}: "
                                    f"{why}") from None
            if got != code:
                raise NasbenchError(f"{path}: record {i}: network setting does not match embedding {key!r}: "
                                    f"the setting encodes {space.encode(got)!r}")
        if key in records:
            duplicates.append((key, records[key]["index"], i))
            continue
        rec = {m: _number(path, i, item, m) for m in metrics}
        extra = [k for k, v in item.items() if k not in NON_METRIC_KEYS and _is_number(v) and k not in metrics]
        if extra:
            raise NasbenchError(f"{path}: record {i} has metrics {extra} that record 0 lacks")
        flops_g, params_m = _number(path, i, item, "flops"), _number(path, i, item, "params")
        rec.update({"flops_g": flops_g, "params_m": params_m, "flops": int(round(flops_g * 1e9)),
                    "params": int(round(params_m * 1e6)), "index": i})
        records[key] = rec
    if duplicates:
        warnings.warn(f"{path}: {len(duplicates)} records repeat an earlier embedding; kept the first "
                      f"(e.g. {duplicates[0][0]!r}: records {duplicates[0][1]} and {duplicates[0][2]})")
    return records, metrics, duplicates


@BENCHMARKS.register("nas_bench_mr")
def load_nas_bench_mr(variant: str, root) -> NASBenchMRBenchmark:
    """Load ``nas_bench_mr/<setting>`` from ``root/nas_bench_mr/<setting>/trainval.pkl``.

    Missing files are copied from ``$NASBENCH_MIRROR/benchmarks/...`` or
    downloaded from dingmyu/NCP ``data/<setting>/trainval.pkl``. Read with the
    restricted unpickler.

    Raises:
        NasbenchError: no/odd setting name, a forbidden/corrupt pickle, malformed records.
        DataNotFoundError: file missing and not obtainable.
    """
    from ..data.files import resolve_file

    if not variant or "/" in variant or "\\" in variant or variant.startswith("."):
        raise NasbenchError(f"nas_bench_mr: give a setting, e.g. 'nas_bench_mr/seg' "
                            f"(NCP ships {', '.join(SETTINGS)}); got {variant!r}")
    rel = f"nas_bench_mr/{variant}/trainval.pkl"
    path = resolve_file(rel, root, url=UPSTREAM.format(setting=variant), mirror_rel=f"benchmarks/{rel}")
    space = NASBenchMRSpace(variant)
    records, metrics, dups = parse_records(path, load_pickle(path), space)
    return NASBenchMRBenchmark(f"nas_bench_mr/{variant}", space, records, metric=main_metric(metrics),
                               metrics=metrics, setting=variant, duplicates=dups)


__all__ = ["load_nas_bench_mr", "parse_records", "main_metric", "NASBenchMRBenchmark", "SETTINGS"]
