"""Accuracy cost of bf16 supernet training (and of the bf16 evaluator) on a CPU config.

Compares supernet runs trained by ``tools/train_supernet.py`` with the same
config and seed but different ``train`` settings (e.g. fp32 vs
``train.amp=bf16 train.channels_last=true``), the first run being the
reference:

1. training loss curves (``log.jsonl``, best with ``train.log_interval=1``):
   mean and max absolute difference per logged step, and the mean loss of the
   last ``--tail`` logged steps;
2. the BN-recalibrated validation accuracy (the search score of
   ``SupernetEvaluator``: BCNet averages the left and right paths) of a fixed
   sample of ``--num-archs`` subnets (the ``rank_eval`` sample of the benchmark
   when there is one), scored by the fp32 evaluator on every run's checkpoint:
   per-arch differences to the reference, Kendall tau between the runs' scores,
   and each run's Kendall tau against the benchmark;
3. the evaluator under bf16 (``train.amp=bf16`` makes ``make_evaluator``
   autocast BN recalibration and validation) against the fp32 evaluator on the
   same checkpoint (the runs named by ``--bf16-eval``, default the reference):
   per-arch differences and Kendall tau.

A third run with another ``seed`` (fp32) gives the seed-to-seed spread that
the bf16 differences should be compared with.

Run from the repository root (data from ``data.root``)::

    python tools/train_supernet.py --cfg configs/bcnet/cbm_mobilenet_cpu.yaml --out runs/acc_fp32 \\
        --opts train.max_steps=60 train.log_interval=1 train.amp=none train.channels_last=false data.root=DATA
    python tools/train_supernet.py --cfg configs/bcnet/cbm_mobilenet_cpu.yaml --out runs/acc_bf16 \\
        --opts train.max_steps=60 train.log_interval=1 train.amp=bf16 train.channels_last=true data.root=DATA
    python tools/train_supernet.py ... --out runs/acc_seed1 --opts ... train.amp=none seed=1
    python perf/bf16_accuracy.py --runs fp32=runs/acc_fp32 bf16=runs/acc_bf16 seed1=runs/acc_seed1 \
        --opts data.root=DATA --num-archs 8 --jobs 4

Output: tables on stdout and JSON at ``--json`` (default
``perf/results/bf16_accuracy.json``); see ``perf/README.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nasbench.config import load_config  # noqa: E402
from nasbench.metrics.ranking import rank_correlations  # noqa: E402
from nasbench.pipeline import benchmark_for, load_datasets, load_supernet, make_evaluator, rank_archs  # noqa: E402
from perf._common import env_info, write_json  # noqa: E402

DEFAULT_CFG = os.path.join(REPO_ROOT, "configs", "bcnet", "cbm_mobilenet_cpu.yaml")


def read_losses(run_dir):
    """``{step: train/loss}`` from ``run_dir/log.jsonl``."""
    out = {}
    with open(os.path.join(run_dir, "log.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            if row.get("train/loss") is not None:
                out[int(row["step"])] = float(row["train/loss"])
    return out


def score_run(cfg_path, opts, run_dir, amp, keys, threads, datasets=None):
    """``([score per arch key], seconds)`` of ``run_dir``'s supernet under the ``amp`` evaluator."""
    torch.set_num_threads(threads)
    cfg = load_config(cfg_path, [*opts, f"train.amp={amp}"])
    device = torch.device("cpu")
    if datasets is None:
        datasets = load_datasets(cfg)
    space, supernet, algorithm = load_supernet(cfg, os.path.join(run_dir, "checkpoints", "last.pth"), device)
    ev = make_evaluator(cfg, supernet, algorithm, datasets, device)
    t = time.time()
    scores = [r["score"] for r in ev.evaluate([space.decode(k) for k in keys])]
    return scores, time.time() - t


