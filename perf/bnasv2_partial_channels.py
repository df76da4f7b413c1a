"""Step time and activation memory of the BNAS-v2 search network: all channels versus PC (K = 4).

BNAS-v2's PC variant (METHODS.md 4.3) runs every mixed edge on 1/K of its
channels, which the paper credits for lower memory. Two search networks of
the same width are built (``partial`` 1 and ``--k``); each gets the trainer's
weight SGD (architecture parameters excluded). One step = ``zero_grad`` ->
forward -> cross-entropy -> backward -> SGD step on one fixed random batch
``[batch, 3, 32, 32]``; the two are timed interleaved (A,B then B,A, ...).

Memory is measured as the bytes of the tensors autograd saves for the backward
pass during one forward (``torch.autograd.graph.saved_tensors_hooks``), the
activation memory that dominates training memory and that PC reduces; it is
exact and independent of the allocator. Parameters are counted separately.

    python perf/bnasv2_partial_channels.py --channels 16 --batch 32 --threads 2 --repeats 6
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from nasbench.supernets.darts import BroadSearchNetwork  # noqa: E402
from perf._common import add_timing_args, env_info, make_optimizer, random_batch, timed_step, write_json  # noqa: E402


def saved_activation_bytes(model, x, y) -> int:
    """Bytes autograd keeps for backward during one forward + loss (each storage counted once)."""
    seen, total = set(), 0

    def pack(t):
        nonlocal total
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    del loss
    return total


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_args(ap, "bnasv2_partial_channels.json", batch=32, repeats=6)
    ap.add_argument("--channels", type=int, default=16, help="base width C of the search network (paper: 16)")
    ap.add_argument("--k", type=int, default=4, help="partial-channel factor of the PC network")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    x, y = random_batch(args.batch, args.seed)
    nets = {}
    for k in (1, args.k):
        torch.manual_seed(args.seed)
        net = BroadSearchNetwork(args.channels, partial=k)
        nets[k] = (net, make_optimizer(net))
    rows = {}
    for k, (net, _) in nets.items():
        weights = sum(p.numel() for p in net.parameters()) - sum(p.numel() for p in net.arch_parameters())
        rows[k] = {"weights": weights, "saved_activation_MB": saved_activation_bytes(net, x, y) / 2**20, "steps": []}
    for _ in range(args.warmup):
        for net, opt in nets.values():
            timed_step(net, opt, x, y)
    order = list(nets)
    for r in range(args.repeats):
        for k in (order if r % 2 == 0 else order[::-1]):
            net, opt = nets[k]
            rows[k]["steps"].append(timed_step(net, opt, x, y))
    result = {}
    print(f"BNAS-v2 search network, C={args.channels}, batch {args.batch}, {args.threads} threads, "
          f"load {load:.2f}")
    print(f"{'partial':>8} {'weights':>10} {'saved act. MB':>14} {'step s':>8} {'fwd s':>7} {'bwd s':>7}")
    for k, row in rows.items():
        med = [statistics.median(s[i] for s in row["steps"]) for i in range(4)]
        result[f"partial_{k}"] = {"weights": row["weights"], "saved_activation_MB": row["saved_activation_MB"],
                                  "step_s": med[0], "forward_s": med[1], "backward_s": med[2],
                                  "optimizer_s": med[3]}
        print(f"{k:>8} {row['weights']:>10,} {row['saved_activation_MB']:>14.1f} {med[0]:>8.3f} "
              f"{med[1]:>7.3f} {med[2]:>7.3f}")
    a, b = result["partial_1"], result[f"partial_{args.k}"]
    result["activation_ratio"] = a["saved_activation_MB"] / b["saved_activation_MB"]
    result["step_time_ratio"] = a["step_s"] / b["step_s"]
    print(f"PC K={args.k}: {result['activation_ratio']:.2f}x less saved activation memory, "
          f"{result['step_time_ratio']:.2f}x faster steps")
    write_json({"args": vars(args), "env": env_info(load), "result": result}, args.out)


if __name__ == "__main__":
    main()
