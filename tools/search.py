#!/usr/bin/env python
"""Search with a trained supernet: python tools/search.py --cfg CFG --ckpt CKPT --out SDIR [--opts k=v ...]

Writes SDIR/result.json: the found architecture with its FLOPs (MACs), params,
supernet score and, where a tabular benchmark covers the space, its true
accuracy, rank and regret under the same FLOPs budget.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasbench.cli import load_cfg, make_parser  # noqa: E402
from nasbench.utils import run_cli  # noqa: E402


def main(argv=None):
    p = make_parser(__doc__.splitlines()[0])
    p.add_argument("--ckpt", required=True, help="supernet checkpoint (DIR/checkpoints/last.pth)")
    p.add_argument("--out", required=True, help="output folder")
    args = p.parse_args(argv)
    from nasbench.pipeline import search
    search(load_cfg(args), args.ckpt, args.out)


if __name__ == "__main__":
    sys.exit(run_cli(main))
