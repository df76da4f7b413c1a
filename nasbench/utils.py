"""Small shared helpers: atomic JSON output, checked JSON input and the command-line error boundary."""
from __future__ import annotations

import json
import os
import sys
import tempfile


def atomic_write_json(obj, path) -> None:
    """Write ``obj`` as indented JSON to ``path`` via a temporary file and ``os.replace``,
    so a reader never sees a half-written file."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp_", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path, what: str = "JSON file", lines: bool = False):
    """Parse the JSON file ``path`` (``lines=True``: one JSON value per non-empty line).

    JSON only builds dicts, lists, strings and numbers (``NaN``/``Infinity`` included:
    consumers check values). Raises :class:`~nasbench.errors.NasbenchError` on one
    line naming the file (and line) for a missing, unreadable or malformed file.
    """
    from .errors import NasbenchError

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise NasbenchError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeError) as e:
        raise NasbenchError(f"cannot read {what} {path} ({type(e).__name__}: {e})") from None
    try:
        if not lines:
            return json.loads(text)
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                out.append(json.loads(line))
        return out
    except (ValueError, RecursionError) as e:  # JSONDecodeError, a number too long to convert
        where = f" line {n}" if lines else ""
        raise NasbenchError(f"{what} {path}{where} is not valid JSON ({str(e).splitlines()[0][:200]})") from None


#: output folders this process created with :func:`make_out_dir` (rank 0); :func:`run_cli`
#: removes those that hold no checkpoint when the run fails, so a failed run leaves either
#: nothing or a resumable folder behind
_CREATED: list = []


def check_out_path(out, what: str = "--out", kind: str = "dir"):
    """Check, without leaving anything behind, that ``out`` can be used as an output folder
    (``kind="dir"``) or file (``kind="file"``); returns it as a ``Path``.

    ``out`` must not be an existing file (a folder for ``kind="file"``), its nearest
    existing ancestor must be a writable folder (probed by creating and removing an
    empty temporary folder there, which also catches read-only mounts and ``/proc``).

    Raises:
        NasbenchError: one line naming ``what``, the path and the problem.
    """
    import tempfile
    from pathlib import Path

    from .errors import NasbenchError

    out = Path(out)
    if kind == "dir" and out.exists() and not out.is_dir():
        raise NasbenchError(f"{what} {out} is an existing file; pass a folder (new or existing)")
    if kind == "file" and out.is_dir():
        raise NasbenchError(f"{what} {out} is a folder; pass a file name")
    base = out if (kind == "dir" and out.is_dir()) else out.parent
    base = Path(os.path.abspath(base))
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise NasbenchError(f"{what} {out}: {base} is a file, so no folder can be created below it")
    try:
        os.rmdir(tempfile.mkdtemp(dir=base, prefix=".nasbench-probe-"))
    except OSError as e:
        raise NasbenchError(f"{what} {out}: cannot write in {base} ({e.strerror or type(e).__name__})") from None
    return out


def make_out_dir(out, what: str = "--out"):
    """:func:`check_out_path`, then create ``out`` (with parents); a folder this call created
    is removed again by :func:`run_cli` if the run then fails without writing a checkpoint.

    Returns:
        ``out`` as a ``Path``.
    """
    from pathlib import Path

    out = check_out_path(out, what)
    top = Path(os.path.abspath(out))
    if not top.exists():
        while not top.parent.exists():
            top = top.parent
        out.mkdir(parents=True, exist_ok=True)
        _CREATED.append(top)
    return out


#: files whose presence makes a failed run's folder worth keeping (``--resume`` continues it)
RESUMABLE = ("checkpoints/last.pth", "checkpoints/train_state.pth", "queries.jsonl")


def remove_failed_outputs() -> list:
    """Remove the folders :func:`make_out_dir` created in this process unless they hold
    resumable state (:data:`RESUMABLE`: a training checkpoint or a search journal).
    Returns the removed paths."""
    import shutil

    removed = []
    while _CREATED:
        top = _CREATED.pop()
        if top.is_dir() and not any(any(top.rglob(pattern)) for pattern in RESUMABLE):
            shutil.rmtree(top, ignore_errors=True)
            removed.append(top)
    return removed


def run_cli(main, argv=None) -> int:
    """Run a tool's ``main(argv)``; a :class:`~nasbench.errors.NasbenchError` becomes one
    ``error: ...`` line on stderr and exit code 2 instead of a traceback. In a multi-rank
    run, an error that means another rank died or hung (:func:`nasbench.engine.dist.peer_failure`)
    becomes one ``error:`` line and exit code 1.

    On any failure the output folders the run created with :func:`make_out_dir` are
    removed unless they hold a checkpoint (:func:`remove_failed_outputs`)."""
    from .errors import NasbenchError

    try:
        main(argv)
    except NasbenchError as e:  # one line, whatever the message holds
        remove_failed_outputs()
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        remove_failed_outputs()
        from .engine.dist import peer_failure
        msg = peer_failure(e)
        if msg is None:
            raise
        # a dead or hung peer rank: one line, and no teardown of the broken group
        print(f"error: {msg}", file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(1)  # interpreter teardown with a broken gloo/NCCL group can abort or hang
    except BaseException:
        remove_failed_outputs()
        raise
    from .engine.dist import cleanup

    cleanup()  # a tool run by torchrun/slurm leaves no process group to interpreter teardown
    return 0


def labelled_run_files(runs, labels, filename: str, hint: str) -> list:
    """``[(label, run/filename)]`` for the plotting tools, labels defaulting to the folder names.

    Raises:
        NasbenchError: a label count that differs from the run count, or a missing
            file (the message ends with ``hint``).
    """
    from pathlib import Path

    from .errors import NasbenchError
    labels = labels or [Path(r).name for r in runs]
    if len(labels) != len(runs):
        raise NasbenchError(f"--labels has {len(labels)} entries for {len(runs)} --runs")
    out = []
    for run, label in zip(runs, labels):
        f = Path(run) / filename
        if not f.is_file():
            raise NasbenchError(f"{f} does not exist ({hint})")
        out.append((label, f))
    return out


def parse_references(items) -> dict:
    """``["label=0.539", ...]`` (the plotting tools' ``--reference``) -> ``{"label": 0.539}``.

    Raises:
        NasbenchError: an item that is not ``LABEL=NUMBER``.
    """
    from .errors import NasbenchError
    refs = {}
    for item in items:
        label, _, value = item.rpartition("=")
        try:
            refs[label] = float(value)
        except ValueError:
            raise NasbenchError(f"--reference {item!r} is not LABEL=TAU") from None
    return refs
