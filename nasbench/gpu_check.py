"""GPU readiness check: every method's CUDA paths in one command (``scripts/gpu_check.sh``).

    bash scripts/gpu_check.sh [--device cuda|cpu] --out DIR [--precisions fp32,bf16,fp16] [--methods a,b]

For every method (:data:`VARIANTS`, which must name every registered algorithm, plus NCP)
and every precision (``fp32``, ``bf16``, ``fp16`` with a GradScaler; ``fp32``, ``bf16`` on a CPU)
it checks, through the public tools (``tools/*.py`` with ``--opts`` overrides):

``train``      a short supernet training run launched by ``torchrun`` (1 process): exit 0,
               every logged loss finite, the loss lower at the end than at the start
               (mean of the last third of the steps below the mean of the first third, on
               a few fixed, unaugmented batches), the optimizer stepped (finite, non-zero
               momentum in the checkpoint), and a resumed run (``--resume``, the last
               precision only) that continues from the checkpoint (RNG, GradScaler state);
``train_2p``   the same with 2 processes (NCCL and synchronised BN on 2+ GPUs; ``--nproc2 on``
               forces it, with gloo, on a CPU);
``search``     ``tools/search.py`` on that checkpoint (evaluator autocast to the precision);
``retrain``    ``tools/retrain.py`` of the found architecture for a few steps (``retrain.amp``);
``agreement``  (fp32 row) one forward pass of every supernet of the method's configs, CPU
               fp32 against CUDA fp32 on the same weights (eval mode, BN statistics
               recalibrated on the input batch, TF32 off): ``max|cuda - cpu| <=
               AGREEMENT_TOL * max(1, max|cpu|)``, also with channels_last on CUDA; the
               error with PyTorch's default TF32 convolutions is reported, not gated;
``throughput`` img/s, steps/s and peak GPU memory of each paper config's training step
               (the trainer's ``run_step``: the algorithm's paths, AMP, clipping, SGD) on
               synthetic batches copied from pinned host memory, at the paper's batch size
               per GPU (halved until it fits), with channels_last off and on.

NCP has no supernet and its tools have no CUDA path (a 0.1M-parameter MLP trained
on CPU): its row runs ``tools/train_predictor.py`` and ``tools/ncp.py`` and says so.

Writes ``DIR/gpu_check.json``::

    {"device": "cuda", "results": [{"method", "algorithm", "precision", "config", "passed",
      "skipped", "reason", "steps_per_s", "img_per_s", "peak_mem_mb", "tolerance_met",
      "checks": {name: {"passed", ...}}, "throughput": [...]}, ...], ...}

and ``DIR/gpu_check.txt`` (the tables printed at the end). Exit status 0 when every
row that was not skipped passed, 1 otherwise, 2 for bad arguments (``--device cuda``
without CUDA: nothing is written). A variant refused as not implemented (a tool's
``error:`` line containing "not implemented") is
reported ``passed: false, skipped: true`` with the message, and does not fail the run.

``--device cpu`` is the reduced form run by the test suite: tiny batches, a few steps,
one thread per worker, and the CPU standing in for the GPU (the agreement check then
compares a rebuilt copy and channels_last against the CPU reference).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "tools"

#: Mixed-precision setting (``train.amp``/``retrain.amp``) of each precision label.
AMP = {"fp32": "none", "bf16": "bf16", "fp16": "fp16"}
PRECISIONS = {"cuda": ("fp32", "bf16", "fp16"), "cpu": ("fp32", "bf16")}
#: CPU fp32 vs CUDA fp32 (TF32 off) logits: max |difference| / max(1, max |CPU logit|).
AGREEMENT_TOL = 1e-3


# ----------------------------------------------------------------------------- the method table
@dataclass(frozen=True)
class PaperConfig:
    """A paper setting measured by the throughput check.

    ``gpus``: GPUs of the paper's run; the per-GPU batch is ``data.batch_size / gpus``.
    """

    cfg: str
    gpus: int = 1
    opts: tuple = ()


@dataclass(frozen=True)
class Variant:
    """One row group of the check: a registered algorithm exercised through one config.

    Attributes:
        method: label in the results (unique).
        algorithm: the registered algorithm it exercises (``nasbench.registry.ALGORITHMS``).
        cfg: config of the short training / search / retraining runs (repo-relative).
        opts: overrides applied to every use of ``cfg`` and of the paper configs.
        paper: paper settings for the throughput check (and the agreement check).
        devices: where the variant runs (ImageNet-sized functional runs only on CUDA).
        expect_decrease: gate on the loss decreasing within the short run.
        lr_rule: how the functional runs scale the config's learning rates to their small
            batch: ``sqrt`` (square-root rule) or ``linear``.
        note: shown in the JSON.
    """

    method: str
    algorithm: str
    cfg: str
    opts: tuple = ()
    paper: tuple = ()
    devices: tuple = ("cuda", "cpu")
    expect_decrease: bool = True
    lr_rule: str = "sqrt"
    note: str = ""


_AUTOSLIM = ("space.min_bins=0", "algorithm.type=autoslim", "algorithm.num_paths=2")
_UNIFORM = ("space.min_bins=0", "algorithm.type=uniform")
_BN_ONLY = ("BN-only training moves the loss by less than the path-sampling noise within a short run "
            "(README: mean |gamma| stays within 0.2% of 1.0 after 624 steps), so the decrease is "
            "reported, not gated; the optimizer must have stepped")

#: Every registered algorithm must appear here (tests/test_gpu_check.py and the run itself check it).
VARIANTS = (
    Variant("bcnet", "bcnet", "configs/bcnet/cbm_mobilenet_cpu.yaml",
            paper=(PaperConfig("configs/bcnet/cbm_mobilenet.yaml"), PaperConfig("configs/bcnet/cbm_resnet.yaml"),
                   PaperConfig("configs/bcnet/mbv2_imagenet_bcnetv2.yaml", gpus=8))),
    Variant("bcnet_imagenet", "bcnet", "configs/bcnet/mbv2_imagenet_bcnetv2.yaml", devices=("cuda",),
            note="the ImageNet config on the generated ImageFolder"),
    Variant("autoslim", "autoslim", "configs/bcnet/cbm_mobilenet_autoslim_cpu.yaml",
            paper=(PaperConfig("configs/bcnet/cbm_mobilenet.yaml", opts=_AUTOSLIM),),
            note="paper setting: BCNet's, with the unilateral baseline's overrides"),
    Variant("uniform", "uniform", "configs/bcnet/cbm_mobilenet_cpu.yaml", opts=_UNIFORM,
            paper=(PaperConfig("configs/bcnet/cbm_resnet.yaml"),),
            note="no config of its own: BCNet's configs with algorithm.type=uniform"),
    Variant("spos", "spos", "configs/spos/nas_bench_macro_cpu.yaml",
            paper=(PaperConfig("configs/spos/nas_bench_macro.yaml"), PaperConfig("configs/spos/imagenet.yaml", gpus=8))),
    Variant("spos_imagenet", "spos", "configs/spos/imagenet.yaml", devices=("cuda",), lr_rule="linear",
            expect_decrease=False,
            note="the ImageNet config on the generated ImageFolder. Not gated on a decrease: on a CPU stand-in "
                 "of this run (64 px, 30 steps) the loss stayed flat with the lr scaled linearly and spiked "
                 "to 10 with the square-root rule; each of 7 candidates per layer gets a few steps"),
    Variant("bnnas", "bnnas", "configs/bnnas/nas_bench_macro_cpu.yaml", expect_decrease=False, note=_BN_ONLY,
            paper=(PaperConfig("configs/bnnas/nas_bench_macro.yaml"), PaperConfig("configs/bnnas/imagenet.yaml", gpus=8))),
    Variant("bnnas_imagenet", "bnnas", "configs/bnnas/imagenet.yaml", devices=("cuda",), expect_decrease=False,
            note="the ImageNet config on the generated ImageFolder; " + _BN_ONLY),
    Variant("bnas_v2", "bnas_v2", "configs/bnas_v2/cifar10_cpu.yaml",
            paper=(PaperConfig("configs/bnas_v2/cifar10.yaml"), PaperConfig("configs/bnas_v2/cifar10_pc.yaml"))),
    Variant("bnas_v2_unrolled", "bnas_v2", "configs/bnas_v2/cifar10_cpu.yaml", opts=("algorithm.unrolled=true",),
            paper=(PaperConfig("configs/bnas_v2/cifar10_unrolled.yaml"),),
            note="second-order (unrolled) DARTS"),
    Variant("bossnas_nats", "bossnas", "configs/bossnas/nats_cifar10_cpu.yaml",
            opts=("algorithm.epochs_per_block=2", "algorithm.interval=2", "algorithm.bn_batch_size=8",
                  "algorithm.rating_images=8"),
            paper=(PaperConfig("configs/bossnas/nats_cifar10.yaml", gpus=4),),
            expect_decrease=False,
            note="self-supervised: 3 blocks x 2 one-batch epochs, each block rated at its end; the BYOL loss is "
                 "not gated on a decrease (the target moves with the online net and the block changes)"),
)
#: NCP (no registered supernet algorithm): predictor training + propagation, CPU only.
NCP_METHOD = "ncp"
NCP_CFG = "configs/ncp/nas_bench_201.yaml"


def registered_algorithms() -> list[str]:
    """Names in the algorithm registry (``nasbench.registry.ALGORITHMS``)."""
    import nasbench.algorithms  # noqa: F401  (registration)
    from nasbench.registry import ALGORITHMS
    return ALGORITHMS.names()


def missing_algorithms(registered=None, variants=VARIANTS, device: str = "cpu") -> list[str]:
    """Registered algorithms without a variant that runs on ``device``."""
    covered = {v.algorithm for v in variants if device in v.devices}
    return [a for a in (registered_algorithms() if registered is None else registered) if a not in covered]


def coverage_rows(registered=None, variants=VARIANTS, device: str = "cpu") -> list[dict]:
    """A failed result row for every registered algorithm the table does not cover."""
    return [{"method": a, "algorithm": a, "precision": "all", "config": None, "passed": False, "skipped": False,
             "reason": f"registered algorithm {a!r} has no entry for --device {device} in VARIANTS of "
                       "nasbench/gpu_check.py: add one (config, paper configs)", "checks": {}}
            for a in missing_algorithms(registered, variants, device)]


# ----------------------------------------------------------------------------- budgets
@dataclass(frozen=True)
class Budget:
    """Sizes of one mode of the check (see :data:`BUDGETS`)."""

    batch: int                # global batch of the functional runs (images)
    batches_per_epoch: int    # fixed, unaugmented training batches (the training set is batch x this)
    steps: int                # optimizer steps of a functional training run
    resume_steps: int         # further steps of the resumed run (last precision)
    resume_all: bool          # resume check for every method (else the first one only)
    retrain_steps: int
    image_size: int           # side of the generated ImageFolder images (pixels)
    imagefolder_classes: int
    agree_batch: int
    agree_max_size: int       # cap on the side of the agreement input (pixels)
    tp_warmup: int            # throughput: untimed steps
    tp_min_steps: int         # timed steps: at least min_steps and min_seconds, at most max_steps
    tp_max_steps: int
    tp_min_seconds: float
    tp_max_batch: int         # cap on the throughput batch (0 = the paper's per-GPU batch)
    tp_max_size: int          # cap on the throughput image side (0 = the config's image_size)
    predictor_epochs: int
    ncp_iterations: int
    timeout: float            # seconds per launched tool


BUDGETS = {
    "cuda": Budget(batch=32, batches_per_epoch=4, steps=24, resume_steps=4, resume_all=True, retrain_steps=4,
                   image_size=224, imagefolder_classes=4, agree_batch=8, agree_max_size=224, tp_warmup=2, tp_min_steps=3,
                   tp_max_steps=10, tp_min_seconds=0.5, tp_max_batch=0, tp_max_size=0, predictor_epochs=2,
                   ncp_iterations=5, timeout=600.0),
    "cpu": Budget(batch=8, batches_per_epoch=1, steps=6, resume_steps=1, resume_all=False, retrain_steps=1,
                  image_size=32, imagefolder_classes=4, agree_batch=4, agree_max_size=32, tp_warmup=0, tp_min_steps=1,
                  tp_max_steps=1, tp_min_seconds=0.0, tp_max_batch=2, tp_max_size=32, predictor_epochs=1,
                  ncp_iterations=3, timeout=900.0),
}


# ----------------------------------------------------------------------------- data
def make_tiny_imagefolder(root, classes: int = 4, train_per_class: int = 12, val_per_class: int = 4,
                          size: int = 32, seed: int = 0) -> Path:
    """Write a small ImageFolder tree ``root/{train,val}/c<k>/<i>.png`` and return ``root``.

    Class ``k`` is a fixed mean colour plus Gaussian noise (std 40), so a network can
    learn it within a few steps. Reuses an existing complete tree (``root/.complete``
    holding the same parameters).
    """
    import numpy as np
    from PIL import Image

    root = Path(root)
    stamp = f"{classes} {train_per_class} {val_per_class} {size} {seed}\n"
    marker = root / ".complete"
    if marker.is_file() and marker.read_text() == stamp:
        return root
    rng = np.random.default_rng(seed)
    colours = rng.integers(40, 216, (classes, 3))
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            d = root / split / f"c{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = np.clip(colours[c] + rng.normal(0.0, 40.0, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(d / f"{i:04d}.png")
    marker.write_text(stamp)
    return root


# ----------------------------------------------------------------------------- launching tools
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _last_error(text: str) -> str:
    """The most telling line of a failed tool's output: its ``error:`` line, else the last line."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for l in reversed(lines):
        if l.startswith("error:"):
            return l
    for l in reversed(lines):  # a traceback's last line, not a torchrun summary
        if ("Error" in l or "Exception" in l) and not l.startswith(("[", "torch.distributed", "=")):
            return l
    return lines[-1] if lines else ""


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_gpu_check_tool_{name}", TOOLS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@dataclass
class Launch:
    rc: int
    seconds: float
    message: str = ""
    log: str = ""


