#!/usr/bin/env bash
# Runs the test suite (the README's test command). Real data come from the offline
# mirror NASBENCH_MIRROR (default ../shared/data next to the clone) and are prepared
# once into data/ (gitignored). Extra arguments go to pytest, e.g. -m slow.
set -euo pipefail
cd "$(dirname "$0")/.."
export NASBENCH_MIRROR=${NASBENCH_MIRROR:-$(cd .. && pwd)/shared/data}
export NASBENCH_TEST_DATA=${NASBENCH_TEST_DATA:-$(pwd)/data}
# Two workers (one per core of the project machines), one torch thread each; a test file stays on
# one worker so that its module fixtures (a trained tiny supernet, a CPU gpu_check run) run once.
# NASBENCH_TEST_WORKERS=0 runs in one process (as before); extra pytest -n/--dist override these.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec python -m pytest -q -p no:cacheprovider -p no:benchmark -n "${NASBENCH_TEST_WORKERS:-2}" --dist loadfile "$@"
