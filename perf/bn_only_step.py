"""Training-step time of BN-only (BN-NAS) versus full (SPOS) supernet training.

Two NAS-Bench-Macro supernets are built from the same seed: A trains every
weight (SPOS), B only the affine parameters of each candidate operator's last
BN (``BNNAS.setup``, METHODS.md 2.3). Each gets the optimizer the
trainer builds for it (``build_optimizer(fused=False)``, lr 0.01, momentum 0.9,
Nesterov, weight decay 5e-4). One step = ``zero_grad(set_to_none=True)`` ->
``set_active(path)`` -> forward -> cross-entropy -> backward -> SGD step, on one
fixed random batch ``[batch, 3, 32, 32]``. Both follow the same sequence of
uniformly drawn paths and are timed interleaved (A,B then B,A, ...), so a
change of machine load hits both. Reported: median step time of each, their
ratio, and the medians of forward+loss, backward and optimizer phases.

BN-only saves the weight-gradient computations of every convolution and the
optimizer update of all but ~6k parameters; it still back-propagates through
every layer to reach the first BNs. (The paper's >10x also counts its 10x
fewer epochs; this script measures the per-step part only.)

    python perf/bn_only_step.py --threads 2 --warmup 2 --repeats 20
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nasbench.algorithms import BNNAS  # noqa: E402
from nasbench.config import Config  # noqa: E402
from nasbench.engine.optim import build_optimizer  # noqa: E402
from nasbench.spaces import NASBenchMacroSpace  # noqa: E402
from perf._common import OPT_KW, add_timing_args, env_info, random_batch, timed_step, write_json  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_timing_args(ap, "bn_only_step.json", batch=128, repeats=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    space = NASBenchMacroSpace()
    models, opts = {}, {}
    for name in ("full", "bn_only"):
        torch.manual_seed(args.seed)
        m = space.build_supernet().train()
        if name == "bn_only":
            BNNAS(space).setup(m, {})
        models[name] = m
        opts[name] = build_optimizer(m, Config({**OPT_KW, "no_wd_bn": False}), fused=False)
    x, y = random_batch(args.batch, args.seed)
    rng = np.random.default_rng(args.seed)
    times = {n: [] for n in models}
    for i in range(args.warmup + args.repeats):
        arch = space.sample(rng)
        order = ("full", "bn_only") if i % 2 == 0 else ("bn_only", "full")
        for n in order:
            m = models[n]
            t = dict(zip(("total", "fwd", "bwd", "opt"), timed_step(m, opts[n], x, y, lambda: m.set_active(arch))))
            if i >= args.warmup:
                times[n].append(t)
    med = {n: {k: statistics.median(t[k] for t in ts) for k in ("total", "fwd", "bwd", "opt")}
           for n, ts in times.items()}
    trainable = {n: sum(p.numel() for p in m.parameters() if p.requires_grad) for n, m in models.items()}
    ratio = med["full"]["total"] / med["bn_only"]["total"]
    print(f"{'':8s} {'step s':>8s} {'fwd':>7s} {'bwd':>7s} {'opt':>7s} {'trainable':>10s}")
    for n in models:
        print(f"{n:8s} {med[n]['total']:8.3f} {med[n]['fwd']:7.3f} {med[n]['bwd']:7.3f} {med[n]['opt']:7.3f} "
              f"{trainable[n]:10d}")
    print(f"full / bn_only step time: {ratio:.2f}x  (batch {args.batch}, {args.repeats} paths, "
          f"{args.threads} threads)")
    write_json({"env": env_info(load), "args": vars(args), "median_seconds": med, "trainable_params": trainable,
                "ratio_full_over_bn_only": ratio}, args.out)


if __name__ == "__main__":
    main()
