"""A resumable search: every evaluated batch is journalled, a resumed search replays it.

Searchers are deterministic given their seed and the evaluator's answers, so a
search killed after ``n`` batches is continued exactly by running it again from
the start with the same seed while :class:`JournalEvaluator` answers the first
``n`` batches from the journal instead of evaluating them. The searcher rebuilds
its whole state (population, Pareto front, random generator, query cache)
from those answers, then evaluates the rest as an uninterrupted run would.
This is one mechanism for every searcher: no searcher serialises its state.
(It relies on evaluators whose answer for an architecture does not depend on
earlier queries, which holds for the supernet evaluators: BN recalibration
starts from reset statistics on fixed batches for every architecture.)

Journal format (JSON lines, ``format`` ``nasbench-search-journal``, version 1):
a header ``{"format", "version", "settings"}`` then one line per batch
``{"batch": i, "archs": [keys], "results": [metrics dicts]}``. Each line is
flushed and fsynced before the batch's results are used, so a kill leaves at
most a partial last line, which is dropped on resume. JSON keeps floats exact.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

from ..errors import CheckpointError
from .base import Evaluator

__all__ = ["JournalEvaluator", "read_journal", "JOURNAL_FORMAT", "JOURNAL_VERSION"]

JOURNAL_FORMAT = "nasbench-search-journal"
JOURNAL_VERSION = 1


def _plain(v):
    """``v`` as JSON-safe builtins (numpy/torch scalars to Python numbers, tuples to lists)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "item") and callable(v.item):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)  # "nan" / "inf": JSON has no such numbers
    return v


def _unplain(v):
    if isinstance(v, dict):
        return {k: _unplain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_unplain(x) for x in v]
    if v in ("nan", "inf", "-inf"):
        return float(v)
    return v


def _flat(d, prefix="") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (to name the settings that differ)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def read_journal(path) -> tuple[dict, list[dict]]:
    """``(header, batches)`` of a journal; a partial last line (a kill while writing) is dropped.

    Raises:
        CheckpointError: unreadable file, missing/foreign header, a newer version, or a
            malformed line before the last one (names the file, line and version).
    """
    path = Path(path)
    try:
        lines = path.read_text().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"search journal {path}: cannot read ({e})") from None
    recs = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            recs.append(json.loads(line))
        except json.JSONDecodeError:
            if i >= len(lines) - 2:  # the last line, possibly cut by a kill
                break
            raise CheckpointError(f"search journal {path}: line {i + 1} is not JSON "
                                  f"({JOURNAL_FORMAT} v{JOURNAL_VERSION})") from None
    if not recs or not isinstance(recs[0], dict) or recs[0].get("format") != JOURNAL_FORMAT:
        raise CheckpointError(f"search journal {path}: no {JOURNAL_FORMAT} header")
    if recs[0].get("version") != JOURNAL_VERSION:
        raise CheckpointError(f"search journal {path}: format version {recs[0].get('version')!r}, "
                              f"this nasbench reads version {JOURNAL_VERSION}")
    batches = recs[1:]
    for j, b in enumerate(batches):
        if (not isinstance(b, dict) or b.get("batch") != j or not isinstance(b.get("archs"), list)
                or not isinstance(b.get("results"), list) or len(b["archs"]) != len(b["results"])):
            raise CheckpointError(f"search journal {path}: batch record {j} is malformed "
                                  f"({JOURNAL_FORMAT} v{JOURNAL_VERSION})")
    return recs[0], batches


class JournalEvaluator(Evaluator):
    """Wraps an evaluator; journals every batch and replays a journal on resume.

    Args:
        evaluator: the wrapped evaluator (e.g. a :class:`~.distributed.DistributedEvaluator`);
            may be set later (``journal.evaluator = ...``), so that a journal is checked
            before anything is written.
        space: the search space (architecture keys via ``space.encode``).
        path: the journal file (``SDIR/queries.jsonl`` for ``tools/search.py``).
        settings: JSON-able dict that must be equal on resume (the search and eval config).
        resume: replay ``path`` if it exists; otherwise start a new journal.
        write: write the journal (rank 0 only under DDP; every rank replays). The file is
            (re)written at the first evaluated batch, never in the constructor.

    Attributes:
        replayed: number of batches answered from the journal.

    Raises:
        CheckpointError: (on resume) the journal is unreadable, was written for other
            settings, or the search asks for other architectures than the journal holds
            (another checkpoint or code version).
    """

    def __init__(self, evaluator, space, path, settings: dict, resume: bool = False, write: bool = True):
        self.evaluator, self.space, self.path = evaluator, space, Path(path)
        self.settings, self.write = _plain(settings), write
        self._replay, self._next, self.replayed, self._started = [], 0, 0, False
        self._header = {"format": JOURNAL_FORMAT, "version": JOURNAL_VERSION, "settings": self.settings}
        if resume and self.path.is_file():  # read and check now: nothing is written before the first batch
            header, self._replay = read_journal(self.path)
            if header.get("settings") != self.settings:
                old, new = _flat(header.get("settings") or {}), _flat(self.settings)
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                raise CheckpointError(f"search journal {self.path} was written with other settings "
                                      f"(differ: {', '.join(changed) or 'all'}); rerun without --resume")

    def _rewrite(self, recs):
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write("".join(json.dumps(r) + "\n" for r in recs))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    @property
    def replay_batches(self) -> int:
        """Number of journalled batches available for replay."""
        return len(self._replay)

    def __getattr__(self, name):
        if name in ("evaluator", "_replay"):
            raise AttributeError(name)
        return getattr(self.evaluator, name)

    def evaluate(self, archs: Sequence[tuple]) -> list[dict]:
        keys = [self.space.encode(a) for a in archs]
        i = self._next
        self._next += 1
        if i < len(self._replay):
            rec = self._replay[i]
            if rec["archs"] != keys:
                raise CheckpointError(f"search journal {self.path}: batch {i} asked for {keys[:3]}... but the "
                                      f"journal holds {rec['archs'][:3]}... (another checkpoint or nasbench "
                                      "version?); rerun without --resume")
            self.replayed += 1
            return [_unplain(r) for r in rec["results"]]
        results = list(self.evaluator.evaluate(archs))
        if self.write:
            if not self._started:  # a new journal, or the complete part of the old one (no partial line)
                self._rewrite([self._header] + self._replay)
                self._started = True
            with open(self.path, "a") as f:
                f.write(json.dumps({"batch": i, "archs": keys, "results": _plain(results)}) + "\n")
                f.flush()
                os.fsync(f.fileno())
        return results
