"""BossNAS rating files and architecture ratings (METHODS.md section 3.4).

BossNAS rates every path of a block by its self-supervised loss against the
population centre and saves the block's table as ``path_rank_{block}.yml``:
a YAML list of ``(block key, loss)`` pairs sorted by ascending loss, each
pair written as a ``!!python/tuple`` (PyYAML's default dumper), e.g.::

    - !!python/tuple
      - '74'
      - -3.169246506690979

An architecture's rating is ``sum over blocks of (loss_b + 4)`` (each loss
lies in [-4, 4]; the shift makes every term non-negative), lower is better.
Because the rating is a sum of per-block tables, every architecture of a
space can be rated from ``sum(paths per block)`` entries (NATS-Bench Ss on
CIFAR-10: 64 + 64 + 8 entries for 32,768 architectures).

Reading never executes anything: :func:`read_rating_file` uses a
``yaml.SafeLoader`` subclass that knows exactly one extra tag,
``!!python/tuple`` (built as a plain tuple of safely constructed items); any
other ``!!python/...`` tag (``object/apply``, ``name``, ``module``, ...) is
refused with a :class:`~nasbench.errors.NasbenchError` naming the file.
Keys must be YAML strings: an unquoted ``74`` would be the int 74 and
``16:16:16:16:16`` a YAML 1.1 base-60 integer, so :func:`write_rating_file`
always single-quotes keys and the reader rejects non-string keys.
"""
from __future__ import annotations

import itertools
import math
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import yaml

from ..errors import DataNotFoundError, NasbenchError
from ..evaluators.base import Evaluator

#: Shift added to every block loss (a BYOL loss -2 cos(p, z), summed over two views, lies in [-4, 4]).
RATING_OFFSET = 4.0
TUPLE_TAG = "tag:yaml.org,2002:python/tuple"

__all__ = ["RATING_OFFSET", "rating_history", "rating_file_name", "read_rating_file", "write_rating_file", "read_block_ratings",
           "write_block_ratings", "check_block_table", "rate_archs", "rate_all", "rating_correlations",
           "rating_report", "BossRatingEvaluator"]


# ---------------------------------------------------------------------------- YAML
class RatingLoader(yaml.SafeLoader):
    """Safe loader that also accepts ``!!python/tuple`` (as a tuple); every other python tag is an error."""


def _construct_tuple(loader, node):
    if not isinstance(node, yaml.SequenceNode):
        raise yaml.constructor.ConstructorError(None, None, f"!!python/tuple on a {node.id} node", node.start_mark)
    return tuple(loader.construct_sequence(node, deep=True))


RatingLoader.add_constructor(TUPLE_TAG, _construct_tuple)


class _RatingDumper(yaml.SafeDumper):
    """Writes tuples as ``!!python/tuple`` sequences and every string single-quoted."""


_RatingDumper.add_representer(tuple, lambda d, data: d.represent_sequence(TUPLE_TAG, data))
_RatingDumper.add_representer(str, lambda d, data: d.represent_scalar("tag:yaml.org,2002:str", data, style="'"))


def rating_file_name(block: int) -> str:
    """``path_rank_{block}.yml``, the reference's file name of block ``block``'s ratings."""
    return f"path_rank_{int(block)}.yml"


def _check_pair(path, i, item) -> tuple[str, float]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise NasbenchError(f"{path}: entry {i} is {item!r}, expected a (key, loss) pair")
    key, loss = item
    if not isinstance(key, str):
        raise NasbenchError(f"{path}: entry {i} has key {key!r} of type {type(key).__name__}; keys must be "
                            f"quoted strings (an unquoted key such as 07 or 16:16:16:16:16 is read as a number)")
    if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not math.isfinite(loss):
        raise NasbenchError(f"{path}: entry {i} ({key!r}) has loss {loss!r}, not a finite number")
    return key, float(loss)


