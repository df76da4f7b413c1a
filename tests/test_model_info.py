"""tools/model_info.py: params and MACs of any architecture, from a key, a result file or a name."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*args, check=True):
    p = subprocess.run([sys.executable, str(REPO / "tools" / "model_info.py"), *map(str, args)],
                       capture_output=True, text=True, cwd=REPO)
    if check:
        assert p.returncode == 0, p.stderr
    return p


@pytest.mark.parametrize("cfg,arch", [("configs/bcnet/cbm_mobilenet_cpu.yaml", "4432214"),
                                      ("configs/spos/nas_bench_macro_cpu.yaml", "21220200")])
def test_counts_equal_the_space_and_the_benchmark(cfg, arch, bench_of):
    """The built network's counts equal the space's (which reproduce the benchmarks' columns)."""
    from nasbench.config import load_config
    from nasbench.spaces import build_space
    line = json.loads(run("--cfg", cfg, "--arch", arch).stdout)
    c = load_config(REPO / cfg)
    space = build_space(c.space, num_classes=c.data.num_classes)
    assert (line["macs"], line["params"]) == space.cost(arch) and line["image_size"] == 32
    rec = bench_of(space.benchmark).query(space.decode(arch))
    assert line["params"] == rec["params"] and line["macs"] == rec["flops"]


def test_named_architecture_and_result_file(tmp_path):
    """BossNet-T0: the reference implementation's 38,415,960 params; 3.44B MACs at 224 (README 3.4B)."""
    line = json.loads(run("--cfg", "configs/bossnas/bossnet_imagenet.yaml", "--arch", "BossNet-T0").stdout)
    assert (line["params"], line["macs"], line["image_size"]) == (38_415_960, 3_442_978_304, 224)
    (tmp_path / "r.json").write_text(json.dumps({"arch": "4432214"}))
    assert json.loads(run("--cfg", "configs/bcnet/cbm_mobilenet_cpu.yaml", "--arch", tmp_path / "r.json")
                      .stdout)["arch"] == "4432214"


@pytest.mark.parametrize("arch", ["4432219", "DIR", "BossNet-T9", "missing.json"])
def test_bad_arch_is_one_error_line(arch, tmp_path):
    arch = tmp_path if arch == "DIR" else arch
    p = run("--cfg", "configs/bcnet/cbm_mobilenet_cpu.yaml", "--arch", arch, check=False)
    assert p.returncode == 2 and p.stderr.startswith("error:") and len(p.stderr.strip().splitlines()) == 1
