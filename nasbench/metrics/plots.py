"""Figures people would rather look at than read (matplotlib, Agg backend, PNG)."""
from __future__ import annotations

import os

import numpy as np


def plt_module():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (PNG files, no display)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path):
    """Save ``fig`` as a PNG at ``path`` atomically (temporary file + rename) and close it."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)


def plot_rank_scatter(pred, true, flops, path, title=""):
    """Scatter of supernet score (x) against benchmark accuracy (y), coloured by FLOPs (MACs)."""
    plt = plt_module()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    sc = ax.scatter(pred, true, c=np.asarray(flops) / 1e6, s=12, cmap="viridis")
    fig.colorbar(sc, ax=ax, label="MFLOPs (MACs)")
    ax.set_xlabel("supernet score (top-1 %)")
    ax.set_ylabel("benchmark accuracy (%)")
    ax.set_title(title, fontsize=8)
    save_figure(fig, path)
    plt.close(fig)


def plot_channel_counts(counts, path, title="", labels=None):
    """One panel per searchable dimension: how often each channel was trained.

    ``counts``: list of 1-D int arrays (one per dimension) or a dict
    ``{label: list of arrays}`` to overlay several algorithms.
    """
    plt = plt_module()
    series = counts if isinstance(counts, dict) else {labels or "": counts}
    n = len(next(iter(series.values())))
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for l in range(n):
        ax = axes[l // cols][l % cols]
        for name, cs in series.items():
            c = np.asarray(cs[l], dtype=float)
            ax.plot(np.arange(len(c)), c / max(c.mean(), 1e-12), label=name or None, lw=1)
        ax.set_title(f"dim {l}", fontsize=8)
        ax.set_xlabel("channel index", fontsize=7)
        ax.set_ylabel("count / mean", fontsize=7)
        ax.tick_params(labelsize=6)
    for l in range(n, rows * cols):
        axes[l // cols][l % cols].axis("off")
    if len(series) > 1:
        axes[0][0].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_curves(curves: dict, path, title="", xlabel="epoch", ylabel="", reference: dict | None = None,
                marker: str | None = "."):
    """One line per run: ``curves`` = ``{label: (x values, y values)}``.

    ``reference``: optional ``{label: y}`` drawn as horizontal dashed lines.
    """
    plt = plt_module()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (x, y) in curves.items():
        ax.plot(x, y, marker=marker, label=label)
    for label, value in (reference or {}).items():
        ax.axhline(value, linestyle="--", color="grey", linewidth=1)
        ax.annotate(label, (ax.get_xlim()[0], value), fontsize=8, va="bottom")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)
    plt.close(fig)


def plot_tau_curves(curves: dict, path, title="", reference: dict | None = None):
    """Kendall tau (y) against training progress in epochs (x) for one or more runs.

    ``curves``: ``{label: (epochs, tau values)}``; ``reference``: optional
    ``{label: tau}`` (e.g. the FLOPs proxy on the same architectures).
    """
    plot_curves(curves, path, title=title, xlabel="epoch", ylabel="Kendall tau vs benchmark", reference=reference)


def plot_search_baselines(flops, acc, marks: dict, path, flops_range=(None, None), title="",
                          ylabel="benchmark accuracy (%)"):
    """Benchmark accuracy (y) against MACs (x) of every architecture, with picks marked.

    ``flops``/``acc``: one value per architecture (small grey points; NaN FLOPs
    are skipped). ``marks``: ``{label: (flops, acc)}`` drawn in order with distinct
    markers and a legend (e.g. found / largest MACs / median / optimum).
    ``flops_range``: the search's ``(lo, hi)`` MACs window; each bound that is
    not None (and a lower bound > 0) is drawn as a vertical dashed line.
    """
    plt = plt_module()
    flops, acc = np.asarray(flops, dtype=float), np.asarray(acc, dtype=float)
    ok = np.isfinite(flops) & np.isfinite(acc)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.scatter(flops[ok] / 1e6, acc[ok], s=3, c="0.7", lw=0, label=f"all {int(ok.sum()):,} architectures",
               rasterized=True)
    lo, hi = flops_range if flops_range is not None else (None, None)
    for name, v in (("lower bound", lo), ("budget", hi)):
        if v is not None and (name == "budget" or v > 0):
            ax.axvline(float(v) / 1e6, ls="--", lw=1, color="k", alpha=0.6)
            ax.annotate(f"{name} {float(v) / 1e6:g}M", (float(v) / 1e6, 0.02), xycoords=("data", "axes fraction"),
                        rotation=90, fontsize=7, ha="right", va="bottom")
    styles = [("*", "tab:red", 180), ("s", "tab:blue", 60), ("^", "tab:orange", 70), ("D", "tab:green", 60),
              ("v", "tab:purple", 60), ("P", "tab:brown", 70)]
    for (label, (x, y)), (m, c, s) in zip(marks.items(), styles * (len(marks) // len(styles) + 1)):
        ax.scatter([float(x) / 1e6], [float(y)], marker=m, c=c, s=s, edgecolors="k", lw=0.6, zorder=3, label=label)
    ax.set_xlabel("MFLOPs (MACs)")
    ax.set_ylabel(ylabel)
    if ok.any():  # the long tail of bad architectures would squash the interesting top
        ys = [float(y) for _, y in marks.values()] + [float(np.percentile(acc[ok], 2))]
        top = float(acc[ok].max())
        ax.set_ylim(min(ys) - 0.05 * (top - min(ys) + 1e-9), top + 0.05 * (top - min(ys) + 1e-9))
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    save_figure(fig, path)
    plt.close(fig)


def plot_budget_curve(points: list, path, reference: dict | None = None):
    """Three panels against training images seen (log x): Kendall tau, Kendall tau inside
    FLOPs bands, and search regret (benchmark points), one line per run label.

    ``points``: records of :func:`nasbench.pipeline.budget_curve.run_point` (``label``,
    ``images_seen``, ``kendall_tau``, ``banded_kendall_tau``, ``flops_proxy_*``,
    ``found.regret``, ``largest_flops.regret``). The MACs proxy on the same architectures
    (mean over points) and the largest-MACs pick's regret are drawn dashed;
    ``reference``: ``{label: tau}`` extra horizontal lines on the tau panel.
    """
    plt = plt_module()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    labels = list(dict.fromkeys(p["label"] for p in points))
    panels = (("kendall_tau", "flops_proxy_kendall_tau", "Kendall tau vs benchmark"),
              ("banded_kendall_tau", "flops_proxy_banded_kendall_tau", "Kendall tau inside MACs bands"))
    for ax, (key, proxy, title) in zip(axes, panels):
        for label in labels:
            pts = sorted((p for p in points if p["label"] == label), key=lambda p: p["images_seen"] or 0)
            ax.plot([p["images_seen"] for p in pts], [p[key] for p in pts], marker="o", label=label)
        ax.axhline(float(np.mean([p[proxy] for p in points])), ls="--", color="k", lw=1,
                   label="MACs proxy (same archs)")
        ax.set_title(title, fontsize=10)
    styles = iter(["grey", "tab:purple", "tab:olive", "tab:cyan", "tab:pink"] * 3)
    for label, value in (reference or {}).items():
        axes[0].axhline(float(value), ls=":", lw=1.2, color=next(styles), label=f"{label} {float(value):.3f}")
    for label in labels:
        pts = sorted((p for p in points if p["label"] == label), key=lambda p: p["images_seen"] or 0)
        axes[2].plot([p["images_seen"] for p in pts], [p["found"]["regret"] for p in pts], marker="o", label=label)
    axes[2].axhline(float(np.mean([p["largest_flops"]["regret"] for p in points])), ls="--", color="k", lw=1,
                    label="largest-MACs pick")
    axes[2].set_title("search regret under the MACs budget (points, lower is better)", fontsize=10)
    seen = [float(p["images_seen"]) for p in points if p.get("images_seen")]
    for ax in axes:
        ax.set_xscale("log")
        if seen:  # a panel whose values are all NaN (too few archs per band) has no x data of its own
            ax.set_xlim(min(seen) / 1.5, max(seen) * 1.5)
        ax.set_xlabel("training images seen")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)
    plt.close(fig)
