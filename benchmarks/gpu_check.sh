#!/usr/bin/env bash
# GPU check (issue 5), for a machine with one NVIDIA GPU and the project installed; under 8 minutes.
# A randomly initialised ~1B Llama (no download possible there), QLoRA through our runner versus
# TRL's SFTTrainer defaults: real tokens/s and peak GPU memory of each, as JSON on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >&2
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
python benchmarks/train_throughput.py --random-llama "${TMPDIR:-/tmp}/random-llama-1b" --steps "${STEPS:-30}" --method qlora
