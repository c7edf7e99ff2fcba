#!/usr/bin/env bash
# One command slot of a GPU sitting, run on the GPU machine from the repository root with $OUT set:
#   bash scripts/gpu_sitting.sh check|train [options of scripts/gpu_sitting.py]
# Installs the carried wheels (.whl/) for what that machine's Python lacks, puts the project on the path and
# logs everything into $OUT/sitting.log as it goes.
set -uo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$OUT/sitting.log"
python3 scripts/gpu_sitting.py "$@" --output "$OUT" 2>&1 | tee -a "$OUT/sitting.log"
