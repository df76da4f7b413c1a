#!/usr/bin/env python
"""Train NCP's MLP predictor: python tools/train_predictor.py --cfg configs/ncp/<setting>.yaml --out DIR [--root DATA/benchmarks]

Writes DIR/predictor.pth (weights, normalisation statistics, metric names,
benchmark/setting, main metric) and DIR/metrics.json with Kendall tau,
Spearman rho and MAE of every predicted metric on the held-out split
(seeded, ``predictor.val_fraction`` = 20 % by default).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402

from nasbench.cli import non_negative_int, positive_int  # noqa: E402
from nasbench.utils import run_cli  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cfg", required=True, help="NCP config (configs/ncp/*.yaml)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--root", default="data/benchmarks", help="benchmark root (like shared/data/benchmarks)")
    p.add_argument("--epochs", type=positive_int, default=None, help="override predictor.epochs")
    p.add_argument("--seed", type=non_negative_int, default=None, help="override predictor.seed (split and init)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch log")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoints/train_state.pth (saved every 10 epochs)")
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from nasbench.metrics.ranking import rank_correlations
    from nasbench.predictors.ncp import benchmark_records, default_metric_groups, default_flops_metric, load_bench, load_ncp_config
    from nasbench.predictors import save_predictor, train_predictor
    from nasbench.utils import atomic_write_json, check_out_path, make_out_dir

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    pc = {}
    if args.epochs is not None:
        pc["epochs"] = args.epochs
    if args.seed is not None:
        pc["seed"] = args.seed
    check_out_path(args.out)
    cfg = load_ncp_config(args.cfg, {"predictor": pc} if pc else None)
    bench = load_bench(cfg["benchmark"], args.root)
    groups = cfg["metrics"] or default_metric_groups(bench)
    main_metric = cfg["ncp"]["main_metric"] or groups[0][0]
    records = benchmark_records(bench)
    hp = cfg["predictor"]
    t0 = time.time()
    model, info = train_predictor(records, groups, epochs=int(hp["epochs"]), batch_size=int(hp["batch_size"]),
                                  lr=float(hp["lr"]), weight_decay=float(hp["weight_decay"]),
                                  val_fraction=float(hp["val_fraction"]), seed=int(hp["seed"]),
                                  hidden=int(hp["hidden"]), head_hidden=int(hp["head_hidden"]),
                                  log=None if args.quiet else print,
                                  ckpt=os.path.join(args.out, "checkpoints", "train_state.pth"), resume=args.resume)
    secs = time.time() - t0
    make_out_dir(args.out)
    save_predictor(os.path.join(args.out, "predictor.pth"), model, benchmark=bench.name,
                   setting=bench.name.partition("/")[2], main_metric=main_metric,
                   flops_metric=cfg["ncp"]["flops_metric"] or default_flops_metric(bench), config=cfg)
    yt, yp = info["val_true"], info["val_pred"]
    out = {"kendall_tau": {}, "spearman": {}, "mae": {}}
    for j, m in enumerate(model.metric_names):
        rc = rank_correlations(yp[:, j], yt[:, j])
        out["kendall_tau"][m] = rc["kendall_tau"]
        out["spearman"][m] = rc["spearman"]
        out["mae"][m] = float(np.abs(yp[:, j] - yt[:, j]).mean())
    out.update({"benchmark": bench.name, "main_metric": main_metric, "metric_groups": groups,
                "n_train": int(len(info["train_idx"])), "n_val": int(len(info["val_idx"])),
                "best_epoch": info["best_epoch"], "best_val_l1_first": info["best_val_l1"],
                "epochs": int(hp["epochs"]), "seed": int(hp["seed"]), "train_seconds": secs})
    atomic_write_json(out, os.path.join(args.out, "metrics.json"))
    print(f"{bench.name}: held-out Kendall tau " +
          ", ".join(f"{m} {v:.3f}" for m, v in out["kendall_tau"].items()) + f" ({secs:.0f} s)")


if __name__ == "__main__":
    sys.exit(run_cli(main))
