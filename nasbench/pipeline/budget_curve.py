"""The budget curve (``tools/budget_curve.py``): ranking quality and search regret of
supernets against training budget, with the FLOPs (MACs) proxy beside them.

    budget_curve(runs, epochs, out, ...) -> out/<label>/e<E>/{supernet/, rank/, search/, point.json}
                                           out/curve.json, out/curve.png

For every run (a config with a label) and every budget ``E`` (epochs over
``data.train_size`` images) a supernet is trained from scratch with the full
schedule of ``E`` epochs (so every point is a finished run, not a snapshot of a
longer one), its Kendall tau against the benchmark is measured with
:func:`~nasbench.pipeline.rank_eval.rank_eval` on the same seeded architectures
for every point, and the config's search is run with it
(:func:`~nasbench.pipeline.search.search`), which also records the largest-MACs
baseline under the same budget. Nothing reads the benchmark before the
supernet is trained and the search has chosen.

Every phase is skipped when its output exists and supernet training resumes
from its last checkpoint, so a killed curve continues with ``--resume``.
Points run in budget order (all runs at the smallest budget first), so a curve
cut short still has its cheap points for every run.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..config import load_config
from ..errors import ConfigError, NasbenchError
from ..utils import atomic_write_json

__all__ = ["budget_curve", "load_points", "write_curve", "check_runs", "run_point"]


def _cfg(path, opts, epochs, train_size):
    """The run's config at budget ``epochs`` (``train.epochs`` and ``data.train_size`` set)."""
    extra = [f"train.epochs={int(epochs)}"] + ([f"data.train_size={int(train_size)}"] if train_size else [])
    return load_config(path, list(opts or []) + extra)


def check_runs(runs: dict, epochs, out, opts=None, train_size=None, num_archs=None):
    """Resolve and check every config of the curve before anything is written.

    Returns ``{label: cfg at the first budget}``.

    Raises:
        ConfigError: empty or non-increasing ``epochs``, a config error in any run, a
            run whose space has no tabular benchmark, or ``out`` naming a file.
    """
    from ..spaces import build_space
    from .common import benchmark_for
    if not epochs or any(int(e) < 1 for e in epochs) or list(epochs) != sorted(set(epochs)):
        raise ConfigError(f"--epochs must be increasing positive integers, got {list(epochs)}")
    if Path(out).exists() and not Path(out).is_dir():
        raise ConfigError(f"--out {out} is a file")
    cfgs = {}
    for label, path in runs.items():
        cfg = _cfg(path, opts, epochs[0], train_size)
        space = build_space(cfg.space, num_classes=cfg.data.num_classes)
        bench = benchmark_for(cfg, space)
        if bench is None:
            raise ConfigError(f"{path}: the budget curve needs a tabular benchmark for {space.name}")
        n = int(num_archs or cfg.rank_eval.num_archs)
        if not 2 <= n <= len(bench):
            raise ConfigError(f"--num-archs must lie in [2, {len(bench)}], got {n}")
        cfgs[label] = cfg
    return cfgs


