"""scripts/gpu_check.sh in its reduced CPU form, its method table, and CUDA requests without CUDA."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nasbench import gpu_check as G

REPO = Path(__file__).resolve().parents[1]
NO_CUDA = not torch.cuda.is_available()


def _script(*args, env=None, timeout=1800):
    return subprocess.run(["bash", "scripts/gpu_check.sh", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env or os.environ.copy())


def _tool(name, *args):
    return subprocess.run([sys.executable, f"tools/{name}.py", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))


# ----------------------------------------------------------------------------- the method table
def test_every_registered_algorithm_has_an_entry_on_both_devices():
    registered = G.registered_algorithms()
    assert {"bcnet", "autoslim", "uniform", "spos", "bnnas", "bnas_v2"} <= set(registered)
    for device in ("cpu", "cuda"):
        assert G.missing_algorithms(device=device) == [], (
            f"add these algorithms to VARIANTS in nasbench/gpu_check.py: {G.missing_algorithms(device=device)}")
    methods = [v.method for v in G.VARIANTS]
    assert len(set(methods)) == len(methods) and G.NCP_METHOD not in methods
    assert "bnas_v2_unrolled" in methods  # second order is listed, not left out while it is being written
    for v in G.VARIANTS:  # every config named in the table loads with its overrides
        cfg = G.load_cfg(v.cfg, v.opts)
        assert cfg.algorithm.type == v.algorithm, v.method
        for pc in v.paper:
            paper = G.load_cfg(pc.cfg, v.opts + pc.opts)
            assert paper.algorithm.type == v.algorithm and paper.data.batch_size % pc.gpus == 0, (v.method, pc.cfg)


def test_an_algorithm_without_an_entry_is_a_failed_row():
    rows = G.coverage_rows(registered=G.registered_algorithms() + ["unregistered_method"])
    assert [r["method"] for r in rows] == ["unregistered_method"]
    assert rows[0]["passed"] is False and "VARIANTS" in rows[0]["reason"]


def test_tiny_imagefolder(tmp_path):
    from nasbench.data import load_imagefolder
    root = G.make_tiny_imagefolder(tmp_path / "f", classes=3, train_per_class=5, val_per_class=2, size=16)
    train, val = load_imagefolder(root / "train"), load_imagefolder(root / "val")
    assert train.images.shape == (15, 3, 16, 16) and val.images.shape == (6, 3, 16, 16)
    assert train.classes == val.classes == ["c0", "c1", "c2"]
    # class k is one mean colour: per-class means differ far more than the noise of a mean
    means = torch.stack([train.images[train.targets == k].float().mean((0, 2, 3)) for k in range(3)])
    assert float(torch.cdist(means, means).max()) > 20
    stamp = (root / ".complete").stat().st_mtime_ns
    G.make_tiny_imagefolder(tmp_path / "f", classes=3, train_per_class=5, val_per_class=2, size=16)
    assert (root / ".complete").stat().st_mtime_ns == stamp  # reused, not rewritten


# ----------------------------------------------------------------------------- the CPU run
@pytest.fixture(scope="module")
def cpu_run(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    p = _script("--device", "cpu", "--out", out, "--precisions", "fp32", "--data-root", data_root)
    return p, out


def test_cpu_run_covers_every_method_and_passes(cpu_run):
    p, out = cpu_run
    assert p.returncode == 0, (p.stdout[-4000:], p.stderr[-3000:])
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["device"] == "cpu" and isinstance(report["results"], list)
    rows = report["results"]
    for r in rows:
        assert isinstance(r["method"], str) and isinstance(r["precision"], str) and isinstance(r["passed"], bool)
    assert {r["algorithm"] for r in rows} >= set(G.registered_algorithms()) | {G.NCP_METHOD}
    assert [r["method"] for r in rows] == [v.method for v in G.VARIANTS if "cpu" in v.devices] + [G.NCP_METHOD]
    for r in rows:
        if r["skipped"]:  # only a refusal as "not implemented" may skip (BNAS-v2 second order, until it lands)
            assert not r["passed"] and "not implemented" in r["reason"], r
            continue
        assert r["passed"], (r["method"], r["reason"])
        if r["method"] == G.NCP_METHOD:
            assert set(r["checks"]) == {"train_predictor", "ncp"}
            continue
        c = r["checks"]
        assert {"train", "search", "retrain", "agreement"} <= set(c), r["method"]
        tr = c["train"]
        assert tr["losses_finite"] and tr["optimizer_stepped"] and tr["steps_logged"] == G.BUDGETS["cpu"].steps
        assert tr["loss_decreased"] or not tr["decrease_gated"]
        assert r["steps_per_s"] > 0 and r["tolerance_met"] is True
        variant = next(v for v in G.VARIANTS if v.method == r["method"])
        agree = c["agreement"]["configs"]
        assert {a["config"] for a in agree} == {variant.cfg} | {pc.cfg for pc in variant.paper}
        assert all(a["max_error"] <= G.AGREEMENT_TOL for a in agree)
        tp = r["throughput"]
        assert len(tp) == 2 * len(variant.paper) and all(t["passed"] and t["img_per_s"] > 0 for t in tp)
        assert {t["channels_last"] for t in tp} == ({False, True} if variant.paper else set())
        if variant.paper:
            assert r["img_per_s"] > 0 and r["img_per_s_channels_last"] > 0
    first = rows[0]
    assert first["checks"]["resume"]["passed"]  # resume (RNG and scaler state) on the first method
    log = Path(first["checks"]["train"]["log"]).read_text()
    assert "torch.distributed.run" in log  # the first method's training goes through torchrun
    table = (out / "gpu_check.txt").read_text()
    assert table in p.stdout and "bnas_v2_unrolled" in table


def test_a_failing_method_makes_the_script_exit_nonzero(data_root, tmp_path):
    p = _script("--device", "cpu", "--out", tmp_path, "--precisions", "fp32", "--methods", "uniform",
                "--inject-failure", "uniform", "--data-root", data_root)
    assert p.returncode == 1, (p.stdout[-3000:], p.stderr[-3000:])
    (row,) = json.loads((tmp_path / "gpu_check.json").read_text())["results"]
    assert row["method"] == "uniform" and row["passed"] is False and not row["skipped"]
    assert "FloatingPointError" in row["checks"]["train"]["error"] and "train:" in row["reason"]
    assert "FAIL" in p.stdout


def test_bad_arguments_are_one_error_line(tmp_path):
    p = _script("--device", "cpu", "--out", tmp_path / "a", "--precisions", "fp16")
    assert p.returncode == 2 and p.stderr.startswith("error: --precisions fp16 needs CUDA")
    p = _script("--device", "cpu", "--out", tmp_path / "b", "--methods", "bossnas")
    assert p.returncode == 2 and "unknown method 'bossnas'" in p.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ----------------------------------------------------------------------------- CUDA requests without CUDA
@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_gpu_check_on_cuda_without_cuda_writes_nothing(tmp_path):
    p = _script("--device", "cuda", "--out", tmp_path / "gc")
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("error: --device cuda: CUDA is not available on this machine") and \
        len(p.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "gc").exists()


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("opts,needle", [
    (["device=cuda"], "device 'cuda' was requested but CUDA is not available"),
    (["device=cpu", "train.amp=fp16"], "train.amp=fp16 (float16 autocast with a GradScaler) needs a CUDA device, "
                                       "but CUDA is not available"),
    (["device=auto", "train.amp=fp16"], "train.amp=fp16"),
    (["train.amp=fp8"], "'train.amp' in --opts must be one of ['none', 'fp32', 'no', 'bf16', 'fp16'], got 'fp8'"),
])
def test_train_supernet_refuses_cuda_requests_before_writing(opts, needle, tmp_path):
    out = tmp_path / "run"
    p = _tool("train_supernet", "--cfg", "configs/bcnet/cbm_mobilenet_cpu.yaml", "--out", out, "--opts", *opts)
    assert p.returncode == 2 and p.stderr.startswith("error: ") and needle in p.stderr, p.stderr[-2000:]
    assert len(p.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")
def test_search_and_retrain_refuse_fp16_on_cpu_before_writing(cpu_run, data_root, bench_root, tmp_path):
    _, run = cpu_run
    cfg = "configs/bcnet/cbm_mobilenet_cpu.yaml"
    ckpt = run / "bcnet" / "fp32" / "train" / "checkpoints" / "last.pth"
    assert ckpt.is_file()
    p = _tool("search", "--cfg", cfg, "--ckpt", ckpt, "--out", tmp_path / "s", "--opts", "train.amp=fp16")
    assert p.returncode == 2 and "train.amp=fp16" in p.stderr and "needs a CUDA device" in p.stderr, p.stderr
    p = _tool("retrain", "--cfg", cfg, "--arch", "4432214", "--out", tmp_path / "r", "--opts", "retrain.amp=fp16")
    assert p.returncode == 2 and "retrain.amp=fp16" in p.stderr, p.stderr
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()
    # the BN indicator evaluates without autocast: searching a BN-NAS supernet of an fp16 config on a CPU works
    p = _tool("search", "--cfg", "configs/bnnas/nas_bench_macro_cpu.yaml", "--ckpt",
              run / "bnnas" / "fp32" / "train" / "checkpoints" / "last.pth", "--out", tmp_path / "b",
              "--opts", "train.amp=fp16", f"data.root={data_root}", f"benchmark.root={bench_root}", "search.epochs=2")
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads((tmp_path / "b" / "result.json").read_text())["evaluator"] == "bn_indicator"


def test_check_amp_allows_what_the_device_runs():
    from nasbench.config import load_config
    from nasbench.errors import ConfigError
    from nasbench.pipeline import check_amp
    cfg = load_config(REPO / "configs/bcnet/cbm_mobilenet_cpu.yaml", ["train.amp=bf16", "retrain.amp=fp16"])
    check_amp(cfg, "cpu", "train.amp")  # bf16 autocasts on CPU
    with pytest.raises(ConfigError, match="retrain.amp=fp16"):
        check_amp(cfg, "cpu", "retrain.amp")
    if not NO_CUDA:
        check_amp(cfg, "cuda", "train.amp", "retrain.amp")
    assert math.isfinite(G.AGREEMENT_TOL)
