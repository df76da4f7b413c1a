"""Network Coding Propagation (NCP, METHODS.md 5.4; [NCP] ``tools/ncp.py``).

Starting from a code, repeat ``iterations`` times:

1. normalise the (continuous) code with the first predictor's input statistics, ``requires_grad``;
2. loss = sum over predictors of SmoothL1(main, main.detach() + delta)
   + lambda * SmoothL1(flops, flops.detach() - delta) (in normalised output space;
   the FLOPs term only for predictors that predict ``flops_metric``; lambda 0 = single objective);
3. one plain SGD step (lr 3, no momentum) on the normalised code;
4. clamp to the legal range in normalised space, de-normalise;
5. project to a legal architecture (NAS-Bench-MR: round every gene to its
   nearest legal value; NAS-Bench-201: argmax per edge of the one-hot) and record
   it with the predicted metrics of the *projected* code and the true metrics
   when the benchmark has it.

The continuous code is carried to the next iteration (gradients act on it,
predictions and records use the rounded code, METHODS.md 5.7). Predictors are in eval mode.

The chosen architecture is the visited code (start included) with the best
predicted main metric (sum of z-scored predicted main metrics over predictors)
whose FLOPs are at most ``max_flops`` (in ``flops_metric`` units; true FLOPs when
the benchmark has the code, else predicted); without ``max_flops`` no constraint.
NAS-Bench-MR holds only ~2,500 of its codes, so edited codes are mostly not in
the benchmark (true metrics unknown); ``chosen_in_benchmark`` is the same choice
restricted to visited codes with true metrics (it may be the start code).

Several starts (``tools/ncp.py --seeds S``): :func:`propagate_seeds` runs NCP from
the seeded random starts :func:`seeded_start` ``(bench, i)``, ``i = 0..S-1``, and
:func:`summarize_runs` / :func:`format_summary_table` build the per-seed table
with its means over seeds.

Also here: the config format of ``configs/ncp/*.yaml`` (:func:`load_ncp_config`)
and :func:`benchmark_records` (predictor training data from a benchmark).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, NasbenchError

def load_ncp_config(path, overrides: dict | None = None) -> dict:
    """NCP settings from a config file read by :func:`nasbench.config.load_config`
    (strict keys, ``_base_``): ``{"benchmark", "metrics", "predictor": {...}, "ncp": {...}}``.

    ``overrides``: ``{"predictor": {...}, "ncp": {...}}`` applied on top, checked like ``--opts``.

    Raises:
        ConfigError: unreadable file, unknown key (named with the file), or no ``benchmark.name``.
    """
    from ..config import load_config

    opts = [f"{sec}.{k}={v}" for sec, d in (overrides or {}).items() for k, v in d.items()]
    cfg = load_config(path, opts)
    if not cfg.benchmark.name:
        raise ConfigError(f"{path}: NCP config needs benchmark.name (e.g. nas_bench_mr/seg)")
    predictor = cfg.predictor.to_dict()
    return {"benchmark": cfg.benchmark.name, "metrics": predictor.pop("metrics"),
            "predictor": predictor, "ncp": cfg.ncp.to_dict()}


def load_bench(name: str, root):
    """Load a ``nas_bench_mr/<setting>`` or ``nas_bench_201/...`` benchmark for NCP.

    Raises:
        NasbenchError: another benchmark family (NCP needs a code or one-hot encoding).
    """
    from ..benchmarks import load_benchmark

    if str(name).partition("/")[0] not in ("nas_bench_mr", "nas_bench_201"):
        raise NasbenchError(f"NCP supports nas_bench_mr/<setting> and nas_bench_201 benchmarks, not {name!r}")
    return load_benchmark(name, root)


# -- codings: architecture <-> real vector ------------------------------------------------
class MRCoding:
    """NAS-Bench-MR: the 27-int code itself; projection rounds each gene to a legal value."""

    def __init__(self, space):
        from ..spaces.nas_bench_mr import gene_bounds
        self.space = space
        self.lo, self.hi = gene_bounds()

    def to_vector(self, arch) -> np.ndarray:
        return np.asarray(self.space.validate(arch), dtype=np.float64)

    def project(self, vec):
        return self.space.round(vec)

    def middle(self):
        return self.space.middle()


class NB201Coding:
    """NAS-Bench-201: NCP's 30-d one-hot; projection = argmax per edge (``from_one_hot``)."""

    def __init__(self, space):
        from ..spaces.nas_bench_201 import EMBED_DIM
        self.space = space
        self.lo, self.hi = np.zeros(EMBED_DIM), np.ones(EMBED_DIM)

    def to_vector(self, arch) -> np.ndarray:
        return self.space.one_hot(arch).astype(np.float64)

    def project(self, vec):
        return self.space.from_one_hot(vec)

    def middle(self):
        raise NasbenchError("nas_bench_201: no 'middle' cell; give --start or --seed")


