#!/usr/bin/env python
"""Network Coding Propagation: python tools/ncp.py --cfg CFG --predictor DIR/predictor.pth [--predictor ...] --out NDIR [--start CODE | --seed S | --seeds S]

Edits an architecture code by back-propagating predictor gradients (METHODS.md
5.4). Start: --start CODE, else with --seed S a seeded random architecture of
the benchmark, else the middle code (NAS-Bench-MR only). Several --predictor
files = multi-task (sum of objectives); all must share the code format of the
first one's benchmark. Writes NDIR/trajectory.json (one entry per step, step 0 =
start) and NDIR/result.json (chosen code, start/chosen true metrics, FLOPs change).

With --seeds S, runs from the seeded starts of --seed 0 .. --seed S-1 and writes
NDIR/seed_<i>/trajectory.json and result.json per seed, NDIR/summary.json
(per-seed start/chosen codes, predicted and true main metric, FLOPs change in %,
means over seeds; see nasbench.predictors.ncp.summarize_runs) and prints it as a table.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402

from nasbench.cli import non_negative_float, non_negative_int, positive_float, positive_int  # noqa: E402
from nasbench.utils import run_cli  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cfg", required=True, help="NCP config (configs/ncp/*.yaml); its ncp section is used")
    p.add_argument("--predictor", action="append", required=True, help="predictor.pth (repeat for multi-task)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--root", default="data/benchmarks", help="benchmark root (for true metrics and --seed)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--start", default=None, help="start code string (NAS-Bench-MR code or NB201 arch string)")
    start.add_argument("--seed", type=non_negative_int, default=None, help="seeded random start architecture from the benchmark")
    start.add_argument("--seeds", type=positive_int, default=None,
                       help="run from the seeded starts 0..S-1 (as --seed i) into NDIR/seed_<i>/ + NDIR/summary.json")
    p.add_argument("--iterations", type=positive_int, default=None, help="override ncp.iterations")
    p.add_argument("--flops-lambda", type=non_negative_float, default=None, help="override ncp.flops_lambda (0 = accuracy only)")
    p.add_argument("--max-flops", type=positive_float, default=None, help="override ncp.max_flops (flops_metric units)")
    args = p.parse_args(argv)

    import torch

    from nasbench.errors import NasbenchError
    from nasbench.predictors.ncp import (coding_for, format_summary_table, load_bench, load_ncp_config, propagate,
                              propagate_seeds, seeded_start)
    from nasbench.predictors import load_predictor
    from nasbench.utils import atomic_write_json, check_out_path, make_out_dir

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    check_out_path(args.out)
    cfg = load_ncp_config(args.cfg)
    nc = cfg["ncp"]
    preds, benches, labels, bench_of_label = [], {}, [], {}
    for i, path in enumerate(args.predictor):
        model, blob = load_predictor(path)
        if i == 0:
            blob0 = blob
        label = blob.get("benchmark", f"p{i}")
        if label in labels:
            label = f"{label}#{i}"
        labels.append(label)
        main = (nc["main_metric"] if i == 0 and nc["main_metric"] in model.metric_names else None) \
            or blob.get("main_metric") or model.metric_names[0]
        preds.append((label, model, main))
        name = blob.get("benchmark")
        bench_of_label[label] = name  # labels get a '#i' suffix when two predictors share a benchmark
        if name and name not in benches:
            try:
                benches[name] = load_bench(name, args.root)
            except NasbenchError as e:
                print(f"warning: no true metrics for {name}: {e}", file=sys.stderr)
    first = preds[0][1]
    bench0 = benches.get(bench_of_label[labels[0]])
    if bench0 is None:
        raise NasbenchError(f"benchmark of {args.predictor[0]} could not be loaded from {args.root}")
    coding = coding_for(bench0)
    for (label, m, _), path in zip(preds, args.predictor):
        if m.in_dim != first.in_dim:
            raise NasbenchError(f"{path}: input size {m.in_dim} differs from the first predictor's {first.in_dim}")
    kwargs = dict(iterations=int(nc["iterations"] if args.iterations is None else args.iterations),
                  lr=float(nc["lr"]), delta=float(nc["delta"]),
                  flops_lambda=float(nc["flops_lambda"] if args.flops_lambda is None else args.flops_lambda),
                  flops_metric=nc["flops_metric"] or blob0.get("flops_metric"),
                  max_flops=nc["max_flops"] if args.max_flops is None else args.max_flops,
                  benchmarks={lb: benches[bench_of_label[lb]] for lb in labels if bench_of_label[lb] in benches})
    if args.seeds is not None:
        make_out_dir(args.out)
        _, summary = propagate_seeds(preds, coding, bench0, args.seeds, out=args.out, **kwargs)
        print(format_summary_table(summary))
        print(f"wrote {os.path.join(args.out, 'summary.json')} and {len(summary['runs'])} seed_<i>/ folders")
        return
    if args.start is not None:
        start = bench0.space.validate(args.start)
    elif args.seed is not None:
        start = seeded_start(bench0, args.seed)
    else:
        start = coding.middle()
    traj, result = propagate(preds, coding, start, **kwargs)
    result["seed"], result["start_mode"] = args.seed, ("given" if args.start else "seed" if args.seed is not None
                                                       else "middle")
    make_out_dir(args.out)
    atomic_write_json(traj, os.path.join(args.out, "trajectory.json"))
    atomic_write_json(result, os.path.join(args.out, "result.json"))
    for lb, r in result["main"].items():
        print(f"{lb}: {r['metric']} start true {r['start_true']} -> chosen true {r['chosen_true']} "
              f"(pred {r['start_pred']:.2f} -> {r['chosen_pred'] if r['chosen_pred'] is None else round(r['chosen_pred'], 2)})")
    print(f"chosen {result['chosen']['code'] if result['chosen'] else None}; FLOPs change {result['flops_change']}")


if __name__ == "__main__":
    sys.exit(run_cli(main))
