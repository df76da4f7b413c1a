"""Baselines beside every search result: largest-MACs, median and optimal architecture under the budget.

``TabularBenchmark.baselines`` against a brute force over every architecture of
real benchmarks, and the search / retrain tools (tiny CPU runs on real CIFAR-10)
writing them, printing them and plotting them.
"""
import json
import re
import subprocess
import sys

import pytest

from nasbench.config import load_config
from nasbench.errors import NasbenchError
from nasbench.spaces import build_space
from test_pipeline import CFG, REPO, run_tool, tiny_opts

CBM = "channel_bench_macro/mobilenet"


def brute_force(bench, lo, hi, flops_of=None):
    """The three baselines by plain loops over every record (no numpy, no arch_table)."""
    metric = bench.metric
    recs = {k: bench.query(k) for k in bench}
    flops = {k: (flops_of(k) if flops_of else r["flops"]) for k, r in recs.items()}
    feas = [k for k in recs if (lo is None or flops[k] >= lo) and (hi is None or flops[k] <= hi)]
    acc = {k: recs[k][metric] for k in recs}
    largest = min(feas, key=lambda k: (-flops[k], k))            # most MACs, then smallest key
    median = sorted(feas, key=lambda k: (acc[k], k))[(len(feas) - 1) // 2]  # lower median by accuracy
    optimum = min(feas, key=lambda k: (-acc[k], k))
    out = {}
    for name, k in (("largest_flops", largest), ("median", median), ("optimum", optimum)):
        out[name] = {"arch": k, "mean_acc": acc[k], "flops": flops[k],
                     "rank": 1 + sum(a > acc[k] for a in acc.values()), "regret": acc[optimum] - acc[k]}
    return out, feas


def assert_matches(got, want):
    assert set(got) == {"largest_flops", "median", "optimum"}
    for name, w in want.items():
        g = got[name]
        assert g["arch"] == w["arch"], name
        assert g["flops"] == w["flops"] and g["rank"] == w["rank"], name
        assert g["mean_acc"] == pytest.approx(w["mean_acc"], abs=1e-9), name
        assert g["regret"] == pytest.approx(w["regret"], abs=1e-9) and g["regret"] >= 0, name
    assert got["optimum"]["regret"] == 0


@pytest.mark.parametrize("name,window", [(CBM, (64e6, 80e6)), (CBM, (None, None)), (CBM, (0.0, 60e6)),
                                         ("nas_bench_macro", (None, 60e6))])
def test_baselines_match_brute_force(bench_of, name, window):
    bench = bench_of(name)
    got = bench.baselines(*window)
    want, feas = brute_force(bench, *window)
    assert_matches(got, want)
    for e in got.values():
        assert e["mean_acc"] == e[bench.metric] and isinstance(e["flops"], int) and isinstance(e["rank"], int)
    if window == (None, None):
        assert len(feas) == len(bench)


def test_baselines_quickstart_window(bench_of):
    """The 80M budget of the quickstart: four widths tie at the largest MACs; the smallest key is taken."""
    bench = bench_of(CBM)
    got = bench.baselines(64e6, 80e6)
    ties = sorted(k for k in bench if bench.query(k)["flops"] == got["largest_flops"]["flops"])
    assert len(ties) > 1 and got["largest_flops"]["arch"] == ties[0]
    assert len({bench.query(k)["mean_acc"] for k in ties}) > 1  # the rule matters: accuracy is not the tie-break
    assert got["largest_flops"]["flops"] <= 80e6 and got["median"]["flops"] >= 64e6
    # the optimum agrees with best() / summary() under the same window
    assert got["optimum"]["arch"] == bench.best(80e6, 64e6)[0]
    s = bench.summary(got["median"]["arch"], 80e6)
    assert s["rank"] == got["median"]["rank"] and s["regret"] == pytest.approx(got["median"]["regret"])


def test_baselines_count_flops_like_the_search_space(bench_of):
    """With ``space=``, feasibility uses ``space.flops`` (the search's budget check), not the recorded FLOPs."""
    bench = bench_of(CBM)
    space = build_space(load_config(CFG).space, num_classes=10)
    assert_matches(bench.baselines(64e6, 80e6, space=space), brute_force(bench, 64e6, 80e6)[0])

    class Doubled:  # a space that counts twice the MACs: the 80M window now holds the 32-40M archs
        def decode(self, key):
            return space.decode(key)

        def flops(self, arch):
            return 2 * space.flops(arch)

    got = bench.baselines(64e6, 80e6, space=Doubled())
    assert_matches(got, brute_force(bench, 64e6, 80e6, flops_of=lambda k: 2 * bench.query(k)["flops"])[0])
    assert all(32e6 <= bench.query(e["arch"])["flops"] <= 40e6 for e in got.values())


def test_baselines_without_flops(bench_of):
    """NATS-SSS has no FLOPs: no largest-MACs baseline, and a window is an error."""
    bench = bench_of("nats_sss")
    got = bench.baselines()
    assert got["largest_flops"] is None
    want, _ = brute_force(bench, None, None, flops_of=lambda k: 0)
    for name in ("median", "optimum"):
        assert got[name]["arch"] == want[name]["arch"] and got[name]["rank"] == want[name]["rank"]
        assert got[name]["mean_acc"] == got[name]["acc"] and got[name]["flops"] is None
    with pytest.raises(NasbenchError, match="FLOPs"):
        bench.baselines(None, 1e8)
    with pytest.raises(ValueError, match="no architecture"):
        bench_of(CBM).baselines(1, 2)


# ----------------------------------------------------------------------------- tools
def micro_opts(data_root):
    return tiny_opts(data_root) + ["train.max_steps=2", "data.train_size=128", "search.population=2",
                                   "search.topk=1", "search.mutation_num=1", "search.crossover_num=1",
                                   "search.epochs=1", "retrain.max_steps=1"]


@pytest.fixture(scope="module")
def runs(data_root, tmp_path_factory):
    """A tiny supernet, search and retrain laid out like scripts/quickstart.sh's runs/quickstart."""
    out = tmp_path_factory.mktemp("quickstart")
    opts = micro_opts(data_root)
    run_tool("train_supernet.py", "--cfg", CFG, "--out", out / "supernet", "--opts", *opts)
    s = run_tool("search.py", "--cfg", CFG, "--ckpt", out / "supernet/checkpoints/last.pth", "--out", out / "search",
                 "--opts", *opts)
    r = run_tool("retrain.py", "--cfg", CFG, "--arch", out / "search/result.json", "--out", out / "retrain",
                 "--opts", *opts)
    return out, s.stdout, r.stdout


def test_search_writes_baselines_table_and_plot(runs, bench_of):
    out, stdout, _ = runs
    res = json.loads((out / "search/result.json").read_text())
    budget = load_config(CFG).search.flops_budget
    bench = bench_of(CBM)
    assert_matches(res["baselines"], brute_force(bench, 0.8 * budget, budget)[0])
    assert res["benchmark"]["regret"] == pytest.approx(res["baselines"]["optimum"]["mean_acc"]
                                                       - res["benchmark"]["mean_acc"])
    rows = {l.split()[0]: l for l in stdout.splitlines() if re.match(r"^(found|largest|median|optimum)\s", l)}
    assert set(rows) == {"found", "largest", "median", "optimum"}
    assert res["arch"] in rows["found"] and f"{res['benchmark']['mean_acc']:.2f}" in rows["found"]
    for label, key in (("largest", "largest_flops"), ("median", "median"), ("optimum", "optimum")):
        e = res["baselines"][key]
        assert e["arch"] in rows[label] and f"{e['mean_acc']:.2f}" in rows[label]
        assert f"{e['rank']:,} of 16,384" in rows[label] and f"{e['regret']:.2f}" in rows[label]
    png = out / "search/search_baselines.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20000


def test_retrain_reports_benchmark_and_baselines(runs):
    out, _, stdout = runs
    s = json.loads((out / "search/result.json").read_text())
    r = json.loads((out / "retrain/result.json").read_text())
    assert r["arch"] == s["arch"] and r["benchmark"] == s["benchmark"] and r["baselines"] == s["baselines"]
    line = [l for l in stdout.splitlines() if l.startswith(f"{r['arch']}: retrained test top-1")]
    assert len(line) == 1 and f"{r['top1']:.2f}%" in line[0] and f"{r['benchmark']['mean_acc']:.2f}%" in line[0]
    assert f"largest MACs {s['baselines']['largest_flops']['mean_acc']:.2f}%" in line[0]
    assert re.search(r"test top-1 [\d.]+% \(benchmark mean_acc of this arch [\d.]+%\)", stdout)  # the log line


def test_quickstart_summary_says_whether_the_pick_beat_largest_macs(runs):
    """The final lines of scripts/quickstart.sh, run on the tiny runs' result files."""
    out, _, _ = runs
    script = (REPO / "scripts/quickstart.sh").read_text()
    code = script.split("<<'PY'\n", 1)[1].rsplit("\nPY", 1)[0]
    p = subprocess.run([sys.executable, "-", str(out)], input=code, capture_output=True, text=True, check=True)
    s = json.loads((out / "search/result.json").read_text())
    d = s["benchmark"]["mean_acc"] - s["baselines"]["largest_flops"]["mean_acc"]
    word = "the same as" if round(abs(d), 2) == 0 else ("BETTER than" if d > 0 else "WORSE than")
    line = [l for l in p.stdout.splitlines() if "largest width under the budget" in l]
    assert len(line) == 1 and word in line[0], p.stdout
    if word != "the same as":
        assert f"{abs(d):.2f} points {word}" in line[0]
    assert f"{s['baselines']['largest_flops']['mean_acc']:.2f}%)" in line[0]
