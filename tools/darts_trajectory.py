#!/usr/bin/env python
"""Per-epoch argmax architecture of a differentiable search: python tools/darts_trajectory.py --cfg CFG --ckpt CKPT [--out FILE.json]

Reads the ``arch_history`` that the ``bnas_v2`` algorithm (DARTS, second order,
CLR, PC) saves with every checkpoint: at the end of each epoch the argmax
architecture of the supernet and its parameter-free shares (``pfree``: mean
softmax weight on none/skip/pooling; ``pfree_argmax``: their share among the
argmax cell's operations, NAS-Bench-201 cells; ``pfree_conv``/``pfree_enhance``
for BNAS-v2). Where a tabular benchmark covers the space
(``nas_bench_201_darts`` -> ``nas_bench_201/imagenet16_120``) each epoch's cell
gets its benchmark accuracy, rank and regret, so DARTS' collapse towards
parameter-free cells is visible epoch by epoch. The benchmark is only read
here, after training; the search never sees it. Prints a table and, with
``--out``, writes ``{"benchmark", "epochs": [...]}`` as JSON.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nasbench.cli import load_cfg, make_parser  # noqa: E402
from nasbench.utils import run_cli  # noqa: E402


def trajectory(cfg, ckpt) -> dict:
    """``{"benchmark": name or None, "epochs": [{"epoch", "step", "arch" (key), pfree shares,
    [metric, "rank", "regret"]}]}`` from the checkpoint's ``algorithm.arch_history``.

    Raises:
        NasbenchError: the checkpoint holds no ``arch_history`` (not a differentiable search).
    """
    from nasbench.engine.checkpoint import load_checkpoint
    from nasbench.errors import NasbenchError
    from nasbench.pipeline.common import benchmark_for
    from nasbench.spaces import build_space
    state = load_checkpoint(ckpt)
    history = (state.get("algorithm") or {}).get("arch_history")
    if history is None:
        raise NasbenchError(f"{ckpt}: no arch_history (only the bnas_v2 algorithm's checkpoints have one)")
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    bench = benchmark_for(cfg, space)
    rows = []
    for h in history:
        arch = space.validate(h["arch"])
        row = {**h, "arch": space.encode(arch)}
        if bench is not None:
            s = bench.summary(arch)
            row.update({bench.metric: s[bench.metric], "rank": s["rank"], "regret": s["regret"]})
        rows.append(row)
    return {"benchmark": None if bench is None else bench.name,
            "num_archs": None if bench is None else len(bench), "epochs": rows}


def table(traj) -> str:
    """Text table of :func:`trajectory`'s epochs."""
    rows = traj["epochs"]
    if not rows:
        return "(no epoch finished yet)"
    keys = [k for k in rows[0] if k not in ("arch", "step")]
    head = ["epoch", "arch"] + [k for k in keys if k != "epoch"]
    lines = ["  ".join(head)]
    for r in rows:
        vals = [str(r["epoch"]), r["arch"]] + [
            f"{r[k]:,}" if k == "rank" else f"{r[k]:.4f}" if isinstance(r[k], float) else str(r[k])
            for k in keys if k != "epoch"]
        lines.append("  ".join(vals))
    return "\n".join(lines)


def main(argv=None):
    p = make_parser(__doc__.splitlines()[0])
    p.add_argument("--ckpt", required=True, help="supernet checkpoint (DIR/checkpoints/last.pth)")
    p.add_argument("--out", default=None, help="optional JSON output file")
    args = p.parse_args(argv)
    traj = trajectory(load_cfg(args), args.ckpt)
    print(table(traj))
    if args.out:
        from nasbench.utils import atomic_write_json
        atomic_write_json(traj, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
