#!/usr/bin/env python
"""Retrain a found architecture from scratch: python tools/retrain.py --cfg CFG --arch ARCH --out RDIR

ARCH is a key such as 4432214 or a search result.json. Writes RDIR/result.json
with the test top-1 (%), params and FLOPs (MACs), and RDIR/checkpoints/last.pth.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasbench.cli import load_cfg, make_parser  # noqa: E402
from nasbench.utils import run_cli  # noqa: E402


def main(argv=None):
    p = make_parser(__doc__.splitlines()[0])
    p.add_argument("--arch", required=True, help="architecture key or result.json of tools/search.py")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue from RDIR/checkpoints/last.pth")
    args = p.parse_args(argv)
    from nasbench.pipeline import retrain
    retrain(load_cfg(args), args.arch, args.out, resume=args.resume)


if __name__ == "__main__":
    sys.exit(run_cli(main))
