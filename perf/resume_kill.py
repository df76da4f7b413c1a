#!/usr/bin/env python
"""Kill soak: SIGKILL supernet training, search and retraining at random moments, resume each
time, and compare with uninterrupted runs (issue 12.4).

    NASBENCH_MIRROR=../shared/data python perf/resume_kill.py [--kills 10] [--seed 0] [--out DIR]

For each phase (train_supernet, search, retrain of the found width) run A is
uninterrupted. Run B of the same phase is started, SIGKILLed, restarted with
``--resume`` (or afresh when the kill came before anything resumable existed),
and so on until its share of the ``--kills`` is spent; then it runs to the end.
Kill moments are drawn at random along A's progress (steps, search batches)
plus a random delay of up to 0.5 s; every third kill of a training phase instead
waits for a checkpoint write in progress (its temporary file) and kills then. After every kill the last checkpoint (or search journal)
must be readable. At the end B's weights (model, optimizer state) and search
result must equal A's bit for bit. Prints one line per kill and a summary;
writes DIR/resume_kill.json.
"""
import argparse
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CFG = "configs/bcnet/cbm_mobilenet_cpu.yaml"
OPTS = ["data.train_size=1024", "data.val_size=200", "data.test_size=200", "data.batch_size=64",
        "data.eval_batch_size=200", "train.max_steps=24", "train.ckpt_interval=2", "train.log_interval=1",
        "eval.recal_batches=1", "eval.recal_batch_size=64", "search.population=6", "search.topk=2",
        "search.mutation_num=3", "search.crossover_num=3", "search.epochs=5", "search.prior_steps=100",
        "retrain.max_steps=24", "retrain.ckpt_interval=2", "retrain.log_interval=1"]


def phase_cmd(phase, out, resume):
    tool = {"train": "train_supernet.py", "search": "search.py", "retrain": "retrain.py"}[phase]
    args = [sys.executable, str(REPO / "tools" / tool), "--cfg", CFG, "--out", str(out / phase)]
    if phase == "search":
        args += ["--ckpt", str(out / "train" / "checkpoints" / "last.pth")]
    if phase == "retrain":
        args += ["--arch", str(out / "search" / "result.json")]
    return args + (["--resume"] if resume else []) + ["--opts", *OPTS]


def resumable(phase, out) -> Path:
    """The file whose existence makes ``--resume`` possible for ``phase``."""
    return out / phase / ("queries.jsonl" if phase == "search" else "checkpoints/last.pth")


def check_readable(phase, path):
    """Load the checkpoint / journal as a resume would; returns (step or batches) or raises."""
    if phase == "search":
        from nasbench.evaluators.journal import read_journal
        return f"{len(read_journal(path)[1])} batches"
    from nasbench.engine.checkpoint import load_checkpoint
    return f"step {load_checkpoint(path)['step']}"


def writing(path) -> bool:
    """True while a checkpoint write into ``path``'s folder is in progress (its temporary file exists)."""
    return path.parent.is_dir() and any(path.parent.glob(".last.pth.*.tmp"))


def progress(phase, out) -> int:
    """Steps done (training, retraining: the last ``step`` in ``log.jsonl``) or batches
    journalled (search) so far by ``phase`` in ``out``."""
    if phase == "search":
        path = out / "search" / "queries.jsonl"
        return max(0, path.read_text().count("\n") - 1) if path.is_file() else 0
    path = out / phase / "log.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError):
            continue
    return 0


