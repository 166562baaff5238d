#!/usr/bin/env bash
# The checks that need a GPU, in one call on a lent CUDA machine (the suite runs without one):
# benchmarks/cuda_check.py's sections, figures in one file, $OUT/cuda_check.txt (else ./cuda_check.txt).
# The image there lacks Ray, Optuna and datasets: prepare .whl/ here first (benchmarks/cuda_wheels.sh)
# and carry it; they are installed under /tmp/site for this call. Bounded at 7.5 minutes.
# Usage: benchmarks/cuda_check.sh [python]   (default .venv/bin/python, else python3)
#   device run: carry [".whl"], command "benchmarks/cuda_check.sh", timeout_s 540
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
# The project's packages for this process, its subprocesses and Ray's workers alike (no install).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -d .whl ] && ! "$PY" -c "import ray, optuna, datasets" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
timeout 450 "$PY" benchmarks/cuda_check.py --out "${OUT:-.}/cuda_check.txt" "${@:2}"
