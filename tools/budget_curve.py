#!/usr/bin/env python
"""Supernet ranking quality and search regret against training budget, beside the MACs proxy.

    python tools/budget_curve.py --cfgs configs/bcnet/cbm_mobilenet_cpu.yaml \\
        configs/bcnet/cbm_mobilenet_autoslim_cpu.yaml --labels BCNet AutoSlim \\
        --epochs 1 3 9 --train-size 10000 --num-archs 50 --out runs/budget_curve \\
        --reference "BCNet full budget (published)=0.539" "AutoSlim full budget (published)=0.661"

Each (config, budget) point trains a supernet with the full schedule of that many
epochs, measures Kendall tau on the same seeded architectures (tools/rank_eval.py)
and runs the config's search (tools/search.py), then writes OUT/curve.json and
OUT/curve.png. Re-running the same command continues a killed curve (finished
phases are reused, training resumes from its last checkpoint). With --plot-only
it only redraws the figure from the finished points.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402

from nasbench.utils import run_cli  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cfgs", nargs="+", required=True, help="one YAML config per run")
    p.add_argument("--labels", nargs="*", default=None, help="one label per config (default: file names)")
    p.add_argument("--epochs", nargs="+", type=int, default=[1, 4, 16], help="training budgets in epochs")
    p.add_argument("--train-size", type=int, default=None, help="data.train_size of every run (images)")
    p.add_argument("--num-archs", type=int, default=None, help="architectures per Kendall tau")
    p.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every run")
    p.add_argument("--reference", nargs="*", default=[], metavar="LABEL=TAU", help="horizontal reference lines")
    p.add_argument("--plot-only", action="store_true", help="redraw OUT/curve.png from the finished points")
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)

    from pathlib import Path

    from nasbench.errors import NasbenchError
    from nasbench.pipeline.budget_curve import budget_curve, load_points, write_curve

    labels = args.labels or [Path(c).stem for c in args.cfgs]
    if len(labels) != len(args.cfgs) or len(set(labels)) != len(labels):
        raise NasbenchError(f"--labels needs one distinct label per config ({len(args.cfgs)}), got {labels}")
    from nasbench.utils import parse_references
    refs = parse_references(args.reference)
    if args.plot_only:
        points = load_points(args.out)
        write_curve(points, args.out, refs)
    else:
        points = budget_curve(dict(zip(labels, args.cfgs)), args.epochs, args.out, opts=args.opts,
                              train_size=args.train_size, num_archs=args.num_archs, reference=refs)
    print(f"{'run':<12}{'epochs':>7}{'images':>9}{'tau':>8}{'banded':>8}{'MACs tau':>9}"
          f"{'regret':>8}{'largest-MACs regret':>21}")
    for q in points:
        print(f"{q['label']:<12}{q['epochs']:>7}{q['images_seen'] or 0:>9}{q['kendall_tau']:>8.3f}"
              f"{q['banded_kendall_tau']:>8.3f}{q['flops_proxy_kendall_tau']:>9.3f}{q['found']['regret']:>8.2f}"
              f"{q['largest_flops']['regret']:>21.2f}")
    print(f"wrote {Path(args.out) / 'curve.json'} and {Path(args.out) / 'curve.png'}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
