"""Small shared helpers: atomic JSON output and the command-line error boundary."""
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


def run_cli(main, argv=None) -> int:
    """Run a tool's ``main(argv)``; a :class:`~nasbench.errors.NasbenchError` becomes one
    ``error: ...`` line on stderr and exit code 2 instead of a traceback. In a multi-rank
    run, an error that means another rank died or hung (:func:`nasbench.engine.dist.peer_failure`)
    becomes one ``error:`` line and exit code 1."""
    from .errors import NasbenchError

    try:
        main(argv)
    except NasbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a dead or hung peer rank: one line, and no teardown of the broken group
        from .engine.dist import peer_failure
        msg = peer_failure(e)
        if msg is None:
            raise
        print(f"error: {msg}", file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(1)  # interpreter teardown with a broken gloo/NCCL group can abort or hang
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
