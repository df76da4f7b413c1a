"""NAS-Bench-MR space/loader, NCP's MLP predictor and network coding propagation (fast, CPU)."""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nasbench.errors import ArchError, ConfigError, NasbenchError
from nasbench.spaces.nas_bench_mr import CODE_LEN, MIDDLE_CODE, NASBenchMRSpace, round_code

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = "32_16-1_1_1_32-3_2_3_2_16_32-1_3_1_1_1_112_48_32-2_4_4_3_4_2_32_64_32_112-128"

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def seg(bench_of):
    return bench_of("nas_bench_mr/seg")


@pytest.fixture(scope="module")
def nb201(bench_of):
    return bench_of("nas_bench_201/imagenet16_120")


@pytest.fixture(scope="module")
def seg_predictor(seg):
    from nasbench.predictors.ncp import benchmark_records, default_metric_groups
    from nasbench.predictors import train_predictor
    model, info = train_predictor(benchmark_records(seg), default_metric_groups(seg), epochs=15, seed=0)
    return model, info


# -- space ----------------------------------------------------------------------------------
def test_space_layout_and_example():
    s = NASBenchMRSpace("seg")
    assert s.num_genes == CODE_LEN == 27
    code = s.decode(EXAMPLE)
    assert code[:2] == (32, 16) and code[-1] == 128
    st = s.to_setting(code)
    assert st["network_setting"][:4] == [[1, [1], [32]], [2, [3, 2], [16, 32]], [2, [3, 2], [16, 32]],
                                         [2, [3, 2], [16, 32]]]
    assert len(st["network_setting"]) == 1 + 3 + 1 + 2
    assert s.encode(code) == EXAMPLE
    assert s.validate(MIDDLE_CODE) == MIDDLE_CODE
    import torch
    with torch.device("meta"):
        net = s.build(code)
    assert sum(p.numel() for p in net.parameters()) == s.params(code)


def test_round_trips_all_keys(seg, bench_root):
    from nasbench.benchmarks.pickle_io import load_pickle
    s = seg.space
    items = load_pickle(bench_root / "nas_bench_mr" / "seg" / "trainval.pkl")
    assert len(seg) == len(items) == 2507 and seg.duplicates == []
    for key in seg:
        code = s.decode(key)
        assert s.encode(code) == key
        st = s.to_setting(code)
        assert s.from_setting(st["input_channel"], st["network_setting"], st["last_channel"]) == code
    for it in items[:200]:
        k = s.encode(it["embedding"])
        assert s.to_setting(k)["network_setting"] == it["inverted_residual_setting"]
    assert seg.metric == "mIoU" and seg.metrics == ["mIoU", "mAcc", "aAcc"]
    r = seg.query(next(iter(seg)))
    assert r["flops"] == int(round(r["flops_g"] * 1e9)) and r["params"] == int(round(r["params_m"] * 1e6))


def test_search_list_parses(bench_root):
    s = NASBenchMRSpace()
    lines = [ln.strip() for ln in open(bench_root / "nas_bench_mr" / "search_list.txt") if ln.strip()]
    assert len(lines) >= 2500
    for ln in lines:
        assert s.encode(s.decode(ln)) == ln


@pytest.mark.parametrize("bad, match", [
    ("32_16-1_1_1_32", "groups"),
    ("32-1_1_1_32-3_2_3_2_16_32-1_3_1_1_1_112_48_32-2_4_4_3_4_2_32_64_32_112-128", "in0_in1"),
    ("32_16-1_2_1_32-3_2_3_2_16_32-1_3_1_1_1_112_48_32-2_4_4_3_4_2_32_64_32_112-128", "branch count"),
    ("32_16-1_1_1_32-3_2_3_16_32-1_3_1_1_1_112_48_32-2_4_4_3_4_2_32_64_32_112-128", "expected 6"),
    ("32_x-1_1_1_32-3_2_3_2_16_32-1_3_1_1_1_112_48_32-2_4_4_3_4_2_32_64_32_112-128", "not '_'-separated"),
    ("36_16-1_1_1_32-3_2_3_2_16_32-1_3_1_1_1_112_48_32-2_4_4_3_4_2_32_64_32_112-128", r"gene 0 \(in0"),
    ("32_16-5_1_1_32-3_2_3_2_16_32-1_3_1_1_1_112_48_32-2_4_4_3_4_2_32_64_32_112-128", r"gene 2 \(n1"),
    ("32_16-1_1_1_32-3_2_3_2_16_32-1_3_1_1_1_112_48_32-2_4_4_3_4_2_32_64_32_112-136", r"gene 26 \(last"),
    (12, "not a string"),
])
def test_malformed_codes(bad, match):
    with pytest.raises(ArchError, match=match):
        NASBenchMRSpace().decode(bad)


