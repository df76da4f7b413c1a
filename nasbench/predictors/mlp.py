"""NCP's multi-head MLP predictor (METHODS.md 5.3; [NCP] ``models/mlp.py``, ``tools/train_predictor.py``).

Shared trunk: BN1d -> Linear(in, 256) -> BN1d -> swish -> Dropout(0.5); one
head per metric group: Linear(256, 128) -> BN1d -> swish -> Dropout(p_g) ->
Linear(128, |group|). Head outputs are concatenated in group order, so
``metric_names`` is the flattened list of groups. Dropout of a head is 0 for
groups made only of cost metrics (``flops*``/``params*``) and 0.5 otherwise
(NCP: [0.5, 0.5, 0] for [[top1], [top5], [flops, params]]).

Inputs and targets are z-scored with training-set statistics kept in the module
as buffers (``x_mean, x_std, y_mean, y_std``), so a saved predictor is
self-contained. :meth:`MLPPredictor.forward` maps *normalised* inputs to
*normalised* outputs (NCP propagates gradients in that space);
:meth:`MLPPredictor.predict` maps raw codes to raw metrics.
"""
from __future__ import annotations

import copy
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CheckpointError, NasbenchError

_COST_PREFIXES = ("flops", "params")


def _is_cost(name: str) -> bool:
    return str(name).lower().startswith(_COST_PREFIXES)


class MLPPredictor(nn.Module):
    """Multi-head MLP (see module doc).

    Args:
        in_dim: code length (27 for NAS-Bench-MR, 30 for the NB201 one-hot).
        metric_groups: list of lists of metric names, one head per group.
        hidden, head_hidden: trunk and head widths (256, 128).
        dropout: trunk dropout; head_dropout: list per group or None (see module doc).
    """

    def __init__(self, in_dim: int, metric_groups, hidden: int = 256, head_hidden: int = 128,
                 dropout: float = 0.5, head_dropout=None):
        super().__init__()
        groups = [list(g) if isinstance(g, (list, tuple)) else [g] for g in metric_groups]
        if not groups or any(not g for g in groups):
            raise NasbenchError(f"predictor: metric_groups {metric_groups!r} must be non-empty lists of names")
        names = [str(m) for g in groups for m in g]
        if len(set(names)) != len(names):
            raise NasbenchError(f"predictor: metric_groups {metric_groups!r} repeat a metric")
        if head_dropout is None:
            head_dropout = [0.0 if all(_is_cost(m) for m in g) else 0.5 for g in groups]
        if len(head_dropout) != len(groups):
            raise NasbenchError(f"predictor: head_dropout {head_dropout!r} needs one value per group ({len(groups)})")
        self.in_dim, self.metric_groups, self.metric_names = int(in_dim), groups, names
        self.hparams = {"in_dim": int(in_dim), "metric_groups": groups, "hidden": int(hidden),
                        "head_hidden": int(head_hidden), "dropout": float(dropout),
                        "head_dropout": [float(p) for p in head_dropout]}
        self.trunk = nn.Sequential(nn.BatchNorm1d(in_dim), nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden),
                                   nn.SiLU(), nn.Dropout(dropout))
        self.heads = nn.ModuleList([
            nn.Sequential(nn.Linear(hidden, head_hidden), nn.BatchNorm1d(head_hidden), nn.SiLU(),
                          nn.Dropout(p), nn.Linear(head_hidden, len(g)))
            for g, p in zip(groups, head_dropout)])
        n = len(names)
        self.register_buffer("x_mean", torch.zeros(in_dim))
        self.register_buffer("x_std", torch.ones(in_dim))
        self.register_buffer("y_mean", torch.zeros(n))
        self.register_buffer("y_std", torch.ones(n))

    # -- normalisation -----------------------------------------------------------
    def set_stats(self, x: np.ndarray, y: np.ndarray) -> None:
        """Store z-score statistics of training inputs ``x`` [N, in] and targets ``y`` [N, M]."""
        def _std(a):
            s = a.std(axis=0)
            return np.where(s > 1e-8, s, 1.0)
        self.x_mean.copy_(torch.as_tensor(x.mean(axis=0), dtype=torch.float32))
        self.x_std.copy_(torch.as_tensor(_std(x), dtype=torch.float32))
        self.y_mean.copy_(torch.as_tensor(y.mean(axis=0), dtype=torch.float32))
        self.y_std.copy_(torch.as_tensor(_std(y), dtype=torch.float32))

    def normalize_x(self, x):
        return (x - self.x_mean) / self.x_std

    def denormalize_x(self, xn):
        return xn * self.x_std + self.x_mean

    def denormalize_y(self, yn):
        return yn * self.y_std + self.y_mean

    def index(self, metric: str) -> int:
        """Output column of ``metric``; :class:`NasbenchError` for unknown names."""
        if metric not in self.metric_names:
            raise NasbenchError(f"predictor: no output {metric!r}; outputs are {self.metric_names}")
        return self.metric_names.index(metric)

    # -- forward -------------------------------------------------------------------
    def forward(self, xn: torch.Tensor) -> torch.Tensor:
        """Normalised codes [N, in] -> normalised predictions [N, M]."""
        h = self.trunk(xn)
        return torch.cat([head(h) for head in self.heads], dim=1)

    @torch.no_grad()
    def predict(self, x) -> np.ndarray:
        """Raw codes [N, in] (array-like) -> raw predicted metrics [N, M] (eval mode)."""
        was = self.training
        self.eval()
        x = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(-1, self.in_dim)
        out = self.denormalize_y(self(self.normalize_x(x))).numpy()
        self.train(was)
        return out


