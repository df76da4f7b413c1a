"""Loading never runs code, and errors from nasbench's own file formats are one clear line.

Every loader gets a malicious file whose payload, if unpickled/constructed,
would create a marker file (``os.system("touch MARKER")`` or ``open(MARKER, "w")``):
loading must be refused with a nasbench error and the marker must not exist.
``test_payloads_are_live`` proves the payloads do create the marker when
loaded the unsafe way, so the refusals below are meaningful.
"""
import json
import os
import pickle
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nasbench.config import load_config
from nasbench.engine.checkpoint import (
    CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, SUPERNET_KEYS, load_checkpoint, save_checkpoint,
)
from nasbench.errors import (
    ArchError, CheckpointError, ConfigError, NasbenchError, UnsafeCheckpointError, UnsafeFileError,
)

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "configs/bcnet/cbm_mobilenet_cpu.yaml"
NCP_CFG = REPO / "configs/ncp/nas_bench_201.yaml"


# --------------------------------------------------------------------------- payloads
class SystemPayload:
    """Unpickling calls ``os.system("touch MARKER")``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(self.marker)}",)


class OpenPayload:
    """Unpickling calls ``open(MARKER, "w")`` (creates the file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


PAYLOADS = {"os.system": SystemPayload, "open": OpenPayload}


def evil_torch_file(path, marker, kind="os.system", wrap=None, serialization="zip"):
    """A ``torch.save`` file (zip or legacy format) or a raw pickle holding a payload."""
    payload = PAYLOADS[kind](marker)
    obj = wrap(payload) if wrap else payload
    if serialization == "raw":
        Path(path).write_bytes(pickle.dumps(obj))
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=serialization == "zip")
    return path


