"""The budget curve tool (issue 11.3): points trained at several budgets, ranked and
searched, the curve written, a cut-short curve resumed without retraining, and bad
input refused before anything is written. Tiny CPU runs on real CIFAR-10."""
import json

import pytest

from test_pipeline import CFG, REPO, run_tool, tiny_opts

AUTOSLIM = REPO / "configs/bcnet/cbm_mobilenet_autoslim_cpu.yaml"


def curve_args(data_root, out, *extra):
    opts = [o for o in tiny_opts(data_root) if not o.startswith(("train.max_steps", "data.train_size"))]
    return ["--cfgs", CFG, AUTOSLIM, "--labels", "BCNet", "AutoSlim", "--epochs", "1", "2", "--train-size", "64",
            "--num-archs", "6", "--out", out, "--opts", *opts, "data.batch_size=32", *extra]


@pytest.fixture(scope="module")
def curve(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("curve")
    p = run_tool("budget_curve.py", *curve_args(data_root, out, "--reference", "published=0.539"))
    return out, p


def test_points_and_curve(curve):
    out, p = curve
    data = json.loads((out / "curve.json").read_text())
    pts = data["points"]
    assert [(q["label"], q["epochs"]) for q in pts] == [("BCNet", 1), ("AutoSlim", 1), ("BCNet", 2), ("AutoSlim", 2)]
    for q in pts:
        assert q["train_images"] == 64 and q["images_seen"] == 64 * q["epochs"]
        assert q["num_archs"] == 6 and -1 <= q["kendall_tau"] <= 1 and -1 <= q["flops_proxy_kendall_tau"] <= 1
        assert q["found"]["regret"] >= 0 and q["largest_flops"]["regret"] >= 0
        assert q["found"]["arch"] == json.loads((out / q["label"] / f"e{q['epochs']}" / "search" /
                                                 "result.json").read_text())["arch"]
        steps = [json.loads(line)["step"] for line in
                 (out / q["label"] / f"e{q['epochs']}" / "supernet" / "log.jsonl").read_text().splitlines()]
        assert max(steps) == 2 * q["epochs"]  # a full schedule of that many epochs: 64 images / batch 32
    # the same architectures for every point: the proxy's tau cannot differ between points
    assert len({round(q["flops_proxy_kendall_tau"], 12) for q in pts}) == 1
    assert data["reference_tau"] == {"published": 0.539}
    assert (out / "curve.png").stat().st_size > 10_000
    assert "largest-MACs regret" in p.stdout and p.stdout.count("\nBCNet") == 2


def test_resume_reuses_finished_phases(curve, data_root):
    out, _ = curve
    point = out / "AutoSlim" / "e2"
    ckpt = point / "supernet" / "checkpoints" / "last.pth"
    before = {f: f.stat().st_mtime_ns for f in (ckpt, point / "rank" / "rank.json")}
    old = json.loads((point / "point.json").read_text())
    (point / "point.json").unlink()
    (point / "search" / "result.json").unlink()  # as if killed during the search
    run_tool("budget_curve.py", *curve_args(data_root, out))
    assert {f: f.stat().st_mtime_ns for f in before} == before  # neither retrained nor re-ranked
    new = json.loads((point / "point.json").read_text())
    assert new["found"] == old["found"] and new["kendall_tau"] == old["kendall_tau"]


@pytest.mark.parametrize("extra,msg", [(["--epochs", "2", "1"], "increasing"), (["--epochs", "0"], "increasing"),
                                       (["--num-archs", "1"], "--num-archs"), (["--labels", "a"], "--labels")])
def test_bad_input_writes_nothing(data_root, tmp_path, extra, msg):
    out = tmp_path / "c"
    p = run_tool("budget_curve.py", *curve_args(data_root, out), *extra, check=False)
    assert p.returncode == 2 and msg in p.stderr and p.stderr.count("\n") == 1 and not out.exists()


def test_plot_only(curve, tmp_path):
    out, _ = curve
    (out / "curve.png").unlink()
    p = run_tool("budget_curve.py", "--cfgs", CFG, "--plot-only", "--out", out)
    assert (out / "curve.png").is_file() and "AutoSlim" in p.stdout
    p = run_tool("budget_curve.py", "--cfgs", CFG, "--plot-only", "--out", tmp_path, check=False)
    assert p.returncode == 2 and "no finished budget-curve point" in p.stderr