def coding_for(bench):
    """The :class:`MRCoding`/:class:`NB201Coding` of a loaded benchmark."""
    family = bench.name.split("/")[0]
    if family == "nas_bench_mr":
        return MRCoding(bench.space)
    if family == "nas_bench_201":
        return NB201Coding(bench.space)
    raise NasbenchError(f"NCP supports nas_bench_mr and nas_bench_201 benchmarks, not {bench.name!r}")


def default_metric_groups(bench) -> list:
    """Predictor heads: each task metric alone (main first), then [flops, params] in the benchmark's units."""
    family = bench.name.split("/")[0]
    if family == "nas_bench_201":
        return [["acc"], ["flops_m", "params_m"]]
    metrics = [bench.metric] + [m for m in bench.metrics if m != bench.metric]
    return [[m] for m in metrics] + [["flops_g", "params_m"]]


def default_flops_metric(bench) -> str:
    return "flops_m" if bench.name.split("/")[0] == "nas_bench_201" else "flops_g"


def benchmark_records(bench) -> list[dict]:
    """Training records ``{"key", "embedding", **metrics}`` of every benchmark architecture
    (embedding = the 27-int code, or the NB201 one-hot)."""
    coding = coding_for(bench)
    out = []
    for k in bench:
        r = bench.query(k)
        r["key"] = k
        r["embedding"] = coding.to_vector(k).astype(np.float32)
        out.append(r)
    return out


# -- propagation ---------------------------------------------------------------------------------
def _clean(d):
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in d.items()}


