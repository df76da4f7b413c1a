#!/usr/bin/env python
"""Plot logged training metrics of several runs against the step, one line per run and key.

    python tools/plot_log.py --runs runs/bnasv2_clr runs/bnasv2_darts --labels CLR "no CLR" \\
        --keys train/pfree_conv train/pfree_enhance --out figs/bnasv2_pfree.png

Reads each run's ``log.jsonl`` (written by the trainer); prints each key's first and
last logged value per run.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402

from nasbench.utils import run_cli  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="run folders with log.jsonl")
    p.add_argument("--labels", nargs="*", default=None, help="one label per run (default: folder names)")
    p.add_argument("--keys", nargs="+", required=True, help="logged keys, e.g. train/loss train/pfree_conv")
    p.add_argument("--title", default="", help="figure title")
    p.add_argument("--out", required=True, help="PNG path")
    args = p.parse_args(argv)

    from nasbench.errors import NasbenchError
    from nasbench.metrics.plots import plot_curves
    from nasbench.utils import labelled_run_files, read_json

    curves = {}
    for label, f in labelled_run_files(args.runs, args.labels, "log.jsonl", "not a training run folder?"):
        records = [r for r in read_json(f, "training log", lines=True) if isinstance(r, dict)]
        for key in args.keys:
            pts = [(r["step"], r[key]) for r in records if key in r]
            if not pts:
                raise NasbenchError(f"{f} logs no {key!r}; keys there: "
                                    f"{sorted({k for r in records for k in r} - {'step', 'time'})}")
            name = f"{label}: {key}" if len(args.keys) > 1 else label
            curves[name] = ([s for s, _ in pts], [v for _, v in pts])
            print(f"{name}: {pts[0][1]:.6g} at step {pts[0][0]} -> {pts[-1][1]:.6g} at step {pts[-1][0]}")
    ylabel = args.keys[0] if len(args.keys) == 1 else "value"
    plot_curves(curves, args.out, title=args.title, xlabel="step", ylabel=ylabel, marker=None)


if __name__ == "__main__":
    sys.exit(run_cli(main))
