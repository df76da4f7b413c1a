"""Atomic checkpoint files and RNG state capture.

A nasbench checkpoint is a ``torch.save``-d dict with a ``nasbench_version`` key
(added by :func:`save_checkpoint`). Files are written to a temporary file in the
same directory, fsync-ed and moved into place with ``os.replace``, so a crash
never leaves a half-written checkpoint under the final name.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

import nasbench
from nasbench.engine.dist import get_rank
from nasbench.errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "get_rng_state", "set_rng_state"]


def save_checkpoint(state: dict, path: str | os.PathLike) -> Optional[Path]:
    """Write ``state`` to ``path`` atomically; only rank 0 writes.

    ``nasbench_version`` is added to (a shallow copy of) ``state`` when missing.
    The parent directory is created. On any error the temporary file is removed
    and the previous file at ``path`` (if any) is untouched.

    Returns:
        The final path on rank 0, ``None`` on other ranks.
    """
    if get_rank() != 0:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if "nasbench_version" not in state:
        state = {**state, "nasbench_version": nasbench.__version__}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
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


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu",
                    weights_only: bool = False) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: the ``.pth`` file.
        map_location: passed to ``torch.load`` (default ``'cpu'``).
        weights_only: passed to ``torch.load``. The default ``False`` unpickles
            arbitrary objects (needed for algorithm states holding custom types);
            only load files you trust, or pass ``True`` for files from elsewhere.

    Returns:
        The state dict.

    Raises:
        CheckpointError: the file is missing, truncated/corrupt, or is not a
            nasbench checkpoint (no ``nasbench_version`` key). The message names
            the path and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path}; check the path (or the run's --out folder), "
            "or start the run without resume")
    try:
        state = torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as e:  # truncated zip, bad pickle, EOF, ...
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); delete it and resume from an "
            "earlier checkpoint, or restart the run without resume") from e
    if not isinstance(state, dict) or "nasbench_version" not in state:
        raise CheckpointError(
            f"{path} is not a nasbench checkpoint (no 'nasbench_version' key); pass a file "
            "written by nasbench, e.g. <out>/checkpoints/last.pth")
    return state


def get_rng_state() -> dict:
    """Global RNG states of python ``random``, numpy, torch CPU and (if initialised) CUDA.

    The result holds only tensors, ints, lists, tuples and strings, so it also
    loads with ``torch.load(weights_only=True)``.
    """
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
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
