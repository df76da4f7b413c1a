"""Run logging: console + ``log.txt``, JSON lines and TensorBoard, written by rank 0.

Files in ``out_dir``:

* ``log.txt``   -- the console log (python ``logging`` of the ``nasbench`` logger).
* ``log.jsonl`` -- one JSON object per :meth:`RunLogger.log` call:
  ``{"step": 100, "time": 1700000000.0, "train/loss": 2.1, "train/lr": 0.05}``.
  Non-finite floats are written as ``null`` so every line is strict JSON.
* ``tb/``       -- TensorBoard scalars with the same tags (when tensorboard is installed).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Optional

__all__ = ["RunLogger", "get_logger"]

_FMT = "[%(asctime)s %(levelname)s] %(message)s"
_DATEFMT = "%m-%d %H:%M:%S"


def get_logger() -> logging.Logger:
    """The package logger (``logging.getLogger('nasbench')``) that RunLogger feeds."""
    return logging.getLogger("nasbench")


def _scalar(v: Any) -> Optional[float]:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(v) else None
    return None


class RunLogger:
    """Console/file/JSONL/TensorBoard logger for one run.

    Args:
        out_dir: the run folder (created on rank 0).
        rank: this process's rank; only rank 0 writes files, other ranks log
            warnings and errors to the console only.
        use_tensorboard: write TensorBoard scalars to ``out_dir/tb``; silently
            (one info line) skipped when tensorboard is not importable.

    Handlers are attached to the ``nasbench`` logger, so ``logging.getLogger(
    'nasbench.xxx')`` calls anywhere in the package land in ``log.txt`` too.
    A new RunLogger replaces the handlers of the previous one.
    """

    def __init__(self, out_dir: str | Path, rank: int = 0, use_tensorboard: bool = True):
        self.out_dir = Path(out_dir)
        self.rank = rank
        self.main = rank == 0
        self._jsonl = None
        self._tb = None
        self.logger = get_logger()
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        for h in list(self.logger.handlers):  # drop handlers of an earlier RunLogger
            if getattr(h, "_nasbench_run", False):
                self.logger.removeHandler(h)
                h.close()
        self._handlers = []
        console = logging.StreamHandler(sys.stdout)
        console.setLevel(logging.INFO if self.main else logging.WARNING)
        console.setFormatter(logging.Formatter(
            _FMT if self.main else f"[rank{rank}] " + _FMT, _DATEFMT))
        self._handlers.append(console)
        if self.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            fh = logging.FileHandler(self.out_dir / "log.txt", mode="a")
            fh.setFormatter(logging.Formatter(_FMT, _DATEFMT))
            self._handlers.append(fh)
            self._jsonl = open(self.out_dir / "log.jsonl", "a")
            if use_tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                    self._tb = SummaryWriter(log_dir=str(self.out_dir / "tb"))
                except Exception as e:  # tensorboard missing or broken
                    self._tb = None
                    self._tb_error = e
        for h in self._handlers:
            h._nasbench_run = True
            self.logger.addHandler(h)
        if self.main and use_tensorboard and self._tb is None:
            self.logger.info("tensorboard unavailable (%s); logging to log.jsonl only",
                             type(self._tb_error).__name__)

    def info(self, msg: str, *args) -> None:
        """Log an info line (console + log.txt on rank 0)."""
        self.logger.info(msg, *args)

    def warning(self, msg: str, *args) -> None:
        """Log a warning (shown on every rank)."""
        self.logger.warning(msg, *args)

    def log(self, step: int, metrics: Mapping[str, Any], prefix: str = "") -> None:
        """Record scalar ``metrics`` at global ``step`` (rank 0 only).

        Keys become ``f"{prefix}/{key}"`` (just ``key`` when prefix is empty);
        values may be python numbers or 0-dim tensors; non-scalars are skipped.
        Appends and flushes one JSON line to ``log.jsonl`` and writes TensorBoard scalars.
        """
        if not self.main:
            return
        row = {"step": int(step), "time": round(time.time(), 3)}
        for k, v in metrics.items():
            tag = f"{prefix}/{k}" if prefix else str(k)
            if hasattr(v, "numel") and v.numel() != 1:
                continue
            if not isinstance(v, (int, float, bool)) and not hasattr(v, "item"):
                continue
            val = _scalar(v)
            row[tag] = val
            if self._tb is not None and val is not None:
                self._tb.add_scalar(tag, val, int(step))
        if self._jsonl is not None:
            self._jsonl.write(json.dumps(row) + "\n")
            self._jsonl.flush()

    def flush(self) -> None:
        """Flush JSONL and TensorBoard writers."""
        if self._jsonl is not None:
            self._jsonl.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        """Flush and close files and detach this logger's handlers (idempotent)."""
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        for h in self._handlers:
            self.logger.removeHandler(h)
            h.close()
        self._handlers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
