#!/usr/bin/env bash
# SkyPilot for `lora-nb cluster` in its OWN venv (~/.cache/lora-nb/skypilot-venv): skypilot[vast] pins click<8.2
# and brings ~50 server packages (fastapi, uvicorn, pandas, ...) that would downgrade the Jupyter environment.
# Idempotent; prints the venv's python on stdout. lora-nb finds it there (or via LORA_NB_SKYPILOT_PYTHON).
set -euo pipefail
VERSION="0.14.1"
VENV="${LORA_NB_SKYPILOT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/lora-nb/skypilot-venv}"
PY="${PYTHON:-python3}"
if ! "$VENV/bin/python" -c "import sky, sys; sys.exit(sky.__version__ != '$VERSION')" 2>/dev/null; then
    mkdir -p "$(dirname "$VENV")"
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV" >&2
    "$VENV/bin/python" -m pip install -q --progress-bar off "skypilot[vast]==$VERSION" >&2
fi
echo "$VENV/bin/python"
