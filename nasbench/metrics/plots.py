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
