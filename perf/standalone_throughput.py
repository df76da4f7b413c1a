"""Training throughput of nasbench's standalone CBM networks versus a plain reference.

For each Channel-Bench-Macro variant and architecture key, this script compares

* ours: ``ChannelBenchMacroSpace(variant).build(arch)`` (the network written
  once against the width builder, see ``nasbench/spaces/channel_bench_macro.py``), and
* ref: a hand-written torchvision-style network of the same shape defined in
  this file with plain ``nn.Sequential`` / ``nn.Conv2d`` / ``nn.BatchNorm2d``
  (MobileNetV2 inverted residuals or ResNet basic blocks), with channels
  ``round(d * max / 4)`` for key digit ``d`` and the benchmark's maximum widths
  MobileNet ``[128, 768, 768, 768, 256, 1536, 1024]`` and ResNet
  ``[256, 256, 256, 512, 512, 512, 512]``.

Before timing, the script asserts that both have exactly the same parameter
count, copies our weights into the reference (same tensor shapes in the same
order) and checks that both give the same logits, so the two really compute
the same function.

One training step is ``zero_grad(set_to_none=True)`` -> forward ->
cross-entropy -> backward -> SGD step (lr 0.01, momentum 0.9, Nesterov,
weight decay 5e-4) on one fixed random batch ``[batch, 3, 32, 32]``. The two
networks are timed interleaved in one run (``--warmup`` unmeasured steps each,
then ``--repeats`` rounds of one step each in alternating order A,B / B,A),
because other jobs may share the machine. Reported: median images/s of each
(``batch / median step time``) and ``ratio = ours / ref`` (1.0 = parity,
below 1 = ours slower).

Run from the repository root::

    python perf/standalone_throughput.py
    python perf/standalone_throughput.py --variants resnet --archs 4432214,1111111 --repeats 10

Output: a table on stdout and JSON at ``--out`` (default
``perf/results/standalone_throughput.json``); see ``perf/README.md``.
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
import torch.nn as nn  # noqa: E402

from nasbench.spaces.channel_bench_macro import ChannelBenchMacroSpace  # noqa: E402
from perf._common import (OPT_KW, add_timing_args, env_info, make_optimizer, random_batch,  # noqa: E402
                          timed_step, write_json)

MAX_CHANNELS = {"mobilenet": [128, 768, 768, 768, 256, 1536, 1024],
                "resnet": [256, 256, 256, 512, 512, 512, 512]}


# --------------------------------------------------------------------------- reference networks
def conv_bn(cin, cout, k, stride=1, groups=1, relu=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


class RefInvertedResidual(nn.Module):
    """torchvision MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection."""

    def __init__(self, cin, hidden, cout, stride):
        super().__init__()
        self.block = nn.Sequential(*conv_bn(cin, hidden, 1), *conv_bn(hidden, hidden, 3, stride, groups=hidden),
                                   *conv_bn(hidden, cout, 1, relu=False))
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.use_res else self.block(x)


class RefBasicBlock(nn.Module):
    """torchvision ResNet basic block (no downsample branch): ReLU after the add."""

    def __init__(self, cin, hidden, cout, stride, residual):
        super().__init__()
        self.block = nn.Sequential(*conv_bn(cin, hidden, 3, stride), *conv_bn(hidden, cout, 3, relu=False))
        self.residual = residual
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.block(x)
        return self.relu(out + x) if self.residual else self.relu(out)


def ref_mobilenet(c, num_classes=10):
    """Stem 3x3 s2 -> 4 inverted residuals -> 1x1 conv -> GAP -> FC; ``c`` = 7 widths."""
    return nn.Sequential(
        *conv_bn(3, c[0], 3, 2),
        RefInvertedResidual(c[0], c[1], c[0], 1), RefInvertedResidual(c[0], c[2], c[0], 1),
        RefInvertedResidual(c[0], c[3], c[4], 2), RefInvertedResidual(c[4], c[5], c[4], 1),
        *conv_bn(c[4], c[6], 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(c[6], num_classes))


def ref_resnet(c, num_classes=10):
    """Stem 3x3 s2 -> 5 basic blocks (3rd: stride 2, no shortcut) -> GAP -> FC."""
    return nn.Sequential(
        *conv_bn(3, c[0], 3, 2),
        RefBasicBlock(c[0], c[1], c[0], 1, True), RefBasicBlock(c[0], c[2], c[0], 1, True),
        RefBasicBlock(c[0], c[3], c[4], 2, False), RefBasicBlock(c[4], c[5], c[4], 1, True),
        RefBasicBlock(c[4], c[6], c[4], 1, True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(c[4], num_classes))


REF_BUILDERS = {"mobilenet": ref_mobilenet, "resnet": ref_resnet}


def ref_channels(variant, key):
    return [round(int(d) * m / 4) for d, m in zip(key, MAX_CHANNELS[variant])]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def check_same_function(ours, ref, batch=4):
    """Copy our parameters/buffers into ``ref`` in order and compare eval-mode logits."""
    src = list(ours.parameters()) + list(ours.buffers())
    dst = list(ref.parameters()) + list(ref.buffers())
    assert len(src) == len(dst), f"tensor count differs: ours {len(src)}, ref {len(dst)}"
    for a, b in zip(src, dst):
        assert a.shape == b.shape, f"shape mismatch {tuple(a.shape)} vs {tuple(b.shape)}"
        b.copy_(a)
    ours.eval(), ref.eval()
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    diff = (ours(x) - ref(x)).abs().max().item()
    ours.train(), ref.train()
    assert diff < 1e-4, f"reference computes a different function (max |logit diff| {diff})"
    return diff


# --------------------------------------------------------------------------- timing
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--variants", default="mobilenet,resnet", help="comma-separated CBM variants")
    ap.add_argument("--archs", default="4432214", help="comma-separated 7-digit keys")
    add_timing_args(ap, "standalone_throughput.json")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    x, y = random_batch(args.batch, args.seed)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"torch {torch.__version__}, threads {args.threads}, batch {args.batch}, "
          f"warmup {args.warmup}, repeats {args.repeats} (interleaved), load avg {load}")
    if args.threads > 1 and load is not None and load + args.threads > (os.cpu_count() or 1) + 0.5:
        print(f"WARNING: 1-min load average {load:.1f} + {args.threads} threads exceeds "
              f"{os.cpu_count()} CPUs; multi-threaded timings are distorted by preempted threads "
              f"(consider --threads 1)")
    header = (f"{'variant':<10} {'arch':<8} {'params':>9} {'ours img/s':>11} {'ref img/s':>10} "
              f"{'ours ms':>8} {'ref ms':>8} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    results = []
    t_start = time.time()
    for variant in [v for v in args.variants.split(",") if v]:
        space = ChannelBenchMacroSpace(variant)
        for key in [a for a in args.archs.split(",") if a]:
            arch = space.decode(key)
            chans = ref_channels(variant, key)
            assert chans == space.channels(arch), f"channel mismatch {chans} vs {space.channels(arch)}"
            torch.manual_seed(args.seed)
            ours = space.build(arch).train()
            ref = REF_BUILDERS[variant](chans).train()
            assert n_params(ours) == n_params(ref), f"params: ours {n_params(ours)} != ref {n_params(ref)}"
            logit_diff = check_same_function(ours, ref)
            nets = {"ours": (ours, make_optimizer(ours)),
                    "ref": (ref, make_optimizer(ref))}
            for _ in range(args.warmup):
                for k in nets:
                    timed_step(*nets[k], x, y)
            samples = {k: [] for k in nets}
            for i in range(args.repeats):
                for k in (("ours", "ref") if i % 2 == 0 else ("ref", "ours")):
                    samples[k].append(timed_step(*nets[k], x, y)[0])
            stats = {}
            for k, s in samples.items():
                med = statistics.median(s)
                stats[k] = {"median_ms": 1e3 * med, "images_per_s": args.batch / med,
                            "samples_ms": [1e3 * t for t in s]}
            ratio = stats["ours"]["images_per_s"] / stats["ref"]["images_per_s"]
            results.append({"variant": variant, "arch": key, "channels": chans, "params": n_params(ours),
                            "macs": space.flops(arch), "max_logit_diff": logit_diff,
                            "ours": stats["ours"], "ref": stats["ref"], "ratio": ratio})
            print(f"{variant:<10} {key:<8} {n_params(ours):9d} {stats['ours']['images_per_s']:11.1f} "
                  f"{stats['ref']['images_per_s']:10.1f} {stats['ours']['median_ms']:8.1f} "
                  f"{stats['ref']['median_ms']:8.1f} {ratio:6.3f}", flush=True)
    print("-" * len(header))
    print(f"ratio = ours/ref images/s (1.0 = parity); {time.time() - t_start:.0f} s")
    payload = {"benchmark": "standalone_throughput",
               "step": "zero_grad(set_to_none) + forward + cross_entropy + backward + SGD.step",
               "optimizer": {"type": "SGD (nasbench build_optimizer, fused)", **OPT_KW},
               "config": {k: v for k, v in vars(args).items() if k != "out"},
               "env": env_info(load),
               "wall_s": time.time() - t_start, "results": results}
    write_json(payload, args.out)
    return payload


if __name__ == "__main__":
    main()
