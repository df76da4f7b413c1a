"""Name -> class registries, so a config's ``type:`` picks the implementation.

Usage::

    @SPACES.register("channel_bench_macro")
    class ChannelBenchMacroSpace(WidthSpace): ...

    space = SPACES.build("channel_bench_macro", variant="mobilenet")
"""
from __future__ import annotations

import difflib

from .errors import ConfigError


class Registry:
    """A named mapping from strings to classes or factory functions."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, object] = {}

    def register(self, name: str):
        """Decorator registering ``obj`` under ``name``; duplicate names raise ValueError."""
        def deco(obj):
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj
        return deco

    def get(self, name: str):
        """The object registered as ``name``; unknown names raise :class:`ConfigError`."""
        if name not in self._items:
            close = difflib.get_close_matches(str(name), self._items, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown {self.kind} type {name!r}{hint}; "
                              f"known: {sorted(self._items)}")
        return self._items[name]

    def build(self, name: str, *args, **kwargs):
        """Instantiate the object registered as ``name``."""
        return self.get(name)(*args, **kwargs)

    def __contains__(self, name):
        return name in self._items

    def names(self):
        return sorted(self._items)


SPACES = Registry("search space")
ALGORITHMS = Registry("algorithm")
