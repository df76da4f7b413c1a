"""Seconds per architecture: BN indicator versus BN recalibration + validation accuracy.

Loads one operator-choice supernet checkpoint (``--cfg`` + ``--ckpt``, e.g. a
SPOS or BN-NAS run on NAS-Bench-Macro) and scores the same seeded
architectures (``pipeline.rank_archs``, the rank_eval sample) with both
evaluators of ``nasbench.pipeline.supernet_evaluator``:

* A: ``eval.type=accuracy``: reset BN statistics, forward ``eval.recal_batches``
  training batches, then top-1 on the validation batches (the cfg's sizes);
* B: ``eval.type=bn_indicator``: sum of mean |gamma| of the chosen operators'
  last BNs (BN-NAS, METHODS.md 2.4).

Per architecture A and B are timed interleaved (A,B then B,A). B's table of
per-operator scores is read once from the supernet (timed separately as
``indicator_table_seconds``) and is included amortised in B's per-arch figure.
Reported: median and mean seconds per arch of each, ``ratio = A / B`` (BN-NAS
claims >600,000x on ImageNet), and both evaluators' Kendall tau on these archs.

    python perf/indicator_vs_recal.py --cfg configs/spos/nas_bench_macro_cpu.yaml \\
        --ckpt runs/spos/checkpoints/last.pth --num-archs 30
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nasbench import pipeline as P  # noqa: E402
from nasbench.config import load_config  # noqa: E402
from nasbench.metrics.ranking import rank_correlations  # noqa: E402
from perf._common import env_info, write_json  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--cfg", required=True)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--num-archs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--opts", nargs="*", default=[], help="config overrides key=value")
    ap.add_argument("--out", default=os.path.join(REPO_ROOT, "perf", "results", "indicator_vs_recal.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cfg = load_config(args.cfg, args.opts)
    device = torch.device("cpu")
    space, supernet, algorithm = P.load_supernet(cfg, args.ckpt, device)
    bench = P.benchmark_for(cfg, space)
    archs = P.rank_archs(bench, space, args.num_archs, int(cfg.seed))
    datasets = P.load_datasets(cfg)
    ev = {}
    for kind in ("accuracy", "bn_indicator"):
        c = load_config(args.cfg, args.opts + [f"eval.type={kind}"])
        t0 = time.perf_counter()
        ev[kind] = P.supernet_evaluator(c, supernet, algorithm, datasets, device)
        if kind == "bn_indicator":
            table_s = time.perf_counter() - t0
    times = {k: [] for k in ev}
    scores = {k: [] for k in ev}
    for i, a in enumerate(archs):
        for k in (("accuracy", "bn_indicator") if i % 2 == 0 else ("bn_indicator", "accuracy")):
            t0 = time.perf_counter()
            scores[k].append(ev[k].evaluate([a])[0]["score"])
            times[k].append(time.perf_counter() - t0)
    times["bn_indicator"] = [t + table_s / len(archs) for t in times["bn_indicator"]]
    true = np.array([bench.query(a)[bench.metric] for a in archs])
    res = {"env": env_info(load), "args": vars(args), "num_archs": len(archs),
           "indicator_table_seconds": table_s, "evaluators": {}}
    for k in ev:
        res["evaluators"][k] = {"median_seconds_per_arch": statistics.median(times[k]),
                                "mean_seconds_per_arch": statistics.fmean(times[k]),
                                "kendall_tau": rank_correlations(np.array(scores[k]), true)["kendall_tau"]}
    acc, ind = res["evaluators"]["accuracy"], res["evaluators"]["bn_indicator"]
    res["ratio_mean"] = acc["mean_seconds_per_arch"] / ind["mean_seconds_per_arch"]
    for k, r in res["evaluators"].items():
        print(f"{k:13s} median {r['median_seconds_per_arch']:.3e} s/arch  mean {r['mean_seconds_per_arch']:.3e}"
              f"  tau {r['kendall_tau']:.3f}")
    print(f"recal+val / indicator (mean s/arch): {res['ratio_mean']:.3g}x over {len(archs)} archs")
    write_json(res, args.out)


if __name__ == "__main__":
    main()