def test_validate_and_round():
    s = NASBenchMRSpace()
    with pytest.raises(ArchError, match="expected 27"):
        s.validate([8] * 26)
    with pytest.raises(ArchError, match=r"gene 3 \(c1_1"):
        s.validate(list(MIDDLE_CODE[:3]) + [0] + list(MIDDLE_CODE[4:]))
    v = np.array(MIDDLE_CODE, dtype=float) + np.random.default_rng(0).normal(0, 40, CODE_LEN)
    assert s.validate(round_code(v)) == round_code(v)


def _write(tmp_path, setting, obj, raw=None):
    d = tmp_path / "nas_bench_mr" / setting
    d.mkdir(parents=True)
    with open(d / "trainval.pkl", "wb") as f:
        f.write(raw if raw is not None else pickle.dumps(obj))
    return tmp_path


def test_bad_pickles(tmp_path, monkeypatch):
    from nasbench.predictors.ncp import load_bench
    monkeypatch.delenv("NASBENCH_MIRROR", raising=False)
    good = {"embedding": list(MIDDLE_CODE), "moderate": 70.0, "flops": 1.5, "params": 2.0}
    cases = {
        "notlist": ({"a": 1}, "list of records"),
        "evil": (None, "refusing to unpickle"),
        "trunc": (None, "not a readable"),
        "bademb": ([dict(good, embedding=[8] * 27)], r"bad embedding.*gene 2 \(n1"),
        "nometric": ([{"embedding": list(MIDDLE_CODE), "flops": 1.0, "params": 1.0}], "no numeric metric"),
        "noflops": ([{"embedding": list(MIDDLE_CODE), "moderate": 1.0, "params": 1.0}], "'flops'"),
        "badsetting": ([dict(good, input_channel=[64, 64], last_channel=64,
                             inverted_residual_setting=[[1, [2], [64]]])], "does not match"),
    }
    for name, (obj, match) in cases.items():
        raw = None
        if name == "evil":
            raw = pickle.dumps(os.system)
        elif name == "trunc":
            raw = pickle.dumps([good])[:10]
        root = _write(tmp_path / name, name, obj, raw)
        with pytest.raises(NasbenchError, match=match):
            load_bench(f"nas_bench_mr/{name}", root)
    # a new setting with an unseen metric (3ddet-like) loads without code change; duplicates are reported
    other = dict(good, embedding=list(MIDDLE_CODE[:-1]) + [8], moderate=60.0)
    root = _write(tmp_path / "ok", "3ddet", [good, other, dict(good, moderate=1.0)])
    with pytest.warns(UserWarning, match="repeat"):
        b = load_bench("nas_bench_mr/3ddet", root)
    assert b.metric == "moderate" and len(b) == 2 and len(b.duplicates) == 1
    assert b.query(MIDDLE_CODE)["moderate"] == 70.0 and b.query(MIDDLE_CODE)["flops"] == 1_500_000_000


