#!/usr/bin/env bash
# Create (or update) ./.venv with lora-nb and what it needs. Idempotent.
# Usage: scripts/setup-env.sh [extras]   (default extras: cpu; the test command uses dev,cpu)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-cpu}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# The pinned CPU build of torch first: a bare "torch" would pull several GB of CUDA packages.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q "torch==2.13.0" || echo "setup-env: torch==2.13.0 is not available here; LoRA resize falls back to numpy"
fi
.venv/bin/python -m pip install -q -e ".[${extras}]"
