"""Restricted unpickling of benchmark ``.pkl`` files (NAS-Bench-MR, NAS-Bench-201 as shipped with NCP).

The files are lists of dicts of builtins (lists, strings, numbers) and numpy
arrays/scalars. Builtin containers and numbers need no globals; the only
globals admitted are the numpy reconstruction functions and types
(:data:`ALLOWED_GLOBALS`). Any other global (a function a malicious pickle
could call, such as ``os.system``, or any class) raises
:class:`~nasbench.errors.UnsafeFileError` naming the file and the global,
before anything is called.
"""
from __future__ import annotations

import pickle

from ..errors import NasbenchError, UnsafeFileError

#: ``(module, name)`` pairs a benchmark pickle may name: numpy arrays (``_reconstruct``,
#: ``ndarray``, ``dtype``; ``_frombuffer`` in pickle protocol 5) and numpy scalars
#: (``scalar``), under numpy 1.x and 2.x module paths
ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
})


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, f, path):
        super().__init__(f)
        self._path = path

    def find_class(self, module, name):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafeFileError(f"{self._path}: refusing to unpickle {module}.{name} (benchmark files may hold "
                              "only builtins and numpy arrays; a pickle naming anything else could run code)")

    def persistent_load(self, pid):
        raise UnsafeFileError(f"{self._path}: refusing to unpickle a persistent id (benchmark files have none)")


def load_pickle(path):
    """Unpickle ``path`` admitting only builtins and numpy arrays/scalars.

    Raises:
        UnsafeFileError: the file names a forbidden global (nothing was called).
        NasbenchError: a truncated/corrupt file.
    """
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, path).load()
    except NasbenchError:
        raise
    except OSError as e:
        raise NasbenchError(f"{path}: cannot read benchmark pickle ({e.strerror or e})") from None
    except Exception as e:  # UnpicklingError, EOFError, ValueError, ... for corrupt data
        first = next((ln for ln in str(e).splitlines() if ln.strip()), "")
        raise NasbenchError(f"{path}: not a readable benchmark pickle ({type(e).__name__}: {first[:200]})") from None
