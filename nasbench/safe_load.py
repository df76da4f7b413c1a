"""Loading ``torch.save`` files without running code.

Every ``.pth`` file nasbench reads (supernet/retraining checkpoints, NCP
predictor files) goes through :func:`torch_load`, which calls
``torch.load(weights_only=True)``: the unpickler builds only tensors, dicts,
lists, tuples, numbers, strings and ``None``, and refuses any other Python
object (``os.system``, a class with a ``__reduce__``, ...) *before* calling it.
A refused file raises :class:`~nasbench.errors.UnsafeCheckpointError` naming
the file and the object it asked for.

The other loaders: benchmark ``.pkl`` files use a restricted ``pickle.Unpickler``
(:mod:`nasbench.benchmarks.pickle_io`), YAML is read with safe loaders
(:mod:`nasbench.config`, :mod:`nasbench.benchmarks.nats_sss`), ``.npz`` caches
with ``allow_pickle=False``; JSON cannot construct objects.
"""
from __future__ import annotations

import os
import re

import numpy as np
import torch

from .errors import CheckpointError, UnsafeCheckpointError

__all__ = ["torch_load", "unsafe_globals"]


def _int64_array_globals() -> list:
    """What ``torch.load(weights_only=True)`` needs for int64 numpy arrays (nothing else).

    Checkpoints written before format 1 stored ``ChannelCounter`` counts as int64
    arrays; these reconstruct an array from a shape, an int64 dtype and raw bytes.
    An array of any other dtype (object arrays in particular) is still refused.
    """
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, (_reconstruct, "numpy.core.multiarray._reconstruct"),
            (_reconstruct, "numpy._core.multiarray._reconstruct"),
            np.ndarray, np.dtype, type(np.dtype(np.int64))]


_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")  # torch names the pickle opcode in capitals
_BUILD_RE = re.compile(r"Can only build .* but got <class '([\w.]+)'>")


def _refusal(message: str) -> str | None:
    """What a weights-only unpickling error says the file asked for, or None if it is
    not a weights-only refusal (e.g. a truncated file)."""
    if "weights only load failed" not in message.lower() and "WeightsUnpickler" not in message:
        return None
    m = _GLOBAL_RE.search(message) or _BUILD_RE.search(message)
    if m:
        return f"it asks for the Python object {m.group(1)}"
    detail = message.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in message else ""
    lines = [ln.strip() for ln in detail.splitlines() if ln.strip() and "documentation of torch.load" not in ln]
    return f"its pickle data is not plain tensors and containers ({lines[0]})" if lines else \
        "its pickle data is not plain tensors and containers"


def unsafe_globals(path) -> list[str]:
    """Python objects a ``torch.save`` file names that a weights-only load refuses
    (read from the pickle opcodes; nothing is unpickled). ``[]`` if none or unknown."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(os.fspath(path)))
    except Exception:  # not a zip-format torch file, or an older torch
        return []


def torch_load(path, what: str = "checkpoint", map_location="cpu", legacy_int64_arrays: bool = False,
               corrupt_hint: str = ""):
    """``torch.load(path, weights_only=True)`` with one-line errors.

    Args:
        path: an existing file.
        what: what the file should be, for messages (``"checkpoint"``, ``"predictor file"``).
        legacy_int64_arrays: also admit int64 numpy arrays (checkpoints written
            before checkpoint format 1); still no code can run.
        corrupt_hint: appended to the message of an unreadable file (what to do).

    Raises:
        UnsafeCheckpointError: the file asks for a Python object outside the
            weights-only allow-list (a code-running pickle); nothing was called.
        CheckpointError: truncated or corrupt file.
    """
    try:
        if legacy_int64_arrays:
            with torch.serialization.safe_globals(_int64_array_globals()):
                return torch.load(path, map_location=map_location, weights_only=True)
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files
        msg = str(e)
        reason = _refusal(msg)
        if reason is not None:
            raise UnsafeCheckpointError(
                f"refusing to load {what} {path}: {reason}, which no nasbench {what} holds and which "
                "could run code (nasbench loads .pth files with torch.load(weights_only=True)); "
                "use a file written by nasbench") from None
        first = next((ln.strip() for ln in msg.splitlines() if ln.strip()), "")
        first = first.split(". ")[0]  # torch appends advice sentences
        raise CheckpointError(f"{what} {path} is truncated or corrupt ({type(e).__name__}"
                              f"{': ' + first[:200] if first else ''}){corrupt_hint}") from None