def propagate(predictors, coding, start, *, iterations: int = 70, lr: float = 3.0, delta: float = 0.1,
              flops_lambda: float = 0.5, flops_metric: str | None = None, max_flops: float | None = None,
              benchmarks=None):
    """Run NCP (see module doc).

    Args:
        predictors: list of ``(label, model, main_metric)``; models are put in eval mode.
        coding: :class:`MRCoding` or :class:`NB201Coding`.
        start: start architecture (tuple or key).
        benchmarks: optional ``{label: TabularBenchmark}`` for true metrics.

    Returns:
        ``(trajectory, result)``: one entry per step (step 0 = start) with ``code``,
        ``predicted`` ``{label: {metric: value}}``, ``true`` (``{label: record or None}``,
        or None when no benchmark has the code), ``score``, ``flops``; and the result dict.
    """
    if not predictors:
        raise NasbenchError("NCP needs at least one predictor")
    if iterations < 0 or not math.isfinite(lr):
        raise NasbenchError(f"NCP: bad iterations {iterations} / lr {lr}")
    benchmarks = benchmarks or {}
    for _, m, main in predictors:
        m.eval()
        m.index(main)
    m0 = predictors[0][1]
    xm, xs = m0.x_mean.double(), m0.x_std.double()
    lo_n = (torch.as_tensor(coding.lo) - xm) / xs
    hi_n = (torch.as_tensor(coding.hi) - xm) / xs
    has_flops = [flops_metric is not None and flops_metric in m.metric_names for _, m, _ in predictors]
    if flops_lambda and not any(has_flops):
        raise NasbenchError(f"NCP: flops_lambda {flops_lambda} but no predictor predicts {flops_metric!r}")
    # loop invariants: output column of each predictor's main metric (and of flops_metric when its
    # FLOPs term is on), the 0-d y_mean/y_std tensors of that main column for the z-scored score,
    # and the label of the first predictor that predicts flops_metric (None if none does)
    columns = [(m.index(main), m.index(flops_metric) if flops_lambda and h else None)
               for (_, m, main), h in zip(predictors, has_flops)]
    main_stats = [(m.y_mean[j], m.y_std[j]) for (_, m, _), (j, _) in zip(predictors, columns)]
    flops_label = next((label for (label, _, _), h in zip(predictors, has_flops) if h), None)

    def describe(step, arch):
        vec = coding.to_vector(arch)
        key = coding.space.encode(arch)
        pred, score = {}, 0.0
        for (label, m, _), (j, _), (y_mean, y_std) in zip(predictors, columns, main_stats):
            p = m.predict(vec[None])[0]
            pred[label] = {n: float(v) for n, v in zip(m.metric_names, p)}
            score += float((p[j] - y_mean) / y_std)
        true = {}
        for label, b in benchmarks.items():
            true[label] = _clean(b.query(key)) if key in b else None
        if all(v is None for v in true.values()):
            true = None
        flops, src = None, None
        if flops_metric is not None:
            for v in (true or {}).values():
                if v is not None and flops_metric in v:
                    flops, src = float(v[flops_metric]), "true"
                    break
            if flops is None and flops_label is not None:
                flops, src = pred[flops_label][flops_metric], "predicted"
        return {"step": step, "code": key, "predicted": pred, "true": true, "score": score,
                "flops": flops, "flops_source": src}

    start = coding.space.validate(start)
    x = torch.as_tensor(coding.to_vector(start))
    traj = [describe(0, start)]
    for step in range(1, iterations + 1):
        xn = ((x - xm) / xs).float().requires_grad_(True)
        loss = 0.0
        for (_, m, _), (j_main, j_flops) in zip(predictors, columns):
            # raw is rebuilt per predictor on purpose: one shared node would sum the predictors'
            # gradients before the x_std factor instead of after it (not bit-identical)
            raw = xn * m0.x_std + m0.x_mean
            out = m(m.normalize_x(raw)[None])[0]
            pm = out[j_main]
            loss = loss + F.smooth_l1_loss(pm, pm.detach() + delta)
            if j_flops is not None:
                pf = out[j_flops]
                loss = loss + flops_lambda * F.smooth_l1_loss(pf, pf.detach() - delta)
        grad, = torch.autograd.grad(loss, xn)
        with torch.no_grad():
            xn_new = torch.maximum(torch.minimum(xn.double() - lr * grad.double(), hi_n), lo_n)
        x = xn_new * xs + xm
        traj.append(describe(step, coding.project(x.numpy())))

    ok = [e for e in traj if max_flops is None or (e["flops"] is not None and e["flops"] <= max_flops)]
    chosen = max(ok, key=lambda e: e["score"]) if ok else None
    in_bench = [e for e in ok if e["true"] is not None]
    chosen_b = max(in_bench, key=lambda e: e["score"]) if in_bench else None
    first, last = traj[0], traj[-1]

    def pred_flops(e):
        return None if flops_label is None else e["predicted"][flops_label][flops_metric]

    def flops_change(a, b):
        if a is None or b is None or a["flops"] is None or b["flops"] is None:
            return None
        pa, pb = pred_flops(a), pred_flops(b)
        return {"metric": flops_metric, "start": a["flops"], "chosen": b["flops"],
                "relative": b["flops"] / a["flops"] - 1.0 if a["flops"] else None,
                "source": "true" if a["flops_source"] == b["flops_source"] == "true" else "mixed/predicted",
                # predicted FLOPs of both codes (same source, comparable when the chosen code is not in the benchmark)
                "start_pred": pa, "chosen_pred": pb,
                "relative_pred": pb / pa - 1.0 if pa and pb is not None else None}

    def main_true(e, label, main):
        if e is None or e["true"] is None or e["true"].get(label) is None:
            return None
        return e["true"][label][main]

    codes = {e["code"] for e in traj}
    result = {
        "predictors": [{"label": lb, "main_metric": mm} for lb, _, mm in predictors],
        "settings": {"iterations": iterations, "lr": lr, "delta": delta, "flops_lambda": flops_lambda,
                     "flops_metric": flops_metric, "max_flops": max_flops},
        "start": first, "chosen": chosen, "final": last,
        "main": {lb: {"metric": mm, "start_true": main_true(first, lb, mm), "chosen_true": main_true(chosen, lb, mm),
                      "start_pred": first["predicted"][lb][mm],
                      "chosen_pred": chosen["predicted"][lb][mm] if chosen else None}
                 for lb, _, mm in predictors},
        "flops_change": flops_change(first, chosen),
        # best predicted visited code that the benchmark has (true metrics known; may be the start)
        "chosen_in_benchmark": chosen_b,
        "main_in_benchmark": {lb: main_true(chosen_b, lb, mm) for lb, _, mm in predictors},
        "flops_change_in_benchmark": flops_change(first, chosen_b),
        "num_unique_codes": len(codes),
        "num_unique_in_benchmark": len({e["code"] for e in traj if e["true"] is not None}),
    }
    if chosen is None:
        result["error"] = f"no visited code has {flops_metric} <= {max_flops}"
    return traj, result


