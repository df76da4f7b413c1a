"""Malformed inputs across every tool: is each one handled the way the README promises?

Runs each case as a subprocess in its own temporary folder (inputs under ``in/``)
and prints a table: case, exit code, stderr lines, whether a traceback appeared,
whether anything was written (a new path anywhere in the folder, or a changed
input), whether a payload ran. "handled" = exit code 2, exactly one line with
``error:`` and nothing else on stderr (argparse's usage lines excepted), no
traceback, nothing written, no payload ran.

    PYTHONPATH=$PWD NASBENCH_MIRROR=/work/shared/data NASBENCH_TEST_DATA=/work/main/data \\
        python perf/malformed_inputs.py [--only SUBSTR] [--json OUT.json]

The code under test is whatever ``nasbench`` the ``PYTHONPATH`` imports (the tools
are taken from ``$PYTHONPATH/tools``), so the same script measures an older
checkout. Cases that would succeed end quickly (tiny data, one step). Issue 12.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MARKER = "PAYLOAD_RAN"


def repo_root() -> Path:
    pp = os.environ.get("PYTHONPATH", "").split(os.pathsep)[0]
    return Path(pp or Path(__file__).resolve().parents[1]).resolve()


REPO = repo_root()
DATA = Path(os.environ.get("NASBENCH_TEST_DATA", "/work/main/data"))
BENCH = Path(os.environ.get("NASBENCH_MIRROR", "/work/shared/data")) / "benchmarks"
CBM = REPO / "configs/bcnet/cbm_mobilenet_cpu.yaml"
NCP = REPO / "configs/ncp/nas_bench_201.yaml"
TINY = [f"data.root={DATA}", "data.train_size=64", "data.val_size=32", "data.test_size=32", "data.batch_size=32",
        "data.eval_batch_size=32", "train.max_steps=1", "train.amp=none", "train.channels_last=false",
        "retrain.max_steps=1", "retrain.amp=none", "retrain.channels_last=false", "eval.recal_batches=1",
        "eval.recal_batch_size=32", "search.population=4", "search.topk=2", "search.mutation_num=2",
        "search.crossover_num=2", "search.epochs=1", "rank_eval.num_archs=4"]


# ----------------------------------------------------------------------------- input files
class _System:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def evil_pth(path: Path, marker: Path):
    import torch
    torch.save({"model": {}, "algorithm": {"x": _System(marker)}, "nasbench_version": "0.1.0"}, path)


def evil_pickle(path: Path, marker: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps([{"x": _System(marker)}]))


def evil_yaml(path: Path, marker: Path):
    path.write_text(f"!!python/object/apply:os.system [\"touch '{marker}'\"]\n")


def shared_files(work: Path) -> dict:
    """A good supernet checkpoint and predictor, made once with the code under test."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    files = {}
    run = work / "good_run"
    p = subprocess.run([sys.executable, str(REPO / "tools/train_supernet.py"), "--cfg", str(CBM), "--out", str(run),
                        "--opts", *TINY], capture_output=True, text=True, env=env)
    files["ckpt"] = run / "checkpoints/last.pth"
    if p.returncode:
        print("could not train the tiny supernet:", p.stderr[-2000:], file=sys.stderr)
    pred = work / "good_pred"
    p = subprocess.run([sys.executable, str(REPO / "tools/train_predictor.py"), "--cfg", str(NCP), "--out", str(pred),
                        "--root", str(BENCH), "--epochs", "1", "--quiet"], capture_output=True, text=True, env=env)
    files["predictor"] = pred / "predictor.pth"
    if p.returncode:
        print("could not train the tiny predictor:", p.stderr[-2000:], file=sys.stderr)
    return files


def edited_checkpoint(good: Path, path: Path, **changes):
    import torch
    try:
        state = torch.load(good, weights_only=True)
    except Exception:  # checkpoints of old code hold numpy arrays
        state = torch.load(good, weights_only=False)
    for k, v in changes.items():
        if v is ...:
            state.pop(k, None)
        else:
            state[k] = v
    torch.save(state, path)