def _records_to_arrays(records, names):
    try:
        x = np.stack([np.asarray(r["embedding"], dtype=np.float32).reshape(-1) for r in records])
    except (KeyError, ValueError, TypeError) as e:
        raise NasbenchError(f"predictor: every record needs an 'embedding' of equal length ({e})") from None
    try:
        y = np.array([[float(r[m]) for m in names] for r in records], dtype=np.float32)
    except KeyError as e:
        raise NasbenchError(f"predictor: a record lacks metric {e}; metrics are {names}") from None
    return x, y


def split_indices(n: int, val_fraction: float, seed: int):
    """Seeded random split of ``range(n)`` into (train, val) index arrays."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


_TRAIN_STATE_FORMAT = "nasbench-predictor-training"
_TRAIN_STATE_VERSION = 1


def _save_train_state(path, state: dict, parts: dict, gen) -> None:
    """Write a predictor-training checkpoint atomically (tensors and builtins only)."""
    blob = {"format": _TRAIN_STATE_FORMAT, "format_version": _TRAIN_STATE_VERSION, **state,
            **{k: v.state_dict() for k, v in parts.items()}, "gen": gen.get_state(), "rng": torch.get_rng_state()}
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        torch.save(blob, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _load_train_state(path, epochs: int, parts: dict, gen) -> dict:
    """Restore ``parts`` and ``gen`` from :func:`_save_train_state`'s file; returns the rest.

    Raises:
        CheckpointError: missing/unreadable file, another format or version, or another ``epochs``.
    """
    if path is None or not os.path.isfile(path):
        raise CheckpointError(f"--resume: no predictor training checkpoint at {path}")
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, or a pickle that would run code
        raise CheckpointError(f"predictor training checkpoint {path} is unreadable ({type(e).__name__}); "
                              "delete it and train without --resume") from None
    if not isinstance(st, dict) or st.get("format") != _TRAIN_STATE_FORMAT:
        raise CheckpointError(f"{path} is not a predictor training checkpoint ({_TRAIN_STATE_FORMAT})")
    if st.get("format_version") != _TRAIN_STATE_VERSION:
        raise CheckpointError(f"{path}: {_TRAIN_STATE_FORMAT} version {st.get('format_version')!r}, "
                              f"this nasbench reads version {_TRAIN_STATE_VERSION}")
    if st.get("epochs") != epochs:
        raise CheckpointError(f"{path} was written for {st.get('epochs')} epochs, not {epochs}; "
                              "train without --resume")
    for k, v in parts.items():
        v.load_state_dict(st[k])
    gen.set_state(st["gen"])
    torch.set_rng_state(st["rng"])
    return st


def train_predictor(records, metric_groups, epochs: int = 200, batch_size: int = 128, lr: float = 1e-2,
                    weight_decay: float = 1e-7, val_fraction: float = 0.2, seed: int = 0,
                    hidden: int = 256, head_hidden: int = 128, log=None, ckpt=None, ckpt_every: int = 10,
                    resume: bool = False):
    """Train an :class:`MLPPredictor` on ``records`` (dicts with ``embedding`` and the metrics).

    SmoothL1 on z-scored targets, Adam(lr, wd) + OneCycleLR (pct_start 0.3,
    div_factor 10, momentum 0.85-0.95), seeded 80/20 split; keeps the weights
    with the lowest validation L1 (de-normalised) of the *first* metric.

    With ``ckpt`` (a path) the whole training state (weights, Adam, schedule, data-order
    generator, torch RNG, best weights, history) is saved there every ``ckpt_every``
    epochs (atomically, tensors and builtins only); ``resume=True`` continues from it and
    ends bit-identical to an uninterrupted run on CPU.

    Returns:
        ``(model, info)``: the best model in eval mode, and ``info`` with
        ``train_idx, val_idx`` (np arrays), ``val_true, val_pred`` ([n_val, M]
        raw), ``best_epoch``, ``history`` (per epoch: train loss, val loss, val L1 of the first metric).

    Raises:
        NasbenchError: fewer than 10 records; CheckpointError: ``resume`` with a missing,
            unreadable or foreign training checkpoint.
    """
    if len(records) < 10:
        raise NasbenchError(f"predictor: need at least 10 records, got {len(records)}")
    torch.manual_seed(seed)
    model = MLPPredictor(len(np.asarray(records[0]["embedding"]).reshape(-1)), metric_groups,
                         hidden=hidden, head_hidden=head_hidden)
    x, y = _records_to_arrays(records, model.metric_names)
    tr, va = split_indices(len(x), val_fraction, seed)
    model.set_stats(x[tr], y[tr])
    xt = model.normalize_x(torch.from_numpy(x))
    yt = (torch.from_numpy(y) - model.y_mean) / model.y_std
    # drop a last batch of 1 (BatchNorm cannot train on it)
    steps = max(1, len(tr) // batch_size + (1 if len(tr) % batch_size > 1 else 0))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps,
                                                pct_start=0.3, div_factor=10.0, base_momentum=0.85,
                                                max_momentum=0.95)
    gen = torch.Generator().manual_seed(seed)
    best, best_l1, best_epoch, history = None, math.inf, -1, []
    tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
    parts = {"model": model, "opt": opt, "sched": sched}
    start = 0
    if resume:
        st = _load_train_state(ckpt, epochs, parts, gen)
        start, best, best_l1, best_epoch, history = (st["epoch"], st["best"], st["best_l1"], st["best_epoch"],
                                                     st["history"])
    for epoch in range(start, epochs):
        model.train()
        order = tr_t[torch.randperm(len(tr_t), generator=gen)]
        tot, cnt = 0.0, 0
        for s in range(steps):
            idx = order[s * batch_size:(s + 1) * batch_size]
            if len(idx) < 2:
                continue
            loss = F.smooth_l1_loss(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot, cnt = tot + float(loss.detach()) * len(idx), cnt + len(idx)
        model.eval()
        with torch.no_grad():
            pv = model(xt[va_t])
            vloss = float(F.smooth_l1_loss(pv, yt[va_t]))
            l1 = float(((pv[:, 0] - yt[va_t, 0]).abs() * model.y_std[0]).mean())
        history.append({"epoch": epoch, "train_loss": tot / max(cnt, 1), "val_loss": vloss, "val_l1_first": l1})
        if l1 < best_l1:
            best_l1, best_epoch, best = l1, epoch, copy.deepcopy(model.state_dict())
        if log is not None:
            log(f"epoch {epoch}: train {tot / max(cnt, 1):.4f} val {vloss:.4f} val L1 {model.metric_names[0]} {l1:.4f}")
        if ckpt is not None and ((epoch + 1) % ckpt_every == 0 or epoch + 1 == epochs):
            _save_train_state(ckpt, {"epoch": epoch + 1, "epochs": epochs, "best": best, "best_l1": best_l1,
                                     "best_epoch": best_epoch, "history": history}, parts, gen)
    model.load_state_dict(best)
    model.eval()
    info = {"train_idx": tr, "val_idx": va, "val_true": y[va], "val_pred": model.predict(x[va]),
            "best_epoch": best_epoch, "best_val_l1": best_l1, "history": history}
    return model, info


#: ``format`` entry of predictor files written by :func:`save_predictor`
PREDICTOR_FORMAT = "nasbench-mlp-predictor"
#: ``format_version`` written by this nasbench (the newest it reads)
PREDICTOR_FORMAT_VERSION = 1
_LEGACY_FORMAT = "nasbench.mlp_predictor/1"  # files written before PREDICTOR_FORMAT (same content, version 1)
_REQUIRED = ("hparams", "metric_names", "state_dict")
_REQUIRED_HPARAMS = ("in_dim", "metric_groups", "hidden", "head_hidden", "dropout", "head_dropout")


def save_predictor(path, model: MLPPredictor, **extra) -> None:
    """Save weights, normalisation stats (buffers), hyper-parameters, metric names and ``extra``
    (e.g. ``benchmark``, ``main_metric``) to ``path`` atomically.

    The file holds only tensors and builtins (``format`` = :data:`PREDICTOR_FORMAT`,
    ``format_version`` = :data:`PREDICTOR_FORMAT_VERSION`), so it loads with
    ``torch.load(weights_only=True)``.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    blob = {**extra, "format": PREDICTOR_FORMAT, "format_version": PREDICTOR_FORMAT_VERSION,
            "hparams": model.hparams, "metric_names": model.metric_names, "state_dict": model.state_dict()}
    tmp = path + ".tmp"
    torch.save(blob, tmp)
    os.replace(tmp, path)


