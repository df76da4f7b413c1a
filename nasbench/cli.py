"""Shared argument parsing of the command-line tools in ``tools/``."""
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
