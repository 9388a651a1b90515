#!/usr/bin/env bash
# Set up ./.venv and start the lora-nb dashboard (Voila) on a local workspace: $LORA_NB_HOME, else
# /workspace/lora-nb on Vast.ai, else ~/lora-nb. Extra arguments go to `lora-nb dashboard`
# (e.g. --port 8870, --workspace DIR). Binds 127.0.0.1:8866 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh cpu
exec .venv/bin/lora-nb dashboard "$@"
