"""Uniform single-path width supernet: one uniformly drawn left path per step.

The width analogue of SPOS uniform sampling (Guo et al., arXiv 1904.00420),
used as the simplest baseline in the same engine as BCNet and AutoSlim.
"""
from __future__ import annotations

from ..registry import ALGORITHMS
from .base import WIDTH_KEYS, SupernetAlgorithm


@ALGORITHMS.register("uniform")
class UniformSinglePath(SupernetAlgorithm):
    """One uniform random left path per step; scored on the left path."""

    KEYS = dict(WIDTH_KEYS)
    eval_sides = ("left",)

    def paths(self):
        return [(self.sample(), "left")]