def test_config_validation(tmp_path):
    from nasbench.predictors.ncp import load_ncp_config
    p = tmp_path / "c.yaml"
    p.write_text("benchmark: {name: nas_bench_mr/seg}\nncp: {iterations: 5, lamda: 1}\n")
    with pytest.raises(ConfigError, match="ncp.lamda"):
        load_ncp_config(p)
    p.write_text("benchmark: {name: nas_bench_mr/seg}\nepochs: 3\n")
    with pytest.raises(ConfigError, match="'epochs'"):
        load_ncp_config(p)
    p.write_text("ncp: {iterations: 5}\n")
    with pytest.raises(ConfigError, match="benchmark.name"):
        load_ncp_config(p)
    cfg = load_ncp_config(REPO / "configs/ncp/seg.yaml", {"predictor": {"epochs": 3}})
    assert cfg["benchmark"] == "nas_bench_mr/seg" and cfg["predictor"]["epochs"] == 3
    assert cfg["metrics"][0] == ["mIoU"] and cfg["ncp"]["iterations"] == 70
    for f in (REPO / "configs" / "ncp").glob("*.yaml"):
        load_ncp_config(f)


# -- predictor ------------------------------------------------------------------------------
def test_predictor_training(seg_predictor):
    model, info = seg_predictor
    h = info["history"]
    assert h[-1]["val_loss"] < h[0]["val_loss"]
    assert info["best_val_l1"] <= h[0]["val_l1_first"]
    from nasbench.metrics.ranking import rank_correlations
    tau = rank_correlations(info["val_pred"][:, 0], info["val_true"][:, 0])["kendall_tau"]
    assert tau > 0.4
    assert model.metric_names[0] == "mIoU" and not model.training


def test_predictor_save_load(seg_predictor, tmp_path):
    from nasbench.predictors import load_predictor, save_predictor
    model, _ = seg_predictor
    save_predictor(tmp_path / "p.pth", model, benchmark="nas_bench_mr/seg")
    m2, blob = load_predictor(tmp_path / "p.pth")
    x = np.array([MIDDLE_CODE], dtype=np.float32)
    assert np.allclose(model.predict(x), m2.predict(x)) and blob["benchmark"] == "nas_bench_mr/seg"
    (tmp_path / "junk.pth").write_bytes(b"junk")
    from nasbench.errors import CheckpointError
    with pytest.raises(CheckpointError):
        load_predictor(tmp_path / "junk.pth")


