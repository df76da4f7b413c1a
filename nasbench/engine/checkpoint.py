"""Atomic checkpoint files, their format check, and RNG state capture.

A nasbench checkpoint is a ``torch.save``-d dict holding only tensors and
builtins (dicts, lists, tuples, numbers, strings, ``None``), so it loads with
``torch.load(weights_only=True)`` and loading never runs code. :func:`save_checkpoint`
adds ``format`` = :data:`CHECKPOINT_FORMAT`, ``format_version`` =
:data:`CHECKPOINT_FORMAT_VERSION` and ``nasbench_version``. Files are written to a
temporary file in the same directory, fsync-ed and moved into place with
``os.replace``, so a crash never leaves a half-written checkpoint under the final name.

Format 1 entries (written by :class:`~nasbench.engine.trainer.Trainer`): ``model``,
``optimizer``, ``scheduler``, ``scaler``, ``ema`` (state dicts), ``algorithm`` (the
algorithm's state dict, rank 0's), ``algorithm_ranks`` (one per rank under DDP, else
None), ``step``, ``epoch``, ``batch_idx``, ``total_steps``, ``steps_per_epoch``,
``world_size`` (ints), ``rng`` (one :func:`get_rng_state` per rank), ``extra_state``.
Checkpoints written before format 1 (no ``format_version``) are still read; their
int64 numpy arrays (BCNet's channel counts) are admitted by a minimal allow-list.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
import torch

import nasbench
from nasbench.engine.dist import get_rank
from nasbench.errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_error", "get_rng_state", "set_rng_state",
           "to_plain", "CHECKPOINT_FORMAT", "CHECKPOINT_FORMAT_VERSION", "SUPERNET_KEYS", "RESUME_KEYS"]

#: ``format`` entry of every nasbench checkpoint
CHECKPOINT_FORMAT = "nasbench-checkpoint"
#: ``format_version`` written by this nasbench (the newest it reads)
CHECKPOINT_FORMAT_VERSION = 1
#: entries a supernet checkpoint needs for search / rank_eval (:func:`nasbench.pipeline.load_supernet`)
SUPERNET_KEYS = ("model", "algorithm")
#: entries a checkpoint needs to resume training (:meth:`~nasbench.engine.trainer.Trainer.resume`)
RESUME_KEYS = ("model", "optimizer", "scheduler", "algorithm", "step", "epoch", "batch_idx")
# type of each known entry (None is allowed unless the entry is required)
_ENTRY_TYPES = {
    "model": (Mapping, "a dict of tensors"), "optimizer": (Mapping, "a dict"),
    "scheduler": (Mapping, "a dict"), "scaler": (Mapping, "a dict"), "ema": (Mapping, "a dict of tensors"),
    "algorithm": (Mapping, "a dict"), "algorithm_ranks": ((list, tuple), "a list"),
    "step": (int, "an int"), "epoch": (int, "an int"), "batch_idx": (int, "an int"),
    "total_steps": (int, "an int"), "steps_per_epoch": (int, "an int"), "world_size": (int, "an int"),
    "rng": ((list, tuple), "a list"), "extra_state": (Mapping, "a dict"),
}


def to_plain(obj: Any) -> Any:
    """``obj`` with numpy arrays turned into lists and numpy scalars into python
    numbers (recursively through dicts, lists and tuples), e.g. a numpy bit generator
    state, so a checkpoint holding it loads with ``torch.load(weights_only=True)``."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj)
    return obj


def save_checkpoint(state: dict, path: str | os.PathLike) -> Optional[Path]:
    """Write ``state`` to ``path`` atomically; only rank 0 writes.

    ``format``, ``format_version`` and (when missing) ``nasbench_version`` are added to
    (a shallow copy of) ``state``. The parent directory is created. On any error the
    temporary file is removed and the previous file at ``path`` (if any) is untouched.

    Returns:
        The final path on rank 0, ``None`` on other ranks.

    Raises:
        TypeError: ``state`` holds an object other than tensors and builtins (the
            file would not load with ``torch.load(weights_only=True)``); nothing is written.
    """
    if get_rank() != 0:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {**state, "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION,
             "nasbench_version": state.get("nasbench_version") or nasbench.__version__}
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a process killed while writing
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        from nasbench.safe_load import unsafe_globals
        bad = unsafe_globals(tmp)
        if bad:  # a programming error: caught at save time, not at the next resume
            raise TypeError(f"checkpoint state holds {', '.join(bad)}, which torch.load(weights_only=True) "
                            "refuses; store tensors, lists or numbers instead")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename durable (best effort; not supported everywhere)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def _format_of(state: Mapping) -> str:
    """How ``state`` describes its format, for messages."""
    version = state.get("format_version")
    if state.get("format") == CHECKPOINT_FORMAT and version is not None:
        return f"{CHECKPOINT_FORMAT} format {_short(version)}"
    return (f"a nasbench {_short(state.get('nasbench_version'))} checkpoint from before format_version; "
            f"current {CHECKPOINT_FORMAT} format {CHECKPOINT_FORMAT_VERSION}")


