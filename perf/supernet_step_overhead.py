"""Training-step overhead of the width supernet versus the standalone network.

For each Channel-Bench-Macro variant and each architecture key, this script
times one *training step* of

* A: the weight-sharing supernet (``space.build_supernet()``) with ``arch``
  active (``set_active(arch, side)``, left window by default, right window
  for the keys in ``--right-archs``), and
* B: the standalone network ``space.build(arch)`` of exactly the same shape,

where one step is ``zero_grad(set_to_none=True)`` -> (supernet only:
``set_active``) -> forward -> cross-entropy loss -> backward -> SGD step
(lr 0.01, momentum 0.9, Nesterov, weight decay 5e-4: the ``train`` defaults of
``nasbench/config_defaults.yaml`` except for the smaller lr, which keeps the
loss finite on random data). Every model gets its own optimizer; the supernet
and its optimizer are built once per variant and shared by all keys, as in
supernet training (momentum buffers exist for all supernet weights).

The input is one fixed random batch ``[batch, 3, 32, 32]`` with random labels.
Since other jobs may share the machine, A and B are measured *interleaved in
one run*: after ``--warmup`` unmeasured steps each, ``--repeats`` rounds each
time one step of A and one of B, in the order A,B then B,A (alternating, so a
slow drift of the machine's load hits both equally). Reported: the median step
time of each and ``ratio = median(A) / median(B)`` (the issue's target is
``ratio <= 1.15``), plus medians of the three phases (forward+loss, backward,
zero_grad+optimizer step) to show where any overhead comes from.

With ``--profile`` every configuration whose ratio exceeds ``--threshold`` is
profiled afterwards with ``torch.profiler`` (one step of A and one of B) and the
top operators by self CPU time are printed and stored in the JSON.

Run from the repository root::

    python perf/supernet_step_overhead.py                      # full default sweep
    python perf/supernet_step_overhead.py --variants resnet --archs 1111111,4444444 \\
        --warmup 1 --repeats 4 --profile

Output: a table on stdout and JSON at ``--out`` (default
``perf/results/supernet_step_overhead.json``); see ``perf/README.md``.
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

import torch  # noqa: E402

from nasbench.spaces.channel_bench_macro import ChannelBenchMacroSpace  # noqa: E402
from perf._common import (OPT_KW, add_timing_args, env_info, make_optimizer, random_batch,  # noqa: E402
                          timed_step, write_json)

TARGET_RATIO = 1.15


def med_ms(xs):
    return 1e3 * statistics.median(xs)


def top_ops(model, opt, x, y, activate=None, k=8):
    """Top-``k`` operators (by self CPU time) of one profiled training step."""
    from torch.profiler import ProfilerActivity, profile

    timed_step(model, opt, x, y, activate)  # make sure caches are warm
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        timed_step(model, opt, x, y, activate)
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:k]
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    return {"self_cpu_total_ms": total / 1e3,
            "top": [{"op": e.key, "self_cpu_ms": e.self_cpu_time_total / 1e3, "calls": e.count}
                    for e in rows]}


def measure(supernet, sup_opt, space, arch, side, x, y, warmup, repeats):
    """Interleaved timing of supernet (A) vs standalone (B) for one arch/side."""
    torch.manual_seed(0)
    standalone = space.build(arch).train()
    std_opt = make_optimizer(standalone)
    activate = lambda: supernet.set_active(arch, side)  # noqa: E731
    runners = {"supernet": lambda: timed_step(supernet, sup_opt, x, y, activate),
               "standalone": lambda: timed_step(standalone, std_opt, x, y)}
    for _ in range(warmup):
        runners["supernet"]()
        runners["standalone"]()
    samples = {k: [] for k in runners}
    for i in range(repeats):
        order = ("supernet", "standalone") if i % 2 == 0 else ("standalone", "supernet")
        for k in order:
            samples[k].append(runners[k]())
    out = {}
    for k, s in samples.items():
        total, fwd, bwd, opt = zip(*s)
        out[k] = {"median_ms": med_ms(total), "forward_ms": med_ms(fwd), "backward_ms": med_ms(bwd),
                  "optimizer_ms": med_ms(opt), "samples_ms": [1e3 * t for t in total]}
    return out, standalone, std_opt, activate


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--variants", default="mobilenet,resnet", help="comma-separated CBM variants")
    ap.add_argument("--archs", default="1111111,2222222,3333333,4444444,4432214",
                    help="comma-separated 7-digit keys (left side)")
    ap.add_argument("--right-archs", default="2222222",
                    help="comma-separated keys also measured on the right side ('' = none)")
    ap.add_argument("--min-bins", type=int, default=0,
                    help="supernet enlargement m (0 = BCNet V1, 1 = BCNetV2: 5/4 width)")
    ap.add_argument("--threshold", type=float, default=TARGET_RATIO, help="target ratio")
    ap.add_argument("--profile", action="store_true",
                    help="torch.profiler on every configuration above --threshold")
    add_timing_args(ap, "supernet_step_overhead.json")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    x, y = random_batch(args.batch, args.seed)
    variants = [v for v in args.variants.split(",") if v]
    keys = [a for a in args.archs.split(",") if a]
    right = {a for a in args.right_archs.split(",") if a}

    header = (f"{'variant':<10} {'arch':<8} {'side':<5} {'super ms':>9} {'alone ms':>9} {'ratio':>6}   "
              f"{'fwd S/A':>13} {'bwd S/A':>13} {'opt S/A':>11}  ok")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"torch {torch.__version__}, threads {args.threads}, batch {args.batch}, "
          f"warmup {args.warmup}, repeats {args.repeats} (interleaved), min_bins {args.min_bins}, "
          f"load avg {load}")
    if args.threads > 1 and load is not None and load + args.threads > (os.cpu_count() or 1) + 0.5:
        print(f"WARNING: 1-min load average {load:.1f} + {args.threads} threads exceeds "
              f"{os.cpu_count()} CPUs; multi-threaded timings are distorted by preempted threads "
              f"(consider --threads 1)")
    print(header)
    print("-" * len(header))
    results = []
    t_start = time.time()
    for variant in variants:
        space = ChannelBenchMacroSpace(variant, min_bins=args.min_bins)
        torch.manual_seed(args.seed)
        supernet = space.build_supernet().train()
        sup_opt = make_optimizer(supernet)
        sup_params = sum(p.numel() for p in supernet.parameters())
        for key in keys:
            arch = space.decode(key)
            for side in ["left"] + (["right"] if key in right else []):
                r, standalone, std_opt, activate = measure(supernet, sup_opt, space, arch, side, x, y,
                                                           args.warmup, args.repeats)
                s, a = r["supernet"], r["standalone"]
                ratio = s["median_ms"] / a["median_ms"]
                row = {"variant": variant, "arch": key, "side": side, "min_bins": args.min_bins,
                       "widths": space.channels(arch), "supernet_widths": space.super_channels,
                       "params_supernet": sup_params,
                       "params_standalone": sum(p.numel() for p in standalone.parameters()),
                       "macs_standalone": space.flops(arch),
                       "supernet": s, "standalone": a, "ratio": ratio,
                       "within_target": ratio <= args.threshold}
                print(f"{variant:<10} {key:<8} {side:<5} {s['median_ms']:9.1f} {a['median_ms']:9.1f} {ratio:6.3f}   "
                      f"{s['forward_ms']:6.0f}/{a['forward_ms']:<6.0f} {s['backward_ms']:6.0f}/{a['backward_ms']:<6.0f} "
                      f"{s['optimizer_ms']:5.1f}/{a['optimizer_ms']:<5.1f}  "
                      f"{'yes' if row['within_target'] else 'NO'}", flush=True)
                if args.profile and not row["within_target"]:
                    row["profile"] = {"supernet": top_ops(supernet, sup_opt, x, y, activate),
                                      "standalone": top_ops(standalone, std_opt, x, y)}
                    for name, p in row["profile"].items():
                        ops = ", ".join(f"{o['op']} {o['self_cpu_ms']:.1f}" for o in p["top"][:5])
                        print(f"    profile {name:<10} total {p['self_cpu_total_ms']:.0f} ms: {ops}")
                results.append(row)
                del standalone, std_opt

    ratios = [r["ratio"] for r in results]
    summary = {"configs": len(results), "max_ratio": max(ratios), "median_ratio": statistics.median(ratios),
               "all_within_target": all(r["within_target"] for r in results),
               "wall_s": time.time() - t_start}
    print("-" * len(header))
    print(f"median ratio {summary['median_ratio']:.3f}, max ratio {summary['max_ratio']:.3f}, "
          f"target <= {args.threshold}: {'met' if summary['all_within_target'] else 'NOT met'} "
          f"({summary['wall_s']:.0f} s)")
    payload = {"benchmark": "supernet_step_overhead",
               "step": "zero_grad(set_to_none) + [set_active] + forward + cross_entropy + backward + SGD.step",
               "optimizer": {"type": "SGD (nasbench build_optimizer, fused)", **OPT_KW},
               "config": {k: v for k, v in vars(args).items() if k != "out"},
               "target_ratio": args.threshold,
               "env": env_info(load),
               "summary": summary, "results": results}
    write_json(payload, args.out)
    return payload


if __name__ == "__main__":
    main()
