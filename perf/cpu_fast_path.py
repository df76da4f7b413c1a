"""Faster CPU path for supernet training: bf16 autocast, channels_last, torch.compile vs fp32.

Builds the supernet, the algorithm and the :class:`~nasbench.engine.Trainer` of a
CPU config (default ``configs/bcnet/cbm_mobilenet_cpu.yaml``: BCNet on
Channel-Bench-Macro MobileNet, batch 128) once per *variant* and times full
training steps through the real ``Trainer.run_step`` (the algorithm's
``train_step`` with the trainer's optimizer, LR schedule and settings: for
BCNet one step is a left and a right forward/backward of the sampled widths,
then one SGD step). Variants differ only in ``train.amp`` (``none`` / ``bf16``),
``train.channels_last`` and whether the forward is ``torch.compile``-d:

    fp32          today's path (amp none, contiguous)
    bf16          train.amp=bf16 (CPU autocast to bfloat16)
    cl_fp32       train.channels_last=true
    cl_bf16       both
    compile_fp32, compile_bf16, compile_cl_bf16
                  the same with ``torch.compile(module)`` as the model the
                  algorithm calls (opt-in: see --variants; the supernet's channel
                  windows are Python ints, so dynamo guards on them and recompiles
                  for every new width configuration; the script counts the
                  recompilations and reports the compile steps separately)

Every variant starts from the same weights (same seed) and its algorithm from the
same sampling seed, and all variants step in lockstep on one fixed batch, so at
every step all of them train the same subnet on the same images: the step times
are comparable per step and the losses must agree (fp32 layouts to float
rounding, bf16 to bf16 rounding). After ``--warmup`` unmeasured steps of each,
``--repeats`` rounds each run one step of every variant, the order rotated by one
every round (round-robin), so a change in the machine's load hits all variants
alike. Reported per variant: median seconds/step, images/s (``batch / median``;
a BCNet step uses the batch twice, left and right, but counts it once as the
trainer's ``images_per_s`` does), ``speedup`` = median(fp32) / median(variant),
the median over rounds of the per-round speedup (paired), and the largest
absolute difference of the step losses from fp32's.

Run from the repository root::

    python perf/cpu_fast_path.py --threads 2 --warmup 2 --repeats 10
    python perf/cpu_fast_path.py --threads 1 --warmup 2 --repeats 10
    python perf/cpu_fast_path.py --variants fp32,compile_fp32,compile_bf16 --warmup 0 --repeats 3

Output: a table on stdout and JSON at ``--json`` (default
``perf/results/cpu_fast_path.json``); see ``perf/README.md``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402

from nasbench.algorithms import build_algorithm  # noqa: E402
from nasbench.config import Config, load_config  # noqa: E402
from nasbench.engine.logger import RunLogger  # noqa: E402
from nasbench.engine.trainer import Trainer  # noqa: E402
from nasbench.spaces import build_space  # noqa: E402
from perf._common import add_timing_args, env_info, random_batch, write_json  # noqa: E402

DEFAULT_CFG = os.path.join(REPO_ROOT, "configs", "bcnet", "cbm_mobilenet_cpu.yaml")
GOAL = 1.5

#: variant -> (train.amp, train.channels_last, torch.compile)
VARIANTS = {
    "fp32": ("none", False, False),
    "bf16": ("bf16", False, False),
    "cl_fp32": ("none", True, False),
    "cl_bf16": ("bf16", True, False),
    "compile_fp32": ("none", False, True),
    "compile_bf16": ("bf16", False, True),
    "compile_cl_bf16": ("bf16", True, True),
}


class _NoData:
    """Stands in for the training loader: the trainer only needs ``len(loader)`` here."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def epoch(self, e, start=0):
        return iter(())


def dynamo_counters():
    """``(frames compiled, graph breaks)`` so far in this process (0, 0 without dynamo)."""
    try:
        from torch._dynamo.utils import counters
    except Exception:  # pragma: no cover - dynamo unavailable
        return 0, 0
    return int(counters["stats"]["unique_graphs"]), int(sum(counters["graph_break"].values()))


