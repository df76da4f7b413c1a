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


def run_cli(main, argv=None) -> int:
    """Run a tool's ``main(argv)``; a :class:`~nasbench.errors.NasbenchError` becomes one
    ``error: ...`` line on stderr and exit code 2 instead of a traceback."""
    from .errors import NasbenchError

    try:
        main(argv)
    except NasbenchError as e:  # one line, whatever the message holds
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
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