# -- several seeded starts -------------------------------------------------------------------
def seeded_start(bench, seed: int) -> tuple:
    """Seeded random start architecture of ``tools/ncp.py --seed S``.

    The benchmark key at index ``np.random.default_rng(seed).integers(len(bench))``
    in the benchmark's iteration order, validated by its space (so every
    seeded start has true metrics).

    Raises:
        ConfigError: a negative seed.
    """
    if int(seed) < 0:
        raise ConfigError(f"NCP start seed must be >= 0, got {seed}")
    keys = list(bench)
    return bench.space.validate(keys[int(np.random.default_rng(int(seed)).integers(len(keys)))])


def propagate_seeds(predictors, coding, bench, seeds, *, out=None, **kwargs):
    """Run :func:`propagate` from the seeded random start of every seed (``tools/ncp.py --seeds S``).

    Seed ``i`` starts at :func:`seeded_start` ``(bench, i)`` and gives exactly
    the run of ``--seed i`` (its result has ``seed = i``, ``start_mode = "seed"``).

    Args:
        predictors, coding: as :func:`propagate`.
        bench: the benchmark the starts are drawn from (the first predictor's).
        seeds: ``S`` (int, seeds ``0..S-1``) or an iterable of distinct seeds >= 0.
        out: optional folder; writes ``out/seed_<i>/trajectory.json`` and
            ``out/seed_<i>/result.json`` per seed and ``out/summary.json``
            (:func:`summarize_runs`).
        **kwargs: passed to :func:`propagate` (``iterations``, ``lr``, ``delta``,
            ``flops_lambda``, ``flops_metric``, ``max_flops``, ``benchmarks``).

    Returns:
        ``(runs, summary)``: ``runs`` = one ``(trajectory, result)`` per seed, in
        seed order; ``summary`` = :func:`summarize_runs` of the results.

    Raises:
        ConfigError: no seed, a negative or repeated seed.
        NasbenchError: as :func:`propagate`.
    """
    import os

    from ..utils import atomic_write_json

    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ConfigError(f"NCP: number of seeds must be >= 1, got {seeds}")
        seeds = range(int(seeds))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("NCP: no seed given")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"NCP: repeated seeds in {seeds}")
    runs = []
    for seed in seeds:
        traj, result = propagate(predictors, coding, seeded_start(bench, seed), **kwargs)
        result["seed"], result["start_mode"] = seed, "seed"
        runs.append((traj, result))
        if out is not None:
            d = os.path.join(out, f"seed_{seed}")
            os.makedirs(d, exist_ok=True)
            atomic_write_json(traj, os.path.join(d, "trajectory.json"))
            atomic_write_json(result, os.path.join(d, "result.json"))
    summary = summarize_runs([r for _, r in runs])
    if out is not None:
        atomic_write_json(summary, os.path.join(out, "summary.json"))
    return runs, summary


