"""What every workflow stage shares: data, loaders, output folders, benchmarks, checkpoints.

Every stage validates its inputs (config, architecture, checkpoint, data)
before it creates or writes anything in ``out``; result files are written
atomically.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ..algorithms import build_algorithm
from ..config import dump_config
from ..data import BatchLoader, load_cifar10, load_imagefolder, split_train_val
from ..engine import dist as D
from ..engine.checkpoint import RESUME_KEYS, SUPERNET_KEYS, checkpoint_error, load_checkpoint
from ..errors import ArchError, ConfigError, NasbenchError
from ..spaces import build_space
from ..utils import check_out_path, make_out_dir, read_json

__all__ = ["check_amp", "check_out_path", "check_steps", "load_resume_state", "load_datasets", "loader_factory", "prepare_out", "seed_all", "benchmark_for", "flops_range",
           "load_supernet", "read_arch", "rank_archs"]


def load_datasets(cfg):
    """``{"train", "val", "test", "num_classes"}`` in-memory datasets of ``cfg.data``.

    ``train``/``val`` are the seeded supernet-training and search-validation
    parts of the training set; ``test`` is used only for final numbers.
    """
    d = cfg.data
    root = Path(d.root)
    if root.exists() and not root.is_dir():
        raise NasbenchError(f"data.root {root} is a file; pass the folder holding the data set")
    if d.name == "cifar10":
        full, test = load_cifar10(root, "train"), load_cifar10(root, "test")
    elif d.name == "imagefolder":
        if not (root / "train").is_dir():
            raise NasbenchError(f"data.root {root} has no train/ folder (ImageFolder layout "
                                "train/<class>/*, val/<class>/* or test/<class>/*)")
        full = load_imagefolder(root / "train")
        test_dir = root / "val" if (root / "val").is_dir() else root / "test"
        test = load_imagefolder(test_dir, classes=full.classes)
    else:
        raise ConfigError(f"data.name must be 'cifar10' or 'imagefolder', got {d.name!r}")
    try:
        train, val = split_train_val(full, d.val_size, d.split_seed, train_size=d.train_size)
    except ValueError as e:  # sizes that do not fit the data set: a config error
        raise ConfigError(f"data.val_size={d.val_size}, data.train_size={d.train_size}: {e} "
                          f"(the training set of {root} has {len(full)} images)") from None
    if d.test_size is not None and int(d.test_size) < len(test):
        _, test = split_train_val(test, int(d.test_size), d.split_seed)  # seeded, class-balanced subset
    return {"train": train, "val": val, "test": test, "num_classes": full.num_classes}


def make_loader(cfg, data, train, dist, batch_size=None, seed_offset=0, cutout=0) -> BatchLoader:
    """Seeded :class:`BatchLoader` over ``data``: shuffled, augmented (``data.augment``) and
    sharded over ``dist``'s ranks when ``train``; ``batch_size`` defaults to ``data.batch_size``
    (train) or ``data.eval_batch_size``. ``cutout``: Cutout side in pixels on training batches
    only (0 = off; the retraining passes ``retrain.cutout``)."""
    bs = int(batch_size or (cfg.data.batch_size if train else cfg.data.eval_batch_size))
    return BatchLoader(data, bs, shuffle=train, augment=train and cfg.data.augment,
                       seed=int(cfg.seed) + seed_offset, drop_last=train,
                       rank=dist.rank if train else 0, world_size=dist.world_size if train else 1,
                       cutout=int(cutout or 0) if train else 0)


def loader_factory(cfg, datasets, dist):
    """``make(split, train, batch_size=None, seed_offset=0)`` over ``datasets[split]`` (the
    factory an algorithm's ``train_loader`` and an evaluator's ``from_config`` receive)."""
    def make(split, train, batch_size=None, seed_offset=0):
        return make_loader(cfg, datasets[split], train, dist, batch_size=batch_size, seed_offset=seed_offset)
    return make


def prepare_out(cfg, out, dist) -> Path:
    """Create ``out`` and write the resolved ``config.yaml`` (rank 0); all ranks wait.

    Every stage calls this only after it has checked its whole input; the folder is
    made by :func:`~nasbench.utils.make_out_dir`, so a tool that fails later without a
    checkpoint leaves nothing behind. Stages call :func:`~nasbench.utils.check_out_path`
    first of all, so an unusable ``--out`` is reported before any work.
    """
    out = Path(out)
    if dist.is_main:
        make_out_dir(out)
        dump_config(cfg, out / "config.yaml")
    D.barrier()
    return out


def load_resume_state(out) -> dict:
    """The checkpoint ``out/checkpoints/last.pth`` a ``--resume`` run continues from, read
    and checked (format, entries; without running code) before the stage writes anything;
    pass it to :meth:`~nasbench.engine.trainer.Trainer.fit` as ``resume``.

    Raises:
        NasbenchError: no checkpoint; CheckpointError: a refused, corrupt or incomplete one.
    """
    path = Path(out) / "checkpoints" / "last.pth"
    if not path.is_file():
        raise NasbenchError(f"--resume: no checkpoint at {path}")
    return load_checkpoint(path, map_location="cpu", require=RESUME_KEYS)


def check_steps(section, steps_per_epoch: int, key: str) -> int:
    """Optimizer steps of a run of ``section`` (``cfg.train`` / ``cfg.retrain``) with
    ``steps_per_epoch`` batches, checked before anything is written.

    Raises:
        ConfigError: no step at all (e.g. ``data.train_size`` below ``data.batch_size``:
            the training loader drops its last partial batch), naming ``key``.
    """
    from ..engine.optim import total_steps
    if steps_per_epoch < 1:
        raise ConfigError(f"{key}: the training loader yields no batch per epoch (fewer training images per "
                          "process than data.batch_size, and the last partial batch is dropped); lower "
                          "data.batch_size or raise data.train_size")
    return total_steps(section, steps_per_epoch)


def seed_all(seed):
    """Seed python ``random``, numpy and torch with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


