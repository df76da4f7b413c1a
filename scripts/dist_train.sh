#!/usr/bin/env bash
# Launch a nasbench tool on NGPUS processes of this node with torchrun.
#
# Usage:
#   bash scripts/dist_train.sh NGPUS tools/train_supernet.py --cfg configs/x.yaml --out runs/x [key=value ...]
#
# Multi-node (run once per node, same MASTER_ADDR/MASTER_PORT everywhere):
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 MASTER_PORT=29500 bash scripts/dist_train.sh 8 tools/train_supernet.py ...
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=node0 MASTER_PORT=29500 bash scripts/dist_train.sh 8 tools/train_supernet.py ...
#
# Environment (defaults): NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1),
# MASTER_PORT (29500), PYTHON (python). NGPUS is processes per node; on a machine
# without GPUs the processes run on CPU with the gloo backend.
# The tool calls nasbench.engine.init_distributed(), which reads RANK/WORLD_SIZE/LOCAL_RANK.
set -euo pipefail

if [ "$#" -lt 2 ]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 1
fi

NGPUS=$1
SCRIPT=$2
shift 2

NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
PYTHON=${PYTHON:-python}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="${ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$MASTER_PORT" \
    --nproc_per_node="$NGPUS" \
    "$SCRIPT" "$@"