def tau(a, b):
    return rank_correlations(np.asarray(a), np.asarray(b))["kendall_tau"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--cfg", default=DEFAULT_CFG, help="config of the runs (eval/data settings)")
    ap.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--runs", nargs="+", required=True, metavar="NAME=DIR",
                    help="supernet run folders; the first is the reference")
    ap.add_argument("--num-archs", type=int, default=16, help="fixed subnets scored")
    ap.add_argument("--tail", type=int, default=10, help="last logged steps averaged")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per scoring process")
    ap.add_argument("--bf16-eval", default="",
                    help="comma list of runs also scored by the bf16 evaluator ('' = the reference only)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="scoring processes in parallel (one per run and evaluator precision)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the subnet sample")
    ap.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                   "bf16_accuracy.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = [tuple(r.split("=", 1)) for r in args.runs]
    ref_name = runs[0][0]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    t0 = time.time()

    cfg = {amp: load_config(args.cfg, [*args.opts, f"train.amp={amp}"]) for amp in ("none", "bf16")}
    device = torch.device("cpu")
    datasets = load_datasets(cfg["none"])
    space0, _, _ = load_supernet(cfg["none"], os.path.join(runs[0][1], "checkpoints", "last.pth"), device)
    bench = benchmark_for(cfg["none"], space0)
    if bench is not None:
        archs = rank_archs(bench, space0, args.num_archs, args.seed)
        truth = [float(bench.query(a)[bench.metric]) for a in archs]
    else:
        rng = np.random.default_rng(args.seed)
        archs, truth = [space0.sample(rng) for _ in range(args.num_archs)], None

    # 1. loss curves
    losses = {name: read_losses(d) for name, d in runs}
    curves = {}
    print(f"loss curves (reference {ref_name})")
    for name, _ in runs:
        steps = sorted(set(losses[name]) & set(losses[ref_name]))
        diffs = [abs(losses[name][s] - losses[ref_name][s]) for s in steps]
        tail = steps[-args.tail:]
        curves[name] = {"steps": steps, "loss": [losses[name][s] for s in steps],
                        "mean_abs_diff": statistics.mean(diffs), "max_abs_diff": max(diffs),
                        "tail_mean_loss": statistics.mean(losses[name][s] for s in tail),
                        "first_loss": losses[name][steps[0]], "last_loss": losses[name][steps[-1]]}
        c = curves[name]
        print(f"  {name:<10} {len(steps)} steps: first {c['first_loss']:.4f} last {c['last_loss']:.4f} "
              f"mean of last {len(tail)} {c['tail_mean_loss']:.4f}; |diff to {ref_name}| mean "
              f"{c['mean_abs_diff']:.4f} max {c['max_abs_diff']:.4f}")

    # 2./3. subnet scores: every run's checkpoint, fp32 and bf16 evaluator (one process per pair)
    bf16_eval = set(args.bf16_eval.split(",")) if args.bf16_eval else {ref_name}
    jobs = [(name, d, amp) for name, d in runs for amp in ("none", "bf16") if amp == "none" or name in bf16_eval]
    keys = [space0.encode(a) for a in archs]
    scores = {}
    if args.jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=mp.get_context("spawn")) as pool:
            futs = {(n, a): pool.submit(score_run, args.cfg, args.opts, d, a, keys, args.threads)
                    for n, d, a in jobs}
            for (n, a), f in futs.items():
                scores[(n, a)], secs = f.result()
                print(f"  scored {len(archs)} subnets of {n} with the {'fp32' if a == 'none' else a} "
                      f"evaluator in {secs:.0f} s", flush=True)
    else:
        for n, d, a in jobs:
            scores[(n, a)], secs = score_run(args.cfg, args.opts, d, a, keys, args.threads, datasets)
            print(f"  scored {len(archs)} subnets of {n} with the {'fp32' if a == 'none' else a} "
                  f"evaluator in {secs:.0f} s", flush=True)
    ref = scores[(ref_name, "none")]
    print(f"\nsubnet scores (BN-recalibrated val top-1 %, {len(archs)} fixed subnets"
          + (f", benchmark {bench.metric})" if truth else ")"))
    cols = [(n, a) for n, _ in runs for a in ("none", "bf16") if (n, a) in scores]
    header = f"{'arch':<8} " + " ".join(f"{n + '/' + ('fp32' if a == 'none' else a):>12}" for n, a in cols) \
        + (f" {'bench':>7}" if truth else "")
    print(header)
    for i, arch in enumerate(archs):
        print(f"{space0.encode(arch):<8} " + " ".join(f"{scores[(n, a)][i]:12.2f}" for n, a in cols)
              + (f" {truth[i]:7.2f}" if truth else ""))
    summary = {}
    print()
    for name, _ in runs:
        s32, s16 = scores[(name, "none")], scores.get((name, "bf16"))
        row = {"mean_score_fp32_eval": statistics.mean(s32),
               "mean_abs_diff_vs_ref": statistics.mean(abs(a - b) for a, b in zip(s32, ref)),
               "max_abs_diff_vs_ref": max(abs(a - b) for a, b in zip(s32, ref)),
               "mean_diff_vs_ref": statistics.mean(a - b for a, b in zip(s32, ref)),
               "kendall_tau_vs_ref": tau(s32, ref)}
        if truth:
            row["kendall_tau_vs_benchmark"] = tau(s32, truth)
        if s16 is not None:
            row.update({"bf16_eval_mean_abs_diff": statistics.mean(abs(a - b) for a, b in zip(s16, s32)),
                        "bf16_eval_max_abs_diff": max(abs(a - b) for a, b in zip(s16, s32)),
                        "bf16_eval_kendall_tau": tau(s16, s32)})
            if truth:
                row["kendall_tau_vs_benchmark_bf16_eval"] = tau(s16, truth)
        summary[name] = row
        print(f"{name:<10} mean score {row['mean_score_fp32_eval']:.2f}; vs {ref_name}: mean diff "
              f"{row['mean_diff_vs_ref']:+.2f}, mean |diff| {row['mean_abs_diff_vs_ref']:.2f} (max "
              f"{row['max_abs_diff_vs_ref']:.2f}), tau {row['kendall_tau_vs_ref']:.3f}"
              + (f"; tau vs benchmark {row['kendall_tau_vs_benchmark']:.3f}" if truth else "")
              + (f" | bf16 evaluator vs fp32: mean |diff| {row['bf16_eval_mean_abs_diff']:.2f}, max "
                 f"{row['bf16_eval_max_abs_diff']:.2f}, tau {row['bf16_eval_kendall_tau']:.3f}"
                 if s16 is not None else ""))
    payload = {"benchmark": "bf16_accuracy", "cfg": os.path.relpath(os.path.abspath(args.cfg), REPO_ROOT),
               "opts": args.opts, "runs": dict(runs), "reference": ref_name,
               "config": {k: v for k, v in vars(args).items() if k not in ("json", "runs")},
               "env": env_info(load), "wall_s": time.time() - t0,
               "archs": [space0.encode(a) for a in archs], "benchmark_truth": truth,
               "curves": curves,
               "scores": {f"{n}/{'fp32' if a == 'none' else a}_eval": v for (n, a), v in scores.items()},
               "summary": summary}
    write_json(payload, args.json)
    return payload


if __name__ == "__main__":
    main()