def edited_predictor(good: Path, path: Path, drop: str):
    import torch
    blob = torch.load(good, weights_only=True)
    blob.pop(drop, None)
    torch.save(blob, path)


# ----------------------------------------------------------------------------- cases
def cases(files) -> list:
    """``[(name, tool, args, setup)]``; ``args`` may use ``{in}``, ``{marker}``, ``{ckpt}``, ``{pred}``;
    ``setup(in_dir, marker)`` creates the inputs."""
    C = []

    def add(name, tool, args, setup=None):
        C.append((name, tool, args, setup))

    def cfg_text(text):
        return lambda d, m: (d / "c.yaml").write_text(text)

    tiny = ["--opts", *TINY]
    ts = ["train_supernet.py", ["--cfg", str(CBM), "--out", "{in}/../out"]]
    # train_supernet: config files and values
    add("train: config file missing", "train_supernet.py", ["--cfg", "{in}/nope.yaml", "--out", "out"])
    add("train: YAML syntax error", "train_supernet.py", ["--cfg", "{in}/c.yaml", "--out", "out"],
        cfg_text("train: {lr: [0.1\nseed: 1\n"))
    add("train: YAML payload", "train_supernet.py", ["--cfg", "{in}/c.yaml", "--out", "out"],
        lambda d, m: evil_yaml(d / "c.yaml", m))
    add("train: config is a list", "train_supernet.py", ["--cfg", "{in}/c.yaml", "--out", "out"], cfg_text("- 1\n- 2\n"))
    add("train: config is a directory", "train_supernet.py", ["--cfg", "{in}", "--out", "out"])
    for opt in ["train.lrr=0.1", "train.lr=abc", "data.batch_size=-1", "data.batch_size=0", "train.lr=-0.1",
                "data.val_size=100000", "train.epochs=0", "train.max_steps=-3", "algorithm.type=nope",
                "train.schedule=nope", "search.type=nope", "space.variant=nope", "seed=abc", "noequals",
                "train.momentum=-1", "data.num_workers=-1", "train.label_smoothing=2", "data.image_size=0",
                "device=tpu", "train.amp=fp16", "data.train_size=0", "data.eval_batch_size=0", "train.warmup_epochs=-1",
                "train.weight_decay=-1", "train.log_interval=0", "data.name=mnist",
                "train.clip_grad=-1", "train.ema=2"]:
        add(f"train: --opts {opt}", *ts[:1], ts[1] + tiny[:1] + TINY + [opt])
    add("train: data.root is a file", "train_supernet.py",
        ["--cfg", str(CBM), "--out", "out", *tiny, "data.root={in}/f.txt"], lambda d, m: (d / "f.txt").write_text("x"))
    add("train: imagefolder root empty", "train_supernet.py",
        ["--cfg", str(CBM), "--out", "out", *tiny, "data.name=imagefolder", "data.root={in}"])
    add("train: --out is a file", "train_supernet.py", ["--cfg", str(CBM), "--out", "{in}/f.txt", *tiny],
        lambda d, m: (d / "f.txt").write_text("x"))
    add("train: --out under a file", "train_supernet.py", ["--cfg", str(CBM), "--out", "{in}/f.txt/run", *tiny],
        lambda d, m: (d / "f.txt").write_text("x"))
    add("train: --out unwritable (/proc)", "train_supernet.py", ["--cfg", str(CBM), "--out", "/proc/nasbench_run", *tiny])
    add("train: --resume without checkpoint", "train_supernet.py", ["--cfg", str(CBM), "--out", "out", "--resume", *tiny])

    def resume_with(make):
        def setup(d, m):
            ck = d / "run/checkpoints/last.pth"
            ck.parent.mkdir(parents=True)
            make(ck, m)
        return setup
    add("train: --resume evil checkpoint", "train_supernet.py", ["--cfg", str(CBM), "--out", "{in}/run", "--resume", *tiny],
        resume_with(evil_pth))
    add("train: --resume truncated checkpoint", "train_supernet.py",
        ["--cfg", str(CBM), "--out", "{in}/run", "--resume", *tiny],
        resume_with(lambda ck, m: ck.write_bytes(files["ckpt"].read_bytes()[:5000])))
    # search
    srch = ["--cfg", str(CBM), "--out", "out"]
    add("search: --ckpt missing", "search.py", [*srch, "--ckpt", "{in}/nope.pth", *tiny])
    add("search: --ckpt evil", "search.py", [*srch, "--ckpt", "{in}/e.pth", *tiny], lambda d, m: evil_pth(d / "e.pth", m))
    add("search: --ckpt truncated", "search.py", [*srch, "--ckpt", "{in}/t.pth", *tiny],
        lambda d, m: (d / "t.pth").write_bytes(files["ckpt"].read_bytes()[:5000]))
    add("search: --ckpt directory", "search.py", [*srch, "--ckpt", "{in}", *tiny])
    add("search: --ckpt without algorithm", "search.py", [*srch, "--ckpt", "{in}/a.pth", *tiny],
        lambda d, m: edited_checkpoint(files["ckpt"], d / "a.pth", algorithm=...))
    add("search: --ckpt garbage algorithm", "search.py", [*srch, "--ckpt", "{in}/a.pth", *tiny],
        lambda d, m: edited_checkpoint(files["ckpt"], d / "a.pth", algorithm="garbage"))
    add("search: --ckpt is a predictor file", "search.py", [*srch, "--ckpt", str(files["predictor"]), *tiny])
    for opt in ["search.population=0", "search.topk=0", "search.flops_budget=abc", "search.type=nope",
                "eval.recal_batches=-1", "search.flops_min_ratio=2", "search.mutation_prob=2", "search.epochs=0"]:
        add(f"search: --opts {opt}", "search.py", [*srch, "--ckpt", str(files["ckpt"]), *tiny, opt])
    add("search: --out is a file", "search.py", ["--cfg", str(CBM), "--out", "{in}/f.txt", "--ckpt", str(files["ckpt"]),
                                                  *tiny], lambda d, m: (d / "f.txt").write_text("x"))
    # retrain
    rt = ["--cfg", str(CBM), "--out", "out"]
    add("retrain: bad arch key", "retrain.py", [*rt, "--arch", "99", *tiny])
    add("retrain: --arch directory", "retrain.py", [*rt, "--arch", "{in}", *tiny])
    add("retrain: arch JSON infinite gene", "retrain.py", [*rt, "--arch", "{in}/a.json", *tiny],
        lambda d, m: (d / "a.json").write_text('{"arch": [1e400, 4, 3, 2, 2, 1, 4]}'))
    add("retrain: arch JSON NaN gene", "retrain.py", [*rt, "--arch", "{in}/a.json", *tiny],
        lambda d, m: (d / "a.json").write_text('{"arch": [NaN, 4, 3, 2, 2, 1, 4]}'))
    add("retrain: arch JSON malformed", "retrain.py", [*rt, "--arch", "{in}/a.json", *tiny],
        lambda d, m: (d / "a.json").write_text('{"arch": [1, 2,'))
    add("retrain: arch JSON without arch", "retrain.py", [*rt, "--arch", "{in}/a.json", *tiny],
        lambda d, m: (d / "a.json").write_text('[1, 2, 3]'))
    add("retrain: huge arch key", "retrain.py", [*rt, "--arch", "4" * 5000, *tiny])
    add("retrain: arch JSON missing", "retrain.py", [*rt, "--arch", "{in}/nope.json", *tiny])
    for opt in ["retrain.epochs=0", "retrain.lr=-1", "retrain.schedule=nope", "retrain.max_steps=-1"]:
        add(f"retrain: --opts {opt}", "retrain.py", [*rt, "--arch", "4432214", *tiny, opt])
    add("retrain: --out is a file", "retrain.py", ["--cfg", str(CBM), "--out", "{in}/f.txt", "--arch", "4432214", *tiny],
        lambda d, m: (d / "f.txt").write_text("x"))
    add("retrain: --resume evil checkpoint", "retrain.py",
        ["--cfg", str(CBM), "--out", "{in}/run", "--resume", "--arch", "4432214", *tiny], resume_with(evil_pth))
    # rank_eval
    re_ = ["--cfg", str(CBM), "--out", "out", "--ckpt", str(files["ckpt"])]
    add("rank_eval: --num-archs 0", "rank_eval.py", [*re_, "--num-archs", "0", *tiny])
    add("rank_eval: --num-archs -3", "rank_eval.py", [*re_, "--num-archs", "-3", *tiny])
    add("rank_eval: --num-archs 10^9", "rank_eval.py", [*re_, "--num-archs", "1000000000", *tiny])
    add("rank_eval: --ckpt evil", "rank_eval.py", ["--cfg", str(CBM), "--out", "out", "--ckpt", "{in}/e.pth", *tiny],
        lambda d, m: evil_pth(d / "e.pth", m))
    add("rank_eval: rank_eval.flops_bands=0", "rank_eval.py", [*re_, *tiny, "rank_eval.flops_bands=0"])
    add("rank_eval: rank_eval.num_archs=0", "rank_eval.py", [*re_, *tiny, "rank_eval.num_archs=0"])
    # bench_search
    bs = ["--out", "out", "--root", str(BENCH), "--no-progress", "--no-plots"]
    add("bench_search: unknown benchmark", "bench_search.py", [*bs, "--benchmark", "nope", "--budget", "5", "--seeds", "1"])
    add("bench_search: good + unknown benchmark", "bench_search.py",
        [*bs, "--benchmark", "channel_bench_macro/mobilenet,nope", "--budget", "5", "--seeds", "1"])
    add("bench_search: unknown searcher", "bench_search.py",
        [*bs, "--benchmark", "channel_bench_macro/mobilenet", "--searchers", "random,nope", "--budget", "5", "--seeds", "1"])
    add("bench_search: --budget 0", "bench_search.py",
        [*bs, "--benchmark", "channel_bench_macro/mobilenet", "--budget", "0", "--seeds", "1"])
    add("bench_search: --budget -5", "bench_search.py",
        [*bs, "--benchmark", "channel_bench_macro/mobilenet", "--budget", "-5", "--seeds", "1"])
    add("bench_search: --seeds 0", "bench_search.py",
        [*bs, "--benchmark", "channel_bench_macro/mobilenet", "--budget", "5", "--seeds", "0"])
    add("bench_search: --flops-budget -1", "bench_search.py",
        [*bs, "--benchmark", "channel_bench_macro/mobilenet", "--budget", "5", "--seeds", "1", "--flops-budget", "-1"])
    add("bench_search: --root is a file", "bench_search.py",
        ["--out", "out", "--root", "{in}/f.txt", "--benchmark", "channel_bench_macro/mobilenet", "--budget", "5",
         "--seeds", "1"], lambda d, m: (d / "f.txt").write_text("x"))
    add("bench_search: evil benchmark pickle", "bench_search.py",
        ["--out", "out", "--root", "{in}", "--benchmark", "nas_bench_201/imagenet16_120", "--budget", "5", "--seeds", "1",
         "--no-progress", "--no-plots"], lambda d, m: evil_pickle(d / "nas_bench_201/trainval.pkl", m))
    add("bench_search: --out is a file", "bench_search.py",
        ["--out", "{in}/f.txt", "--root", str(BENCH), "--benchmark", "channel_bench_macro/mobilenet", "--budget", "5",
         "--seeds", "1", "--no-progress", "--no-plots"], lambda d, m: (d / "f.txt").write_text("x"))
    # train_predictor
    tp = ["--cfg", str(NCP), "--out", "out", "--root", str(BENCH), "--quiet"]
    add("train_predictor: --epochs 0", "train_predictor.py", [*tp, "--epochs", "0"])
    add("train_predictor: --epochs -1", "train_predictor.py", [*tp, "--epochs", "-1"])
    add("train_predictor: --root is a file", "train_predictor.py",
        ["--cfg", str(NCP), "--out", "out", "--root", "{in}/f.txt", "--epochs", "1", "--quiet"],
        lambda d, m: (d / "f.txt").write_text("x"))
    add("train_predictor: config payload", "train_predictor.py",
        ["--cfg", "{in}/c.yaml", "--out", "out", "--root", str(BENCH), "--epochs", "1"], lambda d, m: evil_yaml(d / "c.yaml", m))
    for key, val in [("batch_size", 0), ("val_fraction", 1.5), ("lr", -1), ("hidden", 0)]:
        add(f"train_predictor: predictor.{key}={val}", "train_predictor.py",
            ["--cfg", "{in}/c.yaml", "--out", "out", "--root", str(BENCH), "--epochs", "1", "--quiet"],
            cfg_text(f"_base_: {NCP}\npredictor: {{{key}: {val}}}\n"))
    add("train_predictor: --out is a file", "train_predictor.py",
        ["--cfg", str(NCP), "--out", "{in}/f.txt", "--root", str(BENCH), "--epochs", "1", "--quiet"],
        lambda d, m: (d / "f.txt").write_text("x"))
    # ncp
    nc = ["--cfg", str(NCP), "--out", "out", "--root", str(BENCH)]
    add("ncp: --predictor missing", "ncp.py", [*nc, "--predictor", "{in}/nope.pth"])
    add("ncp: --predictor evil", "ncp.py", [*nc, "--predictor", "{in}/e.pth"], lambda d, m: evil_pth(d / "e.pth", m))
    add("ncp: --predictor junk", "ncp.py", [*nc, "--predictor", "{in}/j.pth"],
        lambda d, m: (d / "j.pth").write_bytes(b"PK\x03\x04 not a zip" * 10))
    add("ncp: predictor without hparams", "ncp.py", [*nc, "--predictor", "{in}/p.pth"],
        lambda d, m: edited_predictor(files["predictor"], d / "p.pth", "hparams"))
    add("ncp: --start bad code", "ncp.py", [*nc, "--predictor", str(files["predictor"]), "--start", "nope"])
    add("ncp: --iterations 0", "ncp.py", [*nc, "--predictor", str(files["predictor"]), "--seed", "0", "--iterations", "0"])
    add("ncp: --iterations -1", "ncp.py", [*nc, "--predictor", str(files["predictor"]), "--seed", "0", "--iterations", "-1"])
    add("ncp: --seeds 0", "ncp.py", [*nc, "--predictor", str(files["predictor"]), "--seeds", "0"])
    add("ncp: --out is a file", "ncp.py", ["--cfg", str(NCP), "--out", "{in}/f.txt", "--root", str(BENCH),
                                          "--predictor", str(files["predictor"]), "--seed", "0", "--iterations", "1"],
        lambda d, m: (d / "f.txt").write_text("x"))
    # model_info
    mi = ["--cfg", str(CBM)]
    add("model_info: bad arch", "model_info.py", [*mi, "--arch", "99"])
    add("model_info: --arch directory", "model_info.py", [*mi, "--arch", "{in}"])
    add("model_info: --image-size 0", "model_info.py", [*mi, "--arch", "4432214", "--image-size", "0"])
    add("model_info: --image-size -32", "model_info.py", [*mi, "--arch", "4432214", "--image-size", "-32"])
    # fairness
    add("fairness: --steps 0", "fairness.py", ["--cfg", str(CBM), "--steps", "0", "--out", "out"])
    add("fairness: --steps -1", "fairness.py", ["--cfg", str(CBM), "--steps", "-1", "--out", "out"])
    add("fairness: --cfg missing", "fairness.py", ["--cfg", "{in}/nope.yaml", "--steps", "10", "--out", "out"])
    add("fairness: --out is a file", "fairness.py", ["--cfg", str(CBM), "--steps", "10", "--out", "{in}/f.txt"],
        lambda d, m: (d / "f.txt").write_text("x"))
    add("fairness: second config bad", "fairness.py", ["--cfg", str(CBM), "{in}/nope.yaml", "--steps", "10", "--out", "out"])
    # bossnas_rating
    br = ["--root", str(BENCH), "--out", "out/r.json"]
    add("bossnas_rating: --ratings missing", "bossnas_rating.py", [*br, "--ratings", "{in}/nope"])
    add("bossnas_rating: --ratings a file", "bossnas_rating.py", [*br, "--ratings", "{in}/f.txt"],
        lambda d, m: (d / "f.txt").write_text("x"))
    add("bossnas_rating: evil rating file", "bossnas_rating.py", [*br, "--ratings", "{in}/r"],
        lambda d, m: ((d / "r").mkdir(), evil_yaml(d / "r/path_rank_0.yml", m)))
    add("bossnas_rating: --space nope", "bossnas_rating.py", [*br, "--ratings", "{in}", "--space", "nope"])
    add("bossnas_rating: --decimals -1", "bossnas_rating.py", [*br, "--ratings", "{in}", "--decimals", "-1"])
    add("bossnas_rating: --out is a folder", "bossnas_rating.py", ["--root", str(BENCH), "--out", "{in}", "--ratings", "{in}"])
    return C