def test_tools_end_to_end(bench_root, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = tmp_path / "pred"
    subprocess.run([sys.executable, str(REPO / "tools" / "train_predictor.py"), "--cfg",
                    str(REPO / "configs" / "ncp" / "cls-10c.yaml"), "--out", str(out), "--root", str(bench_root),
                    "--epochs", "3", "--quiet"], check=True, env=env, capture_output=True)
    m = json.loads((out / "metrics.json").read_text())
    for k in ("kendall_tau", "spearman", "mae"):
        assert set(m[k]) == {"top1", "top5", "flops_g", "params_m"}
    nout = tmp_path / "ncp"
    subprocess.run([sys.executable, str(REPO / "tools" / "ncp.py"), "--cfg", str(REPO / "configs" / "ncp" / "cls-10c.yaml"),
                    "--predictor", str(out / "predictor.pth"), "--out", str(nout), "--root", str(bench_root),
                    "--seed", "3", "--iterations", "5"], check=True, env=env, capture_output=True)
    traj = json.loads((nout / "trajectory.json").read_text())
    res = json.loads((nout / "result.json").read_text())
    assert len(traj) == 6 and traj[0]["true"] is not None and res["start"]["code"] == traj[0]["code"]
    # two predictors of one benchmark (multi-task): both keep their true metrics under distinct labels
    mout = tmp_path / "ncp2"
    subprocess.run([sys.executable, str(REPO / "tools" / "ncp.py"), "--cfg", str(REPO / "configs" / "ncp" / "cls-10c.yaml"),
                    "--predictor", str(out / "predictor.pth"), "--predictor", str(out / "predictor.pth"),
                    "--out", str(mout), "--root", str(bench_root), "--seed", "3", "--iterations", "2"],
                   check=True, env=env, capture_output=True)
    t0 = json.loads((mout / "trajectory.json").read_text())[0]
    assert len(t0["predicted"]) == 2 and set(t0["true"]) == set(t0["predicted"])
    r = subprocess.run([sys.executable, str(REPO / "tools" / "ncp.py"), "--cfg", str(REPO / "configs" / "ncp" / "cls-10c.yaml"),
                        "--predictor", str(out / "predictor.pth"), "--out", str(nout), "--root", str(bench_root),
                        "--start", "1_2-3"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "error:" in r.stderr and "groups" in r.stderr


# -- NCP --------------------------------------------------------------------------------------
def test_ncp_mr(seg, seg_predictor):
    from nasbench.predictors.ncp import coding_for, propagate
    model, _ = seg_predictor
    coding = coding_for(seg)
    gains, flops_drop = [], []
    for seed in range(3):
        keys = list(seg)
        start = keys[int(np.random.default_rng(seed).integers(len(keys)))]
        traj, res = propagate([("seg", model, "mIoU")], coding, start, iterations=20, flops_lambda=0.0,
                              flops_metric="flops_g", benchmarks={"seg": seg})
        assert len(traj) == 21 and traj[0]["true"] is not None
        for e in traj:
            assert seg.space.encode(seg.space.decode(e["code"])) == e["code"]
        p = [e["predicted"]["seg"]["mIoU"] for e in traj]
        gains.append(np.mean(p[len(p) // 2:]) - p[0])
        assert res["chosen"]["score"] >= traj[0]["score"]
        # FLOPs objective lowers predicted FLOPs relative to accuracy-only
        traj2, _ = propagate([("seg", model, "mIoU")], coding, start, iterations=20, flops_lambda=2.0,
                             flops_metric="flops_g")
        f1 = np.mean([e["predicted"]["seg"]["flops_g"] for e in traj[1:]])
        f2 = np.mean([e["predicted"]["seg"]["flops_g"] for e in traj2[1:]])
        flops_drop.append(f1 - f2)
    assert np.mean(gains) > 0
    assert np.mean(flops_drop) > 0


def test_ncp_constraint_and_multitask(seg, seg_predictor):
    from nasbench.predictors.ncp import coding_for, propagate
    model, _ = seg_predictor
    free, _ = propagate([("a", model, "mIoU")], coding_for(seg), MIDDLE_CODE, iterations=0, flops_metric="flops_g")
    limit = free[0]["predicted"]["a"]["flops_g"]  # the start itself meets the limit, so a choice exists
    traj, res = propagate([("a", model, "mIoU"), ("b", model, "mAcc")], coding_for(seg), MIDDLE_CODE,
                          iterations=10, flops_metric="flops_g", max_flops=limit)
    assert res["chosen"] is not None and res["chosen"]["flops"] <= limit
    assert all(e["flops"] > limit for e in traj if e["score"] > res["chosen"]["score"])
    assert set(traj[0]["predicted"]) == {"a", "b"}
    with pytest.raises(NasbenchError, match="flops_lambda"):
        propagate([("a", model, "mIoU")], coding_for(seg), MIDDLE_CODE, iterations=1, flops_metric=None)


def test_ncp_nb201(nb201):
    from nasbench.predictors.ncp import benchmark_records, coding_for, propagate
    from nasbench.predictors import train_predictor
    recs = benchmark_records(nb201)
    sub = [recs[i] for i in np.random.default_rng(0).choice(len(recs), 3000, replace=False)]
    model, info = train_predictor(sub, [["acc"], ["flops_m", "params_m"]], epochs=5, seed=0)
    assert info["history"][-1]["val_loss"] < info["history"][0]["val_loss"]
    traj, res = propagate([("nb201", model, "acc")], coding_for(nb201), list(nb201)[7], iterations=15,
                          flops_metric="flops_m", benchmarks={"nb201": nb201})
    for e in traj:
        assert nb201.space.encode(nb201.space.decode(e["code"])) == e["code"]
        assert e["true"] is not None  # every NB201 cell is in the benchmark
    assert res["main"]["nb201"]["chosen_true"] is not None and res["flops_change"]["source"] == "true"
    p = [e["predicted"]["nb201"]["acc"] for e in traj]
    assert np.mean(p[1:]) >= p[0] - 1e-6
