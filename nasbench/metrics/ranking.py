"""Ranking-quality metrics of a predictor/supernet against ground truth.

All functions take 1-D sequences of equal length ``n`` (predicted scores,
true scores, optionally FLOPs in MACs). Pairs where any input is NaN/inf are
dropped first. Undefined correlations (fewer than 2 valid pairs, or a
constant input) are ``nan``, returned without scipy's warnings.

Source: the CBM/NAS-Bench-Macro Kendall-tau protocol (METHODS.md 1.6,
``pearson_kendall_spearman.py``: Kendall tau-b, Spearman rho, Pearson r via
``scipy.stats``). Banded correlations remove the trivial "bigger network is
better" component of the ranking by correlating only inside FLOPs bands.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["rank_correlations", "banded_correlations", "top_k_overlap"]

_NAN = float("nan")


def _as_1d(x) -> np.ndarray:
    return np.asarray(x, dtype=float).reshape(-1)


def _clean(*arrays, names=("pred", "true", "flops")):
    arrs = [_as_1d(a) for a in arrays]
    n = len(arrs[0])
    for nm, a in zip(names, arrs):
        if len(a) != n:
            raise ValueError(f"length mismatch: {names[0]} has {n} values, {nm} has {len(a)}")
    ok = np.ones(n, dtype=bool)
    for a in arrs:
        ok &= np.isfinite(a)
    return [a[ok] for a in arrs]


def _defined(x: np.ndarray, y: np.ndarray) -> bool:
    return len(x) >= 2 and np.ptp(x) > 0 and np.ptp(y) > 0


def _corr(fn, x, y) -> float:
    if not _defined(x, y):
        return _NAN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fn(x, y)
    v = float(getattr(r, "statistic", None) if hasattr(r, "statistic") else r[0])
    return v if math.isfinite(v) else _NAN


def rank_correlations(pred, true) -> dict:
    """Kendall tau-b, Spearman rho and Pearson r of ``pred`` against ``true``.

    Returns ``{"kendall_tau", "spearman", "pearson", "n"}`` (floats, ``n`` =
    number of valid pairs). ``nan`` when undefined (see module docstring).

    Raises:
        ValueError: ``pred`` and ``true`` differ in length.
    """
    from scipy import stats

    x, y = _clean(pred, true)
    return {
        "kendall_tau": _corr(stats.kendalltau, x, y),
        "spearman": _corr(stats.spearmanr, x, y),
        "pearson": _corr(stats.pearsonr, x, y),
        "n": int(len(x)),
    }


def banded_correlations(pred, true, flops, num_bands: int = 5) -> dict:
    """Mean Kendall tau / Spearman rho inside equal-count FLOPs bands.

    Architectures are sorted by FLOPs (stable: ties keep input order) and
    split into ``num_bands`` contiguous groups of equal size (sizes differ by
    at most one; ``np.array_split`` of the sort order, i.e. quantile bands).
    Equal FLOPs values may straddle a band edge.

    Returns:
        ``{"kendall_tau": mean over bands, "spearman": mean over bands,
        "num_bands": int, "bands": [{"band", "n", "flops_lo", "flops_hi",
        "kendall_tau", "spearman"}, ...]}``. Means ignore bands whose
        correlation is ``nan``; all-``nan`` gives ``nan``.

    Raises:
        ValueError: length mismatch or ``num_bands < 1``.
    """
    from scipy import stats

    if num_bands < 1:
        raise ValueError(f"num_bands must be >= 1, got {num_bands}")
    x, y, f = _clean(pred, true, flops)
    order = np.argsort(f, kind="stable")
    bands = []
    for b, idx in enumerate(np.array_split(order, num_bands)):
        bx, by, bf = x[idx], y[idx], f[idx]
        bands.append({
            "band": b,
            "n": int(len(idx)),
            "flops_lo": float(bf.min()) if len(idx) else _NAN,
            "flops_hi": float(bf.max()) if len(idx) else _NAN,
            "kendall_tau": _corr(stats.kendalltau, bx, by),
            "spearman": _corr(stats.spearmanr, bx, by),
        })

    def _mean(key):
        v = [b[key] for b in bands if not math.isnan(b[key])]
        return float(np.mean(v)) if v else _NAN

    return {"kendall_tau": _mean("kendall_tau"), "spearman": _mean("spearman"),
            "num_bands": int(num_bands), "bands": bands}


def top_k_overlap(pred, true, k: int) -> float:
    """Fraction of the true top-``k`` (highest ``true``) that is also in the predicted top-``k``.

    ``|top_k(pred) & top_k(true)| / k'`` with ``k' = min(k, n)``; ties are
    broken by input order (stable sort). Returns ``nan`` when no valid pair.

    Raises:
        ValueError: length mismatch or ``k < 1``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x, y = _clean(pred, true)
    k = min(int(k), len(x))
    if k == 0:
        return _NAN
    tp = set(np.argsort(-x, kind="stable")[:k].tolist())
    tt = set(np.argsort(-y, kind="stable")[:k].tolist())
    return len(tp & tt) / k
