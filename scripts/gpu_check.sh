#!/usr/bin/env bash
# Prove every method on this machine's GPU(s) in one command (README "Checking a GPU machine"):
#   bash scripts/gpu_check.sh [--device cuda|cpu] --out DIR [--precisions fp32,bf16,fp16] [--methods a,b]
# Writes DIR/gpu_check.json and DIR/gpu_check.txt and exits non-zero if a check failed.
# Data come from data/ (copied from $NASBENCH_MIRROR, default ../shared/data, when missing);
# ImageNet-sized configs run on a small generated ImageFolder under DIR/data/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${NASBENCH_MIRROR:-}" && -d ../shared/data ]]; then
  export NASBENCH_MIRROR=$(cd .. && pwd)/shared/data
fi
exec python tools/gpu_check.py "$@"
