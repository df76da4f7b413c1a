#!/usr/bin/env python
"""Searchers on tabular benchmarks: python tools/bench_search.py --benchmark NAME[,NAME...] --searchers random,rea,nsga2[,local,evolution] --budget Q --seeds S --root DATA --out BDIR [--flops-budget MACS]

Runs every searcher with seeds 0..S-1 and a budget of Q queries on each
benchmark's true metrics and writes BDIR/results.json (searcher -> mean_regret
and std_regret [Q floats], queries_to_top_1pct, queries_to_top_0.1pct, per-seed
numbers) for the first benchmark, BDIR/<benchmark with / -> ->/results.json for
each benchmark, BDIR/summary.json + summary.md (all benchmarks), and
BDIR/regret*.png, BDIR/pareto_nsga2_*.png. See nasbench/searchers/bench_search.py.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasbench.cli import positive_float, positive_int  # noqa: E402
from nasbench.utils import run_cli  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", required=True,
                   help="benchmark name(s), comma-separated, e.g. channel_bench_macro/mobilenet,nas_bench_macro")
    p.add_argument("--searchers", default="random,rea,nsga2",
                   help="comma-separated searcher names (random, rea, nsga2, local, evolution)")
    p.add_argument("--budget", type=positive_int, required=True, help="queries (distinct architectures) per run")
    p.add_argument("--seeds", type=positive_int, default=10, help="number of seeds (0..S-1)")
    p.add_argument("--root", default="data/benchmarks", help="benchmark root folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--flops-budget", type=positive_float, default=None, help="max FLOPs (MACs) of searched architectures")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    args = p.parse_args(argv)
    from nasbench.searchers.bench_search import bench_search
    bench_search(args.benchmark, args.searchers, args.budget, args.seeds, root=args.root, out=args.out,
                 flops_budget=args.flops_budget, progress=not args.no_progress, plots=not args.no_plots)
    print(f"wrote {os.path.join(args.out, 'results.json')}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
