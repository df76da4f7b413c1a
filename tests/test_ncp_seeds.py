"""NCP over several seeded starts: tools/ncp.py --seeds S, nasbench.predictors.ncp.propagate_seeds / summarize_runs."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nasbench.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
NB201 = "nas_bench_201/imagenet16_120"
CFG = str(REPO / "configs" / "ncp" / "nas_bench_201.yaml")

torch.set_num_threads(1)


def _tool():
    spec = importlib.util.spec_from_file_location("ncp_tool", REPO / "tools" / "ncp.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def nb201(bench_of):
    return bench_of(NB201)


@pytest.fixture(scope="module")
def nb201_predictor(nb201, tmp_path_factory):
    """A predictor trained for 3 epochs on 3000 NB201 cells, saved like tools/train_predictor.py does."""
    from nasbench.predictors.ncp import benchmark_records
    from nasbench.predictors import save_predictor, train_predictor
    recs = benchmark_records(nb201)
    sub = [recs[i] for i in np.random.default_rng(0).choice(len(recs), 3000, replace=False)]
    model, _ = train_predictor(sub, [["acc"], ["flops_m", "params_m"]], epochs=3, seed=0)
    path = tmp_path_factory.mktemp("pred") / "predictor.pth"
    save_predictor(path, model, benchmark=NB201, main_metric="acc", flops_metric="flops_m")
    return path


@pytest.fixture(scope="module")
def seg_runs(bench_root):
    """propagate_seeds on NAS-Bench-MR seg: edited codes are mostly not in the benchmark (true metrics None)."""
    from nasbench.predictors.ncp import benchmark_records, coding_for, default_metric_groups, load_bench, propagate_seeds
    from nasbench.predictors import train_predictor
    seg = load_bench("nas_bench_mr/seg", bench_root)
    model, _ = train_predictor(benchmark_records(seg), default_metric_groups(seg), epochs=3, seed=0)
    return propagate_seeds([("seg", model, "mIoU")], coding_for(seg), seg, 4, iterations=15,
                           flops_lambda=0.5, flops_metric="flops_g", benchmarks={"seg": seg})


def _read(p):
    return json.loads(Path(p).read_text())


def _mean(values):
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def test_tool_seeds(nb201_predictor, bench_root, tmp_path, capsys):
    tool = _tool()
    common = ["--cfg", CFG, "--predictor", str(nb201_predictor), "--root", str(bench_root), "--iterations", "4"]
    out = tmp_path / "ncp"
    tool.main(common + ["--out", str(out), "--seeds", "3"])
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["seed_0", "seed_1", "seed_2", "summary.json"]
    results = []
    for i in range(3):
        traj = _read(out / f"seed_{i}" / "trajectory.json")
        res = _read(out / f"seed_{i}" / "result.json")
        assert len(traj) == 5 and res["seed"] == i and res["start_mode"] == "seed"
        assert res["start"]["code"] == traj[0]["code"] and res["final"]["code"] == traj[-1]["code"]
        results.append(res)

    summary = _read(out / "summary.json")
    assert summary["label"] == NB201 and summary["metric"] == "acc"
    assert summary["settings"]["iterations"] == 4 and len(summary["runs"]) == 3
    for row, res in zip(summary["runs"], results):
        m = res["main"][NB201]
        assert row["seed"] == res["seed"] and row["start_code"] == res["start"]["code"]
        assert row["chosen_code"] == res["chosen"]["code"] and row["final_code"] == res["final"]["code"]
        assert (row["start_pred"], row["chosen_pred"]) == (m["start_pred"], m["chosen_pred"])
        assert (row["start_true"], row["chosen_true"]) == (m["start_true"], m["chosen_true"])
        assert row["start_true"] is not None and row["chosen_true"] is not None  # every NB201 cell is in the benchmark
        assert row["improved"] == (m["chosen_true"] > m["start_true"])
        assert row["flops_source"] == "true"
        assert row["flops_change_pct"] == pytest.approx(100 * res["flops_change"]["relative"])
        assert row["flops_change_pct"] == pytest.approx(100 * (row["flops_chosen"] / row["flops_start"] - 1))
    mean = summary["mean"]
    for key, get in (("start_true", lambda r: r["main"][NB201]["start_true"]),
                     ("chosen_true", lambda r: r["main"][NB201]["chosen_true"]),
                     ("start_pred", lambda r: r["main"][NB201]["start_pred"]),
                     ("chosen_pred", lambda r: r["main"][NB201]["chosen_pred"]),
                     ("in_benchmark_true", lambda r: r["main_in_benchmark"][NB201]),
                     ("flops_change_pct", lambda r: 100 * r["flops_change"]["relative"])):
        assert mean[key] == pytest.approx(np.mean([get(r) for r in results])), key
    assert mean["num_seeds"] == mean["num_true_pairs"] == mean["num_start_true"] == 3
    assert mean["num_improved"] == sum(r["main"][NB201]["chosen_true"] > r["main"][NB201]["start_true"]
                                       for r in results)
    # the printed table: header, rule, 3 seeds, mean, note
    lines = printed.splitlines()
    assert lines[0].split()[:2] == ["seed", "start"]
    rows = {ln.split()[0]: ln for ln in lines[2:6]}
    assert list(rows) == ["0", "1", "2", "mean"]
    for i in range(3):
        assert results[i]["start"]["code"] in rows[str(i)] and results[i]["chosen"]["code"] in rows[str(i)]
    assert f"{mean['num_improved']}/3" in rows["mean"] and f"{mean['start_true']:.2f}" in rows["mean"]

    # seed i of --seeds is exactly the run of --seed i
    for i in range(3):
        single = tmp_path / f"single{i}"
        tool.main(common + ["--out", str(single), "--seed", str(i)])
        res = _read(single / "result.json")
        assert res["start"]["code"] == results[i]["start"]["code"]
        assert res == results[i]
        assert _read(single / "trajectory.json") == _read(out / f"seed_{i}" / "trajectory.json")
    capsys.readouterr()


def test_tool_seeds_bad_arguments(nb201_predictor, bench_root, tmp_path, capsys):
    tool = _tool()
    common = ["--cfg", CFG, "--predictor", str(nb201_predictor), "--root", str(bench_root), "--out", str(tmp_path)]
    for extra in (["--seeds", "2", "--seed", "1"], ["--seeds", "2", "--start", "x"]):
        with pytest.raises(SystemExit) as e:
            tool.main(common + extra)
        assert e.value.code == 2 and "not allowed with" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # checked by the argument's type, before anything runs
        tool.main(common + ["--seeds", "0", "--iterations", "1"])
    assert e.value.code == 2 and "--seeds: expected an integer >= 1, got '0'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_seeds_with_unknown_true_metrics(seg_runs):
    """NAS-Bench-MR: means are over the seeds where a value is known; FLOPs change falls back to predicted."""
    runs, summary = seg_runs
    results = [r for _, r in runs]
    assert [r["seed"] for r in results] == [0, 1, 2, 3] and summary["metric"] == "mIoU"
    rows = summary["runs"]
    for row, r in zip(rows, results):
        assert row["start_true"] is not None  # seeded starts come from the benchmark
        fc = r["flops_change"]
        if fc["source"] == "true":
            assert row["flops_source"] == "true" and row["chosen_true"] is not None
            assert row["flops_change_pct"] == pytest.approx(100 * fc["relative"])
        else:
            assert row["flops_source"] == "predicted"
            assert row["flops_change_pct"] == pytest.approx(100 * fc["relative_pred"])
        if row["chosen_true"] is None:
            assert row["improved"] is None
    mean = summary["mean"]
    for key in ("start_true", "chosen_true", "start_pred", "chosen_pred", "flops_change_pct", "in_benchmark_true"):
        want = _mean(row[key] for row in rows)
        assert (mean[key] is None and want is None) or mean[key] == pytest.approx(want), key
    assert mean["num_chosen_true"] == sum(row["chosen_true"] is not None for row in rows)
    assert mean["num_true_pairs"] == sum(row["improved"] is not None for row in rows)
    assert mean["num_improved_pred"] == sum(row["chosen_pred"] > row["start_pred"] for row in rows)
    assert json.loads(json.dumps(summary)) == summary  # JSON-safe


def test_infeasible_max_flops_and_table(seg_runs):
    from nasbench.predictors.ncp import format_summary_table, summarize_runs
    _, summary = seg_runs
    results = [dict(r) for _, r in seg_runs[0]]
    results[1].update(chosen=None, flops_change=None, chosen_in_benchmark=None,
                      main={k: dict(v, chosen_true=None, chosen_pred=None) for k, v in results[1]["main"].items()},
                      main_in_benchmark={k: None for k in results[1]["main_in_benchmark"]})
    s = summarize_runs(results)
    row = s["runs"][1]
    assert row["chosen_code"] is None and row["flops_change_pct"] is None and row["improved"] is None
    assert s["mean"]["num_flops_change"] == 3 and s["mean"]["start_true"] == summary["mean"]["start_true"]
    table = format_summary_table(s).splitlines()
    assert len(table) == 2 + 4 + 1 + 1 and table[-2].startswith("mean")
    assert table[3].split()[:3] == ["1", results[1]["start"]["code"], "-"]


def test_seeded_start_and_seed_validation(nb201):
    from nasbench.predictors.ncp import propagate_seeds, seeded_start
    keys = list(nb201)
    for s in (0, 1, 7):
        assert nb201.space.encode(seeded_start(nb201, s)) == keys[int(np.random.default_rng(s).integers(len(keys)))]
    with pytest.raises(ConfigError, match=">= 0"):
        seeded_start(nb201, -1)
    for bad, match in ((0, ">= 1"), ([], "no seed"), ([1, 1], "repeated")):
        with pytest.raises(ConfigError, match=match):
            propagate_seeds([("x", None, "acc")], None, nb201, bad)
