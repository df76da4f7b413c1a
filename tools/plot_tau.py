#!/usr/bin/env python
"""Plot BN-indicator Kendall tau curves of several supernet runs in one figure.

    python tools/plot_tau.py --runs runs/bnnas runs/spos --labels "BN-only" "SPOS (all weights)" --out figs/tau.png

Each run folder must hold ``indicator_tau.json`` (written when
``rank_eval.track_interval`` is set). Also prints, per run, the first step at
which tau reached within ``--within`` of that run's final tau.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402

from nasbench.utils import run_cli  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", required=True, help="run folders with indicator_tau.json")
    p.add_argument("--labels", nargs="*", default=None, help="one label per run (default: folder names)")
    p.add_argument("--within", type=float, default=0.02, help="tolerance for 'reached the final tau'")
    p.add_argument("--out", required=True, help="PNG path")
    args = p.parse_args(argv)

    import json
    from pathlib import Path

    from nasbench.errors import NasbenchError
    from nasbench.metrics.plots import plot_tau_curves

    labels = args.labels or [Path(r).name for r in args.runs]
    if len(labels) != len(args.runs):
        raise NasbenchError(f"--labels has {len(labels)} entries for {len(args.runs)} --runs")
    curves = {}
    for run, label in zip(args.runs, labels):
        f = Path(run) / "indicator_tau.json"
        if not f.is_file():
            raise NasbenchError(f"{f} does not exist (train with rank_eval.track_interval set)")
        hist = json.loads(f.read_text())["history"]
        x, y = [h["epoch"] for h in hist], [h["kendall_tau"] for h in hist]
        curves[label] = (x, y)
        first = next(h for h in hist if abs(h["kendall_tau"] - y[-1]) <= args.within)
        print(f"{label}: tau {y[0]:.3f} at step 0 -> {y[-1]:.3f} at step {hist[-1]['step']}; "
              f"within {args.within} of final from step {first['step']} (epoch {first['epoch']:.2f})")
    plot_tau_curves(curves, args.out, title="BN indicator Kendall tau during supernet training")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    run_cli(main)
