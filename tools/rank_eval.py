#!/usr/bin/env python
"""Supernet ranking quality: python tools/rank_eval.py --cfg CFG (--ckpt CKPT [--num-archs N] | --ratings DIR) --out EDIR

With --ckpt: scores N seeded random architectures with the supernet and writes EDIR/rank.json
(Kendall tau, Spearman rho, Pearson r against the benchmark, the same inside FLOPs bands, and
the FLOPs-only proxy beside them) and EDIR/rank_scatter.png.

With --ratings: the configured algorithm rates EVERY architecture of the benchmark from the
rating files in DIR alone (no checkpoint; e.g. BossNAS's DIR/path_rank_{b}.yml, read safely,
rating sum_b (loss_b + 4)) and EDIR/rank.json gets kendall_tau, spearman, pearson (positive: a
better rating goes with a higher accuracy), num_archs, the params/MACs proxies and the
best-rated architecture. Algorithms without rating files refuse (exit 2).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasbench.cli import load_cfg, make_parser, positive_int  # noqa: E402
from nasbench.utils import run_cli  # noqa: E402


def main(argv=None):
    p = make_parser(__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="supernet checkpoint")
    src.add_argument("--ratings", help="folder with path_rank_0.yml, path_rank_1.yml, ... (block-wise spaces)")
    p.add_argument("--num-archs", type=positive_int, default=None,
                   help="architectures to score (default rank_eval.num_archs; --ratings rates all)")
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    cfg = load_cfg(args)
    if args.ratings:
        from nasbench.pipeline import rank_eval_ratings
        rank_eval_ratings(cfg, args.ratings, args.out)
        return
    from nasbench.pipeline import rank_eval
    rank_eval(cfg, args.ckpt, args.out, num_archs=args.num_archs)


if __name__ == "__main__":
    sys.exit(run_cli(main))
