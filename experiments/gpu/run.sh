#!/usr/bin/env bash
# The GPU machine's whole check from a clean copy, in one call of at most 10 minutes: install
# (from the wheels carried in .gpu/, nothing fetched), the tests marked gpu and the GPU check side
# by side, then `make bench-gpu` alone, each step under a time limit so that the script always
# ends with its summary. Prepared here with `make gpu-wheels`; on the device (see README.md):
#
#     run(command="bash experiments/gpu/run.sh", carry=[".gpu"], timeout_s=600)
#
# Logs land in $OUT (the device tool brings them back), one file per step, and gpu.log.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/dataeff-gpu}
mkdir -p "$OUT"
LOG="$OUT/gpu.log"
START=$SECONDS
say() { echo "[$((SECONDS - START)) s] $*" | tee -a "$LOG"; }

# A step: its output in $OUT/<name>.log, stopped (SIGINT, then SIGKILL) at its limit.
step() {
    local name=$1 limit=$2
    shift 2
    say "$name: started (limit $limit s)"
    timeout --signal=INT --kill-after=20 "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    say "$name: exit $rc$([ $rc = 124 ] && echo ' (stopped at its limit)')"
    return $rc
}

# 1. The wheels the image lacks and dataeff itself, into the image's own Python (torch, Lightning).
[ -d .gpu/wheels ] || { say "no .gpu/wheels: run make gpu-wheels here and carry .gpu"; exit 2; }
PREFIX=$(python3 -c "import sys; print(sys.prefix)")
python3 -m pip install -q --no-index --no-deps --no-cache-dir .gpu/wheels/*.whl >>"$LOG" 2>&1 &&
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >>"$LOG" 2>&1 ||
    { say "install failed: see gpu.log"; exit 2; }
touch "$PREFIX/.installed"  # make's install target: done (VENV=$PREFIX below)
[ -d ../shared/data ] || { mkdir -p ../shared && cp -r .gpu/data ../shared/data; }  # the benchmarks' text
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$LOG"
python3 -c "import torch, pytorch_lightning as pl, transformers, mlflow, hydra
print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, Lightning {pl.__version__}, '
      f'transformers {transformers.__version__}, MLflow {mlflow.__version__}, Hydra {hydra.__version__}')" |
    tee -a "$LOG"
say "installed"

# 2. Correctness: the gpu tests and the GPU check share the GPU (139 GB; neither is timed).
step gpu-tests 240 python3 -m pytest -q -m gpu -p no:cacheprovider &
TESTS=$!
step gpu-check 300 python3 experiments/gpu_check.py --steps 100
CHECK=$?
wait $TESTS
TESTED=$?

# 3. Speed, alone on the GPU: what is left of 540 s, MLM first.
LEFT=$((540 - (SECONDS - START)))
step bench-gpu-mlm $((LEFT * 2 / 3)) make --no-print-directory VENV="$PREFIX" bench-gpu-mlm
step bench-gpu-fusion $((540 - (SECONDS - START))) make --no-print-directory VENV="$PREFIX" bench-gpu-fusion

say "summary"
{
    echo "--- gpu tests";       tail -n 5 "$OUT/gpu-tests.log"
    echo "--- gpu check";       grep -v '^\s*$' "$OUT/gpu-check.log" | tail -n 12
    echo "--- bench-gpu-mlm";   tail -n 20 "$OUT/bench-gpu-mlm.log"
    echo "--- bench-gpu-fusion"; tail -n 12 "$OUT/bench-gpu-fusion.log"
} | tee -a "$LOG"
[ $TESTED = 0 ] && [ $CHECK = 0 ]
