#!/usr/bin/env bash
# Set up ./.venv and start the lora-nb dashboard on a local workspace. Extra arguments go to `lora-nb dashboard`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh cpu
exec .venv/bin/lora-nb dashboard "$@"
