#!/usr/bin/env bash
# The GPU check (issue 21): every path a Colab or cloud user takes, in under 8 minutes on an
# H100/H200, as JSON on stdout; non-zero exit when any section failed. Each section runs in its
# own process on a random ~1B Llama written locally. `--dry-run` runs the same on the CPU with a
# tiny model (the test suite does, so the script cannot rot between lent devices).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >&2
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
exec "${PYTHON:-python}" benchmarks/gpu_check.py "$@"
