"""BCNet prior initial population (METHODS.md 1.4, "Prior initial population").

During supernet training BCNet keeps the (architecture, loss) records of the
lowest training losses. Before the evolutionary search it fits per-layer
width logits ``P`` (shape ``[L, W]``) by SGD on

    J(P) = mean_l sum_w p_lw * E_lw  +  penalty_weight * (1 - F_e / (target_ratio * budget))^2

with ``p_l = softmax(P_l)``, ``E_lw`` the mean recorded loss when layer ``l``
had width ``choices[l][w]`` and ``F_e`` the expected FLOPs (MACs)

    F_e = sum_l sum_{w,w'} F[l,w,w'] p_l(w) p_{l+1}(w'),
    F[l,w,w'] = layer_flops[l] * (c_lw / max_w c_lw) * (c_{l+1,w'} / max_w' c_{l+1,w'}).

The initial population and every later random draw of the EA are then
sampled from ``softmax(P)`` (:class:`PriorSampler`, pass it as
``EvolutionSearcher(sampler=...)``).

Implementation choices / deviations from the BCNetV2 code (documented so they
can be switched back):

* **FLOPs normalisation.** ``layer_flops`` is divided by
  ``target_ratio * budget`` *before* the optimisation, so ``F_e`` enters as the
  dimensionless ratio ``r = F_e / (target_ratio*budget)`` and the penalty is
  ``penalty_weight * (1 - r)^2``: all quantities are O(1) whatever the MAC
  scale (1e5 on CIFAR, 1e8 on ImageNet) and the computation runs in float64.
  Mathematically this is the same objective.
* Because ``F[l,w,w']`` factorises, ``F_e = sum_l f_l * E[rel_l] * E[rel_{l+1}]``
  (exact, no ``[L, W, W]`` tensor). The last layer has no successor; its
  successor factor is 1 (full width), as for a fixed-width classifier input.
* ``target_ratio`` (the code's hard-coded 0.4 fudge) and ``penalty_weight``
  (1000) are arguments.
* ``E`` is indexed by the width *value* (``choices[l].index(width)``), not by
  ``width - 1`` as in the code, which is misaligned when the minimum width
  ``m > 1`` (METHODS.md 1.7).
* Unseen widths get ``unseen_loss`` (default: max recorded loss + 1).
* Layers may have different numbers of choices; padded entries of ``P`` are
  ``-inf`` (probability 0).
* Initial logits are zeros (uniform); ``init_std > 0`` adds Gaussian noise
  drawn from ``seed``. The original's initialisation is not verified.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ArchError

__all__ = ["fit_prior", "loss_table", "expected_flops", "PriorSampler"]


def _choices_list(choices) -> list[list[int]]:
    out = [[int(c) for c in cs] for cs in choices]
    if not out or any(len(c) == 0 for c in out):
        raise ValueError("choices must be a non-empty list of non-empty width lists")
    return out


def _mask(choices) -> np.ndarray:
    W = max(len(c) for c in choices)
    return np.array([[w < len(c) for w in range(W)] for c in choices])


def _rel_widths(choices) -> np.ndarray:
    """``[L, W]`` width / max width of the layer (0 on padded entries)."""
    W = max(len(c) for c in choices)
    rel = np.zeros((len(choices), W))
    for l, c in enumerate(choices):
        rel[l, :len(c)] = np.asarray(c, dtype=float) / max(c)
    return rel


def _layer_flops_array(layer_flops, L: int) -> np.ndarray:
    if callable(layer_flops):
        f = np.array([float(layer_flops(l)) for l in range(L)])
    else:
        f = np.asarray(layer_flops, dtype=float).reshape(-1)
    if f.shape != (L,):
        raise ValueError(f"layer_flops must give {L} values (one per layer), got shape {f.shape}")
    if not np.all(np.isfinite(f)) or np.any(f < 0):
        raise ValueError("layer_flops must be finite and non-negative (MACs)")
    return f


def loss_table(loss_records, choices, unseen_loss: float | None = None):
    """``E[l, w]`` = mean recorded loss when layer ``l`` had width ``choices[l][w]``.

    Args:
        loss_records: iterable of ``(arch, loss)``; ``arch`` is a tuple of width
            values (one per layer), ``loss`` a float.
        choices: ``L`` lists of allowed width values.
        unseen_loss: value for (layer, width) pairs never recorded (and padded
            entries); default ``max(recorded) + 1`` (``1.0`` with no records).

    Returns:
        ``(E, counts)``: float ``[L, W]`` and int ``[L, W]`` arrays.

    Raises:
        ArchError: a record has the wrong length or a width not in ``choices``.
    """
    choices = _choices_list(choices)
    L, W = len(choices), max(len(c) for c in choices)
    sums, counts = np.zeros((L, W)), np.zeros((L, W), dtype=int)
    index = [{c: w for w, c in enumerate(cs)} for cs in choices]
    losses = []
    for arch, loss in loss_records:
        arch = tuple(int(a) for a in arch)
        if len(arch) != L:
            raise ArchError(f"loss record {arch} has {len(arch)} genes, expected {L}")
        loss = float(loss)
        if not np.isfinite(loss):
            continue
        losses.append(loss)
        for l, a in enumerate(arch):
            w = index[l].get(a)
            if w is None:
                raise ArchError(f"loss record {arch}: layer {l} width {a} not in {choices[l]}")
            sums[l, w] += loss
            counts[l, w] += 1
    if unseen_loss is None:
        unseen_loss = (max(losses) + 1.0) if losses else 1.0
    E = np.where(counts > 0, sums / np.maximum(counts, 1), float(unseen_loss))
    return E, counts


def _softmax(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    z = np.where(mask, logits, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    e = np.where(mask, np.exp(z), 0.0)
    return e / e.sum(axis=1, keepdims=True)


def expected_flops(logits, layer_flops, choices) -> float:
    """Expected FLOPs ``F_e`` (MACs) of ``softmax(logits)`` under the prior's FLOPs model.

    ``logits``: ``[L, W]``; ``layer_flops``: callable ``l -> MACs`` or ``[L]``
    array of full-width MACs; ``choices``: ``L`` width lists.
    """
    choices = _choices_list(choices)
    f = _layer_flops_array(layer_flops, len(choices))
    p = _softmax(np.asarray(logits, dtype=float), _mask(choices))
    er = (p * _rel_widths(choices)).sum(axis=1)
    nxt = np.append(er[1:], 1.0)
    return float((f * er * nxt).sum())


def fit_prior(loss_records, layer_flops, budget: float, choices, steps: int = 2000,
              lr: float = 0.01, target_ratio: float = 0.4, seed: int = 0,
              penalty_weight: float = 1000.0, unseen_loss: float | None = None,
              init_std: float = 0.0) -> np.ndarray:
    """Fit the BCNet prior logits ``P`` (METHODS.md 1.4) with torch SGD.

    Args:
        loss_records: ``(arch, loss)`` pairs, ``arch`` = tuple of width values.
        layer_flops: callable ``l -> MACs`` or ``[L]`` array: full-width MACs of
            layer ``l`` (the term coupling widths of ``l`` and ``l+1``).
        budget: FLOPs budget in MACs (> 0).
        choices: ``L`` lists of width values (e.g. ``space.choices(l)``).
        steps, lr: SGD steps and learning rate (code: 2000, 0.01).
        target_ratio: FLOPs target as a fraction of ``budget`` (code: 0.4).
        seed: seed of the optional ``init_std`` noise.
        penalty_weight: weight of the FLOPs penalty (code: 1000).
        unseen_loss: loss assigned to unrecorded widths (default max + 1).
        init_std: std of Gaussian noise on the zero initial logits.

    Returns:
        ``np.ndarray`` float64 ``[L, W]`` logits (``-inf`` on padded entries
        when layers have fewer than ``W`` choices).

    Raises:
        ValueError: non-positive ``budget``/``target_ratio``/``steps``, or
            badly shaped ``layer_flops``. ArchError: bad loss records.
    """
    import torch

    if budget is None or not budget > 0:
        raise ValueError(f"budget must be > 0 MACs, got {budget}")
    if not target_ratio > 0:
        raise ValueError(f"target_ratio must be > 0, got {target_ratio}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    choices = _choices_list(choices)
    L = len(choices)
    E_np, _ = loss_table(loss_records, choices, unseen_loss)
    f_hat = _layer_flops_array(layer_flops, L) / (target_ratio * float(budget))
    mask_np = _mask(choices)

    gen = torch.Generator().manual_seed(int(seed))
    dt = torch.float64
    E = torch.as_tensor(E_np, dtype=dt)
    rel = torch.as_tensor(_rel_widths(choices), dtype=dt)
    f = torch.as_tensor(f_hat, dtype=dt)
    mask = torch.as_tensor(mask_np)
    P = torch.zeros(E.shape, dtype=dt)
    if init_std > 0:
        P += init_std * torch.randn(E.shape, generator=gen, dtype=dt)
    P.requires_grad_(True)
    opt = torch.optim.SGD([P], lr=lr)
    one = torch.ones(1, dtype=dt)

    def objective():
        p = torch.softmax(P.masked_fill(~mask, float("-inf")), dim=1)
        loss_term = (p * E).sum(dim=1).mean()
        er = (p * rel).sum(dim=1)
        ratio = (f * er * torch.cat([er[1:], one])).sum()
        return loss_term + penalty_weight * (1.0 - ratio) ** 2

    for _ in range(int(steps)):
        opt.zero_grad()
        objective().backward()
        opt.step()
    out = P.detach().numpy().copy()
    out[~mask_np] = -np.inf
    return out


class PriorSampler:
    """Draws architectures gene-wise from ``softmax(logits[l])``.

    ``sampler(rng) -> arch`` tuple of width values, usable as the ``sampler``
    of :class:`~nasbench.searchers.evolution.EvolutionSearcher`,
    :class:`~nasbench.searchers.nsga2.NSGA2Searcher` and
    :class:`~nasbench.searchers.random.RandomSearcher`.

    Args:
        logits: ``[L, W]`` array (e.g. from :func:`fit_prior`); entries beyond
            ``len(choices[l])`` are ignored.
        choices: ``L`` lists of width values.
    """

    def __init__(self, logits, choices: Sequence[Sequence[int]]):
        self.choices = _choices_list(choices)
        logits = np.array(logits, dtype=float)
        mask = _mask(self.choices)
        if logits.ndim != 2 or logits.shape[0] != len(self.choices) or logits.shape[1] < mask.shape[1]:
            raise ValueError(f"logits shape {logits.shape} does not match choices "
                             f"({len(self.choices)} layers, up to {mask.shape[1]} widths)")
        logits = logits[:, :mask.shape[1]]
        if np.isnan(logits[mask]).any():
            raise ValueError("logits contain NaN")
        self.logits = np.where(mask, logits, -np.inf)
        self.probs = _softmax(self.logits, mask)
        self._cdf = np.cumsum(self.probs, axis=1)

    def __call__(self, rng: np.random.Generator) -> tuple:
        u = rng.random(len(self.choices))
        out = []
        for l, cs in enumerate(self.choices):
            w = int(np.searchsorted(self._cdf[l, :len(cs)], u[l] * self._cdf[l, len(cs) - 1], side="right"))
            out.append(cs[min(w, len(cs) - 1)])
        return tuple(out)

    def state_dict(self) -> dict:
        """JSON-able state: ``{"logits": [[...]], "choices": [[...]]}`` (``-inf`` kept as float)."""
        return {"logits": self.logits.tolist(), "choices": [list(c) for c in self.choices]}

    def load_state_dict(self, state: dict) -> None:
        self.__init__(state["logits"], state["choices"])

    @classmethod
    def from_state_dict(cls, state: dict) -> "PriorSampler":
        return cls(state["logits"], state["choices"])
