"""Validate first, write second: one test per class of bad input (issue 12).

Each class goes through one shared mechanism, so one case per class is enough:
config values (``config.FIXED_RULES`` and the typed sections' ``Key`` ranges),
output paths (``utils.check_out_path``), folders of runs that fail after they
started (``utils.make_out_dir`` + ``run_cli``), numeric command-line options
(``cli.positive_int`` ...), data sizes and roots, benchmark names, architecture
paths. ``perf/malformed_inputs.py`` runs about a hundred such inputs over every tool.
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasbench.config import load_config
from nasbench.errors import ConfigError, NasbenchError

REPO = Path(__file__).resolve().parents[1]
CFG = REPO / "configs/bcnet/cbm_mobilenet_cpu.yaml"


def run_tool(tool, *args, cwd):
    return subprocess.run([sys.executable, str(REPO / "tools" / tool), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))


def handled(p, *needles):
    """Exit code 2, one ``error:`` line (argparse's usage lines aside), no traceback."""
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error:" in ln]
    assert len(errors) == 1 and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert len(lines) == 1 or p.stderr.startswith("usage:"), p.stderr[-3000:]
    for n in needles:
        assert n in errors[0], (n, errors[0])
    return errors[0]


def listing(d):
    return sorted(str(p.relative_to(d)) for p in Path(d).rglob("*"))


# --------------------------------------------------------------------------- config values
@pytest.mark.parametrize("opt,key,allowed", [
    ("data.batch_size=-1", "data.batch_size", "[1, inf] images"),
    ("train.lr=-0.1", "train.lr", "[0, inf]"),
    ("train.epochs=0", "train.epochs", "[1, inf] epochs"),
    ("retrain.label_smoothing=2", "retrain.label_smoothing", "[0, 1]"),
    ("rank_eval.num_archs=1", "rank_eval.num_archs", "[2, inf]"),
    ("train.max_steps=-3", "train.max_steps", "[1, inf] steps"),
    ("predictor.val_fraction=1.5", "predictor.val_fraction", "[0, 0.99]"),
])
def test_fixed_key_ranges(opt, key, allowed):
    with pytest.raises(ConfigError) as e:
        load_config(CFG, [opt])
    msg = str(e.value)
    assert f"'{key}' in --opts" in msg and allowed in msg, msg


def test_fixed_key_choices_and_file_named(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(f"_base_: {CFG}\ntrain:\n  schedule: exponential\n")
    with pytest.raises(ConfigError, match=r"'train.schedule' in .*c.yaml must be one of \['cosine', 'linear', 'step'\]"):
        load_config(f)
    with pytest.raises(ConfigError, match=r"search.population.*must lie in \[1, inf\]"):  # a typed section's Key
        load_config(CFG, ["search.population=0"])
    assert load_config(CFG, ["train.max_steps=5"]).train.max_steps == 5  # in range: unchanged


def test_yaml_syntax_error_is_one_line_with_position(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train: {lr: [0.1\nseed: 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "\n" not in str(e.value) and "line 2" in str(e.value) and str(f) in str(e.value)


# --------------------------------------------------------------------------- output paths
def test_check_out_path(tmp_path):
    from nasbench.utils import check_out_path
    f = tmp_path / "f.txt"
    f.write_text("x")
    with pytest.raises(NasbenchError, match="is an existing file"):
        check_out_path(f)
    with pytest.raises(NasbenchError, match="is a file, so no folder"):
        check_out_path(f / "run")
    with pytest.raises(NasbenchError, match="is a folder"):
        check_out_path(tmp_path, kind="file")
    if Path("/proc/self").is_dir():
        with pytest.raises(NasbenchError, match="cannot write in /proc"):
            check_out_path("/proc/nasbench_run")
    before = listing(tmp_path)
    assert check_out_path(tmp_path / "a/b/c") == tmp_path / "a/b/c"
    assert listing(tmp_path) == before  # the probe leaves nothing


def test_failed_run_leaves_nothing_but_a_resumable_folder_stays(tmp_path):
    from nasbench.utils import make_out_dir, run_cli

    def failing(ckpt):
        def main(argv):
            out = make_out_dir(tmp_path / "new" / "run")
            (out / "config.yaml").write_text("x")
            if ckpt:
                (out / "checkpoints").mkdir()
                (out / "checkpoints/last.pth").write_bytes(b"x")
            raise NasbenchError("data turned out unreadable")
        return main

    assert run_cli(failing(False), []) == 2
    assert not (tmp_path / "new").exists()
    assert run_cli(failing(True), []) == 2
    assert (tmp_path / "new/run/checkpoints/last.pth").is_file()  # resumable: kept
    (tmp_path / "old").mkdir()
    (tmp_path / "old/keep.txt").write_text("x")

    def fails_in_existing(argv):
        make_out_dir(tmp_path / "old")
        raise NasbenchError("x")
    assert run_cli(fails_in_existing, []) == 2
    assert (tmp_path / "old/keep.txt").is_file()  # a folder the run did not create is never removed


def test_cli_out_is_a_file(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x")
    p = run_tool("train_supernet.py", "--cfg", CFG, "--out", f, "--opts", "data.root=/nonexistent", cwd=tmp_path)
    handled(p, str(f), "existing file")
    assert listing(tmp_path) == ["f.txt"] and f.read_text() == "x"


# --------------------------------------------------------------------------- command-line numbers
def test_numeric_option_types():
    from nasbench.cli import non_negative_float, non_negative_int, positive_float, positive_int
    assert positive_int("3") == 3 and non_negative_int("0") == 0 and positive_float("1e8") == 1e8
    assert non_negative_float("0") == 0.0
    for parse, bad in [(positive_int, "0"), (positive_int, "-1"), (positive_int, "x"), (non_negative_int, "-1"),
                       (positive_float, "0"), (positive_float, "nan"), (positive_float, "inf"),
                       (non_negative_float, "-0.5")]:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)


def test_rank_eval_num_archs_zero_is_an_error(tmp_path):
    p = run_tool("rank_eval.py", "--cfg", CFG, "--ckpt", tmp_path / "none.pth", "--num-archs", "0",
                 "--out", tmp_path / "r", cwd=tmp_path)
    handled(p, "--num-archs", "integer >= 1")
    assert listing(tmp_path) == []


# --------------------------------------------------------------------------- data
def test_data_sizes_and_roots(data_root, tmp_path):
    from nasbench.pipeline import load_datasets
    from nasbench.pipeline.common import check_steps
    with pytest.raises(ConfigError, match=r"data.val_size=100000.*has 50000 images"):
        load_datasets(load_config(CFG, [f"data.root={data_root}", "data.val_size=100000", "data.train_size=null"]))
    f = tmp_path / "f.txt"
    f.write_text("x")
    with pytest.raises(NasbenchError, match="data.root .* is a file"):
        load_datasets(load_config(CFG, [f"data.root={f}"]))
    with pytest.raises(ConfigError, match="no batch per epoch"):
        check_steps(load_config(CFG).train, 0, "train")
    assert check_steps(load_config(CFG, ["train.max_steps=7"]).train, 10, "train") == 7


def test_train_size_below_batch_size_writes_nothing(data_root, tmp_path):
    p = run_tool("train_supernet.py", "--cfg", CFG, "--out", tmp_path / "run", "--opts", f"data.root={data_root}",
                 "data.train_size=16", "data.val_size=16", "data.batch_size=32", cwd=tmp_path)
    handled(p, "no batch per epoch")
    assert listing(tmp_path) == []


# --------------------------------------------------------------------------- benchmarks
def test_bench_search_checks_every_benchmark_before_writing(bench_root, tmp_path):
    from nasbench.searchers.bench_search import bench_search
    out = tmp_path / "b"
    with pytest.raises(NasbenchError, match="unknown benchmark 'nope'"):
        bench_search("channel_bench_macro/mobilenet,nope", "random", 5, 1, root=bench_root, out=out,
                     progress=False, plots=False)
    assert not out.exists()
    f = tmp_path / "f.txt"
    f.write_text("x")
    with pytest.raises(NasbenchError, match="benchmark root .* is a file"):
        bench_search("channel_bench_macro/mobilenet", "random", 5, 1, root=f, out=out, progress=False, plots=False)
    assert listing(tmp_path) == ["f.txt"]


# --------------------------------------------------------------------------- architectures
def test_arch_directory(tmp_path):
    from nasbench.pipeline import read_arch
    from nasbench.spaces import build_space
    space = build_space(load_config(CFG).space)
    with pytest.raises(NasbenchError, match="is a directory"):
        read_arch(space, tmp_path)
    f = tmp_path / "a.json"
    f.write_text('{"arch": [4, 4, 3, 2, 2, 1, NaN]}')
    with pytest.raises(NasbenchError, match=str(f)):
        read_arch(space, f)
