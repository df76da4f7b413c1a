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

Also here: the config format of ``configs/ncp/*.yaml`` (:func:`load_ncp_config`)
and :func:`benchmark_records` (predictor training data from a benchmark).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError, NasbenchError

#: allowed keys of configs/ncp/*.yaml with their defaults (None = derived from the benchmark)
def load_ncp_config(path, overrides: dict | None = None) -> dict:
    """NCP settings from a config file read by :func:`nasbench.config.load_config`
    (strict keys, ``_base_``): ``{"benchmark", "metrics", "predictor": {...}, "ncp": {...}}``.

    ``overrides``: ``{"predictor": {...}, "ncp": {...}}`` applied on top, checked like ``--opts``.

    Raises:
        ConfigError: unreadable file, unknown key (named with the file), or no ``benchmark.name``.
    """
    from .config import load_config

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
    from .benchmarks import load_benchmark

    if str(name).partition("/")[0] not in ("nas_bench_mr", "nas_bench_201"):
        raise NasbenchError(f"NCP supports nas_bench_mr/<setting> and nas_bench_201 benchmarks, not {name!r}")
    return load_benchmark(name, root)


# -- codings: architecture <-> real vector ------------------------------------------------
class MRCoding:
    """NAS-Bench-MR: the 27-int code itself; projection rounds each gene to a legal value."""

    def __init__(self, space):
        from .spaces.nas_bench_mr import gene_bounds
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
        from .spaces.nas_bench_201 import EMBED_DIM
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

    def describe(step, arch):
        vec = coding.to_vector(arch)
        key = coding.space.encode(arch)
        pred, score = {}, 0.0
        for label, m, main in predictors:
            p = m.predict(vec[None])[0]
            pred[label] = {n: float(v) for n, v in zip(m.metric_names, p)}
            j = m.index(main)
            score += float((p[j] - m.y_mean[j]) / m.y_std[j])
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
            if flops is None:
                for (label, m, _), h in zip(predictors, has_flops):
                    if h:
                        flops, src = pred[label][flops_metric], "predicted"
                        break
        return {"step": step, "code": key, "predicted": pred, "true": true, "score": score,
                "flops": flops, "flops_source": src}

    start = coding.space.validate(start)
    x = torch.as_tensor(coding.to_vector(start))
    traj = [describe(0, start)]
    for step in range(1, iterations + 1):
        xn = ((x - xm) / xs).float().requires_grad_(True)
        loss = 0.0
        for (label, m, main), h in zip(predictors, has_flops):
            raw = xn * m0.x_std + m0.x_mean
            out = m(m.normalize_x(raw)[None])[0]
            pm = out[m.index(main)]
            loss = loss + F.smooth_l1_loss(pm, pm.detach() + delta)
            if flops_lambda and h:
                pf = out[m.index(flops_metric)]
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
        for (label, _, _), h in zip(predictors, has_flops):
            if h:
                return e["predicted"][label][flops_metric]
        return None

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


__all__ = ["propagate", "load_bench", "load_ncp_config", "benchmark_records", "coding_for", "default_metric_groups",
           "default_flops_metric", "MRCoding", "NB201Coding"]
