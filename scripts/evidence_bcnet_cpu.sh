#!/usr/bin/env bash
# Reproduces the README's CPU results table: BCNet and the AutoSlim baseline on
# Channel-Bench-Macro MobileNet with the same CPU budget, the main job's
# search + retrain, and rank_eval of both supernets over the same 50 seeded archs.
# Usage: NASBENCH_MIRROR=../shared/data bash scripts/evidence_bcnet_cpu.sh [OUT=runs/evidence]
set -euo pipefail
OUT=${1:-runs/evidence}
N=${NUM_ARCHS:-50}
for alg in cbm_mobilenet_cpu cbm_mobilenet_autoslim_cpu; do
  python tools/train_supernet.py --cfg configs/bcnet/$alg.yaml --out $OUT/$alg
done
python tools/search.py --cfg configs/bcnet/cbm_mobilenet_cpu.yaml --ckpt $OUT/cbm_mobilenet_cpu/checkpoints/last.pth --out $OUT/cbm_mobilenet_cpu/search
python tools/retrain.py --cfg configs/bcnet/cbm_mobilenet_cpu.yaml --arch $OUT/cbm_mobilenet_cpu/search/result.json --out $OUT/cbm_mobilenet_cpu/retrain
for alg in cbm_mobilenet_cpu cbm_mobilenet_autoslim_cpu; do
  python tools/rank_eval.py --cfg configs/bcnet/$alg.yaml --ckpt $OUT/$alg/checkpoints/last.pth --num-archs $N --out $OUT/$alg/rank
done
