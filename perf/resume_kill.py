#!/usr/bin/env python
"""Kill a supernet training run with SIGKILL mid-training, resume it, compare with an uninterrupted run.

    NASBENCH_MIRROR=../shared/data python perf/resume_kill.py [--cfg CFG] [--steps 12] [--out DIR]

Run A trains ``--steps`` steps uninterrupted. Run B is started with the same
config, killed with SIGKILL as soon as its first checkpoint (every 2 steps)
exists and training has not finished, then continued with ``--resume``. Prints
the step at which B was killed and the largest absolute weight difference
between A and B (0 means bit-identical), and writes DIR/resume_kill.json.
"""
import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cfg", default="configs/bcnet/cbm_mobilenet_cpu.yaml")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--out", default="perf/results/resume_kill")
    args = p.parse_args()
    import torch
    from nasbench.engine.checkpoint import load_checkpoint

    out = Path(args.out)
    opts = [f"train.max_steps={args.steps}", "train.ckpt_interval=2", "train.log_interval=1",
            "data.train_size=1024", "data.batch_size=64"]
    base = [sys.executable, str(REPO / "tools/train_supernet.py"), "--cfg", args.cfg]
    subprocess.run(base + ["--out", str(out / "a"), "--opts", *opts], check=True, cwd=REPO)
    ckpt = out / "b" / "checkpoints" / "last.pth"
    if ckpt.exists():
        ckpt.unlink()
    proc = subprocess.Popen(base + ["--out", str(out / "b"), "--opts", *opts], cwd=REPO)
    while not ckpt.exists() and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    if proc.poll() is not None:
        raise SystemExit("run B finished before it could be killed; use more --steps")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(ckpt)["step"]
    subprocess.run(base + ["--out", str(out / "b"), "--resume", "--opts", *opts], check=True, cwd=REPO)
    a = load_checkpoint(out / "a/checkpoints/last.pth")
    b = load_checkpoint(ckpt)
    diff = max(float((v.double() - b["model"][k].double()).abs().max()) for k, v in a["model"].items())
    same_opt = all(torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
                   for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()))
    res = {"config": args.cfg, "steps": args.steps, "killed_with_checkpoint_at_step": killed_at,
           "final_step_a": a["step"], "final_step_b": b["step"], "max_abs_weight_diff": diff,
           "momentum_identical": same_opt}
    out.mkdir(parents=True, exist_ok=True)
    (out / "resume_kill.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
