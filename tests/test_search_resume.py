"""A killed search continues with ``--resume`` and ends as an uninterrupted one (issue 12.4).

Toy level: every searcher, interrupted after k batches by an evaluator failure, then
replayed from its journal, gives the uninterrupted history and answer while
evaluating only the batches the journal lacks. Journal faults: partial last line
(a kill while writing), other settings, divergent architectures, foreign files.
Tool level: ``tools/search.py`` SIGKILLed mid-search, then ``--resume``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from nasbench.errors import CheckpointError
from nasbench.evaluators.journal import JournalEvaluator, read_journal
from test_search_budget import NAMES, _make
from test_pipeline import trained  # noqa: F401  (fixture)
from toy import ToyEvaluator, ToySpace

SETTINGS = {"seed": 0, "search": {"type": "x", "population": 30}}


class Killed(Exception):
    pass


class DyingEvaluator(ToyEvaluator):
    """ToyEvaluator that dies when asked for batch number ``die_at`` (0-based)."""

    def __init__(self, die_at):
        super().__init__()
        self.die_at = die_at

    def evaluate(self, archs):
        if len(self.calls) == self.die_at:
            raise Killed
        return super().evaluate(archs)


def _run(name, evaluator, path, resume, max_queries=300):
    journal = JournalEvaluator(evaluator, ToySpace(), path, SETTINGS, resume=resume)
    return _make(name, max_queries=max_queries).run(ToySpace(), journal), journal


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("die_at", [1, 3])
def test_resumed_search_equals_uninterrupted(tmp_path, name, die_at):
    full, _ = _run(name, ToyEvaluator(), tmp_path / "a.jsonl", resume=False)
    with pytest.raises(Killed):
        _run(name, DyingEvaluator(die_at), tmp_path / "b.jsonl", resume=False)
    _, batches = read_journal(tmp_path / "b.jsonl")
    assert len(batches) == die_at
    ev = ToyEvaluator()
    res, journal = _run(name, ev, tmp_path / "b.jsonl", resume=True)
    assert journal.replayed == die_at
    assert res.history == full.history and res.best_arch == full.best_arch and res.stopped == full.stopped
    assert sum(len(c) for c in ev.calls) == len(full.history) - sum(len(b["archs"]) for b in batches)
    assert read_journal(tmp_path / "b.jsonl")[1] == read_journal(tmp_path / "a.jsonl")[1]


def test_partial_last_line_is_dropped(tmp_path):
    path = tmp_path / "j.jsonl"
    full, _ = _run("evolution", ToyEvaluator(), path, resume=False)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # killed while writing batch 2
    assert len(read_journal(path)[1]) == 2
    res, journal = _run("evolution", ToyEvaluator(), path, resume=True)
    assert journal.replayed == 2 and res.history == full.history
    assert len(read_journal(path)[1]) == len(lines) - 1  # rewritten whole, no partial line left


def test_journal_faults(tmp_path):
    path = tmp_path / "j.jsonl"
    _run("evolution", ToyEvaluator(), path, resume=False)
    with pytest.raises(CheckpointError, match="other settings .differ: search.population"):
        JournalEvaluator(ToyEvaluator(), ToySpace(), path, {**SETTINGS, "search": {"type": "x", "population": 31}},
                         resume=True)
    before = path.read_text()
    with pytest.raises(CheckpointError, match="batch 0 asked for"):  # another seed: other architectures
        _make("evolution", seed=1).run(ToySpace(), JournalEvaluator(ToyEvaluator(), ToySpace(), path, SETTINGS,
                                                                    resume=True))
    assert path.read_text() == before  # a refused resume writes nothing
    lines = before.splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines[0] + "garbage\n" + "".join(lines[2:]))
    with pytest.raises(CheckpointError, match="line 2 is not JSON .*v1"):
        read_journal(bad)
    bad.write_text(lines[0].replace('"version": 1', '"version": 9') + "".join(lines[1:]))
    with pytest.raises(CheckpointError, match="format version 9"):
        read_journal(bad)
    bad.write_text('{"a": 1}\n')
    with pytest.raises(CheckpointError, match="no nasbench-search-journal header"):
        read_journal(bad)


def test_constructor_writes_nothing(tmp_path):
    JournalEvaluator(ToyEvaluator(), ToySpace(), tmp_path / "j.jsonl", SETTINGS)
    assert not (tmp_path / "j.jsonl").exists()


def test_search_tool_killed_and_resumed(trained, data_root, tmp_path):
    from test_pipeline import CFG, REPO, run_tool, tiny_opts
    opts = tiny_opts(data_root) + ["search.epochs=6"]
    ckpt = trained / "checkpoints" / "last.pth"
    run_tool("search.py", "--cfg", CFG, "--ckpt", ckpt, "--out", tmp_path / "a", "--opts", *opts)
    cmd = [sys.executable, str(REPO / "tools/search.py"), "--cfg", str(CFG), "--ckpt", str(ckpt),
           "--out", str(tmp_path / "b"), "--opts", *opts]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = tmp_path / "b" / "queries.jsonl"
    t0 = time.time()
    while proc.poll() is None and time.time() - t0 < 300:
        if journal.is_file() and journal.read_text().count("\n") >= 3:  # header + 2 batches
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait() == -signal.SIGKILL and not (tmp_path / "b" / "result.json").exists()
    p = run_tool("search.py", "--cfg", CFG, "--ckpt", ckpt, "--out", tmp_path / "b", "--opts", *opts, "--resume")
    a, b = (json.loads((tmp_path / d / "result.json").read_text()) for d in "ab")
    a.pop("search_seconds"), b.pop("search_seconds")
    assert a == b
    assert "resuming the search" in (tmp_path / "b" / "log.txt").read_text()
    p = run_tool("search.py", "--cfg", CFG, "--ckpt", ckpt, "--out", tmp_path / "c", "--opts", *opts, "--resume",
                 check=False)
    assert p.returncode == 2 and "no search journal" in p.stderr and not (tmp_path / "c").exists()
    p = run_tool("search.py", "--cfg", CFG, "--ckpt", ckpt, "--out", tmp_path / "b", "--resume", "--opts", *opts,
                 "search.population=5", check=False)
    assert p.returncode == 2 and "other settings" in p.stderr and p.stderr.count("\n") == 1


def test_stale_checkpoint_temp_files_are_removed(tmp_path):
    """A process killed while writing a checkpoint leaves its temporary file; the next save removes it."""
    from nasbench.engine.checkpoint import load_checkpoint, save_checkpoint
    stale = tmp_path / ".last.pth.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / ".best.pth.x.tmp"
    other.write_bytes(b"")
    save_checkpoint({"model": {"w": torch_tensor()}, "step": 1}, tmp_path / "last.pth")
    assert not stale.exists() and other.exists() and load_checkpoint(tmp_path / "last.pth")["step"] == 1


def torch_tensor():
    import torch
    return torch.zeros(2)
