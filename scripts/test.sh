#!/usr/bin/env bash
# Runs the test suite (the README's test command). Real data come from the offline
# mirror NASBENCH_MIRROR (default ../shared/data next to the clone) and are prepared
# once into data/ (gitignored). Extra arguments go to pytest, e.g. -m slow.
set -euo pipefail
cd "$(dirname "$0")/.."
export NASBENCH_MIRROR=${NASBENCH_MIRROR:-$(cd .. && pwd)/shared/data}
export NASBENCH_TEST_DATA=${NASBENCH_TEST_DATA:-$(pwd)/data}
exec python -m pytest -q -p no:cacheprovider "$@"
