#!/usr/bin/env bash
# The GPU machine's whole check from a clean copy, in one call of at most 10 minutes: install
# (from the wheels carried in .gpu/, nothing fetched), the tests marked gpu and the GPU check side
# by side, then `make bench-gpu` alone, each step under a time limit so that the script ends with
# its summary within BUDGET seconds. Prepared here with `make gpu-wheels`; on the device:
#
#     run(command="bash experiments/gpu/run.sh", carry=[".gpu"], timeout_s=600)
#
# Logs land in $OUT (the device tool brings them back), one file per step, and gpu.log.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/dataeff-gpu}
BUDGET=${BUDGET:-540}  # seconds, inside the device tool's 600
GRACE=15               # a step stopped at its limit gets this long to end (SIGINT, then SIGKILL)
export PYTHONUNBUFFERED=1  # a step stopped at its limit keeps its log
mkdir -p "$OUT"
LOG="$OUT/gpu.log"
START=$SECONDS
say() { echo "[$((SECONDS - START)) s] $*" | tee -a "$LOG"; }
left() { echo $((BUDGET - (SECONDS - START) - GRACE)); }
within() { local most=$1 now; now=$(left); echo $((most < now ? most : now)); }  # a limit, never past BUDGET

# A step: its output in $OUT/<name>.log, stopped at its limit; skipped when under 30 s are left.
step() {
    local name=$1 limit=$2
    shift 2
    if [ "$limit" -lt 30 ]; then
        say "$name: skipped (${limit} s left)"
        return 125
    fi
    say "$name: started (limit $limit s)"
    timeout --signal=INT --kill-after=$GRACE "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    case $rc in
        124 | 137) say "$name: stopped at its limit (exit $rc)" ;;
        *) say "$name: exit $rc" ;;
    esac
    return $rc
}

# 1. The wheels the image lacks and dataeff itself, into the image's own Python (its torch,
#    Lightning, transformers: dataeff's torch pin is for the CPU venv, not checked here).
[ -d .gpu/wheels ] || { say "no .gpu/wheels: run make gpu-wheels here and carry .gpu"; exit 2; }
PREFIX=$(python3 -c "import sys; print(sys.prefix)")
step install "$(within 150)" bash -c "python3 -m pip install -q --no-index --no-deps --no-cache-dir .gpu/wheels/*.whl &&
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e ." || exit 2
python3 -m pip check >>"$LOG" 2>&1 || say "pip check: see gpu.log (a conflict with the image's packages)"
[ -d ../shared/data/mr ] || { mkdir -p ../shared/data && cp -r .gpu/data/mr ../shared/data/; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$LOG"
python3 -c "import torch, pytorch_lightning as pl, transformers, mlflow, hydra
print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, Lightning {pl.__version__}, '
      f'transformers {transformers.__version__}, MLflow {mlflow.__version__}, Hydra {hydra.__version__}')" |
    tee -a "$LOG"

# 2. Correctness: the gpu tests and the GPU check share the GPU (139 GB; neither is timed).
step gpu-tests "$(within 240)" python3 -m pytest -q -m gpu -p no:cacheprovider &
TESTS=$!
step gpu-check "$(within 300)" python3 experiments/gpu_check.py --steps 100
CHECK=$?
wait $TESTS
TESTED=$?

# 3. Speed, alone on the GPU, in what is left: MLM first. make's install target is marked done
#    (-o), so it never builds a venv over the image's.
MAKE_THERE=(make --no-print-directory -o "$PREFIX/.installed" VENV="$PREFIX")
step bench-gpu-mlm $(($(left) * 2 / 3)) "${MAKE_THERE[@]}" bench-gpu-mlm ARGS="--profile $OUT/profile"
step bench-gpu-fusion "$(left)" "${MAKE_THERE[@]}" bench-gpu-fusion

say "summary"
{
    echo "--- gpu tests";        tail -n 5 "$OUT/gpu-tests.log"
    echo "--- gpu check";        grep -v '^\s*$' "$OUT/gpu-check.log" | tail -n 12
    echo "--- bench-gpu-mlm";    sed '/, packed, profiled/,$d' "$OUT/bench-gpu-mlm.log" 2>/dev/null | tail -n 20
    echo "--- bench-gpu-fusion"; tail -n 12 "$OUT/bench-gpu-fusion.log" 2>/dev/null
    echo "--- profile";          cat "$OUT/profile/steps.md" 2>/dev/null
} | tee -a "$LOG"
[ $TESTED = 0 ] && [ $CHECK = 0 ]
