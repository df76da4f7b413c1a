#!/usr/bin/env python
"""Supernet ranking quality: python tools/rank_eval.py --cfg CFG --ckpt CKPT --num-archs N --out EDIR

Scores N seeded random architectures with the supernet and writes EDIR/rank.json
(Kendall tau, Spearman rho, Pearson r against the benchmark, the same inside
FLOPs bands, and the FLOPs-only proxy beside them) and EDIR/rank_scatter.png.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasbench.cli import load_cfg, make_parser, positive_int  # noqa: E402
from nasbench.utils import run_cli  # noqa: E402


def main(argv=None):
    p = make_parser(__doc__.splitlines()[0])
    p.add_argument("--ckpt", required=True, help="supernet checkpoint")
    p.add_argument("--num-archs", type=positive_int, default=None, help="architectures to score (default rank_eval.num_archs)")
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    from nasbench.pipeline import rank_eval
    rank_eval(load_cfg(args), args.ckpt, args.out, num_archs=args.num_archs)


if __name__ == "__main__":
    sys.exit(run_cli(main))