def _mkldnn_bf16():
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # pragma: no cover - op missing in this build
        return None


class Variant:
    """One trainer (supernet, algorithm, optimizer, schedule) with the variant's settings."""

    def __init__(self, name, cfg, space, x, y, seed, steps_per_epoch, out_dir):
        self.name = name
        self.amp, self.channels_last, self.compiled = VARIANTS[name]
        torch.manual_seed(seed)
        supernet = space.build_supernet()
        algorithm = build_algorithm(cfg.algorithm, space, seed=int(cfg.seed))
        train_cfg = Config({**cfg.train, "amp": self.amp, "channels_last": self.channels_last,
                            "sync_bn": False})  # as train_supernet does (the supernet syncs its own BN)
        d = os.path.join(out_dir, name)
        self.trainer = Trainer(supernet, algorithm, _NoData(steps_per_epoch), train_cfg, d,
                               logger=RunLogger(d, use_tensorboard=False))
        self.trainer.module.train()
        if self.compiled:
            compiled = torch.compile(self.trainer.module)
            self.trainer.model = self.trainer.ctx.model = compiled
        self.x, self.y = x, y
        self.losses, self.samples, self.cpu_samples, self.warmup_s, self.graphs = [], [], [], [], []

    def step(self):
        tr = self.trainer
        g0 = dynamo_counters()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        metrics = tr.run_step(tr.prepare_batch((self.x, self.y)))
        dt, self.last_cpu = time.perf_counter() - t0, time.process_time() - c0
        loss = float(metrics["loss"])
        if not torch.isfinite(torch.tensor(loss)):
            raise FloatingPointError(f"{self.name}: loss became non-finite at step {tr.step}")
        tr.step += 1  # as Trainer.fit does after run_step (drives the LR schedule)
        self.losses.append(loss)
        self.graphs.append(dynamo_counters()[0] - g0)
        return dt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--cfg", default=DEFAULT_CFG, help="CPU config whose supernet/algorithm/train are timed")
    ap.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--variants", default="fp32,bf16,cl_fp32,cl_bf16",
                    help=f"comma list of {', '.join(VARIANTS)}; the first is the baseline")
    add_timing_args(ap, "cpu_fast_path.json", batch=0, repeats=10)
    ap.add_argument("--json", dest="out", help="JSON output path (same as --out)")
    args = ap.parse_args(argv)

    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        ap.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(args.threads)
    cfg = load_config(args.cfg, args.opts)
    batch = args.batch or int(cfg.data.batch_size)
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    x, y = random_batch(batch, args.seed, num_classes=cfg.data.num_classes)
    steps_per_epoch = max(1, int(cfg.data.train_size or 50000) // batch)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"torch {torch.__version__}, {args.cfg}: {space.name} / {cfg.algorithm.type}, batch {batch}, "
          f"threads {args.threads}, warmup {args.warmup}, repeats {args.repeats} (round-robin), "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}, load avg {load}")
    if args.threads > 1 and load is not None and load + args.threads > (os.cpu_count() or 1) + 0.5:
        print(f"WARNING: 1-min load average {load:.1f} + {args.threads} threads exceeds "
              f"{os.cpu_count()} CPUs; multi-threaded timings are distorted by preempted threads "
              f"(compare ratios within this run, or use --threads 1)")
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="cpu_fast_path_") as tmp:
        variants = [Variant(n, cfg, space, x, y, args.seed, steps_per_epoch, tmp) for n in names]
        for i in range(args.warmup):
            for v in variants:
                t = v.step()
                v.warmup_s.append(t)
                print(f"  warmup {i + 1}/{args.warmup} {v.name:<16} {t:7.2f} s  loss {v.losses[-1]:.4f}"
                      + (f"  new graphs {v.graphs[-1]}" if v.compiled else ""), flush=True)
        loads = []
        for r in range(args.repeats):
            k = r % len(variants)
            for v in variants[k:] + variants[:k]:
                v.samples.append(v.step())
                v.cpu_samples.append(v.last_cpu)
            loads.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
            print(f"  round {r + 1}/{args.repeats} (load {loads[-1]}): "
                  + "  ".join(f"{v.name} {v.samples[-1]:.2f}s" for v in variants), flush=True)
        for v in variants:
            v.trainer.logger.close()
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    base = variants[0]
    base_med = statistics.median(base.samples)
    base_cpu = statistics.median(base.cpu_samples)
    results = []
    header = (f"{'variant':<16} {'amp':<5} {'NHWC':<5} {'compile':<7} {'s/step':>7} {'img/s':>7} "
              f"{'speedup':>7} {'paired':>7} {'cpu s':>7} {'cpu x':>6} {'max|dloss|':>10}")
    print(f"\nbaseline {base.name}; speedup = median({base.name}) / median(variant); paired = median "
          f"over rounds of the per-round ratio; cpu s / cpu x = median process CPU seconds per step and "
          f"its ratio (all threads; robust to time-sharing with other jobs); max|dloss| = largest |loss - {base.name} loss| over "
          f"all {args.warmup + args.repeats} steps")
    print(header)
    print("-" * len(header))
    for v in variants:
        med = statistics.median(v.samples)
        paired = statistics.median(b / s for b, s in zip(base.samples, v.samples))
        dloss = max(abs(a - b) for a, b in zip(v.losses, base.losses))
        cpu = statistics.median(v.cpu_samples)
        row = {"variant": v.name, "amp": v.amp, "channels_last": v.channels_last, "compile": v.compiled,
               "median_s": med, "images_per_s": batch / med, "speedup": base_med / med,
               "paired_speedup": paired, "median_cpu_s": cpu, "cpu_speedup": base_cpu / cpu,
               "max_abs_loss_diff": dloss, "samples_s": v.samples, "cpu_samples_s": v.cpu_samples,
               "warmup_s": v.warmup_s, "losses": v.losses}
        if v.compiled:
            row["new_graphs_per_step"] = v.graphs
            row["compiled_graphs_total"] = sum(v.graphs)
        results.append(row)
        print(f"{v.name:<16} {v.amp:<5} {str(v.channels_last):<5} {str(v.compiled):<7} {med:7.2f} "
              f"{batch / med:7.1f} {base_med / med:7.2f} {paired:7.2f} {cpu:7.2f} {base_cpu / cpu:6.2f} {dloss:10.2e}")
    best = max(results, key=lambda r: r["speedup"])
    summary = {"baseline": base.name, "best": best["variant"], "best_speedup": best["speedup"],
               "goal_speedup": GOAL, "goal_met": best["speedup"] >= GOAL, "wall_s": time.time() - t_start,
               "loadavg_1min_at_end": load_end, "loadavg_1min_per_round": loads}
    print("-" * len(header))
    print(f"best {best['variant']}: {best['speedup']:.2f}x {base.name} (goal >= {GOAL}: "
          f"{'met' if summary['goal_met'] else 'NOT met'}), {summary['wall_s']:.0f} s, "
          f"load avg {load} -> {load_end}")
    if any(v.compiled for v in variants):
        for v in variants:
            if v.compiled:
                print(f"{v.name}: {sum(v.graphs)} graphs compiled over {len(v.graphs)} steps "
                      f"(per step {v.graphs}); warmup steps {[round(t, 1) for t in v.warmup_s]} s")
    payload = {"benchmark": "cpu_fast_path",
               "step": "Trainer.run_step (algorithm.train_step + SGD step + LR schedule) of the config's "
                       "supernet on one fixed random batch",
               "cfg": os.path.relpath(os.path.abspath(args.cfg), REPO_ROOT), "opts": args.opts,
               "space": space.name, "algorithm": cfg.algorithm.type, "batch": batch,
               "train": {k: cfg.train[k] for k in ("lr", "momentum", "nesterov", "weight_decay",
                                                   "no_wd_bn", "label_smoothing", "amp")},
               "config": {k: v for k, v in vars(args).items() if k != "out"},
               "env": {**env_info(load), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                       "mkldnn_bf16": _mkldnn_bf16()},
               "summary": summary, "results": results}
    write_json(payload, args.out)
    return payload


if __name__ == "__main__":
    main()
