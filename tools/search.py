#!/usr/bin/env python
"""Search with a trained supernet: python tools/search.py --cfg CFG --ckpt CKPT --out SDIR [--opts k=v ...]

Writes SDIR/result.json: the found architecture with its FLOPs (MACs), params,
supernet score and, where a tabular benchmark covers the space, its true
accuracy, rank and regret under the same FLOPs budget, plus the baselines
(largest-MACs, median and optimal architecture under that budget). With a
benchmark it also prints found vs baselines and plots them (SDIR/search_baselines.png).
Every evaluated batch is journalled in SDIR/queries.jsonl; --resume continues a
killed search and ends with the result of an uninterrupted run.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasbench.cli import load_cfg, make_parser  # noqa: E402
from nasbench.utils import run_cli  # noqa: E402

ROWS = (("found", None), ("largest MACs", "largest_flops"), ("median", "median"), ("optimum", "optimum"))


def baselines_table(res) -> str:
    """Found vs baselines of a search ``result.json`` dict: arch, MACs, benchmark acc, rank, regret."""
    b, bl = res["benchmark"], res["baselines"]
    metric = next((k for k in b if k not in ("name", "rank", "regret", "num_archs")), "mean_acc")
    rows = [("", "arch", "MACs", f"bench {metric}", "rank", "regret")]
    for label, key in ROWS:
        e = {"arch": res["arch"], "flops": res["flops"], **b} if key is None else bl.get(key)
        if e is None:
            continue
        rows.append((label, e["arch"], "-" if e.get("flops") is None else f"{e['flops'] / 1e6:.1f}M",
                     f"{e.get(metric, e.get('mean_acc')):.2f}", f"{e['rank']:,} of {b['num_archs']:,}",
                     f"{e['regret']:.2f}"))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i]) for i, c in enumerate(r)).rstrip()
                     for r in rows)


def report_baselines(cfg, res, out):
    """Print :func:`baselines_table` and write ``out/search_baselines.png`` (every benchmark
    architecture's accuracy against MACs counted as the search counts them, the budget, the picks)."""
    from pathlib import Path

    from nasbench.metrics.plots import plot_search_baselines
    from nasbench.pipeline import benchmark_for
    from nasbench.spaces import build_space
    print(baselines_table(res))
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    bench = benchmark_for(cfg, space)
    _, flops, acc = bench.arch_table(space)
    b, bl = res["benchmark"], res["baselines"]
    marks = {f"found {res['arch']} ({b[bench.metric]:.2f}%)": (res["flops"], b[bench.metric])}
    for label, key in ROWS[1:]:
        if bl.get(key) is not None and bl[key].get("flops") is not None:
            marks[f"{label} {bl[key]['arch']} ({bl[key]['mean_acc']:.2f}%)"] = (bl[key]["flops"], bl[key]["mean_acc"])
    hi = res.get("flops_budget")
    window = (None, None) if hi is None else (float(cfg.search.flops_min_ratio) * hi, hi)  # the search's window
    path = Path(out) / "search_baselines.png"
    plot_search_baselines(flops, acc, marks, path, flops_range=window,
                          ylabel=f"benchmark {bench.metric} (%)",
                          title=f"{bench.name}: found rank {b['rank']:,} of {b['num_archs']:,}, "
                                f"regret {b['regret']:.2f} ({res['searcher']}, {res['algorithm']})")
    print(f"plot: {path}")


def main(argv=None):
    p = make_parser(__doc__.splitlines()[0])
    p.add_argument("--ckpt", required=True, help="supernet checkpoint (DIR/checkpoints/last.pth)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed search from SDIR/queries.jsonl (same result as an uninterrupted run)")
    args = p.parse_args(argv)
    from nasbench.engine import dist as D
    from nasbench.pipeline import search
    cfg = load_cfg(args)
    res = search(cfg, args.ckpt, args.out, resume=args.resume)
    if res.get("baselines") and D.is_main():
        report_baselines(cfg, res, args.out)


if __name__ == "__main__":
    sys.exit(run_cli(main))
