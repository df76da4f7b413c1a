#!/usr/bin/env bash
# The main job on 2 CPU cores (about 10 minutes): BCNet supernet training on real
# CIFAR-10 for the Channel-Bench-Macro MobileNet space, evolutionary search under
# an 80M-MAC budget, and retraining of the found width. The found architecture's
# true accuracy, rank and regret come from Channel-Bench-Macro.
# Data: data/ (downloaded, or copied from $NASBENCH_MIRROR when set).
set -euo pipefail
cd "$(dirname "$0")/.."
CFG=${CFG:-configs/bcnet/cbm_mobilenet_cpu.yaml}
OUT=${OUT:-runs/quickstart}
SEED=${SEED:-0}  # seed of supernet training, search and retraining (the data split stays data.split_seed's);
# extra arguments go to train_supernet.py (e.g. --resume; a second --opts would replace seed=)
python tools/train_supernet.py --cfg "$CFG" --out "$OUT/supernet" --opts seed="$SEED" "$@"
python tools/search.py --cfg "$CFG" --ckpt "$OUT/supernet/checkpoints/last.pth" --out "$OUT/search" --opts seed="$SEED"
python tools/retrain.py --cfg "$CFG" --arch "$OUT/search/result.json" --out "$OUT/retrain" --opts seed="$SEED"
python - "$OUT" <<'PY'
import json, sys
s = json.load(open(f"{sys.argv[1]}/search/result.json"))
r = json.load(open(f"{sys.argv[1]}/retrain/result.json"))
b = s["benchmark"]
print(f"found {s['arch']}: {s['flops']/1e6:.1f}M MACs, {s['params']/1e6:.2f}M params, supernet score {s['score']:.2f}%")
print(f"Channel-Bench-Macro: {b['mean_acc']:.2f}% (rank {b['rank']} of {b['num_archs']}, regret {b['regret']:.2f} points)")
print(f"retrained here: test top-1 {r['top1']:.2f}% on {r['test_images']} images "
      f"(Channel-Bench-Macro's 60-epoch accuracy of this width: {b['mean_acc']:.2f}%)")
bl = s["baselines"]
where = "under the budget" if s["flops_budget"] else "in the space"


def versus(pick, what):
    d = b["mean_acc"] - pick["mean_acc"]
    how = f"{abs(d):.2f} points {'BETTER' if d > 0 else 'WORSE'} than"
    how = "the same as" if round(abs(d), 2) == 0 else how
    return f"the supernet's pick is {how} {what} ({pick['arch']}, {pick['mean_acc']:.2f}%)"


print(versus(bl["largest_flops"], f"simply taking the largest width {where}"))
print(versus(bl["median"], f"the median-accuracy width {where}"))
print(f"the best width {where} is {bl['optimum']['arch']} ({bl['optimum']['mean_acc']:.2f}%); "
      f"plot: {sys.argv[1]}/search/search_baselines.png")
PY