def run_killed(phase, out, kills, total, rng, log):
    """Run ``phase`` into ``out`` with ``kills`` SIGKILLs, resuming after each; then to the end.

    Kill moments: after a random number of further steps/batches (spread so that all
    kills fit into ``total``) plus a random delay of up to 0.5 s, so kills land inside
    steps, evaluations and writes alike; every third kill of a training phase instead
    waits for a checkpoint write in progress (its temporary file) and kills at once.
    """
    done = 0
    while done < kills:
        path = resumable(phase, out)
        before = progress(phase, out)
        proc = subprocess.Popen(phase_cmd(phase, out, path.is_file()), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        during_write = phase != "search" and done % 3 == 2
        target = before + rng.randint(1, max(1, (total - before) // (kills - done + 1)))
        while proc.poll() is None and not (writing(path) if during_write else progress(phase, out) >= target):
            time.sleep(0.002)
        if not during_write:
            time.sleep(rng.uniform(0, 0.5))
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = check_readable(phase, path) if path.is_file() else "nothing resumable yet"
        tmp = len(list(path.parent.glob(".last.pth.*.tmp"))) if path.parent.is_dir() else 0
        rec = {"phase": phase, "kill": done + 1, "after_s": round(time.time() - t0, 2), "finished_first": finished,
               "progress_at_kill": progress(phase, out), "aimed_at_checkpoint_write": during_write,
               "resumable_state": state, "leftover_tmp_files": tmp}
        print(json.dumps(rec), flush=True)
        if finished:  # nothing was killed: the phase is complete, no further kill possible
            log.append(rec)
            return
        log.append(rec)
        done += 1
    path = resumable(phase, out)
    subprocess.run(phase_cmd(phase, out, path.is_file()), cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def compare(a, b) -> dict:
    """Bit-identity of A and B: training/retraining weights and optimizer state, search result."""
    import torch
    from nasbench.engine.checkpoint import load_checkpoint
    res = {}
    for phase in ("train", "retrain"):
        ca, cb = (load_checkpoint(d / phase / "checkpoints/last.pth") for d in (a, b))
        same_w = ca["model"].keys() == cb["model"].keys() and all(torch.equal(v, cb["model"][k])
                                                                  for k, v in ca["model"].items())
        sa, sb = ca["optimizer"]["state"], cb["optimizer"]["state"]
        same_o = sa.keys() == sb.keys() and all(torch.equal(sa[i][n], sb[i][n]) for i in sa for n in sa[i]
                                                if torch.is_tensor(sa[i][n]))
        res[phase] = {"step_a": ca["step"], "step_b": cb["step"], "weights_identical": same_w,
                      "optimizer_identical": same_o}
    ra, rb = (json.loads((d / "search/result.json").read_text()) for d in (a, b))
    ra.pop("search_seconds", None), rb.pop("search_seconds", None)
    res["search"] = {"arch_a": ra["arch"], "arch_b": rb["arch"], "result_identical": ra == rb}
    return res


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=10, help="SIGKILLs in all (split 4/3/3 over train/search/retrain)")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--out", default="perf/results/resume_kill")
    args = p.parse_args()
    import shutil
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    a, b = out / "a", out / "b"
    durations, totals = {}, {}
    for phase in ("train", "search", "retrain"):
        t0 = time.time()
        subprocess.run(phase_cmd(phase, a, False), cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        durations[phase], totals[phase] = time.time() - t0, progress(phase, a)
    rng = random.Random(args.seed)
    share = {"train": args.kills - 2 * (args.kills // 3), "search": args.kills // 3, "retrain": args.kills // 3}
    log = []
    for phase in ("train", "search", "retrain"):
        run_killed(phase, b, share[phase], totals[phase], rng, log)
    res = {"kills": log, "kills_landed": sum(not k["finished_first"] for k in log),
           "uninterrupted_progress": totals, "uninterrupted_seconds": {k: round(v, 1) for k, v in durations.items()},
           "comparison": compare(a, b)}
    res["bit_identical"] = (all(res["comparison"][ph]["weights_identical"] and res["comparison"][ph]
                                ["optimizer_identical"] for ph in ("train", "retrain"))
                            and res["comparison"]["search"]["result_identical"])
    (out / "resume_kill.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res["comparison"], indent=2))
    print(f"{res['kills_landed']} kills landed, bit-identical: {res['bit_identical']}")


if __name__ == "__main__":
    main()
