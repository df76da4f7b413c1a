#!/usr/bin/env bash
# Launch a nasbench tool on a slurm cluster with srun (one task per GPU).
#
# Usage:
#   bash scripts/slurm_train.sh PARTITION JOB_NAME NGPUS tools/train_supernet.py --cfg configs/x.yaml --out runs/x [key=value ...]
#
# Environment (defaults): GPUS_PER_NODE (min(NGPUS, 8)), CPUS_PER_TASK (5),
# SRUN_ARGS (extra srun options, e.g. "--time=2-00:00:00 --qos=high"),
# MASTER_PORT (29500 + SLURM_JOB_ID % 1000), PYTHON (python).
# MASTER_ADDR is set inside the job to the first host of the allocation
# (scontrol show hostnames). nasbench.engine.init_distributed() reads SLURM_PROCID,
# SLURM_NTASKS and SLURM_LOCALID. Resubmitting with the same --out and --resume
# continues from <out>/checkpoints/last.pth.
set -euo pipefail

if [ "$#" -lt 4 ]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 1
fi

PARTITION=$1
JOB_NAME=$2
NGPUS=$3
SCRIPT=$4
shift 4

GPUS_PER_NODE=${GPUS_PER_NODE:-$(( NGPUS < 8 ? NGPUS : 8 ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
PYTHON=${PYTHON:-python}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="${ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export PYTHON
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# shellcheck disable=SC2086  # SRUN_ARGS is intentionally word-split
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres="gpu:${GPUS_PER_NODE}" \
    --ntasks="$NGPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    bash -c '
        MASTER_ADDR=${MASTER_ADDR:-$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)}
        MASTER_PORT=${MASTER_PORT:-$(( 29500 + SLURM_JOB_ID % 1000 ))}
        export MASTER_ADDR MASTER_PORT
        exec "$PYTHON" -u "$@"
    ' slurm_train "$SCRIPT" "$@"