_AMP_VALUES = ("none", "fp32", "no", "bf16", "fp16")


def check_amp(cfg, device, *keys) -> None:
    """Refuse a mixed-precision setting this run cannot honour, before anything is written.

    ``keys`` are the config keys the stage uses (``"train.amp"``, ``"retrain.amp"``).
    ``fp16`` is float16 autocast with a GradScaler, which needs CUDA: on a run whose
    ``device`` is not CUDA it is an error (the trainer alone would fall back to bf16).

    Raises:
        ConfigError: an unknown value, or ``fp16`` on a CPU device.
    """
    for key in keys:
        section, name = key.split(".")
        value = cfg[section][name]
        amp = "none" if value in (None, False) else str(value).lower()
        if amp not in _AMP_VALUES:
            raise ConfigError(f"{key}: unknown value {value!r}; expected none, bf16 or fp16")
        if amp == "fp16" and torch.device(device).type != "cuda":
            why = ("CUDA is not available on this machine" if not torch.cuda.is_available()
                   else f"this run's device is {torch.device(device).type} (device: {cfg.device})")
            raise ConfigError(f"{key}=fp16 (float16 autocast with a GradScaler) needs a CUDA device, but {why}; "
                              f"use {key}=bf16 or {key}=none")


def benchmark_for(cfg, space):
    """The tabular benchmark with ground truth for ``space``, or ``None``."""
    from ..benchmarks import load_benchmark
    name = cfg.benchmark.name
    if name is None:
        name = space.benchmark
    if name is None:
        return None
    root = cfg.benchmark.root or Path(cfg.data.root) / "benchmarks"
    return load_benchmark(name, root)


def flops_range(cfg):
    """``(lo, hi)`` in MACs from ``search.flops_budget`` and ``flops_min_ratio``, or None."""
    budget = cfg.search.flops_budget
    if budget is None:
        return None
    try:
        budget = float(budget)
    except (TypeError, ValueError):
        raise ConfigError(f"search.flops_budget must be a number of MACs, got {budget!r}") from None
    return (float(cfg.search.flops_min_ratio) * budget, budget)


