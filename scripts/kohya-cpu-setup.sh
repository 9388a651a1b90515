#!/usr/bin/env bash
# Set up the REAL kohya sd-scripts trainer on a CPU-only machine (a random full-size SD 1.5, no downloads
# from the Hub), for checking what lora-nb renders and launches against the real engine:
#   bash scripts/kohya-cpu-setup.sh DIR [SD_SCRIPTS_GIT_URL_OR_PATH]
#   LORA_NB_REAL_KOHYA_DIR=DIR .venv/bin/python -m pytest tests/engines/test_engines_real_kohya.py
# Follows ../shared/tools/kohya-cpu/README.md. Needs PyPI; sd-scripts from GitHub or a local mirror.
# Idempotent: steps already done are skipped. Never commit DIR.
set -euo pipefail
DIR="${1:?usage: kohya-cpu-setup.sh DIR [SD_SCRIPTS_URL]}"
SRC="${2:-https://github.com/kohya-ss/sd-scripts.git}"
COMMIT=48d368fa557731ad0488c07304dfeba8c07910eb
TOOLS="${KOHYA_CPU_TOOLS:-$(cd "$(dirname "$0")/.." && pwd)/../shared/tools/kohya-cpu}"   # override with KOHYA_CPU_TOOLS
[ -d "$TOOLS" ] || { echo "kohya-cpu tools not found at $TOOLS" >&2; exit 1; }
mkdir -p "$DIR" && cd "$DIR"
export KOHYA_CPU_DIR="$PWD"
if [ ! -f sd-scripts/train_network.py ]; then
  rm -rf sd-scripts                       # a clone that stopped halfway
  git clone -q --no-checkout "$SRC" sd-scripts
  # the Windows bitsandbytes DLLs and a few large test assets may be missing from mirrors: check out the rest
  (cd sd-scripts && git ls-tree -r --name-only "$COMMIT" | grep -v -e '^bitsandbytes_windows/' -e '^configs/qwen3' \
     | xargs -d '\n' git checkout -q "$COMMIT" --)
fi
[ -x venv/bin/python ] || python3 -m venv venv
if [ ! -f venv/.lora-nb-ready ]; then     # installed once: a second run works offline
venv/bin/pip install -q torch==2.13.0
echo "torch==2.13.0+cpu" > constraints.txt
grep -v -e bitsandbytes -e '^-e' sd-scripts/requirements.txt > requirements-cpu.txt
venv/bin/pip install -q -r requirements-cpu.txt -c constraints.txt
(cd sd-scripts && ../venv/bin/pip install -q --no-deps -e .)
venv/bin/pip install -q torchvision==0.28.0 -c constraints.txt
SP="$(venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
cp "$TOOLS/torchvision_cpu_shim.py" "$TOOLS/torchvision_cpu_shim.pth" "$SP/"
touch venv/.lora-nb-ready
fi
[ -f sd15-random/model_index.json ] || venv/bin/python "$TOOLS/make_model.py"
[ -d data/img/5_alice ] || venv/bin/python "$TOOLS/make_data.py"
echo "ready: LORA_NB_REAL_KOHYA_DIR=$DIR"