# ----------------------------------------------------------------------------- running
def snapshot(d: Path) -> dict:
    out = {}
    for p in d.rglob("*"):
        try:
            st = p.stat()
            out[str(p.relative_to(d))] = (st.st_size, st.st_mtime_ns, p.is_dir())
        except OSError:
            pass
    return out


def run_case(tool, args, setup, timeout=300) -> dict:
    with tempfile.TemporaryDirectory(prefix="malformed-") as tmp:
        tmp = Path(tmp)
        d = tmp / "in"
        d.mkdir()
        marker = tmp / MARKER
        if setup:
            setup(d, marker)
        argv = [a.replace("{in}", str(d)) for a in args]
        before = snapshot(tmp)
        t0 = time.time()
        try:
            p = subprocess.run([sys.executable, str(REPO / "tools" / tool), *argv], cwd=tmp, capture_output=True,
                               text=True, timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS="1"))
            code, err = p.returncode, p.stderr
        except subprocess.TimeoutExpired as e:
            code, err = "timeout", (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        after = snapshot(tmp)
        written = sorted(k for k, v in after.items() if k != MARKER and before.get(k) != v and not v[2]
                         or (k not in before and k != MARKER))
        lines = [ln for ln in err.splitlines() if ln.strip()]
        res = {"code": code, "stderr_lines": len(lines), "error_lines": sum("error:" in ln for ln in lines),
               "traceback": "Traceback (most recent call last)" in err, "written": written,
               "payload_ran": marker.exists(), "seconds": round(time.time() - t0, 1),
               "last_line": lines[-1][:200] if lines else ""}
        one_line = len(lines) == 1 or (err.startswith("usage:") and lines[-1].split(": ", 1)[-1].startswith("error:"))
        res["handled"] = (code == 2 and res["error_lines"] == 1 and one_line and not res["traceback"] and not written
                          and not res["payload_ran"])
        return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="run the cases whose name contains this")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="malformed-shared-"))
    try:
        files = shared_files(work)
        todo = [c for c in cases(files) if args.only is None or args.only in c[0]]
        results = []
        for name, tool, a, setup in todo:
            r = run_case(tool, a, setup)
            r["case"] = name
            results.append(r)
            print(f"{'ok ' if r['handled'] else 'BAD'} {name:<48} exit {r['code']!s:>7} lines {r['stderr_lines']:>3} "
                  f"tb {'y' if r['traceback'] else '-'} wrote {'y' if r['written'] else '-'}"
                  f"{' PAYLOAD' if r['payload_ran'] else ''} {r['seconds']:>5}s  {r['last_line'][:110]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = sum(r["handled"] for r in results)
    print(f"\nhandled {n} of {len(results)} (code under test: {REPO})")
    print("\n| input | exit | stderr lines | traceback | written | handled |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['case']} | {r['code']} | {r['stderr_lines']} | {'yes' if r['traceback'] else 'no'} | "
              f"{', '.join(r['written'][:3]) or 'no'} | {'yes' if r['handled'] else '**no**'} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"repo": str(REPO), "handled": n, "total": len(results),
                                               "results": results}, indent=1))


if __name__ == "__main__":
    main()
