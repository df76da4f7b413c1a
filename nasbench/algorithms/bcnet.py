"""BCNet / BCNetV2: bilaterally coupled width supernet (arXiv 2105.10533, 2203.13714).

Every training step draws a width ``c_l`` per dimension and trains the *left*
path (first channels) and the *right* path (last channels) of that width on
the same batch, each with half the loss, followed by one optimizer step
(METHODS.md 1.3). With the stochastic complementary strategy the next step
trains the complementary width ``c'_l = B + m - c_l`` instead of a fresh draw,
so two consecutive steps cover every channel of the supernet equally.

BCNetV2 is the same algorithm on a space with ``min_bins = m > 0``: the
supernet is ``(B + m) / B`` times wider and widths lie in ``[m, B]``, which
makes each channel belong to exactly ``B - m + 1`` left/right windows.

Deviation from the reference code (deliberate, METHODS.md 1.3): the complement
is ``B + m - c`` (the paper's intent), not the code's ``B_tot - c - 1``; with
``m = 0`` a complement below the smallest width is clamped to it.
"""
from __future__ import annotations

from ..errors import ArchError
from ..registry import ALGORITHMS, Key
from .base import WIDTH_KEYS, SupernetAlgorithm


@ALGORITHMS.register("bcnet")
class BCNet(SupernetAlgorithm):
    """BCNet training rule; ``complementary`` enables the complementary next step."""

    KEYS = {**WIDTH_KEYS,
            "complementary": Key(True, "stochastic complementary step: the next step trains width B+m-c", bool)}
    eval_sides = ("left", "right")

    def __init__(self, space, seed=0, complementary=True, **kwargs):
        super().__init__(space, seed=seed, **kwargs)
        self.complementary = bool(complementary)
        self._pending = None

    def complement(self, arch) -> tuple:
        """Complementary width per dimension: ``B + m - c`` clamped to the legal range."""
        lo, hi = min(self.space.choices(0)), max(self.space.choices(0))
        total = self.space.bins + self.space.min_bins
        return tuple(min(hi, max(lo, total - c)) for c in arch)

    def paths(self):
        if self._pending is not None:
            arch, self._pending = self._pending, None
        else:
            arch = self.sample()
            if self.complementary:
                self._pending = self.complement(arch)
        return [(arch, "left"), (arch, "right")]

    def state_dict(self):
        d = super().state_dict()
        d["pending"] = self._pending
        return d

    def load_state_dict(self, d):
        super().load_state_dict(d)
        pending = d.get("pending")
        try:
            self._pending = None if pending is None else self.space.validate(pending)
        except ArchError as e:
            raise ValueError(f"algorithm 'pending' (the next complementary path): {e}") from None