def one_error_line(p, *needles):
    assert p.returncode == 2, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), p.stderr[-3000:]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def run_tool(tool, *args, cwd=REPO):
    return subprocess.run([sys.executable, str(REPO / "tools" / tool), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "MARKER"
    yield m
    assert not m.exists(), "a payload ran"


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_payloads_are_live(tmp_path, kind):
    m = tmp_path / "LIVE"
    pickle.loads(pickle.dumps(PAYLOADS[kind](m)))
    assert m.exists()  # the unsafe way runs the payload
    m.unlink()
    path = evil_torch_file(tmp_path / "evil.pth", m, kind)
    torch.load(path, weights_only=False)
    assert m.exists()


# --------------------------------------------------------------------------- checkpoints
def _wrap_checkpoint(payload):
    return {"model": {"w": torch.zeros(2)}, "algorithm": {"x": payload}, "nasbench_version": "0.1.0",
            "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION}


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("kind", sorted(PAYLOADS))
@pytest.mark.parametrize("serialization", ["zip", "legacy", "raw"])
@pytest.mark.parametrize("wrap", [None, _wrap_checkpoint], ids=["bare", "inside"])
def test_load_checkpoint_refuses_payloads(tmp_path, marker, kind, serialization, wrap):
    path = evil_torch_file(tmp_path / "evil.pth", marker, kind, wrap=wrap, serialization=serialization)
    with pytest.raises(UnsafeCheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert isinstance(e.value, CheckpointError) and isinstance(e.value, UnsafeFileError)
    assert str(path) in msg and "refusing to load" in msg and "\n" not in msg
    if serialization != "raw":  # the raw pickle fails on torch's own framing first
        assert ("posix.system" in msg or "os.system" in msg) if kind == "os.system" else "open" in msg


def test_trainer_resume_refuses_payload(tmp_path, marker):
    from test_engine import make_cfg, run
    ck = tmp_path / "run" / "checkpoints" / "last.pth"
    ck.parent.mkdir(parents=True)
    evil_torch_file(ck, marker, wrap=_wrap_checkpoint)
    with pytest.raises(UnsafeCheckpointError, match="refusing to load"):
        run(tmp_path / "run", make_cfg(max_steps=2), resume=True)


def test_load_supernet_refuses_payload(tmp_path, marker):
    from nasbench.pipeline import load_supernet
    path = evil_torch_file(tmp_path / "evil.pth", marker, "open", wrap=_wrap_checkpoint)
    with pytest.raises(UnsafeCheckpointError):
        load_supernet(load_config(CFG), path, torch.device("cpu"))


def test_search_cli_refuses_payload(tmp_path, marker):
    ckpt = evil_torch_file(tmp_path / "evil.pth", marker)
    out = tmp_path / "s"
    p = run_tool("search.py", "--cfg", CFG, "--ckpt", ckpt, "--out", out, cwd=tmp_path)
    line = one_error_line(p, str(ckpt), "refusing to load", "system")
    assert "weights_only" in line
    assert not out.exists() and not (tmp_path / "MARKER").exists()


def test_rank_eval_cli_refuses_payload(tmp_path, marker):
    ckpt = evil_torch_file(tmp_path / "evil.pth", marker, "open", wrap=_wrap_checkpoint)
    p = run_tool("rank_eval.py", "--cfg", CFG, "--ckpt", ckpt, "--num-archs", 4, "--out", tmp_path / "r")
    one_error_line(p, str(ckpt), "refusing to load")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("tool,extra", [("train_supernet.py", []), ("retrain.py", ["--arch", "4432214"])])
def test_resume_cli_refuses_payload(tool, extra, data_root, tmp_path, marker):
    out = tmp_path / "run"
    ckpt = out / "checkpoints" / "last.pth"
    ckpt.parent.mkdir(parents=True)
    evil_torch_file(ckpt, marker, wrap=_wrap_checkpoint)
    p = run_tool(tool, "--cfg", CFG, "--out", out, "--resume", *extra,
                 "--opts", f"data.root={data_root}", "data.train_size=128", "data.val_size=32",
                 "data.batch_size=32", "data.test_size=32")
    one_error_line(p, str(ckpt), "refusing to load")


# --------------------------------------------------------------------------- predictor files
def _predictor(tmp_path, **extra):
    from nasbench.predictors import save_predictor
    from nasbench.predictors.mlp import MLPPredictor
    torch.manual_seed(0)
    model = MLPPredictor(30, [["acc"], ["flops_m", "params_m"]])
    path = tmp_path / "predictor.pth"
    save_predictor(path, model, benchmark="nas_bench_201/imagenet16_120", **extra)
    return path, model


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_load_predictor_refuses_payload(tmp_path, marker, kind):
    from nasbench.predictors import load_predictor
    path, model = _predictor(tmp_path)
    blob = torch.load(path, weights_only=True)
    blob["benchmark"] = PAYLOADS[kind](marker)
    torch.save(blob, path)
    with pytest.raises(UnsafeCheckpointError, match="refusing to load predictor file"):
        load_predictor(path)


def test_ncp_cli_refuses_payload(tmp_path, marker, bench_root):
    evil = evil_torch_file(tmp_path / "evil.pth", marker)
    p = run_tool("ncp.py", "--cfg", NCP_CFG, "--predictor", evil, "--out", tmp_path / "n", "--root", bench_root)
    one_error_line(p, str(evil), "refusing to load")
    assert not (tmp_path / "n").exists()


def test_train_predictor_output_is_weights_only(tmp_path):
    path, model = _predictor(tmp_path, config={"ncp": {"lr": 0.1}})
    blob = torch.load(path, weights_only=True)  # plain file: no allow-list needed
    from nasbench.predictors.mlp import PREDICTOR_FORMAT, PREDICTOR_FORMAT_VERSION
    assert (blob["format"], blob["format_version"]) == (PREDICTOR_FORMAT, PREDICTOR_FORMAT_VERSION)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []


# --------------------------------------------------------------------------- benchmark pickles
@pytest.mark.parametrize("kind", sorted(PAYLOADS))
@pytest.mark.parametrize("name,rel", [("nas_bench_201/imagenet16_120", "nas_bench_201/trainval.pkl"),
                                      ("nas_bench_mr/seg", "nas_bench_mr/seg/trainval.pkl")])
def test_benchmark_pickles_refuse_payloads(tmp_path, marker, monkeypatch, kind, name, rel):
    from nasbench.benchmarks import load_benchmark
    monkeypatch.delenv("NASBENCH_MIRROR", raising=False)
    monkeypatch.setenv("NASBENCH_OFFLINE", "1")
    f = tmp_path / "root" / rel
    f.parent.mkdir(parents=True)
    # the payload hides inside an otherwise plausible record list with numpy arrays
    f.write_bytes(pickle.dumps([{"embedding": np.zeros(30, dtype=np.float32), "acc": PAYLOADS[kind](marker)}]))
    with pytest.raises(UnsafeFileError, match="refusing to unpickle") as e:
        load_benchmark(name, tmp_path / "root")
    assert str(f) in str(e.value)


def test_benchmark_pickle_allow_list_is_numpy_only(tmp_path):
    from nasbench.benchmarks.pickle_io import ALLOWED_GLOBALS, load_pickle
    assert {m.split(".")[0] for m, _ in ALLOWED_GLOBALS} == {"numpy"}
    ok = tmp_path / "ok.pkl"
    data = [{"a": np.arange(3), "b": np.float64(2.5), "c": [1, "x", (2, 3.0), b"z"], "d": None}]
    for protocol in (3, 4, 5):  # NAS-Bench-MR files are protocol 3, NAS-Bench-201 protocol 4
        ok.write_bytes(pickle.dumps(data, protocol=protocol))
        got = load_pickle(ok)
        assert np.array_equal(got[0]["a"], np.arange(3)) and got[0]["b"] == 2.5 and got[0]["c"] == data[0]["c"]
    import collections
    for obj in (collections.OrderedDict(a=1), np.random.default_rng(0), np.array([os.getcwd], dtype=object)):
        ok.write_bytes(pickle.dumps(obj))
        with pytest.raises(UnsafeFileError, match="refusing to unpickle"):
            load_pickle(ok)
    ok.write_bytes(pickle.dumps(data)[:-5])
    with pytest.raises(NasbenchError, match="not a readable benchmark pickle"):
        load_pickle(ok)


# --------------------------------------------------------------------------- YAML
YAML_PAYLOADS = [
    "!!python/object/apply:os.system ['touch {m}']",
    "!!python/object/new:os.system ['touch {m}']",
    "!!python/object/apply:builtins.open ['{m}', 'w']",
]


@pytest.mark.parametrize("payload", YAML_PAYLOADS)
def test_config_yaml_refuses_python_tags(tmp_path, marker, payload):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"_base_: {CFG}\nseed: {payload.format(m=marker)}\n")
    with pytest.raises(ConfigError, match=str(bad)):
        load_config(bad)
    with pytest.raises(ConfigError):  # the --opts values are YAML too
        load_config(CFG, [f"seed={payload.format(m=marker)}"])


def test_config_yaml_cli_refuses_python_tags(tmp_path, marker):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"_base_: {CFG}\nseed: {YAML_PAYLOADS[0].format(m=marker)}\n")
    p = run_tool("train_supernet.py", "--cfg", bad, "--out", tmp_path / "o")
    one_error_line(p, str(bad))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("payload", YAML_PAYLOADS)
def test_nats_yaml_refuses_python_tags(tmp_path, marker, payload):
    from nasbench.benchmarks.nats_sss import parse_acc_yaml
    f = tmp_path / "acc.yml"
    f.write_text(f"'8:8:8:8:8': {payload.format(m=marker)}\n")
    with pytest.raises(NasbenchError, match=str(f)):
        parse_acc_yaml(f)


# --------------------------------------------------------------------------- checkpoint format errors
def _supernet_checkpoint(path, **changes):
    """A valid supernet checkpoint of CFG's space (untrained), with entries replaced or
    deleted (value ``...``)."""
    from nasbench.algorithms import build_algorithm
    from nasbench.spaces import build_space
    cfg = load_config(CFG)
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    alg = build_algorithm(cfg.algorithm, space, seed=cfg.seed)
    state = {"model": space.build_supernet().state_dict(), "algorithm": alg.state_dict(), "step": 0,
             "extra_state": {"kind": "supernet"}}
    save_checkpoint(state, path)
    if changes:
        state = torch.load(path, weights_only=True)
        for k, v in changes.items():
            if v is ...:
                del state[k]
            else:
                state[k] = v
        torch.save(state, path)
    return path


def test_saved_checkpoints_are_plain_and_versioned(tmp_path):
    path = _supernet_checkpoint(tmp_path / "ok.pth")
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    state = torch.load(path, weights_only=True)  # no allow-list needed
    assert (state["format"], state["format_version"]) == (CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION)
    counts = state["algorithm"]["counter"]["counts"]
    assert isinstance(counts[0], list) and isinstance(state["algorithm"]["rng"]["state"]["state"], int)
    with pytest.raises(TypeError, match="numpy"):  # a non-plain state is caught when saving
        save_checkpoint({"model": {}, "bad": np.zeros(3)}, tmp_path / "bad.pth")
    assert not (tmp_path / "bad.pth").exists() and os.listdir(tmp_path) == ["ok.pth"]


def test_supernet_checkpoint_round_trip(tmp_path):
    from nasbench.pipeline import load_supernet
    path = _supernet_checkpoint(tmp_path / "ok.pth")
    space, net, alg = load_supernet(load_config(CFG), path, torch.device("cpu"))
    assert alg.counter is not None and all(isinstance(c, np.ndarray) for c in alg.counter.counts)


BAD_CHECKPOINTS = {
    "no_model": ({"model": ...}, "entry 'model' is missing"),
    "no_algorithm": ({"algorithm": ...}, "entry 'algorithm' is missing"),
    "algorithm_string": ({"algorithm": "garbage"}, "entry 'algorithm' is str"),
    "algorithm_rng": ({"algorithm": {"rng": 5, "records": [], "tie": 0}}, "'rng'"),
    "algorithm_records": ({"algorithm": {"rng": None, "records": [["x"]], "tie": 0}}, "'records'[0]"),
    "algorithm_counts": ({"algorithm": {"rng": None, "records": [], "tie": 0, "counter": {"counts": [[1, 2]]}}},
                         "counts"),
    "model_list": ({"model": [1, 2]}, "entry 'model' is list"),
    "newer": ({"format_version": 99}, "upgrade nasbench"),
    "bad_version": ({"format_version": "one"}, "'format_version'"),
    "foreign": ({"format": "something-else"}, "not a nasbench checkpoint"),
    "standalone": ({"extra_state": {"kind": "standalone"}}, "not a supernet"),
}


@pytest.mark.parametrize("case", sorted(BAD_CHECKPOINTS))
def test_bad_checkpoint_entries_are_one_clear_error(tmp_path, case):
    from nasbench.pipeline import load_supernet
    changes, needle = BAD_CHECKPOINTS[case]
    if isinstance(changes.get("algorithm"), dict) and changes["algorithm"].get("rng") is None:
        # a real rng state so that only the entry under test is wrong
        from nasbench.algorithms import build_algorithm
        from nasbench.spaces import build_space
        cfg = load_config(CFG)
        changes = {"algorithm": {**changes["algorithm"], "rng": build_algorithm(
            cfg.algorithm, build_space(cfg.space), seed=0).state_dict()["rng"]}}
    path = _supernet_checkpoint(tmp_path / f"{case}.pth", **changes)
    with pytest.raises(CheckpointError) as e:
        load_supernet(load_config(CFG), path, torch.device("cpu"))
    msg = str(e.value)
    assert needle in msg and str(path) in msg and "\n" not in msg, msg
    if case not in ("foreign",):  # the format is named
        assert "format" in msg, msg


@pytest.mark.parametrize("case,needles", [("no_algorithm", ["'algorithm'", "format 1"]),
                                          ("algorithm_string", ["'algorithm'", "str", "format 1"])])
def test_search_cli_bad_checkpoint(tmp_path, case, needles):
    changes, _ = BAD_CHECKPOINTS[case]
    path = _supernet_checkpoint(tmp_path / "c.pth", **changes)
    p = run_tool("search.py", "--cfg", CFG, "--ckpt", path, "--out", tmp_path / "s")
    one_error_line(p, str(path), *needles)
    assert not (tmp_path / "s").exists()


def test_trainer_resume_checks_entries(tmp_path):
    from test_engine import make_cfg, run
    cfg = make_cfg(max_steps=2)
    run(tmp_path / "r", cfg)
    ck = tmp_path / "r" / "checkpoints" / "last.pth"
    state = torch.load(ck, weights_only=True)
    for key, value, needle in [("optimizer", ..., "entry 'optimizer' is missing"),
                               ("step", "3", "entry 'step' is str"),
                               ("rng", [{"numpy": "garbage"}], "entry 'rng' does not match")]:
        bad = dict(state)
        if value is ...:
            del bad[key]
        else:
            bad[key] = value
        torch.save(bad, ck)
        with pytest.raises(CheckpointError, match=needle) as e:
            run(tmp_path / "r", cfg, resume=True)
        assert str(ck) in str(e.value) and "nasbench-checkpoint format 1" in str(e.value)


def test_legacy_checkpoint_with_numpy_counts_loads(tmp_path):
    """Checkpoints from before format 1 (no format entry, int64 numpy channel counts) still load,
    through a weights-only load that admits int64 arrays only."""
    from nasbench.pipeline import load_supernet
    path = _supernet_checkpoint(tmp_path / "old.pth")
    state = torch.load(path, weights_only=True)
    for k in ("format", "format_version"):
        del state[k]
    state["algorithm"]["counter"]["counts"] = [np.asarray(c, dtype=np.int64) + 3
                                               for c in state["algorithm"]["counter"]["counts"]]
    torch.save(state, path)
    _, _, alg = load_supernet(load_config(CFG), path, torch.device("cpu"))
    assert all((c == 3).all() for c in alg.counter.counts)
    state["algorithm"]["counter"]["counts"][0] = np.zeros(3)  # float64: not admitted
    torch.save(state, path)
    with pytest.raises(UnsafeCheckpointError, match="Float64DType"):
        load_checkpoint(path)
    state["algorithm"] = "garbage"
    state["algorithm_ranks"] = None
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="before format_version") as e:
        load_checkpoint(path, require=SUPERNET_KEYS)
    assert "entry 'algorithm' is str" in str(e.value)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_unreadable_checkpoint_is_one_line(tmp_path):
    path = _supernet_checkpoint(tmp_path / "c.pth")
    data = path.read_bytes()
    for name, content in [("trunc.pth", data[: len(data) // 3]), ("junk.pth", b"\x80\x04junk" * 50),
                          ("empty.pth", b"")]:
        f = tmp_path / name
        f.write_bytes(content)
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(f)
        assert str(f) in str(e.value) and "\n" not in str(e.value)


# --------------------------------------------------------------------------- predictor format errors
BAD_PREDICTORS = {
    "no_hparams": (lambda b: b.pop("hparams"), "entry 'hparams' is missing"),
    "no_metric_groups": (lambda b: b["hparams"].pop("metric_groups"), "'hparams.metric_groups' is missing"),
    "bad_metric_groups": (lambda b: b["hparams"].update(metric_groups="acc"), "'hparams.metric_groups'"),
    "no_state_dict": (lambda b: b.pop("state_dict"), "entry 'state_dict' is missing"),
    "huge_in_dim": (lambda b: b["hparams"].update(in_dim=10**9), "'hparams.in_dim'"),
    "wrong_in_dim": (lambda b: b["hparams"].update(in_dim=31), "trunk"),
    "names": (lambda b: b.update(metric_names=["x"]), "'metric_names'"),
    "newer": (lambda b: b.update(format_version=2), "upgrade nasbench"),
    "foreign": (lambda b: b.update(format="nasbench-checkpoint"), "not a nasbench MLP predictor"),
}


@pytest.mark.parametrize("case", sorted(BAD_PREDICTORS))
def test_bad_predictor_entries_are_one_clear_error(tmp_path, case):
    from nasbench.predictors import load_predictor
    path, _ = _predictor(tmp_path)
    blob = torch.load(path, weights_only=True)
    change, needle = BAD_PREDICTORS[case]
    change(blob)
    torch.save(blob, path)
    with pytest.raises(CheckpointError) as e:
        load_predictor(path)
    msg = str(e.value)
    assert needle in msg and str(path) in msg and "\n" not in msg, msg
    if case != "foreign":
        assert "nasbench-mlp-predictor format" in msg, msg


def test_predictor_round_trip_and_legacy_format(tmp_path):
    from nasbench.predictors import load_predictor
    path, model = _predictor(tmp_path)
    m2, blob = load_predictor(path)
    x = np.random.default_rng(0).random((4, 30)).astype(np.float32)
    assert np.array_equal(model.eval().predict(x), m2.predict(x)) and blob["benchmark"].startswith("nas_bench_201")
    blob = torch.load(path, weights_only=True)
    blob["format"] = "nasbench.mlp_predictor/1"  # files written before format_version
    del blob["format_version"]
    torch.save(blob, path)
    assert np.array_equal(load_predictor(path)[0].predict(x), m2.predict(x))


@pytest.mark.parametrize("case", ["no_hparams", "no_metric_groups", "junk"])
def test_ncp_cli_bad_predictor(tmp_path, bench_root, case):
    path, _ = _predictor(tmp_path)
    if case == "junk":
        path.write_bytes(b"PK\x03\x04 not really a zip" * 10)
        needles = [str(path), "predictor file"]
    else:
        blob = torch.load(path, weights_only=True)
        BAD_PREDICTORS[case][0](blob)
        torch.save(blob, path)
        needles = [str(path), BAD_PREDICTORS[case][1], "format 1"]
    p = run_tool("ncp.py", "--cfg", NCP_CFG, "--predictor", path, "--out", tmp_path / "n", "--root", bench_root)
    one_error_line(p, *needles)


# --------------------------------------------------------------------------- architectures
SPACES = [{"type": "channel_bench_macro", "variant": "mobilenet", "bins": 4, "min_bins": 1},
          {"type": "nas_bench_201"}, {"type": "nas_bench_macro"}, {"type": "nas_bench_mr", "variant": "seg"},
          {"type": "nats_sss"}, {"type": "bnnas_imagenet"}, {"type": "bnas_v2"}, {"type": "mobilenetv2_width"}]
BAD_GENES = [float("inf"), -float("inf"), float("nan"), 1e300, 10**5000, np.float64("inf"), 2.5, True, "1", None]


@pytest.mark.parametrize("spec", SPACES, ids=lambda s: s["type"])
def test_bad_genes_are_arch_errors(spec):
    from nasbench.spaces import build_space
    space = build_space(dict(spec))
    good = space.sample(np.random.default_rng(0))
    assert space.validate([float(g) for g in good]) == good  # JSON may give 4.0
    for i in (0, space.num_genes - 1):
        for bad in BAD_GENES:
            arch = list(good)
            arch[i] = bad
            with pytest.raises(ArchError) as e:
                space.validate(arch)
            assert len(str(e.value)) < 1000 and f"gene {i}" in str(e.value)
    keys = ["inf", "nan", "1e400", "9" * 5000, "1" * 100_000, "²" * space.num_genes,
            ":".join(["9" * 5000] * 5), ",".join(["1e400"] * space.num_genes), "-".join(["9" * 30] * space.num_genes)]
    for key in keys:
        with pytest.raises(ArchError) as e:
            space.validate(key)
        assert len(str(e.value)) < 1500


def test_retrain_cli_infinite_gene(tmp_path):
    for name, text in [("inf.json", '{"arch": [1e400, 4, 3, 2, 2, 1, 4]}'),
                       ("nan.json", '{"arch": [NaN, 4, 3, 2, 2, 1, 4]}'),
                       ("huge.json", '{"arch": [' + "9" * 4000 + ', 4, 3, 2, 2, 1, 4]}'),
                       ("bad.json", '{"arch": [1, 2,'),
                       ("list.json", "[1, 2, 3]")]:
        f = tmp_path / name
        f.write_text(text)
        p = run_tool("retrain.py", "--cfg", CFG, "--arch", f, "--out", tmp_path / "r")
        one_error_line(p, str(f) if name in ("bad.json", "list.json") else "channel_bench_macro")
    p = run_tool("retrain.py", "--cfg", CFG, "--arch", "4" * 5000, "--out", tmp_path / "r")
    assert len(one_error_line(p, "channel_bench_macro")) < 1000
    assert not (tmp_path / "r").exists()


def test_result_json_arch_reader(tmp_path):
    from nasbench.pipeline import read_arch
    from nasbench.spaces import build_space
    space = build_space(load_config(CFG).space)
    f = tmp_path / "result.json"
    f.write_text(json.dumps({"arch": "4432214"}))
    assert read_arch(space, f) == (4, 4, 3, 2, 2, 1, 4)
    f.write_text('{"arch": [4, 4, 3, 2, 2, 1, Infinity]}')
    with pytest.raises(ArchError, match="gene 6 is inf, not a finite number"):
        read_arch(space, f)
    d = tmp_path / "dir.json"
    d.mkdir()
    with pytest.raises(NasbenchError, match=str(d)):
        read_arch(space, d)
