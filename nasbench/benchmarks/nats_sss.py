"""NATS-Bench size search space (Ss) on CIFAR-10, as shipped with BossNAS.

Source: [BOSS] changlin31/BossNAS, ``ranking_nats/nats_cifar10_acc_rank.yml``:
a YAML mapping ``'c1:c2:c3:c4:c5' -> accuracy`` for all 8^5 = 32,768
architectures of the NATS-Bench size space (channel counts 8..64 of 5 layers).
The value is a CIFAR-10 test accuracy in percent; which NATS-Bench training
schedule/epoch it comes from is not documented upstream (METHODS.md section 6).

Records: ``{"acc": float (%), "flops": None}``. The file has no cost data,
so ``flops`` is None: :meth:`TabularBenchmark.best` / ``summary`` work
without a FLOPs constraint; do not pass ``max_flops``/``min_flops``. The
benchmark's space computes them instead (``bench.space.flops(key)`` /
``params(key)`` / ``cost_table()``, from NATS-Bench's network; the searchers
of :mod:`nasbench.bench_search` use these).

Key parsing: YAML 1.1 (PyYAML) resolves a plain scalar such as
``16:16:16:16:8`` as a base-60 integer (210874568). The file quotes the
19,208 keys that would resolve that way and leaves 13,560 keys unquoted (e.g.
``16:16:16:16:64: 89.58``); those all contain a 64, which is not a base-60
digit, so PyYAML 6 happens to read them as strings, but that depends on the
resolver's regular expressions (a YAML 1.2 or another 1.1 parser may differ).
The loader therefore builds every mapping key from its raw scalar text (never
resolved), and checks that the 32,768 keys are distinct, canonical and cover
the whole space.
"""
from __future__ import annotations

import math

import yaml

from ..errors import DataNotFoundError, NasbenchError
from ..spaces.nats_sss import NATSSizeSpace
from . import BENCHMARKS
from .base import TabularBenchmark

UPSTREAM = "https://raw.githubusercontent.com/changlin31/BossNAS/HEAD/ranking_nats/nats_cifar10_acc_rank.yml"
FILES = {"cifar10": "nats_cifar10_acc_rank.yml"}

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _DuplicateKey(Exception):
    pass


class _RawKeyLoader(_BaseLoader):
    """Safe YAML loader whose mapping keys are the raw scalar text (no int/float/sexagesimal resolution)."""


def _construct_raw_key_mapping(loader, node, deep=False):
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(None, None, f"expected a mapping, found {node.id}", node.start_mark)
    out = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(None, None, "mapping key is not a scalar", key_node.start_mark)
        key = key_node.value
        if key in out:
            raise _DuplicateKey(key)
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_RawKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_raw_key_mapping)


def parse_acc_yaml(path) -> dict[str, float]:
    """Parse a BossNAS ranking YAML into ``{raw key string: accuracy float}``.

    Keys are the scalar text as written in the file (quotes removed), so
    ``16:16:16:16:64`` and ``'16:16:16:16:8'`` both come back as strings.

    Raises:
        NasbenchError: unreadable YAML, not a mapping, a duplicated key, or a
            value that is not a finite number.
    """
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.load(f, Loader=_RawKeyLoader)  # noqa: S506 (safe loader subclass)
    except _DuplicateKey as e:
        raise NasbenchError(f"{path}: architecture key {e.args[0]!r} appears more than once") from None
    except yaml.YAMLError as e:
        raise NasbenchError(f"{path}: not a readable YAML file ({e.__class__.__name__}: {e})") from None
    if not isinstance(raw, dict):
        raise NasbenchError(f"{path}: expected a mapping 'c1:c2:c3:c4:c5' -> accuracy, got {type(raw).__name__}")
    out = {}
    for k, v in raw.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise NasbenchError(f"{path}: value of {k!r} is {v!r}, not a finite accuracy")
        out[k] = float(v)
    return out


@BENCHMARKS.register("nats_sss")
def load_nats_sss(variant: str, root) -> TabularBenchmark:
    """Load ``nats_sss/cifar10`` from ``root/nats_sss/nats_cifar10_acc_rank.yml``.

    Missing files are copied from ``$NASBENCH_MIRROR/benchmarks/...`` or
    downloaded from the upstream repository (changlin31/BossNAS,
    ``ranking_nats/nats_cifar10_acc_rank.yml``). Metric ``acc`` (CIFAR-10 test
    accuracy, %); ``flops`` is None for every record.

    Raises:
        NasbenchError: unknown variant, malformed YAML, an invalid or
            non-canonical key, a duplicate, or not exactly the 32,768 architectures of the space.
        DataNotFoundError: file missing and not obtainable.
    """
    from ..data.files import resolve_file

    variant = variant or "cifar10"
    if variant not in FILES:
        raise NasbenchError(f"nats_sss: unknown variant {variant!r}; use one of {sorted(FILES)}")
    rel = f"nats_sss/{FILES[variant]}"
    path = resolve_file(rel, root, url=UPSTREAM, mirror_rel=f"benchmarks/{rel}")
    raw = parse_acc_yaml(path)
    space = NATSSizeSpace(variant)
    records = {}
    for k, acc in raw.items():
        try:
            canon = space.encode(space.decode(k))
        except NasbenchError as e:
            raise NasbenchError(f"{path}: {e}") from None
        if canon != k:
            raise NasbenchError(f"{path}: key {k!r} is not canonical (expected {canon!r})")
        records[k] = {"acc": acc, "flops": None}
    if len(records) != len(space):
        missing = next((space.encode(a) for a in space if space.encode(a) not in records), None)
        raise NasbenchError(f"{path}: {len(records)} architectures, expected {len(space)}"
                            + (f" (e.g. {missing!r} is missing)" if missing else ""))
    return TabularBenchmark(f"nats_sss/{variant}", space, records, metric="acc")


__all__ = ["load_nats_sss", "parse_acc_yaml", "DataNotFoundError"]