def launch(tool: str, argv: list, log_path: Path, nproc: int | None, timeout: float, env: dict | None = None) -> Launch:
    """Run ``tools/<tool>.py argv``.

    ``nproc=None``: in this process (``main(argv)``; a NasbenchError is exit code 2 as
    on the command line). ``nproc=N``: ``python -m torch.distributed.run
    --nproc_per_node N`` in a subprocess. Output goes to ``log_path``.
    """
    import torch

    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(a) for a in argv]
    t0 = time.perf_counter()
    if nproc is None:
        from nasbench.engine import dist as D
        from nasbench.errors import NasbenchError
        threads = torch.get_num_threads()
        rc, message = 0, ""
        with open(log_path, "w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
            print(f"# in process: tools/{tool}.py {' '.join(argv)}", flush=True)
            try:
                _load_tool(tool).main(argv)
            except NasbenchError as e:
                rc, message = 2, f"error: {e}"
                print(message)
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # noqa: BLE001  (a failed check, reported)
                rc, message = 1, f"{type(e).__name__}: {e}".splitlines()[0]
                traceback.print_exc(file=f)
            finally:
                D.cleanup()
                torch.set_num_threads(threads)  # the NCP tools set their own
        return Launch(rc, time.perf_counter() - t0, message, str(log_path))
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--nnodes=1",
           f"--master_port={_free_port()}", str(TOOLS / f"{tool}.py"), *argv]
    with open(log_path, "w") as f:
        f.write(f"# {' '.join(cmd)}\n")
        f.flush()
        try:
            p = subprocess.run(cmd, cwd=REPO, env=env or os.environ.copy(), stdout=f, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = -9
    text = log_path.read_text(errors="replace")
    message = f"timed out after {timeout:.0f} s" if rc == -9 else ("" if rc == 0 else _last_error(text))
    return Launch(rc, time.perf_counter() - t0, message, str(log_path))


def not_implemented(launch_: Launch) -> bool:
    """The tool refused the config as not implemented (its ``error:`` line says so).

    The exit code is 2 from the tool itself and 1 from torchrun around it, so only the
    message counts.
    """
    return launch_.rc != 0 and launch_.message.startswith("error:") and "not implemented" in launch_.message


# ----------------------------------------------------------------------------- run configs
def load_cfg(path, opts=()):
    from nasbench.config import load_config
    return load_config(REPO / path, list(opts))


def run_opts(variant: Variant, budget: Budget, device: str, precision: str, data_root, imagefolder) -> list[str]:
    """``--opts`` of the functional runs of ``variant`` (training, search, retraining).

    A few fixed, unaugmented batches of ``budget.batch`` images; learning rates scaled
    from the config's batch by ``variant.lr_rule``; tiny searches.
    """
    cfg = load_cfg(variant.cfg, variant.opts)
    b = budget.batch
    scale = (b / float(cfg.data.batch_size)) ** (0.5 if variant.lr_rule == "sqrt" else 1.0)
    opts = list(variant.opts) + [
        f"device={device}", f"train.amp={AMP[precision]}", f"retrain.amp={AMP[precision]}",
        f"data.batch_size={b}", f"data.train_size={b * budget.batches_per_epoch}", f"data.val_size={b}",
        "data.augment=false", f"data.eval_batch_size={b}",
        f"train.lr={cfg.train.lr * scale:.6g}", "train.warmup_epochs=0", "train.epochs=1000",
        f"train.max_steps={budget.steps}", "train.log_interval=1", "train.ckpt_interval=0",
        f"retrain.lr={cfg.retrain.lr * scale:.6g}", "retrain.warmup_epochs=0", "retrain.epochs=1000",
        f"retrain.max_steps={budget.retrain_steps}", "retrain.log_interval=1", "retrain.ckpt_interval=0",
        "eval.recal_batches=1", f"eval.recal_batch_size={b}", "eval.val_batches=1",
        "search.population=4", "search.topk=2", "search.mutation_num=2", "search.crossover_num=2",
        "search.epochs=1", "search.prior_steps=20", "search.num_queries=4"]
    # the typed sections (eval, search) take only the keys of their configured type
    opts = [o for o in opts if o.split(".")[0] not in ("eval", "search")
            or o.split("=")[0].split(".")[1] in cfg[o.split(".")[0]]]
    if cfg.data.name == "imagefolder":
        opts += [f"data.root={imagefolder}", f"data.num_classes={budget.imagefolder_classes}", "data.test_size=null"]
    else:
        opts += [f"data.root={data_root}", f"data.test_size={2 * b}"]
    return opts


# ----------------------------------------------------------------------------- functional checks
def _read_losses(run_dir: Path) -> tuple[list, list]:
    """``(losses, images_per_s)`` logged per step in ``run_dir/log.jsonl``."""
    losses, ips = [], []
    path = run_dir / "log.jsonl"
    if not path.is_file():
        return losses, ips
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if "train/loss" in row:
            v = row["train/loss"]
            losses.append(float("nan") if v is None else float(v))
            if row.get("train/images_per_s") is not None:
                ips.append(float(row["train/images_per_s"]))
    return losses, ips


def _median(values):
    values = sorted(values)
    if not values:
        return None
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def check_training_run(run_dir: Path, launched: Launch, steps: int, world_size: int, batch: int,
                       expect_decrease: bool, device: str) -> dict:
    """Verdict on a finished ``tools/train_supernet.py`` run (see module doc)."""
    import torch

    res = {"passed": False, "rc": launched.rc, "seconds": round(launched.seconds, 1), "log": launched.log,
           "world_size": world_size}
    if launched.rc != 0:
        res["error"] = launched.message or f"exit code {launched.rc}"
        return res
    losses, ips = _read_losses(run_dir)
    k = max(1, len(losses) // 3)
    first, last = (sum(losses[:k]) / k, sum(losses[-k:]) / k) if losses else (None, None)
    finite = bool(losses) and all(math.isfinite(v) for v in losses)
    decreased = finite and last < first
    res.update(steps_logged=len(losses), loss_first=first, loss_last=last, losses_finite=finite,
               loss_decreased=decreased, decrease_gated=expect_decrease)
    # steps/s from the logged img/s (each log line covers one step); the first step warms up
    rates = ips[1:] or ips
    if rates:
        res["img_per_s"] = _median(rates)
        res["steps_per_s"] = res["img_per_s"] / batch
    errors = []
    if len(losses) != steps:
        errors.append(f"{len(losses)} losses logged, expected {steps}")
    if not finite:
        errors.append("non-finite loss")
    elif expect_decrease and not decreased:
        errors.append(f"loss did not decrease: mean of the first {k} steps {first:.4f}, of the last {k} {last:.4f}")
    ckpt = run_dir / "checkpoints" / "last.pth"
    try:
        from nasbench.engine.checkpoint import load_checkpoint
        state = load_checkpoint(ckpt)
    except Exception as e:  # noqa: BLE001
        errors.append(f"checkpoint unreadable: {e}")
        state = None
    if state is not None:
        if state.get("step") != steps or state.get("world_size") != world_size:
            errors.append(f"checkpoint at step {state.get('step')} with world size {state.get('world_size')}, "
                          f"expected {steps} / {world_size}")
        # the trainer's optimizer, or the algorithm's own (an algorithm with owns_optimizer keeps it in its state)
        opts_ = [state["optimizer"]] + [a["optimizer"] for a in [state.get("algorithm")]
                                        if isinstance(a, dict) and isinstance(a.get("optimizer"), dict)]
        bufs = [s["momentum_buffer"] for o in opts_ for s in o.get("state", {}).values()
                if isinstance(s, dict) and s.get("momentum_buffer") is not None]
        moved = bool(bufs) and all(bool(torch.isfinite(b).all()) for b in bufs) and \
            max(float(b.abs().max()) for b in bufs) > 0
        res["optimizer_stepped"] = moved
        if not moved:
            errors.append("the optimizer never stepped (no finite non-zero momentum in the checkpoint)")
        scaler = state.get("scaler") or {}
        if scaler:
            res["grad_scale"] = float(scaler.get("scale", float("nan")))
    log_txt = (run_dir / "log.txt").read_text(errors="replace") if (run_dir / "log.txt").is_file() else ""
    if device == "cuda" and world_size > 1 and "sync_bn ignored" in log_txt:
        errors.append("synchronised BN was not used (log: sync_bn ignored)")
    res["passed"] = not errors
    if errors:
        res["error"] = "; ".join(errors)
    return res


def check_search(sdir: Path, launched: Launch) -> dict:
    res = {"passed": False, "rc": launched.rc, "seconds": round(launched.seconds, 1), "log": launched.log}
    if launched.rc != 0:
        res["error"] = launched.message or f"exit code {launched.rc}"
        return res
    try:
        r = json.loads((sdir / "result.json").read_text())
        res.update(arch=r["arch"], flops=r["flops"], score=r.get("score"), evaluator=r.get("evaluator"))
        ok = isinstance(r["arch"], str) and r["flops"] > 0 and (r.get("score") is None or math.isfinite(r["score"]))
        res["passed"] = bool(ok)
        if not ok:
            res["error"] = f"implausible result {r['arch']!r}, flops {r['flops']}, score {r.get('score')}"
    except (OSError, ValueError, KeyError) as e:
        res["error"] = f"no valid result.json ({type(e).__name__}: {e})"
    return res


def check_retrain(rdir: Path, launched: Launch, steps: int) -> dict:
    res = {"passed": False, "rc": launched.rc, "seconds": round(launched.seconds, 1), "log": launched.log}
    if launched.rc != 0:
        res["error"] = launched.message or f"exit code {launched.rc}"
        return res
    try:
        r = json.loads((rdir / "result.json").read_text())
        res.update(arch=r["arch"], top1=r["top1"], test_loss=r["test_loss"], steps=r["steps"])
        losses, _ = _read_losses(rdir)
        ok = (0.0 <= r["top1"] <= 100.0 and math.isfinite(r["test_loss"]) and r["steps"] == steps
              and losses and all(math.isfinite(v) for v in losses))
        res["passed"] = bool(ok)
        if not ok:
            res["error"] = f"top1 {r['top1']}, test loss {r['test_loss']}, {r['steps']} steps, losses {losses}"
    except (OSError, ValueError, KeyError) as e:
        res["error"] = f"no valid result.json ({type(e).__name__}: {e})"
    return res


@dataclass
class Context:
    """What a worker needs (passed to worker processes as JSON)."""

    out: str
    device: str
    precisions: list
    data_root: str
    imagefolder: str
    nproc2: bool
    inject_failure: str = ""
    threads: int = 0
    stages: list = field(default_factory=lambda: ["functional", "perf"])

    @property
    def budget(self) -> Budget:
        return BUDGETS[self.device]


def _tool_env(ctx: Context) -> dict:
    env = os.environ.copy()
    if ctx.threads:
        env["OMP_NUM_THREADS"] = str(ctx.threads)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def functional(variant: Variant, ctx: Context) -> dict:
    """Training (1 and 2 processes), resume, search and retraining of ``variant`` per precision.

    Returns ``{precision: {"checks": {...}, "skipped": bool, "reason": str}}``.
    """
    b = ctx.budget
    root = Path(ctx.out) / variant.method
    env = _tool_env(ctx)
    cfg_path = str(REPO / variant.cfg)
    # torchrun launches the training runs; on a CPU only the first variant's (the rest in process)
    torchrun = ctx.device == "cuda" or variant.method == VARIANTS[0].method
    out = {}
    for i, p in enumerate(ctx.precisions):
        opts = run_opts(variant, b, ctx.device, p, ctx.data_root, ctx.imagefolder)
        if ctx.inject_failure == variant.method:
            opts.append("train.lr=1.0e+30")  # hidden test option: diverges, so the run must fail
        checks = {}
        row = {"checks": checks, "skipped": False, "reason": None}
        out[p] = row
        tdir = root / p / "train"
        lt = launch("train_supernet", ["--cfg", cfg_path, "--out", tdir, "--opts", *opts], root / p / "train.log",
                    1 if torchrun else None, b.timeout, env)
        if not_implemented(lt):
            for q in ctx.precisions[i:]:
                out[q] = {"checks": {}, "skipped": True, "reason": lt.message}
            break
        checks["train"] = check_training_run(tdir, lt, b.steps, 1, b.batch, variant.expect_decrease, ctx.device)
        if ctx.nproc2:
            t2 = root / p / "train_2p"
            l2 = launch("train_supernet", ["--cfg", cfg_path, "--out", t2, "--opts", *opts], root / p / "train_2p.log",
                        2, b.timeout, env)
            checks["train_2p"] = check_training_run(t2, l2, b.steps, 2, b.batch, variant.expect_decrease, ctx.device)
        if not checks["train"]["passed"]:
            continue
        if p == ctx.precisions[-1] and b.resume_steps and (b.resume_all or variant.method == VARIANTS[0].method):
            more = opts + [f"train.max_steps={b.steps + b.resume_steps}"]
            lr_ = launch("train_supernet", ["--cfg", cfg_path, "--out", tdir, "--resume", "--opts", *more],
                         root / p / "resume.log", 1 if torchrun else None, b.timeout, env)
            res = {"passed": False, "rc": lr_.rc, "seconds": round(lr_.seconds, 1), "log": lr_.log}
            if lr_.rc == 0:
                losses, _ = _read_losses(tdir)
                res["steps_logged"] = len(losses)
                res["passed"] = len(losses) == b.steps + b.resume_steps and all(math.isfinite(v) for v in losses)
                if not res["passed"]:
                    res["error"] = f"{len(losses)} losses after resuming, expected {b.steps + b.resume_steps}"
            else:
                res["error"] = lr_.message
            checks["resume"] = res
        ckpt = tdir / "checkpoints" / "last.pth"
        sdir, rdir = root / p / "search", root / p / "retrain"
        ls = launch("search", ["--cfg", cfg_path, "--ckpt", ckpt, "--out", sdir, "--opts", *opts],
                    root / p / "search.log", None, b.timeout, env)
        checks["search"] = check_search(sdir, ls)
        if checks["search"]["passed"]:
            lr2 = launch("retrain", ["--cfg", cfg_path, "--arch", sdir / "result.json", "--out", rdir, "--opts", *opts],
                         root / p / "retrain.log", None, b.timeout, env)
            checks["retrain"] = check_retrain(rdir, lr2, b.retrain_steps)
            if ctx.nproc2:  # distributed search (split population) and DDP retraining (SyncBatchNorm on CUDA)
                d = root / p / "search_2p"
                l_ = launch("search", ["--cfg", cfg_path, "--ckpt", ckpt, "--out", d, "--opts", *opts],
                            root / p / "search_2p.log", 2, b.timeout, env)
                checks["search_2p"] = check_search(d, l_)
                d = root / p / "retrain_2p"
                l_ = launch("retrain", ["--cfg", cfg_path, "--arch", sdir / "result.json", "--out", d, "--opts", *opts],
                            root / p / "retrain_2p.log", 2, b.timeout, env)
                checks["retrain_2p"] = check_retrain(d, l_, b.retrain_steps)
    return out


def functional_ncp(ctx: Context) -> dict:
    """NCP: predictor training and propagation (CPU-only tools)."""
    b = ctx.budget
    root = Path(ctx.out) / NCP_METHOD
    env = _tool_env(ctx)
    bench = str(Path(ctx.data_root) / "benchmarks")
    checks = {}
    lp = launch("train_predictor", ["--cfg", REPO / NCP_CFG, "--out", root / "predictor", "--root", bench,
                                    "--epochs", b.predictor_epochs, "--quiet"], root / "train_predictor.log",
                None, b.timeout, env)
    res = {"passed": False, "rc": lp.rc, "seconds": round(lp.seconds, 1), "log": lp.log, "device": "cpu"}
    if lp.rc == 0:
        m = json.loads((root / "predictor" / "metrics.json").read_text())
        taus = list(m["kendall_tau"].values())
        res.update(kendall_tau=m["kendall_tau"], passed=bool(taus) and all(math.isfinite(t) for t in taus))
        if not res["passed"]:
            res["error"] = f"non-finite held-out Kendall tau {m['kendall_tau']}"
    else:
        res["error"] = lp.message
    checks["train_predictor"] = res
    if res["passed"]:
        ln = launch("ncp", ["--cfg", REPO / NCP_CFG, "--predictor", root / "predictor" / "predictor.pth",
                            "--out", root / "ncp", "--root", bench, "--seed", 0, "--iterations", b.ncp_iterations],
                    root / "ncp.log", None, b.timeout, env)
        r2 = {"passed": False, "rc": ln.rc, "seconds": round(ln.seconds, 1), "log": ln.log, "device": "cpu"}
        if ln.rc == 0:
            traj = json.loads((root / "ncp" / "trajectory.json").read_text())
            r2.update(steps=len(traj), passed=len(traj) == b.ncp_iterations + 1)
            if not r2["passed"]:
                r2["error"] = f"{len(traj)} trajectory entries, expected {b.ncp_iterations + 1}"
        else:
            r2["error"] = ln.message
        checks["ncp"] = r2
    return {"fp32": {"checks": checks, "skipped": False, "reason": None}}


# ----------------------------------------------------------------------------- agreement and throughput
def _activate(net, space, algorithm, seed: int = 0):
    """Activate one seeded architecture; returns the sides to compare (width: the evaluator's)."""
    import numpy as np
    if space.family == "darts":  # the whole mixed network, weighted by its architecture parameters
        return [None]
    arch = space.sample(np.random.default_rng(seed))
    return [(arch, side) for side in getattr(algorithm, "eval_sides", ("left",))]


def agreement(cfg_path: str, opts, device: str, budget: Budget, seed: int = 0) -> dict:
    """One forward pass of the config's supernet: CPU fp32 reference vs ``device`` fp32 (see module doc)."""
    import torch

    from nasbench.algorithms import build_algorithm
    from nasbench.evaluators.accuracy import recalibrate_bn
    from nasbench.spaces import build_space

    cfg = load_cfg(cfg_path, opts)
    size = min(int(cfg.data.image_size), budget.agree_max_size)
    res = {"config": cfg_path, "opts": list(opts), "image_size": size, "batch": budget.agree_batch,
           "tolerance": AGREEMENT_TOL, "passed": False}
    torch.manual_seed(seed)
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    algorithm = build_algorithm(cfg.algorithm, space, seed=seed)
    ref_net = space.build_supernet()
    x = torch.randn(budget.agree_batch, 3, size, size, generator=torch.Generator().manual_seed(seed))
    dev = torch.device(device if device == "cpu" else "cuda:0")
    errors = {}
    tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    try:
        for path in _activate(ref_net, space, algorithm, seed):
            label = "all" if path is None else f"{space.encode(path[0])}/{path[1]}"
            with torch.no_grad():
                if path is not None:
                    ref_net.set_active(*path)
                recalibrate_bn(ref_net, [x])  # realistic BN statistics, then eval mode
                ref = ref_net(x).float()
                scale = max(1.0, float(ref.abs().max()))
                net = space.build_supernet()
                net.load_state_dict(ref_net.state_dict())
                net = net.to(dev).eval()
                if path is not None:
                    net.set_active(*path)
                torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
                err = float((net(x.to(dev)).float().cpu() - ref).abs().max()) / scale
                net_cl = net.to(memory_format=torch.channels_last)
                err_cl = float((net_cl(x.to(dev).contiguous(memory_format=torch.channels_last)).float().cpu()
                                - ref).abs().max()) / scale
                entry = {"fp32": err, "fp32_channels_last": err_cl}
                if dev.type == "cuda":
                    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
                    net = net.to(memory_format=torch.contiguous_format)
                    entry["tf32_default"] = float((net(x.to(dev)).float().cpu() - ref).abs().max()) / scale
                errors[label] = entry
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    worst = max(max(e["fp32"], e["fp32_channels_last"]) for e in errors.values())
    res.update(errors=errors, max_error=worst, passed=worst <= AGREEMENT_TOL)
    if not res["passed"]:
        res["error"] = f"max relative difference {worst:.3g} > {AGREEMENT_TOL:g}"
    return res


def _to_device_fmt(batch, dev, fmt):
    """``batch`` (a tensor or nested tuples/lists of tensors) on ``dev``, 4-d tensors in memory format ``fmt``."""
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device_fmt(b, dev, fmt) for b in batch)
    batch = batch.to(dev, non_blocking=True)
    return batch.contiguous(memory_format=fmt) if batch.dim() == 4 else batch


class _SyntheticLoader:
    """``len`` + ``epoch(e, start)`` over one fixed host batch (for the trainer and DARTS's arch steps)."""

    def __init__(self, x, y, length: int = 10**6):
        self.x, self.y, self.length = x, y, length

    def __len__(self):
        return self.length

    def epoch(self, epoch, start=0):
        while True:
            yield self.x, self.y


def _is_oom(e: BaseException) -> bool:
    import torch
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


def measure_step(cfg_path: str, opts, device: str, precision: str, batch: int, size: int, channels_last: bool,
                 budget: Budget, out_dir) -> dict:
    """img/s, steps/s and peak memory of the config's training step (the trainer's ``run_step``)."""
    import torch

    from nasbench.algorithms import build_algorithm
    from nasbench.config import Config
    from nasbench.engine import dist as D
    from nasbench.engine.logger import RunLogger
    from nasbench.engine.trainer import Trainer
    from nasbench.spaces import build_space

    cfg = load_cfg(cfg_path, opts)
    dev = torch.device("cuda:0" if device == "cuda" else "cpu")
    cuda = dev.type == "cuda"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    torch.manual_seed(0)
    space = build_space(cfg.space, num_classes=cfg.data.num_classes)
    net = space.build_supernet().to(memory_format=fmt)
    algorithm = build_algorithm(cfg.algorithm, space, seed=0)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    y = torch.randint(0, int(cfg.data.num_classes), (batch,))
    if cuda:  # what a GPU loader does: page-locked host batches, asynchronous copies
        x, y = x.pin_memory(), y.pin_memory()
    # the algorithm asks for its data (e.g. BNAS-v2's architecture split): every split is the synthetic batch
    loader = algorithm.train_loader(lambda split, train, batch_size=None, seed_offset=0: _SyntheticLoader(x, y))
    train_cfg = Config({**cfg.train, "amp": AMP[precision], "warmup_epochs": 0, "epochs": 1, "max_steps": None,
                        "log_interval": 10**9, "ckpt_interval": 0, "sync_bn": False})
    logger = RunLogger(out_dir, use_tensorboard=False)
    try:
        trainer = Trainer(net, algorithm, loader, train_cfg, out_dir, dist=D.DistInfo(0, 1, 0, dev), logger=logger)

        # the step gets what the algorithm's loader makes of the synthetic batch (BossNAS: groups of view pairs)
        host = next(iter(loader.epoch(0)))

        def step():
            trainer.run_step(_to_device_fmt(host, dev, fmt))

        trainer.module.train()
        for _ in range(budget.tp_warmup):
            step()
        if cuda:
            torch.cuda.synchronize(dev)
        n, t0 = 0, time.perf_counter()
        while n < budget.tp_max_steps and (n < budget.tp_min_steps or time.perf_counter() - t0 < budget.tp_min_seconds):
            step()
            n += 1
            if cuda and n >= budget.tp_min_steps:
                torch.cuda.synchronize(dev)
        if cuda:
            torch.cuda.synchronize(dev)
        dt = time.perf_counter() - t0
        res = {"steps": n, "seconds": dt, "steps_per_s": n / dt, "img_per_s": n * batch / dt,
               "amp_dtype": str(trainer.amp_dtype).replace("torch.", "") if trainer.amp_dtype else "float32",
               "grad_scaler": bool(trainer.scaler.is_enabled())}
        if cuda:
            res["peak_mem_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
        return res
    finally:
        logger.close()


def throughput(paper: PaperConfig, device: str, precision: str, channels_last: bool, budget: Budget, out_dir) -> dict:
    """:func:`measure_step` at the paper's per-GPU batch, halved until it fits in memory."""
    import gc

    import torch

    cfg = load_cfg(paper.cfg, paper.opts)
    per_gpu = max(1, int(cfg.data.batch_size) // max(1, paper.gpus))
    batch = min(per_gpu, budget.tp_max_batch) if budget.tp_max_batch else per_gpu
    size = int(cfg.data.image_size)
    size = min(size, budget.tp_max_size) if budget.tp_max_size else size
    res = {"config": paper.cfg, "opts": list(paper.opts), "precision": precision, "channels_last": channels_last,
           "paper_batch_per_gpu": per_gpu, "batch": batch, "image_size": size, "passed": False}
    while True:
        oom = False
        try:
            res.update(measure_step(paper.cfg, paper.opts, device, precision, batch, size, channels_last, budget,
                                    out_dir))
            res["batch"] = batch
            res["passed"] = math.isfinite(res["img_per_s"]) and res["img_per_s"] > 0
            return res
        except Exception as e:  # noqa: BLE001
            if device == "cuda" and _is_oom(e) and batch > 1:
                oom = True
            else:
                res["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
                res["traceback"] = traceback.format_exc(limit=6)
                return res
        if oom:  # outside the except clause, so the failed step's tensors are unreferenced
            gc.collect()
            torch.cuda.empty_cache()
            batch //= 2
            res["reduced_for_memory"] = True


def perf(variant: Variant, ctx: Context, skipped: bool) -> dict:
    """Agreement (fp32) and throughput (every precision, channels_last off/on) of ``variant``."""
    b = ctx.budget
    root = Path(ctx.out) / variant.method / "perf"
    out = {"agreement": [], "throughput": []}
    if skipped:
        return out
    configs = [(variant.cfg, tuple(variant.opts))] + [(pc.cfg, tuple(variant.opts) + tuple(pc.opts))
                                                      for pc in variant.paper]
    seen = set()
    for cfg_path, opts in configs:
        if (cfg_path, opts) in seen:
            continue
        seen.add((cfg_path, opts))
        try:
            out["agreement"].append(agreement(cfg_path, opts, ctx.device, b))
        except Exception as e:  # noqa: BLE001
            out["agreement"].append({"config": cfg_path, "opts": list(opts), "passed": False,
                                     "error": f"{type(e).__name__}: {e}".splitlines()[0],
                                     "traceback": traceback.format_exc(limit=6)})
    for pc in variant.paper:
        pc = PaperConfig(pc.cfg, pc.gpus, tuple(variant.opts) + tuple(pc.opts))
        for p in ctx.precisions:
            for cl in (False, True):
                out["throughput"].append(throughput(pc, ctx.device, p, cl, b, root))
    return out


# ----------------------------------------------------------------------------- worker
def run_worker(method: str, ctx: Context) -> dict:
    """Run the stages of one method in this process; writes ``OUT/<method>/worker.json``."""
    import torch
    if ctx.threads:
        torch.set_num_threads(ctx.threads)
    result = {"method": method}
    if method == NCP_METHOD:
        result["functional"] = functional_ncp(ctx) if "functional" in ctx.stages else {}
    else:
        variant = next(v for v in VARIANTS if v.method == method)
        if "functional" in ctx.stages:
            result["functional"] = functional(variant, ctx)
        if "perf" in ctx.stages:
            fn = result.get("functional") or _read_worker(ctx, method, "functional").get("functional", {})
            skipped = any(r.get("skipped") for r in fn.values())
            result["perf"] = perf(variant, ctx, skipped)
    from nasbench.utils import atomic_write_json
    atomic_write_json(result, Path(ctx.out) / method / f"worker_{'_'.join(ctx.stages)}.json")
    return result


def _read_worker(ctx: Context, method: str, stages: str) -> dict:
    p = Path(ctx.out) / method / f"worker_{stages}.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def _spawn_worker(method: str, ctx: Context, stages: list, timeout: float) -> dict:
    """Run :func:`run_worker` in a subprocess (isolation: a CUDA error or crash stays in one method)."""
    spec = {**asdict(ctx), "stages": stages}
    log = Path(ctx.out) / method / f"worker_{'_'.join(stages)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "nasbench.gpu_check", "--out", ctx.out, "--_worker", method, "--_spec", json.dumps(spec)]
    with open(log, "w") as f:
        try:
            p = subprocess.run(cmd, cwd=REPO, env=_tool_env(ctx), stdout=f, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = -9
    res = _read_worker(ctx, method, "_".join(stages))
    if rc != 0 or not res:
        text = log.read_text(errors="replace")
        res = {"method": method, "worker_error": (f"worker timed out after {timeout:.0f} s" if rc == -9 else
                                                  f"worker exit code {rc}: {_last_error(text)}"),
               "worker_log": str(log)}
    return res


# ----------------------------------------------------------------------------- results
def _summary_throughput(entries: list, precision: str) -> tuple:
    """The first paper config's measurements of ``precision``: (NCHW entry, channels_last entry)."""
    mine = [t for t in entries if t["precision"] == precision]
    if not mine:
        return None, None
    first = mine[0]["config"], mine[0]["opts"]
    same = [t for t in mine if (t["config"], t["opts"]) == first]
    return (next((t for t in same if not t["channels_last"]), None), next((t for t in same if t["channels_last"]), None))


def assemble(ctx: Context, methods: list, workers: dict) -> list[dict]:
    """The result rows (one per method and precision) from the workers' outputs."""
    rows = []
    for method in methods:
        variant = next((v for v in VARIANTS if v.method == method), None)
        w = workers.get(method, {})
        precisions = ["fp32"] if method == NCP_METHOD else list(ctx.precisions)
        fn = w.get("functional", {})
        pf = w.get("perf", {})
        for p in precisions:
            row = {"method": method, "algorithm": variant.algorithm if variant else NCP_METHOD, "precision": p,
                   "config": variant.cfg if variant else NCP_CFG, "device": ctx.device, "passed": False,
                   "skipped": False, "reason": None, "steps_per_s": None, "img_per_s": None, "peak_mem_mb": None,
                   "img_per_s_channels_last": None, "peak_mem_mb_channels_last": None, "tolerance_met": None,
                   "checks": {}, "throughput": []}
            if variant and variant.note:
                row["note"] = variant.note
            if method == NCP_METHOD:
                row["device"] = "cpu"
                row["note"] = ("NCP's predictor (a small MLP) and propagation run on CPU only: its tools have "
                               "no device option, so this row proves them on this machine's CPU")
            rows.append(row)
            if "worker_error" in w:
                row["reason"] = w["worker_error"]
                continue
            r = fn.get(p)
            if r is None:
                row["reason"] = "no functional result"
                continue
            if r.get("skipped"):
                row.update(skipped=True, reason=r["reason"])
                continue
            row["checks"] = dict(r["checks"])
            if "perf_error" in w:  # the agreement/throughput worker died (e.g. a CUDA error)
                row["checks"]["perf"] = {"passed": False, "error": w["perf_error"]}
            train = r["checks"].get("train", {})
            row["steps_per_s"] = train.get("steps_per_s")
            if variant:
                if p == "fp32":
                    ag = pf.get("agreement", [])
                    row["checks"]["agreement"] = {"passed": bool(ag) and all(a["passed"] for a in ag),
                                                  "configs": ag, "tolerance": AGREEMENT_TOL}
                    row["tolerance_met"] = row["checks"]["agreement"]["passed"]
                tp = [t for t in pf.get("throughput", []) if t["precision"] == p]
                row["throughput"] = tp
                if variant.paper:
                    row["checks"]["throughput"] = {"passed": bool(tp) and all(t["passed"] for t in tp)}
                    bad = [t for t in tp if not t["passed"]]
                    if bad:
                        row["checks"]["throughput"]["error"] = f"{bad[0]['config']}: {bad[0].get('error')}"
                nchw, cl = _summary_throughput(tp, p)
                if nchw:
                    row["img_per_s"], row["peak_mem_mb"] = nchw.get("img_per_s"), nchw.get("peak_mem_mb")
                if cl:
                    row["img_per_s_channels_last"] = cl.get("img_per_s")
                    row["peak_mem_mb_channels_last"] = cl.get("peak_mem_mb")
            failed = [k for k, c in row["checks"].items() if not c.get("passed")]
            row["passed"] = bool(row["checks"]) and not failed
            if failed:
                row["reason"] = "; ".join(f"{k}: {row['checks'][k].get('error', 'failed')}" for k in failed)
    return rows


def _fmt(v, spec="{:.1f}"):
    return "-" if v is None else spec.format(v)


def format_tables(report: dict) -> str:
    """The short tables printed at the end (also ``gpu_check.txt``)."""
    lines = [f"gpu_check on {report['device']} ({report.get('gpu') or 'no GPU'}), "
             f"{report['seconds']:.0f} s, {report['failed']} failed, {report['skipped']} skipped", ""]
    head = ("method", "prec", "result", "train loss", "steps/s", "2p", "search", "retrain", "agree",
            "img/s", "img/s CL", "peak MB")
    table = []
    for r in report["results"]:
        c = r.get("checks", {})
        tr = c.get("train", {})
        loss = (f"{tr['loss_first']:.3f}->{tr['loss_last']:.3f}" if tr.get("loss_first") is not None else "-")
        mark = lambda k: "-" if k not in c else ("ok" if c[k].get("passed") else "FAIL")  # noqa: E731
        ag = c.get("agreement")
        agree = "-" if not ag else (("ok " if ag["passed"] else "FAIL ") +
                                    _fmt(max((a.get("max_error") or 0.0) for a in ag["configs"]) if ag["configs"]
                                         else None, "{:.1e}"))
        result = "SKIP" if r["skipped"] else ("PASS" if r["passed"] else "FAIL")
        table.append((r["method"], r["precision"], result, loss, _fmt(r.get("steps_per_s"), "{:.2f}"),
                      mark("train_2p"), mark("search"), mark("retrain"), agree, _fmt(r.get("img_per_s"), "{:.0f}"),
                      _fmt(r.get("img_per_s_channels_last"), "{:.0f}"), _fmt(r.get("peak_mem_mb"), "{:.0f}")))
    lines += _grid(head, table)
    tp = [(r["method"], t) for r in report["results"] for t in r.get("throughput", [])]
    if tp:
        lines += ["", "throughput of each paper config's training step (synthetic batches, pinned host memory):"]
        head2 = ("config", "prec", "CL", "batch/GPU (paper)", "size", "img/s", "steps/s", "peak MB", "ok")
        rows2 = [(t["config"].replace("configs/", "") + (" " + ",".join(o.split(".")[-1] for o in t["opts"])
                                                          if t["opts"] else ""),
                  t["precision"], "on" if t["channels_last"] else "off",
                  f"{t['batch']} ({t['paper_batch_per_gpu']})", str(t["image_size"]), _fmt(t.get("img_per_s"), "{:.1f}"),
                  _fmt(t.get("steps_per_s"), "{:.2f}"), _fmt(t.get("peak_mem_mb"), "{:.0f}"),
                  "ok" if t["passed"] else "FAIL")
                 for _, t in tp]
        lines += _grid(head2, rows2)
    bad = [r for r in report["results"] if not r["passed"]]
    if bad:
        lines += ["", "not passed:"]
        lines += [f"  {r['method']} {r['precision']}: {'SKIPPED ' if r['skipped'] else ''}{r['reason']}" for r in bad]
    return "\n".join(lines)


def _grid(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)] if rows else [len(h) for h in head]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*map(str, r)) for r in rows]


# ----------------------------------------------------------------------------- driver
def _parser():
    p = argparse.ArgumentParser(prog="gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default=None,
                   help="cuda (default when available): the full check; cpu: the reduced form")
    p.add_argument("--out", required=True, help="output folder (DIR/gpu_check.json, DIR/gpu_check.txt, DIR/<method>/)")
    p.add_argument("--precisions", default=None,
                   help="comma list of fp32,bf16,fp16 (default: all three on cuda, fp32,bf16 on cpu)")
    p.add_argument("--methods", default=None, help=f"comma list of methods (default: all; known: "
                   f"{', '.join([v.method for v in VARIANTS] + [NCP_METHOD])})")
    p.add_argument("--jobs", type=int, default=None,
                   help="methods checked at once (default 4 on cuda, min(2, CPUs) on cpu); the throughput "
                        "stage on cuda always runs one method at a time")
    p.add_argument("--nproc2", choices=("auto", "on", "off"), default="auto",
                   help="2-process runs: auto = on with 2+ GPUs (NCCL); on = also on a CPU (gloo)")
    p.add_argument("--data-root", default="data", help="data root (CIFAR-10 and benchmarks, from NASBENCH_MIRROR)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: 1 on cpu)")
    p.add_argument("--inject-failure", default="", help=argparse.SUPPRESS)  # tests: make one method's training diverge
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_spec", default=None, help=argparse.SUPPRESS)
    return p


def _error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args._worker:
        spec = json.loads(args._spec)
        run_worker(args._worker, Context(**spec))
        return 0
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        return _error(f"--device cuda: CUDA is not available on this machine (torch {torch.__version__}, "
                      f"CUDA build {torch.version.cuda or 'none'}, {torch.cuda.device_count()} devices); "
                      "run the reduced check with --device cpu")
    precisions = args.precisions.split(",") if args.precisions else list(PRECISIONS[device])
    for p in precisions:
        if p not in AMP:
            return _error(f"--precisions: unknown precision {p!r}; expected fp32, bf16 or fp16")
        if p not in PRECISIONS[device]:
            return _error(f"--precisions {p} needs CUDA (float16 autocast with a GradScaler); "
                          f"on {device} use {','.join(PRECISIONS[device])}")
    known = [v.method for v in VARIANTS if device in v.devices] + [NCP_METHOD]
    methods = args.methods.split(",") if args.methods else known
    for m in methods:
        if m not in known:
            return _error(f"--methods: unknown method {m!r} for --device {device}; known: {', '.join(known)}")
    ngpu = torch.cuda.device_count() if device == "cuda" else 0
    nproc2 = args.nproc2 == "on" or (args.nproc2 == "auto" and ngpu >= 2)
    threads = args.threads if args.threads is not None else (1 if device == "cpu" else 0)
    jobs = args.jobs or (4 if device == "cuda" else max(1, min(2, os.cpu_count() or 1)))
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    budget = BUDGETS[device]
    data_root = Path(args.data_root).resolve()
    imagefolder = out / "data" / "imagefolder"
    variants = [v for v in VARIANTS if v.method in methods]
    print(f"gpu_check: {len(methods)} methods x {','.join(precisions)} on {device}"
          f"{f' ({ngpu} GPUs: {torch.cuda.get_device_name(0)})' if ngpu else ''}, 2-process runs "
          f"{'on' if nproc2 else 'off'}, {jobs} at a time -> {out}", flush=True)
    # data first, once: workers running at the same time would each extract it
    if any(load_cfg(v.cfg, v.opts).data.name == "cifar10" for v in variants):
        from nasbench.data import load_cifar10
        load_cifar10(data_root, "train")
        load_cifar10(data_root, "test")
    if any(load_cfg(v.cfg, v.opts).data.name == "imagefolder" for v in variants):
        n_train = budget.batch * (budget.batches_per_epoch + 1)
        per = -(-n_train // budget.imagefolder_classes)
        make_tiny_imagefolder(imagefolder, budget.imagefolder_classes, per,
                              max(1, -(-2 * budget.batch // budget.imagefolder_classes)), budget.image_size)
    ctx = Context(out=str(out), device=device, precisions=precisions, data_root=str(data_root),
                  imagefolder=str(imagefolder), nproc2=nproc2, inject_failure=args.inject_failure, threads=threads)
    timeout = budget.timeout * (8 if nproc2 else 4) * len(precisions)
    workers = {}

    def run(m, stages):
        r = _spawn_worker(m, ctx, stages, timeout)
        status = "error" if "worker_error" in r else "done"
        print(f"  {m} ({'+'.join(stages)}): {status} after {time.time() - t0:.0f} s", flush=True)
        return m, r

    # functional runs of several methods at a time; on a GPU the throughput stage runs alone afterwards
    first = ["functional"] if device == "cuda" else ["functional", "perf"]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for m, r in pool.map(lambda m: run(m, first), methods):
            workers[m] = r
    if device == "cuda":
        for m in methods:
            if m == NCP_METHOD or "worker_error" in workers[m]:
                continue
            _, r = run(m, ["perf"])
            workers[m] = {**workers[m], **({"perf": r["perf"]} if "perf" in r else {"perf_error": r["worker_error"]})}
    rows = assemble(ctx, methods, workers)
    if not args.methods:
        rows += coverage_rows(device=device)
    report = {"device": device, "gpu": torch.cuda.get_device_name(0) if ngpu else None, "gpus": ngpu,
              "torch": torch.__version__, "cuda": torch.version.cuda, "precisions": precisions,
              "nproc2": nproc2, "jobs": jobs, "agreement_tolerance": AGREEMENT_TOL, "budget": asdict(budget),
              "seconds": time.time() - t0, "results": rows,
              "failed": sum(1 for r in rows if not r["passed"] and not r["skipped"]),
              "skipped": sum(1 for r in rows if r["skipped"])}
    from nasbench.utils import atomic_write_json
    atomic_write_json(report, out / "gpu_check.json")
    text = format_tables(report)
    (out / "gpu_check.txt").write_text(text + "\n")
    print(text)
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
