#!/usr/bin/env python
"""Train a supernet: python tools/train_supernet.py --cfg CFG --out DIR [--resume] [--opts k=v ...]

Writes DIR/config.yaml, DIR/log.jsonl, DIR/tb/, DIR/checkpoints/last.pth and,
for width spaces, DIR/fairness.json (+ .png). Launch on several processes with
scripts/dist_train.sh or scripts/slurm_train.sh.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasbench.cli import load_cfg, make_parser  # noqa: E402
from nasbench.utils import run_cli  # noqa: E402


def main(argv=None):
    p = make_parser(__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pth")
    args = p.parse_args(argv)
    from nasbench.pipeline import train_supernet
    train_supernet(load_cfg(args), args.out, resume=args.resume)


if __name__ == "__main__":
    sys.exit(run_cli(main))