def checkpoint_error(path, state: Mapping, problem: str) -> CheckpointError:
    """A :class:`CheckpointError` ``checkpoint PATH: PROBLEM [format ...]`` for a loaded checkpoint."""
    return CheckpointError(f"checkpoint {path}: {problem} [{_format_of(state)}]")


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", require: Iterable[str] = ("model",)) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, without running code.

    The file is loaded with ``torch.load(weights_only=True)``; its format is checked:
    ``format``/``format_version`` (a missing version = a checkpoint from before
    format 1, still read), the entries in ``require`` present, and every known entry
    of the right type (e.g. ``algorithm`` a dict).

    Args:
        path: the ``.pth`` file.
        map_location: passed to ``torch.load`` (default ``'cpu'``).
        require: entries that must be present and not None, e.g. :data:`SUPERNET_KEYS`
            or :data:`RESUME_KEYS`.

    Returns:
        The state dict.

    Raises:
        CheckpointError: the file is missing, truncated/corrupt, is not a nasbench
            checkpoint, was written in a newer format, lacks a required entry or has an
            entry of the wrong type. The message names the path, the entry and the
            format, on one line. An
            :class:`~nasbench.errors.UnsafeCheckpointError` (a subclass) if the file
            asks for a Python object outside the weights-only allow-list (it could run code).
    """
    from nasbench.safe_load import torch_load

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path}; check the path (or the run's --out folder), "
            "or start the run without resume")
    state = torch_load(path, "checkpoint", map_location=map_location, legacy_int64_arrays=True,
                       corrupt_hint="; delete it and resume from an earlier checkpoint, or restart "
                                    "the run without resume")
    fmt = state.get("format") if isinstance(state, dict) else None
    if not isinstance(state, dict) or (fmt is None and "nasbench_version" not in state):
        raise CheckpointError(
            f"{path} is not a nasbench checkpoint (no 'format' or 'nasbench_version' entry); pass a file "
            "written by nasbench, e.g. <out>/checkpoints/last.pth")
    if fmt is not None and fmt != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a nasbench checkpoint: its format is {_short(fmt)}, not {CHECKPOINT_FORMAT!r}; "
            "pass a file written by nasbench training, e.g. <out>/checkpoints/last.pth")
    version = state.get("format_version")
    if fmt is not None or version is not None:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise checkpoint_error(path, state, f"'format_version' is {_short(version)}, not a format number "
                                                f"(1..{CHECKPOINT_FORMAT_VERSION})")
        if version > CHECKPOINT_FORMAT_VERSION:
            raise checkpoint_error(path, state, f"written in format {_short(version)} by nasbench "
                                                f"{_short(state.get('nasbench_version'))}; this nasbench "
                                                f"{nasbench.__version__} reads formats up to "
                                                f"{CHECKPOINT_FORMAT_VERSION}: upgrade nasbench")
    for key in require:
        if state.get(key) is None:
            raise checkpoint_error(path, state, f"entry {key!r} is missing (needed: {', '.join(require)})")
    for key, (types, desc) in _ENTRY_TYPES.items():
        value = state.get(key)
        if value is not None and (not isinstance(value, types) or (types is int and isinstance(value, bool))):
            raise checkpoint_error(path, state, f"entry {key!r} is {type(value).__name__} "
                                                f"{_short(value)}, expected {desc}")
    return state


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # e.g. an int too long to print
        return "(unprintable)"
    return text if len(text) <= 40 else text[:37] + "..."


def get_rng_state() -> dict:
    """Global RNG states of python ``random``, numpy, torch CPU and (if initialised) CUDA.

    The result holds only tensors, ints, floats, lists, tuples and strings (numpy's
    key array as a list), so it loads with ``torch.load(weights_only=True)``.
    """
    state = {
        "python": random.getstate(),
        "numpy": to_plain(tuple(np.random.get_state())),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore states captured by :func:`get_rng_state` (missing entries are skipped).

    CUDA states are restored for ``min(saved, visible)`` devices.
    """
    if "python" in state:
        v = state["python"]
        random.setstate((v[0], tuple(v[1]), v[2]))
    if "numpy" in state:
        name, keys, *rest = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") is not None and torch.cuda.is_available():
        cuda = state["cuda"]
        for i in range(min(len(cuda), torch.cuda.device_count())):
            torch.cuda.set_rng_state(cuda[i].cpu(), i)
