#!/usr/bin/env python
"""Plot BN-indicator Kendall tau curves of several supernet runs in one figure.

    python tools/plot_tau.py --runs runs/bnnas runs/spos --labels "BN-only" "SPOS (all weights)" --out figs/tau.png

Each run folder must hold ``indicator_tau.json`` (written when
``rank_eval.track_interval`` is set). Also prints, per run, the step from
which tau stays within ``--within`` of that run's final tau.
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
    p.add_argument("--reference", nargs="*", default=[], metavar="LABEL=TAU",
                   help="horizontal reference lines, e.g. 'FLOPs proxy=0.524'")
    p.add_argument("--out", required=True, help="PNG path")
    args = p.parse_args(argv)

    from nasbench.errors import NasbenchError
    from nasbench.metrics.plots import plot_tau_curves
    from nasbench.utils import labelled_run_files, read_json

    curves = {}
    for label, f in labelled_run_files(args.runs, args.labels, "indicator_tau.json",
                                       "train with rank_eval.track_interval set"):
        hist = read_json(f, "indicator history")
        hist = hist.get("history") if isinstance(hist, dict) else None
        if not isinstance(hist, list) or not hist or not all(
                isinstance(h, dict) and all(k in h for k in ("step", "epoch", "kendall_tau")) for h in hist):
            raise NasbenchError(f"{f}: not an indicator history ({{'history': [{{'step', 'epoch', "
                                "'kendall_tau'}, ...]}})")
        x, y = [h["epoch"] for h in hist], [h["kendall_tau"] for h in hist]
        curves[label] = (x, y)
        settled = len(hist) - 1  # first index from which every later tau stays within the tolerance
        while settled > 0 and abs(hist[settled - 1]["kendall_tau"] - y[-1]) <= args.within:
            settled -= 1
        first = hist[settled]
        print(f"{label}: tau {y[0]:.3f} at step {hist[0]['step']} -> {y[-1]:.3f} at step {hist[-1]['step']}; "
              f"stays within {args.within} of the final tau from step {first['step']} (epoch {first['epoch']:.2f})")
    from nasbench.utils import parse_references
    refs = parse_references(args.reference)
    plot_tau_curves(curves, args.out, title="BN indicator Kendall tau during supernet training", reference=refs)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