def run_point(label, path, epochs, out, opts=None, train_size=None, num_archs=None) -> dict:
    """Train, rank and search one (run, budget) point; resumes whatever part exists.

    Writes ``out/point.json`` last, so its presence means the point is complete.
    """
    from .rank_eval import rank_eval
    from .search import search
    from .train import train_supernet
    out = Path(out)
    done = out / "point.json"
    if done.is_file():
        return json.loads(done.read_text())
    cfg = _cfg(path, opts, epochs, train_size)
    ckpt = out / "supernet" / "checkpoints" / "last.pth"
    t0 = time.time()
    train_supernet(cfg, out / "supernet", resume=ckpt.is_file())
    t1 = time.time()
    rank_file, result_file = out / "rank" / "rank.json", out / "search" / "result.json"
    rank = json.loads(rank_file.read_text()) if rank_file.is_file() else rank_eval(cfg, ckpt, out / "rank", num_archs)
    t2 = time.time()
    res = (json.loads(result_file.read_text()) if result_file.is_file() else
           search(cfg, ckpt, out / "search", resume=(out / "search" / "queries.jsonl").is_file()))
    n_train, epochs_done = _train_progress(out / "supernet")
    point = {"label": label, "cfg": str(path), "epochs": int(epochs), "train_images": n_train,
             "images_seen": round(n_train * epochs_done) if n_train and epochs_done else None,
             **{k: rank[k] for k in ("num_archs", "kendall_tau", "banded_kendall_tau", "flops_proxy_kendall_tau",
                                     "flops_proxy_banded_kendall_tau", "spearman", "seconds_per_arch")},
             "found": {k: res["benchmark"][k] for k in ("mean_acc", "rank", "regret")} | {"arch": res["arch"]},
             "largest_flops": res["baselines"]["largest_flops"], "optimum": res["baselines"]["optimum"],
             "flops_budget": res.get("flops_budget"),
             "seconds": {"train": round(t1 - t0, 1), "rank_eval": round(t2 - t1, 1),
                         "search": round(time.time() - t2, 1)}}
    atomic_write_json(point, done)
    return point


def _train_progress(run) -> tuple:
    """``(training images, epochs done)`` of a finished :func:`train_supernet` run, read from
    its ``log.jsonl``: the size from the ``data/train_images`` record, the epochs from the last
    ``train/epoch`` (so ``train.max_steps`` is honoured); None where the log lacks them."""
    n, epochs = None, None
    log = Path(run) / "log.jsonl"
    for line in log.read_text().splitlines() if log.is_file() else []:
        rec = json.loads(line)
        n = rec.get("data/train_images", n)
        epochs = rec.get("train/epoch", epochs)
    return n, epochs


def budget_curve(runs: dict, epochs, out, opts=None, train_size=None, num_archs=None, reference=None,
                 progress=print) -> list:
    """Run every (run, budget) point in budget order, then write the curve.

    Args:
        runs: ``{label: config path}``, e.g. ``{"BCNet": ".../cbm_mobilenet_cpu.yaml"}``.
        epochs: increasing budgets in epochs over ``train_size`` images.
        out: output folder (existing points are reused: the curve resumes).
        opts: config overrides applied to every run.
        train_size: ``data.train_size`` of every run (None: the configs').
        num_archs: architectures per Kendall tau (None: ``rank_eval.num_archs``).
        reference: ``{label: tau}`` drawn as horizontal lines (e.g. published figures).

    Returns:
        the list of point records (also in ``out/curve.json``; figure ``out/curve.png``).

    Raises:
        ConfigError: see :func:`check_runs` (raised before anything is written).
    """
    check_runs(runs, epochs, out, opts, train_size, num_archs)
    out = Path(out)
    points = []
    for e in epochs:
        for label, path in runs.items():
            progress(f"budget curve: {label}, {e} epoch(s)")
            points.append(run_point(label, path, e, out / _slug(label) / f"e{e}", opts, train_size, num_archs))
            write_curve(points, out, reference)
    return points


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def load_points(out) -> list:
    """Every finished point under ``out`` (``*/e*/point.json``), sorted by run and budget.

    Raises:
        NasbenchError: no point found.
    """
    files = sorted(Path(out).glob("*/e*/point.json"))
    if not files:
        raise NasbenchError(f"no finished budget-curve point under {out}")
    points = [json.loads(f.read_text()) for f in files]
    return sorted(points, key=lambda p: (p["label"], p["epochs"]))


def write_curve(points: list, out, reference: dict | None = None) -> None:
    """``out/curve.json`` and ``out/curve.png`` (tau, banded tau, regret against images seen)."""
    from ..metrics.plots import plot_budget_curve
    reference = dict(reference or {})
    atomic_write_json({"points": points, "reference_tau": reference}, Path(out) / "curve.json")
    plot_budget_curve(points, Path(out) / "curve.png", reference=reference)
