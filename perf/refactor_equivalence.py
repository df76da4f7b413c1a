#!/usr/bin/env python
"""Record every method's outputs so a refactor can prove it changed no result.

    python perf/refactor_equivalence.py --out DIR [--repo REPO] [--data data]
    python perf/refactor_equivalence.py --compare DIR_BEFORE DIR_AFTER

Runs, with the tools of ``REPO`` (default: this checkout) and reduced budgets
so the whole set takes minutes on 2 CPU cores:

* BCNet (the quickstart config): supernet training, evolutionary search with
  the prior, retraining, rank_eval;
* SPOS (accuracy evaluator) and BN-NAS (BN indicator): supernet training and search;
* BNAS-v2: supernet training and the genotype search;
* NCP: predictor training and propagation on NAS-Bench-201;
* bench_search: all five searchers on two benchmarks, two seeds.

It writes ``DIR/digest.json``: for every output JSON its content without
wall-clock fields, and for every checkpoint a SHA-256 of each tensor. With
``--compare`` it prints the entries that differ and exits 1 if any does.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

#: keys whose values are wall-clock measurements or paths, not results
VOLATILE = {"search_seconds", "seconds_per_arch", "seconds", "time", "elapsed", "wall_seconds",
            "images_per_s", "root", "predictor", "path", "out", "time_s", "train_seconds"}

BC = "configs/bcnet/cbm_mobilenet_cpu.yaml"
SPOS = "configs/spos/nas_bench_macro_cpu.yaml"
BNNAS = "configs/bnnas/nas_bench_macro_cpu.yaml"
BNAS = "configs/bnas_v2/cifar10_cpu.yaml"
NCP = "configs/ncp/nas_bench_201.yaml"


def commands(out: Path, data: str) -> list[list[str]]:
    """The command lines run, in order (``python`` prefixed by the caller)."""
    d = [f"data.root={data}"]
    small = ["search.population=8", "search.topk=3", "search.mutation_num=3", "search.crossover_num=3",
             "search.epochs=2", "search.prior_steps=200", "eval.val_batches=1"]
    cmds = [
        ["tools/train_supernet.py", "--cfg", BC, "--out", f"{out}/bc", "--opts", *d, "train.max_steps=12"],
        ["tools/search.py", "--cfg", BC, "--ckpt", f"{out}/bc/checkpoints/last.pth", "--out", f"{out}/bc/search",
         "--opts", *d, *small],
        ["tools/retrain.py", "--cfg", BC, "--arch", f"{out}/bc/search/result.json", "--out", f"{out}/bc/retrain",
         "--opts", *d, "retrain.max_steps=6"],
        ["tools/rank_eval.py", "--cfg", BC, "--ckpt", f"{out}/bc/checkpoints/last.pth", "--num-archs", "10",
         "--out", f"{out}/bc/rank", "--opts", *d, "eval.val_batches=1"],
    ]
    for name, cfg, extra in (("spos", SPOS, small), ("bnnas", BNNAS, [])):
        cmds += [
            ["tools/train_supernet.py", "--cfg", cfg, "--out", f"{out}/{name}", "--opts", *d,
             "train.max_steps=10", "rank_eval.track_interval=5"],
            ["tools/search.py", "--cfg", cfg, "--ckpt", f"{out}/{name}/checkpoints/last.pth",
             "--out", f"{out}/{name}/search", "--opts", *d, *extra],
        ]
    cmds += [
        ["tools/train_supernet.py", "--cfg", BNAS, "--out", f"{out}/bnas", "--opts", *d, "train.max_steps=6",
         "data.train_size=640", "data.val_size=640", "train.epochs=2"],
        ["tools/search.py", "--cfg", BNAS, "--ckpt", f"{out}/bnas/checkpoints/last.pth", "--out",
         f"{out}/bnas/search", "--opts", *d, "data.train_size=640", "data.val_size=640", "train.epochs=2"],
        ["tools/train_predictor.py", "--cfg", NCP, "--out", f"{out}/ncp", "--root", f"{data}/benchmarks",
         "--epochs", "3", "--quiet"],
        ["tools/ncp.py", "--cfg", NCP, "--predictor", f"{out}/ncp/predictor.pth", "--out", f"{out}/ncp/prop",
         "--root", f"{data}/benchmarks", "--seeds", "3", "--iterations", "10"],
        ["tools/bench_search.py", "--benchmark", "channel_bench_macro/mobilenet,nas_bench_macro",
         "--searchers", "random,rea,nsga2,local,evolution", "--budget", "60", "--seeds", "2",
         "--root", f"{data}/benchmarks", "--out", f"{out}/bench", "--no-progress", "--no-plots"],
    ]
    return cmds


def _clean(x):
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items() if k not in VOLATILE}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def _tensor_hashes(obj, prefix="") -> dict:
    import torch
    out = {}
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        out[prefix] = hashlib.sha256(t.view(-1).view(torch.uint8).numpy().tobytes()).hexdigest()[:16] \
            if t.numel() else "empty"
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_tensor_hashes(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _load_weights_only(path: Path) -> dict:
    """``torch.load(weights_only=True)`` (no code runs), admitting the int64 numpy arrays of
    checkpoints written by revisions before checkpoint format 1 (this script may digest
    the outputs of an older checkout, so it does not import nasbench for this)."""
    import numpy as np
    import torch
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    allowed = [_reconstruct, (_reconstruct, "numpy.core.multiarray._reconstruct"),
               (_reconstruct, "numpy._core.multiarray._reconstruct"), np.ndarray, np.dtype, type(np.dtype(np.int64))]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def digest(out: Path) -> dict:
    """``{relative path: cleaned JSON or {tensor name: hash}}`` of the outputs under ``out``."""
    res = {}
    for p in sorted(out.rglob("*")):
        rel = str(p.relative_to(out))
        if rel == "digest.json":
            continue
        if p.suffix == ".json":
            res[rel] = _clean(json.loads(p.read_text()))
        elif p.suffix == ".pth":
            state = _load_weights_only(p)
            res[rel] = _tensor_hashes({k: state.get(k) for k in ("model", "state_dict") if k in state})
    return res


#: result fields that a change adds on purpose (reported, not compared)
ADDED = {"baselines"}


def _diff(x, y, path=""):
    """Paths where ``x`` and ``y`` differ (first few)."""
    if isinstance(x, dict) and isinstance(y, dict):
        out = []
        for k in sorted(set(x) | set(y), key=str):
            out += _diff(x.get(k), y.get(k), f"{path}.{k}")
        return out
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        out = []
        for i, (u, v) in enumerate(zip(x, y)):
            out += _diff(u, v, f"{path}[{i}]")
        return out
    return [] if x == y else [f"{path}: {str(x)[:80]} != {str(y)[:80]}"]


def compare(a: Path, b: Path) -> int:
    """Recompute both digests from the output folders and print what differs.

    Fields in :data:`ADDED` present only in ``b`` are listed as added, not compared."""
    da, db = digest(a), digest(b)
    bad = 0
    for k in sorted(set(da) | set(db)):
        x, y = da.get(k), db.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            added = sorted(f for f in ADDED if f in y and f not in x)
            if added:
                print(f"added in {k}: {', '.join(added)}")
            y = {f: v for f, v in y.items() if f not in added}
        if x != y:
            bad += 1
            print(f"DIFFERS: {k}" + ("" if k in da and k in db else " (missing on one side)"))
            for line in (_diff(x, y) if x is not None and y is not None else [])[:6]:
                print("   ", line)
    print(f"{len(set(da) | set(db))} outputs compared, {bad} differ")
    return 1 if bad else 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out")
    p.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]))
    p.add_argument("--data", default="data")
    p.add_argument("--compare", nargs=2)
    args = p.parse_args(argv)
    if args.compare:
        return compare(Path(args.compare[0]), Path(args.compare[1]))
    out = Path(args.out).resolve()
    data = str(Path(args.data).resolve())
    env = {**os.environ, "PYTHONPATH": args.repo}
    for cmd in commands(out, data):
        print("+", " ".join(cmd), flush=True)
        r = subprocess.run([sys.executable, *cmd], cwd=args.repo, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode:
            print(r.stderr[-3000:])
            return r.returncode
    (out / "digest.json").write_text(json.dumps(digest(out), indent=1, sort_keys=True))
    print(f"wrote {out / 'digest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