def _mean(values):
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _flops_change_pct(fc):
    """``(percent, source)`` of a :func:`propagate` ``flops_change`` dict: the true relative
    change when both codes have true FLOPs, else the change of the predicted FLOPs of both."""
    if fc is None:
        return None, None
    if fc["source"] == "true" and fc["relative"] is not None:
        return 100.0 * fc["relative"], "true"
    if fc["relative_pred"] is not None:
        return 100.0 * fc["relative_pred"], "predicted"
    return None, None


def summarize_runs(results) -> dict:
    """Per-seed rows and means over seeds of NCP results (``summary.json`` of ``tools/ncp.py --seeds``).

    Args:
        results: one :func:`propagate` result dict per seed (with ``seed``, as
            written to ``seed_<i>/result.json``), all with the same predictors.

    Returns:
        ``{"label", "metric", "predictors", "settings", "runs", "mean"}``. The
        main metric is the first predictor's (``label``, ``metric``; units of the
        benchmark, e.g. % accuracy). ``runs`` holds per seed: ``seed``,
        ``start_code``, ``chosen_code`` (the code NCP returns: best predicted
        visited code under ``max_flops``, result ``chosen``), ``final_code``
        (last iterate, result ``final``), ``start_pred`` / ``chosen_pred``
        (predicted main metric), ``start_true`` / ``chosen_true`` (true main
        metric, None when the benchmark lacks the code), ``improved``
        (``chosen_true > start_true``, None unless both are known),
        ``in_benchmark_code`` / ``in_benchmark_true`` (best predicted visited
        code with true metrics), ``flops_start`` / ``flops_chosen`` (in
        ``flops_metric`` units, true when known else predicted),
        ``flops_change_pct`` (percent, chosen vs start; true FLOPs when both codes
        have them, else predicted FLOPs of both) and ``flops_source``
        (``"true"``/``"predicted"``). ``mean`` holds the means over seeds of
        ``start_pred``, ``chosen_pred``, ``start_true``, ``chosen_true``,
        ``in_benchmark_true`` and ``flops_change_pct``, each over the seeds where
        the value is known (None if none; ``num_start_true``, ``num_chosen_true``
        and ``num_flops_change`` count them), plus ``num_seeds``,
        ``num_true_pairs`` (seeds with both true values), ``num_improved`` (true
        metric raised) and ``num_improved_pred`` (predicted metric raised).

    Raises:
        NasbenchError: no results.
    """
    results = list(results)
    if not results:
        raise NasbenchError("NCP: no results to summarize")
    label, metric = results[0]["predictors"][0]["label"], results[0]["predictors"][0]["main_metric"]
    rows = []
    for r in results:
        m = r["main"][label]
        chosen, final, in_b = r["chosen"], r["final"], r["chosen_in_benchmark"]
        pct, src = _flops_change_pct(r["flops_change"])
        fc = r["flops_change"] or {}
        both = m["start_true"] is not None and m["chosen_true"] is not None
        rows.append({
            "seed": r.get("seed"), "start_code": r["start"]["code"],
            "chosen_code": chosen["code"] if chosen else None, "final_code": final["code"],
            "start_pred": m["start_pred"], "chosen_pred": m["chosen_pred"],
            "start_true": m["start_true"], "chosen_true": m["chosen_true"],
            "improved": bool(m["chosen_true"] > m["start_true"]) if both else None,
            "in_benchmark_code": in_b["code"] if in_b else None,
            "in_benchmark_true": r["main_in_benchmark"][label],
            "flops_start": fc.get("start"), "flops_chosen": fc.get("chosen"),
            "flops_change_pct": pct, "flops_source": src,
        })
    mean = {k: _mean(row[k] for row in rows)
            for k in ("start_pred", "chosen_pred", "start_true", "chosen_true", "in_benchmark_true",
                      "flops_change_pct")}
    pairs = [row for row in rows if row["improved"] is not None]
    mean.update({
        "num_seeds": len(rows),
        "num_start_true": sum(row["start_true"] is not None for row in rows),
        "num_chosen_true": sum(row["chosen_true"] is not None for row in rows),
        "num_flops_change": sum(row["flops_change_pct"] is not None for row in rows),
        "num_true_pairs": len(pairs),
        "num_improved": sum(row["improved"] for row in pairs),
        "num_improved_pred": sum(row["chosen_pred"] is not None and row["chosen_pred"] > row["start_pred"]
                                 for row in rows),
    })
    return {"label": label, "metric": metric, "predictors": results[0]["predictors"],
            "settings": results[0]["settings"], "runs": rows, "mean": mean}


