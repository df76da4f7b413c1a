#!/usr/bin/env python
"""Channel-training fairness: python tools/fairness.py --cfg A.yaml [B.yaml ...] --steps N --out DIR

Replays N training steps of each config's sampling rule (no data, no training)
and counts how often every channel of every searchable dimension would be
trained. Writes DIR/fairness.json (max/min count per dimension and config) and
DIR/fairness.png (count / mean per channel, one panel per dimension). A real
training run records the same counts in its own fairness.json.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasbench.utils import run_cli  # noqa: E402


def main(argv=None):
    import argparse
    from pathlib import Path

    from nasbench.algorithms import build_algorithm
    from nasbench.algorithms.base import simulate_fairness
    from nasbench.config import load_config
    from nasbench.metrics.plots import plot_channel_counts
    from nasbench.spaces import build_space
    from nasbench.cli import positive_int
    from nasbench.utils import atomic_write_json, check_out_path, make_out_dir

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cfg", nargs="+", required=True, help="one or more supernet configs")
    p.add_argument("--steps", type=positive_int, default=10000, help="training steps to replay")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    check_out_path(args.out)
    cfgs = [load_config(path) for path in args.cfg]  # every config checked before any replay
    results, counts = {}, {}
    for path, cfg in zip(args.cfg, cfgs):
        space = build_space(cfg.space, num_classes=cfg.data.num_classes)
        alg = build_algorithm(cfg.algorithm, space, seed=cfg.seed)
        ratios = simulate_fairness(alg, args.steps)
        label = f"{cfg.algorithm.type} ({Path(path).stem})"
        results[label] = {"config": str(path), "steps": args.steps, "max_min_ratio": ratios,
                          "worst_ratio": max(ratios)}
        counts[label] = alg.counter.counts
        print(f"{label}: max/min channel count per dimension "
              + " ".join(f"{r:.2f}" for r in ratios))
    out = make_out_dir(args.out)
    atomic_write_json(results, out / "fairness.json")
    plot_channel_counts(counts, out / "fairness.png", title=f"channels trained over {args.steps} steps")


if __name__ == "__main__":
    sys.exit(run_cli(main))
