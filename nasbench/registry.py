"""Name -> class registries, so a config's ``type:`` picks the implementation.

Usage::

    @SPACES.register("channel_bench_macro")
    class ChannelBenchMacroSpace(WidthSpace): ...

    space = SPACES.build("channel_bench_macro", variant="mobilenet")

Every registered class owns the config keys of its section: a class attribute
``KEYS = {name: Key(default, doc, ...)}`` (collected along the class's bases,
so subclasses inherit and extend them), or, when a class declares none, the
keyword parameters of its constructor (their defaults; for search spaces,
whose options are their constructor arguments). :mod:`nasbench.config` checks
the ``algorithm``, ``search``, ``eval`` and ``space`` sections of every config
against the keys of the type they name (see :data:`TYPED_SECTIONS`).
"""
from __future__ import annotations

import difflib
import inspect
import math
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Key:
    """Declaration of one config key: default, meaning, type, range and unit.

    Args:
        default: value used when the config does not set the key.
        doc: one line saying what the key does (shown in errors and ``--help`` texts).
        type: expected Python type(s); inferred from ``default`` when None
            (an int is accepted for a float, an integral float for an int).
        range: ``(lo, hi)`` inclusive bounds for numbers; either may be None.
        choices: allowed values (strings or numbers).
        unit: unit of the value (e.g. ``"MACs"``, ``"epochs"``, ``"count"``).
        nullable: whether ``null`` is allowed (default: only when ``default`` is None).
    """

    default: Any
    doc: str = ""
    type: Any = None
    range: tuple | None = None
    choices: tuple | None = None
    unit: str = ""
    nullable: bool | None = None

    def check(self, value, where: str):
        """``value`` converted to the declared type, or :class:`ConfigError` naming ``where``."""
        nullable = self.default is None if self.nullable is None else self.nullable
        if value is None:
            if nullable:
                return None
            raise ConfigError(f"{where} must not be null ({self.doc})")
        typ = self.type if self.type is not None else (type(self.default) if self.default is not None else None)
        if typ is bool and not isinstance(value, bool):
            raise ConfigError(f"{where}: expected bool, got {type(value).__name__} ({value!r})")
        if typ is int:
            if isinstance(value, bool) or not (isinstance(value, int) or
                                               (isinstance(value, float) and value.is_integer())):
                raise ConfigError(f"{where}: expected int, got {type(value).__name__} ({value!r})")
            value = int(value)
        elif typ is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}: expected float, got {type(value).__name__} ({value!r})")
            if isinstance(value, float) and math.isnan(value):
                raise ConfigError(f"{where} must be a number, got nan")
        elif typ in (str, list, dict) and not isinstance(value, typ):
            raise ConfigError(f"{where}: expected {typ.__name__}, got {type(value).__name__} ({value!r})")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{where} must be one of {list(self.choices)}, got {value!r}")
        if self.range is not None and isinstance(value, (int, float)):
            lo, hi = self.range
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                unit = f" {self.unit}" if self.unit else ""
                raise ConfigError(f"{where} must lie in [{'-inf' if lo is None else lo}, "
                                  f"{'inf' if hi is None else hi}]{unit}, got {value!r}")
        return value


def declared_keys(obj) -> dict[str, Key]:
    """The config keys of a registered class: its ``KEYS`` along the MRO, or its constructor's
    keyword parameters when no class in the MRO declares any."""
    keys: dict[str, Key] = {}
    found = False
    for klass in reversed(getattr(obj, "__mro__", ())):
        if "KEYS" in vars(klass):
            found = True
            for name, key in vars(klass)["KEYS"].items():
                if key is None:
                    keys.pop(name, None)
                else:
                    keys[name] = key
    if found:
        return keys
    sig = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    for name, p in sig.parameters.items():
        if name in ("self", "num_classes") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            continue
        d = p.default
        keys[name] = Key(d, f"constructor argument {name!r} of {getattr(obj, '__name__', obj)}",
                         type=type(d) if isinstance(d, (bool, int, float, str)) else object, nullable=True)
    return keys


class Registry:
    """A named mapping from strings to classes or factory functions (with aliases)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, object] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, aliases: tuple = ()):
        """Decorator registering ``obj`` under ``name`` (and ``aliases``); duplicates raise ValueError."""
        def deco(obj):
            for n in (name, *aliases):
                if n in self._items or n in self._aliases:
                    raise ValueError(f"{self.kind} {n!r} is already registered")
            self._items[name] = obj
            for a in aliases:
                self._aliases[a] = name
            return obj
        return deco

    def unregister(self, name: str) -> None:
        """Remove ``name`` and its aliases (tests that register a plugin clean up with this)."""
        self._items.pop(name, None)
        for a in [a for a, n in self._aliases.items() if n == name]:
            del self._aliases[a]

    def canonical(self, name) -> str:
        """The registered name of ``name`` (aliases resolved, case-insensitive), or ConfigError."""
        key = str(name).strip()
        if key not in self._items:
            key = key.lower()
            key = self._aliases.get(key, key)
        if key not in self._items:
            close = difflib.get_close_matches(str(name), list(self._items) + list(self._aliases), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown {self.kind} type {name!r}{hint}; known: {sorted(self._items)}")
        return key

    def get(self, name: str):
        """The object registered as ``name``; unknown names raise :class:`ConfigError`."""
        return self._items[self.canonical(name)]

    def keys_of(self, name: str) -> dict[str, Key]:
        """The config keys declared by the type ``name`` (see :func:`declared_keys`)."""
        return declared_keys(self.get(name))

    def build(self, name: str, *args, **kwargs):
        """Instantiate the object registered as ``name``."""
        return self.get(name)(*args, **kwargs)

    def __contains__(self, name):
        try:
            self.canonical(name)
            return True
        except ConfigError:
            return False

    def names(self):
        return sorted(self._items)


SPACES = Registry("search space")
ALGORITHMS = Registry("algorithm")
SEARCHERS = Registry("searcher")
EVALUATORS = Registry("evaluator")

#: config sections whose keys depend on their ``type``: section -> registry
TYPED_SECTIONS = {"space": SPACES, "algorithm": ALGORITHMS, "search": SEARCHERS, "eval": EVALUATORS}


def load_registrations() -> None:
    """Import the packages whose modules register the built-in types."""
    from . import algorithms, evaluators, searchers, spaces  # noqa: F401