def format_summary_table(summary: dict) -> str:
    """Plain-text table of :func:`summarize_runs`: one line per seed and a mean line.

    Columns: seed, start code, chosen code, predicted and true main metric
    (start -> chosen; ``-`` = unknown), FLOPs change in percent (``t`` = true,
    ``p`` = predicted FLOPs) and whether the true metric improved.
    """
    def num(v, fmt="{:.2f}"):
        return "-" if v is None else fmt.format(v)

    def pct(v, src=None):
        return "-" if v is None else f"{v:+.1f}%" + ("" if src is None else f" ({src[0]})")

    metric = summary["metric"]
    head = ["seed", "start code", "chosen code", f"pred {metric}", f"true {metric}", "FLOPs", "improved"]
    lines = []
    for r in summary["runs"]:
        lines.append([str(r["seed"]), r["start_code"], r["chosen_code"] or "-",
                      f"{num(r['start_pred'])} -> {num(r['chosen_pred'])}",
                      f"{num(r['start_true'])} -> {num(r['chosen_true'])}",
                      pct(r["flops_change_pct"], r["flops_source"]),
                      "-" if r["improved"] is None else ("yes" if r["improved"] else "no")])
    m = summary["mean"]
    lines.append(["mean", "", "", f"{num(m['start_pred'])} -> {num(m['chosen_pred'])}",
                  f"{num(m['start_true'])} -> {num(m['chosen_true'])}", pct(m["flops_change_pct"]),
                  f"{m['num_improved']}/{m['num_true_pairs']}"])
    widths = [max(len(row[i]) for row in [head] + lines) for i in range(len(head))]

    def fmt(row):
        return "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()

    out = [fmt(head), "  ".join("-" * w for w in widths)] + [fmt(row) for row in lines]
    out.append(f"means over seeds with known values ({m['num_start_true']} start / {m['num_chosen_true']} chosen "
               f"true {metric}); improved = true {metric} raised, of seeds with both known; "
               f"predicted {metric} raised in {m['num_improved_pred']}/{m['num_seeds']}")
    return "\n".join(out)


__all__ = ["propagate", "load_bench", "load_ncp_config", "benchmark_records", "coding_for", "default_metric_groups",
           "default_flops_metric", "MRCoding", "NB201Coding", "seeded_start", "propagate_seeds", "summarize_runs",
           "format_summary_table"]