def read_rating_file(path) -> dict[str, float]:
    """Read one rating file into ``{key: loss}`` (in file order).

    Accepts the reference's list of ``!!python/tuple`` pairs, plain
    ``[key, loss]`` lists, or a mapping ``key: loss``.

    Raises:
        DataNotFoundError: no such file.
        NasbenchError: unsafe or unknown tag (e.g. ``!!python/object/apply``),
            malformed YAML, an entry that is not a (string key, finite loss)
            pair, or a repeated key; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: rating file not found")
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.load(f, Loader=RatingLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.constructor.ConstructorError as e:
        raise NasbenchError(f"{path}: refused to load the rating file: {e.problem or e} "
                            f"(only plain YAML and !!python/tuple are accepted)") from None
    except yaml.YAMLError as e:
        raise NasbenchError(f"{path}: not a readable YAML file ({e.__class__.__name__}: {e})") from None
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = raw
    else:
        raise NasbenchError(f"{path}: expected a list of (key, loss) pairs, got {type(raw).__name__}")
    out: dict[str, float] = {}
    for i, item in enumerate(items):
        key, loss = _check_pair(path, i, item)
        if key in out:
            raise NasbenchError(f"{path}: key {key!r} appears more than once")
        out[key] = loss
    return out


def write_rating_file(path, ratings) -> Path:
    """Write ``ratings`` (``{key: loss}`` or ``(key, loss)`` pairs) in the reference's format.

    Entries are sorted by ascending loss (ties keep their given order), each
    written as a ``!!python/tuple`` with the key single-quoted and the loss
    as Python's shortest round-trip float repr; the file is replaced
    atomically. Returns the path.

    Raises:
        NasbenchError: a non-string key, a repeated key or a non-finite loss.
    """
    path = Path(path)
    items = list(ratings.items()) if isinstance(ratings, Mapping) else list(ratings)
    pairs, seen = [], set()
    for i, item in enumerate(items):
        key, loss = _check_pair(path, i, item)
        if key in seen:
            raise NasbenchError(f"{path}: key {key!r} appears more than once")
        seen.add(key)
        pairs.append((key, loss))
    pairs.sort(key=lambda kv: kv[1])
    text = yaml.dump(pairs, Dumper=_RatingDumper, default_flow_style=False, sort_keys=False)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_block_ratings(directory, tables: Sequence[Mapping[str, float]]) -> list[Path]:
    """Write ``tables[b]`` to ``directory/path_rank_{b}.yml`` for every block; returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return [write_rating_file(directory / rating_file_name(b), t) for b, t in enumerate(tables)]