def _int_param(hp, key, path, where):
    v = hp[key]
    if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= 1_000_000:
        raise CheckpointError(f"{path}: 'hparams.{key}' is {_short(v)}, not an int in 1..1000000 ({where})")
    return v


def _short(value) -> str:
    try:
        text = repr(value)
    except Exception:  # e.g. an int too long to print
        return "(unprintable)"
    return text if len(text) <= 60 else text[:57] + "..."


def load_predictor(path):
    """Load ``(model in eval mode, blob)`` saved by :func:`save_predictor`, without running code.

    The file is read with ``torch.load(weights_only=True)`` and checked: ``format``
    and ``format_version``, the entries ``hparams`` (with ``in_dim``, ``metric_groups``,
    ``hidden``, ``head_hidden``, ``dropout``, ``head_dropout``), ``metric_names`` and
    ``state_dict``, and weights of the stored shapes.

    Raises:
        CheckpointError: missing, unreadable, foreign or newer-format file, or a
            missing/bad entry; one line naming the file, the entry and the format.
            :class:`~nasbench.errors.UnsafeCheckpointError` (a subclass) if the
            file asks for a Python object (it could run code).
    """
    from ..safe_load import torch_load

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: predictor file not found")
    blob = torch_load(path, "predictor file", corrupt_hint="; train it again with tools/train_predictor.py")
    fmt = blob.get("format") if isinstance(blob, dict) else None
    if fmt == _LEGACY_FORMAT:
        version = 1
    elif fmt == PREDICTOR_FORMAT:
        version = blob.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise CheckpointError(f"{path}: 'format_version' is {_short(version)}, not a format number "
                                  f"(1..{PREDICTOR_FORMAT_VERSION}) of a {PREDICTOR_FORMAT} file")
        if version > PREDICTOR_FORMAT_VERSION:
            raise CheckpointError(f"{path}: written in {PREDICTOR_FORMAT} format {version}; this nasbench reads "
                                  f"formats up to {PREDICTOR_FORMAT_VERSION}: upgrade nasbench")
    else:
        what = f"its format is {_short(fmt)}" if fmt is not None else "it has no 'format' entry"
        raise CheckpointError(f"{path}: not a nasbench MLP predictor file ({what}, expected {PREDICTOR_FORMAT!r}); "
                              "pass the predictor.pth written by tools/train_predictor.py")
    where = f"{PREDICTOR_FORMAT} format {version}"
    missing = [k for k in _REQUIRED if k not in blob]
    if missing:
        raise CheckpointError(f"{path}: entry {missing[0]!r} is missing ({where} needs {', '.join(_REQUIRED)})")
    hp, sd = blob["hparams"], blob["state_dict"]
    if not isinstance(hp, dict):
        raise CheckpointError(f"{path}: entry 'hparams' is {type(hp).__name__}, expected a dict ({where})")
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path}: entry 'state_dict' is not a dict of tensors ({where})")
    missing = [k for k in _REQUIRED_HPARAMS if k not in hp]
    if missing:
        raise CheckpointError(f"{path}: 'hparams.{missing[0]}' is missing ({where} needs hparams "
                              f"{', '.join(_REQUIRED_HPARAMS)})")
    in_dim, hidden, head_hidden = (_int_param(hp, k, path, where) for k in ("in_dim", "hidden", "head_hidden"))
    groups = hp["metric_groups"]
    if (not isinstance(groups, (list, tuple)) or not groups
            or not all(isinstance(g, (list, tuple)) and g and all(isinstance(m, str) for m in g) for g in groups)):
        raise CheckpointError(f"{path}: 'hparams.metric_groups' is {_short(groups)}, not a list of lists of "
                              f"metric names ({where})")
    names = [m for g in groups for m in g]
    stored = blob["metric_names"]
    if not isinstance(stored, (list, tuple)) or list(stored) != names:
        raise CheckpointError(f"{path}: entry 'metric_names' {_short(stored)} does not match "
                              f"'hparams.metric_groups' {_short(groups)} ({where})")
    w = sd.get("trunk.1.weight")  # the first Linear: checked before building (sizes come from the file)
    if w is None or tuple(w.shape) != (hidden, in_dim):
        raise CheckpointError(f"{path}: 'state_dict' does not hold a trunk of {in_dim} -> {hidden} "
                              f"(trunk.1.weight {None if w is None else tuple(w.shape)}; {where})")
    try:
        model = MLPPredictor(in_dim, groups, hidden=hidden, head_hidden=head_hidden,
                             dropout=float(hp["dropout"]), head_dropout=hp["head_dropout"])
    except (NasbenchError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad 'hparams' ({e}; {where})") from None
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match the stored hyper-parameters "
                              f"({str(e).splitlines()[0]}; {where})") from None
    model.eval()
    return model, blob


__all__ = ["MLPPredictor", "train_predictor", "save_predictor", "load_predictor", "split_indices",
           "PREDICTOR_FORMAT", "PREDICTOR_FORMAT_VERSION"]
