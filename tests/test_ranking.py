"""Ranking metrics against scipy and on data with a known FLOPs confound."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from nasbench.metrics import banded_correlations, rank_correlations, top_k_overlap


def test_rank_correlations_match_scipy():
    rng = np.random.default_rng(0)
    true = rng.normal(size=200)
    pred = true + rng.normal(size=200)
    pred[:20] = np.round(pred[:20])  # some ties
    r = rank_correlations(pred, true)
    assert r["n"] == 200
    assert r["kendall_tau"] == pytest.approx(stats.kendalltau(pred, true).statistic, abs=1e-12)
    assert r["spearman"] == pytest.approx(stats.spearmanr(pred, true).statistic, abs=1e-12)
    assert r["pearson"] == pytest.approx(stats.pearsonr(pred, true).statistic, abs=1e-12)


def test_rank_correlations_known_values():
    r = rank_correlations([1, 2, 3, 4], [10, 20, 30, 40])
    assert r["kendall_tau"] == pytest.approx(1) and r["spearman"] == pytest.approx(1)
    r = rank_correlations([1, 2, 3, 4], [4, 3, 2, 1])
    assert r["kendall_tau"] == pytest.approx(-1) and r["pearson"] == pytest.approx(-1)


def test_nan_safe_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = rank_correlations([1, 1, 1, 1], [1, 2, 3, 4])
        assert all(math.isnan(r[k]) for k in ("kendall_tau", "spearman", "pearson"))
        assert math.isnan(rank_correlations([1], [2])["kendall_tau"])
        assert math.isnan(rank_correlations([], [])["spearman"])
        r = rank_correlations([1, 2, np.nan, 4, 5], [1, 2, 3, np.nan, 5])  # NaN pairs dropped
        assert r["n"] == 3 and r["kendall_tau"] == pytest.approx(1)
        b = banded_correlations(np.ones(10), np.arange(10), np.arange(10), num_bands=2)
        assert math.isnan(b["kendall_tau"]) and len(b["bands"]) == 2
    with pytest.raises(ValueError, match="length"):
        rank_correlations([1, 2], [1, 2, 3])


def test_banded_tau_removes_flops_confound():
    rng = np.random.default_rng(1)
    levels = np.repeat(np.arange(1, 6), 400)  # 5 FLOPs levels, 400 archs each
    flops = levels * 1e6
    true = levels + 0.1 * rng.normal(size=levels.size)  # within a level: pure noise,
    pred = levels + 0.1 * rng.normal(size=levels.size)  # independent of the truth
    perm = rng.permutation(levels.size)
    flops, true, pred = flops[perm], true[perm], pred[perm]
    overall = rank_correlations(pred, true)["kendall_tau"]
    banded = banded_correlations(pred, true, flops, num_bands=5)
    assert overall > 0.7
    assert abs(banded["kendall_tau"]) < 0.06
    assert abs(banded["spearman"]) < 0.09
    assert [b["n"] for b in banded["bands"]] == [400] * 5
    assert [b["flops_lo"] for b in banded["bands"]] == [1e6, 2e6, 3e6, 4e6, 5e6]
    assert banded["kendall_tau"] == pytest.approx(np.mean([b["kendall_tau"] for b in banded["bands"]]))


def test_banded_tau_keeps_real_signal():
    rng = np.random.default_rng(2)
    flops = rng.uniform(1e6, 5e6, size=1000)
    true = rng.normal(size=1000)
    pred = true + 0.1 * rng.normal(size=1000)
    b = banded_correlations(pred, true, flops, num_bands=4)
    assert b["kendall_tau"] > 0.8 and len(b["bands"]) == 4
    assert b["bands"][0]["flops_hi"] <= b["bands"][1]["flops_lo"]
    assert sum(x["n"] for x in b["bands"]) == 1000


def test_top_k_overlap():
    true = [5, 4, 3, 2, 1]
    assert top_k_overlap(true, true, 2) == 1.0
    assert top_k_overlap([1, 2, 3, 4, 5], true, 2) == 0.0
    assert top_k_overlap([5, 1, 4, 2, 3], true, 2) == 0.5
    assert top_k_overlap([5, 1, 4, 2, 3], true, 10) == 1.0  # k clipped to n
    with pytest.raises(ValueError):
        top_k_overlap(true, true, 0)
