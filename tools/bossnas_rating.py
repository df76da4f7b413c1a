#!/usr/bin/env python
"""BossNAS ratings on a tabular benchmark: python tools/bossnas_rating.py --ratings DIR [--space bossnas_nats --variant cifar10 --benchmark nats_sss/cifar10 --root DATA --decimals 4 --out report.json]

Reads the block rating files DIR/path_rank_{b}.yml (the BossNAS format; read
with a safe loader, nothing in them is executed), rates every architecture of
the space as sum_b (loss_b + 4), and prints Kendall tau / Spearman / Pearson
of the negated rating against the benchmark's accuracy, next to the same
correlations of the networks' parameter count and MACs. See
nasbench/algorithms/bossnas_ratings.py.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasbench.cli import non_negative_int  # noqa: E402
from nasbench.utils import run_cli  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ratings", required=True, help="folder with path_rank_0.yml, path_rank_1.yml, ...")
    p.add_argument("--space", default="bossnas_nats", help="block-wise search space (registered name)")
    p.add_argument("--variant", default="cifar10", help="space variant (cifar10: blocks [2,2,1]; cifar100: [2,1,2])")
    p.add_argument("--benchmark", default="nats_sss/cifar10", help="tabular benchmark with the ground truth")
    p.add_argument("--root", default="data/benchmarks", help="benchmark root folder")
    p.add_argument("--decimals", type=non_negative_int, default=None,
                   help="round ratings like the reference scripts (they use 4); default: full precision")
    p.add_argument("--out", default=None, help="also write the report as JSON here")
    args = p.parse_args(argv)
    import nasbench.spaces  # noqa: F401  (registers the spaces)
    from nasbench.algorithms.bossnas_ratings import rating_report, read_block_ratings
    from nasbench.benchmarks import load_benchmark
    from nasbench.registry import SPACES
    from nasbench.utils import atomic_write_json, check_out_path

    if args.out:
        check_out_path(args.out, kind="file")
    space = SPACES.build(args.space, variant=args.variant)
    tables = read_block_ratings(args.ratings, space.num_blocks)
    report = rating_report(space, tables, load_benchmark(args.benchmark, args.root), decimals=args.decimals)
    rows = [("BossNAS rating (negated)", report["correlations"])] + \
        [(f"{k} (size proxy)", v) for k, v in report["size_proxies"].items()]
    print(f"{report['space']} on {report['benchmark']}: {report['num_archs']} architectures")
    print(f"{'score':28s} {'Kendall tau':>11s} {'Spearman':>9s} {'Pearson':>8s}")
    for name, c in rows:
        print(f"{name:28s} {c['kendall_tau']:11.4f} {c['spearman']:9.4f} {c['pearson']:8.4f}")
    b = report["best"]
    print(f"best rated: {b['arch']} (rating {b['rating']:.4f}), true rank {b['rank']}")
    if args.out:
        atomic_write_json(report, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
