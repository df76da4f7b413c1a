"""Seconds per BNAS-v2 search step: first-order versus second-order (unrolled) DARTS.

One step is what the trainer runs for ``algorithm.type: bnas_v2``:
``optimizer.zero_grad`` -> ``BNASv2.train_step`` (the architecture step on an
architecture batch, then the weight forward/backward on the training batch) ->
gradient-norm clip 5 -> SGD step. The first-order architecture step is one
forward/backward; the second-order one (``unrolled: true``) is four (the training
gradient for the look-ahead step, the validation loss at the look-ahead weights,
and the two finite-difference passes), so a step is expected to take about
(4 + 1) / (1 + 1) = 2.5x as long, a bit less because two of the four passes
only need the alpha gradients, a bit more for the look-ahead arithmetic.

Two copies of the search network with the same initialisation, each with the
trainer's SGD (lr 0.1, momentum 0.9, wd 3e-4, as the BNAS-v2 configs) and its
algorithm (CLR on), are timed interleaved (A,B then B,A, ...) on fixed random
batches ``[batch, 3, 32, 32]``.

    python perf/bnasv2_unrolled_step.py --channels 8 --partial 4 --batch 64 --threads 1   # the CPU config's network
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

from nasbench.algorithms import BNASv2  # noqa: E402
from nasbench.config import Config  # noqa: E402
from nasbench.engine.context import StepContext  # noqa: E402
from nasbench.engine.optim import build_optimizer  # noqa: E402
from nasbench.spaces import build_space  # noqa: E402
from perf._common import add_timing_args, env_info, random_batch, write_json  # noqa: E402


class _FixedArchLoader:
    """The architecture split as one fixed batch, repeated."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return 1

    def epoch(self, e, start=0):
        yield self.x, self.y


def make(space, unrolled, seed, xa, ya):
    torch.manual_seed(seed)
    net = space.build_supernet()
    opt = build_optimizer(net, Config(dict(lr=0.1, momentum=0.9, nesterov=False, weight_decay=3e-4)))
    alg = BNASv2(space, arch_lr=3e-4, confidence=True, unrolled=unrolled)
    alg.arch_loader = _FixedArchLoader(xa, ya)
    alg.setup(net, None)
    ctx = StepContext(model=net, module=net, optimizer=opt,
                      total_steps=1000, steps_per_epoch=100)
    return net, opt, alg, ctx


def timed(net, opt, alg, ctx, x, y, step):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    ctx.step, ctx.epoch = step, step // ctx.steps_per_epoch
    out = alg.train_step(ctx, (x, y))
    torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 5.0)
    opt.step()
    dt = time.perf_counter() - t0
    if not torch.isfinite(out["loss"]) or not torch.isfinite(out["arch_loss"]):
        raise FloatingPointError("loss became non-finite; timings would not be representative")
    return dt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_args(ap, "bnasv2_unrolled_step.json", batch=64, repeats=6)
    ap.add_argument("--channels", type=int, default=8, help="base width C of the search network (paper 16, CPU 8)")
    ap.add_argument("--partial", type=int, default=4, help="partial-channel factor K (CPU config 4, paper CLR 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    space = build_space({"type": "bnas_v2", "search_channels": args.channels, "partial": args.partial})
    x, y = random_batch(args.batch, args.seed)
    xa, ya = random_batch(args.batch, args.seed + 1)
    runs = {name: make(space, unrolled, args.seed, xa, ya) for name, unrolled in
            (("first_order", False), ("second_order", True))}
    times = {name: [] for name in runs}
    step = 0
    for _ in range(args.warmup):
        for r in runs.values():
            timed(*r, x, y, step)
        step += 1
    order = list(runs)
    for i in range(args.repeats):
        for name in (order if i % 2 == 0 else order[::-1]):
            times[name].append(timed(*runs[name], x, y, step))
        step += 1
    med = {name: statistics.median(t) for name, t in times.items()}
    ratio = med["second_order"] / med["first_order"]
    print(f"BNAS-v2 search step, C={args.channels}, K={args.partial}, batch {args.batch} (+ architecture batch "
          f"{args.batch}), {args.threads} threads, load {load:.2f}")
    for name, t in times.items():
        print(f"{name:>13}: median {med[name]:.3f} s/step  (min {min(t):.3f}, max {max(t):.3f}, n={len(t)})")
    print(f"second / first order: {ratio:.2f}x")
    write_json({"args": vars(args), "env": env_info(load),
                "result": {"seconds_per_step": med, "all": times, "ratio": ratio}}, args.out)


if __name__ == "__main__":
    main()
