#!/usr/bin/env python
"""Retrain a found architecture from scratch: python tools/retrain.py --cfg CFG --arch ARCH --out RDIR

ARCH is a key such as 4432214 or a search result.json. Writes RDIR/result.json
with the test top-1 (%), params and FLOPs (MACs), and RDIR/checkpoints/last.pth;
where a tabular benchmark covers the space, also the architecture's benchmark
accuracy, rank and regret and the baselines under the search's FLOPs budget,
and prints the benchmark accuracy beside the retrained top-1.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasbench.cli import load_cfg, make_parser  # noqa: E402
from nasbench.utils import run_cli  # noqa: E402


def benchmark_line(res) -> str:
    """One line: retrained top-1 beside the benchmark accuracy of the same architecture and the baselines."""
    b, bl = res["benchmark"], res.get("baselines") or {}
    metric = next((k for k in b if k not in ("name", "rank", "regret", "num_archs")), "mean_acc")
    line = (f"{res['arch']}: retrained test top-1 {res['top1']:.2f}% ({res['steps']} steps, {res['test_images']} "
            f"test images); {b['name']} {metric} {b[metric]:.2f}% (rank {b['rank']:,} of {b['num_archs']:,})")
    picks = [f"{label} {bl[k]['mean_acc']:.2f}%" for label, k in
             (("largest MACs", "largest_flops"), ("median", "median"), ("optimum", "optimum")) if bl.get(k)]
    return line + (f"; same budget: {', '.join(picks)}" if picks else "")


def main(argv=None):
    p = make_parser(__doc__.splitlines()[0])
    p.add_argument("--arch", required=True, help="architecture key or result.json of tools/search.py")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue from RDIR/checkpoints/last.pth")
    args = p.parse_args(argv)
    from nasbench.engine import dist as D
    from nasbench.pipeline import retrain
    res = retrain(load_cfg(args), args.arch, args.out, resume=args.resume)
    if res.get("benchmark") and D.is_main():
        print(benchmark_line(res))


if __name__ == "__main__":
    sys.exit(run_cli(main))
