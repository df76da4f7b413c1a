"""AutoSlim-style unilateral width supernet (Yu & Huang, arXiv 1903.11728).

Every path uses the *left-most* channels ("unilaterally augmented" principle),
so left channels are trained far more often than right ones: the bias BCNet
removes. For a fair comparison with BCNet this baseline trains ``num_paths``
uniformly drawn left paths per step (2 by default: BCNet's compute per step);
``sandwich: true`` applies AutoSlim's sandwich rule instead (the largest and
smallest widths plus ``num_paths - 2`` random ones). A subnet is scored on its
left path only.
"""
from __future__ import annotations

from ..registry import ALGORITHMS, Key
from .base import WIDTH_KEYS, SupernetAlgorithm


@ALGORITHMS.register("autoslim")
class AutoSlim(SupernetAlgorithm):
    """Unilateral (left-path) supernet training; see module docstring."""

    KEYS = {**WIDTH_KEYS,
            "num_paths": Key(2, "left paths trained per step", int, (1, None), unit="count"),
            "sandwich": Key(False, "AutoSlim's sandwich rule (largest + smallest + random paths)", bool)}
    eval_sides = ("left",)

    def __init__(self, space, seed=0, num_paths=2, sandwich=False, **kwargs):
        super().__init__(space, seed=seed, **kwargs)
        self.num_paths, self.sandwich = int(num_paths), bool(sandwich)
        if self.num_paths < 1 or (self.sandwich and self.num_paths < 2):
            raise ValueError("autoslim: num_paths must be >= 1 (>= 2 with the sandwich rule)")

    def paths(self):
        archs = [self.sample() for _ in range(self.num_paths)]
        if self.sandwich:
            n = self.space.num_genes
            archs[0] = (max(self.space.choices(0)),) * n
            archs[1] = (min(self.space.choices(0)),) * n
        return [(a, "left") for a in archs]
