#!/usr/bin/env bash
# Set up ./.venv and start the lora-nb dashboard on a local workspace (~/lora-nb, or
# $LORA_NB_HOME, or /workspace/lora-nb on Vast.ai). Extra arguments go to `lora-nb dashboard`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh cpu
if .venv/bin/lora-nb dashboard --help >/dev/null 2>&1; then
  exec .venv/bin/lora-nb dashboard "$@"
fi
# Until the Voila dashboard is installed: JupyterLab on the notebooks, loopback only.
exec .venv/bin/jupyter lab --ip 127.0.0.1 --port "${PORT:-8866}" --no-browser --notebook-dir notebooks "$@"
