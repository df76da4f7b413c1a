"""Shared argument parsing of the command-line tools in ``tools/``.

Numeric options take the argparse types below, so an out-of-range value is an
argparse error (usage + one ``error:`` line, exit code 2) before anything runs.
"""
from __future__ import annotations

import argparse

from .config import load_config


def make_parser(description: str) -> argparse.ArgumentParser:
    """Parser with ``--cfg`` (YAML config) and ``--opts key=value ...`` overrides."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--cfg", required=True, help="YAML config file (with optional _base_ inheritance)")
    p.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE",
                   help="config overrides, e.g. train.epochs=2 data.root=/data")
    return p


def load_cfg(args):
    """Resolved :class:`~nasbench.config.Config` of ``args.cfg`` with ``args.opts`` applied."""
    return load_config(args.cfg, args.opts)


def _number(kind, lo, strict, what):
    def parse(text):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value != value or (value <= lo if strict else value < lo) or value in (float("inf"),):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    parse.__name__ = what
    return parse


#: argparse ``type=``: an int >= 1
positive_int = _number(int, 0, True, "an integer >= 1")
#: argparse ``type=``: an int >= 0
non_negative_int = _number(int, 0, False, "an integer >= 0")
#: argparse ``type=``: a finite float > 0
positive_float = _number(float, 0.0, True, "a number > 0")
#: argparse ``type=``: a finite float >= 0
non_negative_float = _number(float, 0.0, False, "a number >= 0")

__all__ = ["make_parser", "load_cfg", "positive_int", "non_negative_int", "positive_float", "non_negative_float"]
