"""Errors a user can cause. Tools catch :class:`NasbenchError` and print one line.

Every subclass carries a message that says what was wrong and where, so the
command-line tools can exit with that message instead of a traceback.
"""


class NasbenchError(Exception):
    """Base class of all user-facing errors (bad input, missing files)."""


class ConfigError(NasbenchError, KeyError):
    """Unknown/misspelled config key, bad value or unreadable YAML file."""

    def __str__(self):  # KeyError would quote the message otherwise
        return str(self.args[0]) if self.args else ""


class ArchError(NasbenchError, ValueError):
    """An architecture that is not a member of its search space."""


class DataNotFoundError(NasbenchError, FileNotFoundError):
    """A data or benchmark file that is neither local, in the mirror, nor downloadable."""


class CheckpointError(NasbenchError, RuntimeError):
    """A missing, truncated or incompatible checkpoint file."""


class UnsafeFileError(NasbenchError, ValueError):
    """A file that asks to construct a Python object no nasbench file holds (e.g. a
    pickle calling ``os.system``). Loading stops before anything runs."""


class UnsafeCheckpointError(CheckpointError, UnsafeFileError):
    """An :class:`UnsafeFileError` for a checkpoint or predictor file."""
