"""End to end on real CIFAR-10 with tiny budgets: the three tools plus rank_eval, resume and bad input."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nasbench.config import load_config
from nasbench.engine.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "configs/bcnet/cbm_mobilenet_cpu.yaml"


def tiny_opts(data_root):
    return [f"data.root={data_root}", "data.train_size=256", "data.val_size=100", "data.test_size=100",
            "data.batch_size=32", "data.eval_batch_size=100", "train.max_steps=4", "train.log_interval=2",
            "train.ckpt_interval=2", "eval.recal_batches=1", "eval.recal_batch_size=32",
            "search.population=4", "search.topk=2", "search.mutation_num=2", "search.crossover_num=2",
            "search.epochs=2", "search.prior_steps=50", "retrain.max_steps=3", "retrain.log_interval=1"]


def run_tool(tool, *args, env_extra=None, check=True):
    env = dict(os.environ, **(env_extra or {}))
    p = subprocess.run([sys.executable, str(REPO / "tools" / tool), *map(str, args)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=900)
    if check and p.returncode != 0:
        raise AssertionError(f"{tool} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


@pytest.fixture(scope="module")
def trained(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("supernet")
    run_tool("train_supernet.py", "--cfg", CFG, "--out", out, "--opts", *tiny_opts(data_root))
    return out


def test_train_supernet_outputs(trained):
    assert (trained / "config.yaml").is_file() and (trained / "checkpoints/last.pth").is_file()
    lines = [json.loads(l) for l in (trained / "log.jsonl").read_text().splitlines()]
    assert any("loss" in str(l) for l in lines)
    cfg = load_config(trained / "config.yaml")
    assert cfg.train.max_steps == 4 and cfg.algorithm.type == "bcnet"
    fair = json.loads((trained / "fairness.json").read_text())
    assert len(fair["max_min_ratio"]) == 7
    state = load_checkpoint(trained / "checkpoints/last.pth")
    assert state["step"] == 4 and len(state["algorithm"]["records"]) == 4


def test_search_retrain_rank_eval(trained, data_root, tmp_path):
    opts = tiny_opts(data_root)
    ckpt = trained / "checkpoints/last.pth"
    sdir = tmp_path / "search"
    run_tool("search.py", "--cfg", CFG, "--ckpt", ckpt, "--out", sdir, "--opts", *opts)
    res = json.loads((sdir / "result.json").read_text())
    assert len(res["arch"]) == 7 and isinstance(res["flops"], int) and isinstance(res["params"], int)
    budget = load_config(CFG).search.flops_budget
    assert 0.8 * budget <= res["flops"] <= budget
    b = res["benchmark"]
    assert b["name"] == "channel_bench_macro/mobilenet" and 1 <= b["rank"] <= 16384
    assert b["regret"] >= 0 and 0 < b["mean_acc"] < 100 and 0 <= res["score"] <= 100
    assert all(0.8 * budget <= h["flops"] <= budget for h in res["history"])

    rdir = tmp_path / "retrain"
    run_tool("retrain.py", "--cfg", CFG, "--arch", sdir / "result.json", "--out", rdir, "--opts", *opts)
    rr = json.loads((rdir / "result.json").read_text())
    assert rr["arch"] == res["arch"] and rr["params"] == res["params"] and rr["flops"] == res["flops"]
    assert 0 <= rr["top1"] <= 100 and rr["test_images"] == 100

    edir = tmp_path / "rank"
    run_tool("rank_eval.py", "--cfg", CFG, "--ckpt", ckpt, "--num-archs", 6, "--out", edir, "--opts", *opts)
    rk = json.loads((edir / "rank.json").read_text())
    for k in ("kendall_tau", "spearman", "pearson", "flops_proxy_kendall_tau", "banded_kendall_tau"):
        assert k in rk
    assert -1 <= rk["flops_proxy_kendall_tau"] <= 1 and len(rk["archs"]) == 6
    assert (edir / "rank_scatter.png").stat().st_size > 1000


def test_resume_matches_uninterrupted(data_root, tmp_path):
    from nasbench.pipeline import train_supernet
    opts = tiny_opts(data_root) + ["train.ckpt_interval=100", "data.train_size=128"]
    cfg = load_config(CFG, opts)
    train_supernet(cfg, tmp_path / "a")
    train_supernet(cfg, tmp_path / "b", stop_after=2)
    assert load_checkpoint(tmp_path / "b/checkpoints/last.pth")["step"] == 2
    train_supernet(cfg, tmp_path / "b", resume=True)
    a = load_checkpoint(tmp_path / "a/checkpoints/last.pth")
    b = load_checkpoint(tmp_path / "b/checkpoints/last.pth")
    assert a["step"] == b["step"] == 4
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert a["algorithm"]["records"] == b["algorithm"]["records"]


def _assert_clean_error(p, *needles):
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    lines = [l for l in p.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), p.stderr[-2000:]
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.parametrize("arch", ["443221", "4432215"])
def test_bad_arch_is_one_clear_error(arch, data_root, tmp_path):
    out = tmp_path / "r"
    p = run_tool("retrain.py", "--cfg", CFG, "--arch", arch, "--out", out,
                 "--opts", *tiny_opts(data_root), check=False)
    _assert_clean_error(p, arch)
    assert not out.exists()


def test_unknown_config_key_is_one_clear_error(tmp_path):
    p = run_tool("train_supernet.py", "--cfg", CFG, "--out", tmp_path / "x", "--opts", "train.lrr=0.1", check=False)
    _assert_clean_error(p, "train.lrr", "--opts")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"_base_: {CFG}\nsearch:\n  populaton: 3\n")
    p = run_tool("train_supernet.py", "--cfg", bad, "--out", tmp_path / "x", check=False)
    _assert_clean_error(p, "search.populaton", str(bad))
    assert not (tmp_path / "x").exists()


def test_truncated_checkpoint_is_one_clear_error(trained, data_root, tmp_path):
    ckpt = tmp_path / "trunc.pth"
    data = (trained / "checkpoints/last.pth").read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    out = tmp_path / "s"
    p = run_tool("search.py", "--cfg", CFG, "--ckpt", ckpt, "--out", out, "--opts", *tiny_opts(data_root),
                 check=False)
    _assert_clean_error(p, str(ckpt))
    assert not out.exists()


def test_missing_data_root_is_one_clear_error(tmp_path):
    env = {"NASBENCH_MIRROR": str(tmp_path / "no_mirror"), "NASBENCH_OFFLINE": "1"}
    out = tmp_path / "o"
    p = run_tool("train_supernet.py", "--cfg", CFG, "--out", out, "--opts", f"data.root={tmp_path / 'empty'}",
                 env_extra=env, check=False)
    _assert_clean_error(p, "cifar10")
    assert not out.exists()
