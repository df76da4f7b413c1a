"""Restricted unpickling of benchmark ``.pkl`` files (NAS-Bench-MR, NAS-Bench-201 as shipped with NCP).

Only builtins containers/scalars and numpy arrays/scalars may be constructed;
any other global (a class or function a malicious pickle could call) raises
:class:`~nasbench.errors.NasbenchError` naming the file and the global.
"""
from __future__ import annotations

import pickle

from ..errors import NasbenchError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "int"), ("builtins", "float"), ("builtins", "str"),
    ("builtins", "bytes"), ("builtins", "bool"), ("builtins", "complex"), ("collections", "OrderedDict"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, f, path):
        super().__init__(f)
        self._path = path

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise NasbenchError(f"{self._path}: refusing to unpickle {module}.{name} "
                            "(only numpy arrays and builtins are allowed in benchmark files)")


def load_pickle(path):
    """Unpickle ``path`` admitting only numpy arrays and builtins.

    Raises:
        NasbenchError: a forbidden global, or a truncated/corrupt file.
    """
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, path).load()
    except NasbenchError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as e:
        raise NasbenchError(f"{path}: not a readable benchmark pickle ({type(e).__name__}: {e})") from None