def load_supernet(cfg, ckpt, device):
    """``(space, supernet, algorithm)`` restored from a supernet checkpoint.

    The file is loaded without running code (``torch.load(weights_only=True)``) and
    must hold :data:`~nasbench.engine.checkpoint.SUPERNET_KEYS`.

    Raises:
        CheckpointError: unreadable or refused file, a missing/garbage ``model`` or
            ``algorithm`` entry, or weights that do not fit the config's space (the
            message names the file, the entry and the checkpoint format).
    """
    state = load_checkpoint(ckpt, require=SUPERNET_KEYS)
    kind = (state.get("extra_state") or {}).get("kind")
    if kind not in (None, "supernet"):
        raise checkpoint_error(ckpt, state, f"holds a {str(kind)[:40]} network (extra_state.kind), not a "
                                            "supernet; pass the last.pth of tools/train_supernet.py")
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    supernet = space.build_supernet()
    try:
        supernet.load_state_dict(state["model"])
    except (KeyError, RuntimeError, TypeError, ValueError, AttributeError) as e:
        raise checkpoint_error(ckpt, state, f"entry 'model' is not a supernet of {space.name} with this config "
                                            f"({type(e).__name__}: {_first_line(e)})") from None
    algorithm = build_algorithm(cfg.algorithm, space, seed=cfg.seed)
    try:
        algorithm.load_state_dict(state["algorithm"])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as e:
        raise checkpoint_error(ckpt, state, f"entry 'algorithm' does not fit algorithm {cfg.algorithm.type} "
                                            f"({type(e).__name__}: {_first_line(e)})") from None
    return space, supernet.to(device).eval(), algorithm


def _first_line(e) -> str:
    return str(e).splitlines()[0] if str(e) else ""


def read_arch(space, arch) -> tuple:
    """Architecture from a key string, a named architecture, or a JSON file holding
    ``{"arch": key or list of genes}``.

    Raises:
        ArchError: an illegal architecture (a non-integral, infinite, NaN or huge gene
            included), naming the file when it came from one.
        NasbenchError: a directory, or a missing, unreadable or malformed JSON file.
    """
    p = Path(str(arch))
    try:
        is_dir = p.is_dir()
        is_file = p.suffix == ".json" or p.is_file()
    except (OSError, ValueError):  # e.g. a key longer than a file name may be
        is_dir = is_file = False
    if is_dir:
        raise NasbenchError(f"--arch {p} is a directory; pass an architecture key or a result.json file")
    if is_file:
        data = read_json(p, "architecture file")
        if not isinstance(data, dict) or "arch" not in data:
            raise NasbenchError(f"{p}: not a JSON file with an 'arch' key")
        arch = data["arch"]
    named = space.named_architectures()
    try:
        if isinstance(arch, str) and arch in named:
            return space.validate(named[arch])
        return space.validate(arch)
    except ArchError as e:
        if is_file:
            raise ArchError(f"{p}: 'arch': {e}") from None
        raise


def rank_archs(bench, space, n: int, seed: int) -> list[tuple]:
    """``n`` distinct benchmark architectures drawn with ``seed`` (the rank_eval sample)."""
    rng = np.random.default_rng(int(seed))
    keys = list(bench)
    return [space.decode(keys[i]) for i in rng.choice(len(keys), size=n, replace=False)]


def supernet_evaluator(cfg, supernet, algorithm, datasets, device):
    """The algorithm's evaluator of ``supernet`` for ``cfg.eval`` (data from ``datasets``, or
    None when the evaluator needs none)."""
    from ..engine.optim import resolve_amp
    from ..evaluators import EvalContext
    dtype = resolve_amp(cfg.train.amp, device)
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else None
    make = loader_factory(cfg, datasets, D.DistInfo(0, 1, 0, device)) if datasets is not None else None
    ctx = EvalContext(supernet=supernet, algorithm=algorithm, device=device, make_loader=make, autocast=autocast)
    return algorithm.make_evaluator(cfg.eval, ctx)


def evaluator_class(cfg, supernet):
    """The registered evaluator class of ``cfg.eval.type``, checked against ``supernet``.

    Raises:
        ConfigError: the evaluator cannot score this supernet.
    """
    from ..registry import EVALUATORS
    cls = EVALUATORS.get(cfg.eval.type)
    cls.check(supernet)
    return cls