def read_block_ratings(directory, num_blocks: int) -> list[dict[str, float]]:
    """Read ``directory/path_rank_{b}.yml`` for ``b = 0 .. num_blocks - 1``.

    Raises:
        NasbenchError: ``directory`` is a file, or an error of :func:`read_rating_file`.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NasbenchError(f"{directory} is a file; pass the folder holding {rating_file_name(0)}, ...")
    return [read_rating_file(directory / rating_file_name(b)) for b in range(int(num_blocks))]


# ---------------------------------------------------------------------------- ratings
def check_block_table(space, block: int, table: Mapping[str, float], where: str = "", prefix: Sequence[str] = ()) -> None:
    """Check that ``table`` rates exactly the candidate paths of ``block`` of a block-wise ``space``
    (``space.block_candidates(block, prefix)``; ``prefix``: the chosen keys of the earlier blocks,
    which only spaces with dependent blocks such as HyTra look at).

    Raises:
        NasbenchError: a key that is not a path of the block, or a missing path
            (the message names one of them).
    """
    where = where or f"{space.name}: block {block} table"
    for k in table:
        try:
            space.decode_block_key(block, k)
        except NasbenchError as e:
            raise NasbenchError(f"{where}: {e}") from None
    cand = list(space.block_candidates(block, tuple(prefix)))
    allowed = set(cand)  # built once: a one-block NATS grouping has 32,768 paths
    extra = next((k for k in table if k not in allowed), None)
    if extra is not None:
        raise NasbenchError(f"{where}: {extra!r} is not a candidate path of the block")
    if len(table) != len(cand):
        missing = next((k for k in cand if k not in table), None)
        raise NasbenchError(f"{where}: {len(table)} paths rated, the block has {len(cand)}"
                            + (f" (e.g. {missing!r} is missing)" if missing else ""))


def _check_tables(space, block_tables, prefix: Sequence[str] | None = None):
    if len(block_tables) != space.num_blocks:
        raise NasbenchError(f"{space.name}: {len(block_tables)} block tables, the space has {space.num_blocks} blocks")
    for b, t in enumerate(block_tables):
        check_block_table(space, b, t, prefix=tuple(prefix[:b]) if prefix is not None else ())


def _rating(losses: Iterable[float], decimals: int | None) -> float:
    total = 0.0
    for loss in losses:  # summed block by block, as the reference does
        total += loss + RATING_OFFSET
    return round(total, decimals) if decimals is not None else total


def rate_archs(space, block_tables: Sequence[Mapping[str, float]], archs, decimals: int | None = None) -> list[float]:
    """Ratings ``sum_b (loss_b + 4)`` of ``archs`` (tuples or keys); lower is better.

    ``decimals``: round each rating like the reference scripts do (they use 4);
    None keeps full precision.

    Raises:
        NasbenchError: tables that do not cover the blocks; ArchError: an invalid arch.
    """
    _check_tables(space, block_tables)
    return [_rating((block_tables[b][k] for b, k in enumerate(space.block_keys(a))), decimals) for a in archs]


def rate_all(space, block_tables: Sequence[Mapping[str, float]], decimals: int | None = None,
             max_archs: int = 10_000_000) -> dict[str, float]:
    """``{arch key: rating}`` for every architecture of ``space`` (from the per-block tables).

    Enumerates the product of the blocks' paths (``len(space)`` ratings);
    refuses spaces larger than ``max_archs`` (e.g. MBConv, 4^18: use
    :func:`rate_archs` there).

    Raises:
        NasbenchError: incomplete tables or a space too large to enumerate.
    """
    _check_tables(space, block_tables)
    n = len(space)
    if n > max_archs:
        raise NasbenchError(f"{space.name}: {n} architectures are too many to rate all "
                            f"(limit {max_archs}); rate a list with rate_archs()")
    out = {}
    for keys in itertools.product(*[list(space.block_choices(b)) for b in range(space.num_blocks)]):
        arch = space.arch_from_block_keys(keys)
        out[space.encode(arch)] = _rating((block_tables[b][k] for b, k in enumerate(keys)), decimals)
    return out


def rating_correlations(ratings: Mapping[str, float], benchmark, metric: str | None = None) -> dict:
    """Kendall tau-b, Spearman rho and Pearson r of the *negated* rating against the benchmark.

    ``ratings``: ``{arch key: rating}`` (e.g. from :func:`rate_all`) covering
    every architecture of ``benchmark`` (a
    :class:`~nasbench.benchmarks.base.TabularBenchmark` in the same key
    format); ``metric`` defaults to the benchmark's. Returns
    :func:`~nasbench.metrics.ranking.rank_correlations`'s dict; positive
    values mean lower ratings go with higher accuracy (the reference
    correlates the loss itself, so it prints the same numbers negated).

    Raises:
        NasbenchError: an architecture of the benchmark has no rating.
    """
    from ..metrics.ranking import rank_correlations

    metric = metric or benchmark.metric
    pred, true = [], []
    for key in benchmark:
        if key not in ratings:
            raise NasbenchError(f"{benchmark.name}: architecture {key!r} has no rating")
        pred.append(-float(ratings[key]))
        true.append(float(benchmark.query(key)[metric]))
    return rank_correlations(pred, true)


def rating_report(space, block_tables: Sequence[Mapping[str, float]], benchmark, decimals: int | None = None) -> dict:
    """Rate every architecture of ``benchmark`` and compare with its ground truth.

    Returns ``{"space", "benchmark", "num_archs", "decimals", "correlations"
    (:func:`rating_correlations`), "size_proxies" ({"params", "flops"}: the
    same correlations for the standalone networks' parameter count and MACs,
    the trivial "bigger is better" baseline; empty when the space has no
    cost model), "best" ({"arch", "rating", <metric>, "rank"}: the
    best-rated architecture and its true rank)}``.
    """
    from ..metrics.ranking import rank_correlations

    ratings = rate_all(space, block_tables, decimals=decimals)
    keys = list(benchmark)
    true = [float(benchmark.query(k)[benchmark.metric]) for k in keys]
    proxies = {}
    try:
        costs = [space.cost(k) if hasattr(space, "cost") else (space.flops(k), space.params(k)) for k in keys]
        proxies = {"params": rank_correlations([c[1] for c in costs], true),
                   "flops": rank_correlations([c[0] for c in costs], true)}
    except NotImplementedError:
        pass
    best = min(keys, key=lambda k: ratings[k])
    return {"space": space.name, "benchmark": benchmark.name, "num_archs": len(keys), "decimals": decimals,
            "correlations": rating_correlations(ratings, benchmark), "size_proxies": proxies,
            "best": {"arch": best, "rating": ratings[best], benchmark.metric: benchmark.query(best)[benchmark.metric],
                     "rank": benchmark.rank(best)}}


def rating_history(space, history: Sequence[Mapping], benchmark) -> list[dict]:
    """Ranking quality of the rating a run had after each of its rating epochs.

    ``history``: the run's ratings in order, ``[{"epoch", "block", "table": {block key: loss}}]``
    (``ratings.json`` of a BossNAS run). After each entry, every architecture of
    ``benchmark`` is rated ``sum_b (loss_b + 4)`` over the blocks rated so far (each block's
    latest table; blocks not rated yet add nothing, so architectures differing only there
    tie), which is what a block-wise search knows at that point. Returns one
    ``{"epoch", "block", "blocks_rated", "kendall_tau", "spearman", "pearson"}`` per entry
    (correlations of the negated rating, as :func:`rating_correlations`).

    Raises:
        NasbenchError: an entry's table is not a table of its block.
    """
    from ..metrics.ranking import rank_correlations

    keys = list(benchmark)
    block_keys = [space.block_keys(k) for k in keys]
    true = [float(benchmark.query(k)[benchmark.metric]) for k in keys]
    latest: dict[int, Mapping[str, float]] = {}
    out = []
    for i, entry in enumerate(history):
        b = int(entry["block"])
        check_block_table(space, b, entry["table"], where=f"rating history entry {i} (epoch {entry.get('epoch')})")
        latest[b] = entry["table"]
        pred = [-sum(latest[j][bk[j]] + RATING_OFFSET for j in sorted(latest)) for bk in block_keys]
        out.append({"epoch": entry.get("epoch"), "block": b, "blocks_rated": len(latest),
                    **rank_correlations(pred, true)})
    return out


class BossRatingEvaluator(Evaluator):
    """Evaluator from cached BossNAS block tables: ``score = -rating`` (higher is better).

    ``evaluate(archs)`` returns ``{"rating", "score", "flops"}`` per
    architecture (``flops`` = ``space.flops``, None when the space has no
    FLOPs model).

    Raises:
        NasbenchError: tables that do not cover the space's blocks.
    """

    def __init__(self, space, block_tables: Sequence[Mapping[str, float]], prefix: Sequence[str] | None = None):
        _check_tables(space, block_tables, prefix)
        self.space = space
        self.block_tables = [dict(t) for t in block_tables]

    @classmethod
    def from_directory(cls, space, directory):
        """Read ``directory/path_rank_{b}.yml`` for every block of ``space``."""
        return cls(space, read_block_ratings(directory, space.num_blocks))

    def evaluate(self, archs):
        out = []
        for a in archs:
            keys = self.space.block_keys(a)
            for b, k in enumerate(keys):
                if k not in self.block_tables[b]:
                    raise NasbenchError(f"{self.space.name}: block {b} path {k!r} of {self.space.encode(a)} was not "
                                        "rated (the tables hold the candidates that follow the chosen earlier blocks)")
            r = _rating((self.block_tables[b][k] for b, k in enumerate(keys)), None)
            try:
                f = int(self.space.flops(a))
            except NotImplementedError:
                f = None
            out.append({"rating": r, "score": -r, "flops": f})
        return out
