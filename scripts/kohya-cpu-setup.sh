#!/usr/bin/env bash
# Set up the REAL kohya sd-scripts trainer on a CPU-only machine, for the tests and CI: sd-scripts
# extracted from the shared archive (../shared/engines/sd-scripts-48d368f.tar.gz, no git clone), its
# own venv with the pinned CPU torch, and a random full-size SD 1.5 plus a 4-image dataset built
# locally by ../shared/tools/kohya-cpu (nothing from the Hugging Face hub). Only PyPI is used.
#
#   bash scripts/kohya-cpu-setup.sh [DIR]
#   export LORA_NB_REAL_KOHYA_DIR="$(bash scripts/kohya-cpu-setup.sh)"   # what scripts/test.sh does
#
# DIR defaults to ${LORA_NB_ENGINE_CACHE:-$HOME/.cache/lora-nb/engines}/kohya-48d368f-cpu: outside the
# repository clone, so a second CI run on the same machine (a fresh clone elsewhere) reuses it. DIR then
# holds sd-scripts/, venv/, sd15-random/, tok/ and data/img/5_alice. The only line on stdout is DIR;
# progress goes to stderr.
#
# Idempotent and safe to re-run after an interruption: each step writes a marker file when it has
# finished, and a step without its marker is redone from scratch (its partial folder is removed first).
# Two runs at once on one machine take turns (flock on DIR/.lock). Never commit DIR or copy it into
# the repository. Overrides: LORA_NB_SDSCRIPTS_ARCHIVE (the archive), KOHYA_CPU_TOOLS (the tools
# folder), PYTHON (the interpreter the venv is made from; default python3).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="$REPO/../shared"
ARCHIVE="${LORA_NB_SDSCRIPTS_ARCHIVE:-$SHARED/engines/sd-scripts-48d368f.tar.gz}"
TOOLS="${KOHYA_CPU_TOOLS:-$SHARED/tools/kohya-cpu}"
CACHE="${LORA_NB_ENGINE_CACHE:-$HOME/.cache/lora-nb/engines}"
DIR="${1:-$CACHE/kohya-48d368f-cpu}"
PY="${PYTHON:-python3}"
TORCH=2.13.0
TORCHVISION=0.28.0

log() { echo "kohya-cpu-setup: $*" >&2; }
die() { log "$*"; exit 1; }
[ -f "$ARCHIVE" ] || die "sd-scripts archive not found at $ARCHIVE (set LORA_NB_SDSCRIPTS_ARCHIVE)"
[ -f "$TOOLS/make_model.py" ] || die "kohya-cpu tools not found at $TOOLS (set KOHYA_CPU_TOOLS)"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
exec 9>"$DIR/.lock"
flock 9
cd "$DIR"
export KOHYA_CPU_DIR="$DIR"
T0=$SECONDS

# 1. sd-scripts from the archive (top folder sd-scripts/), extracted beside its final place, then moved
STAMP="$(basename "$ARCHIVE") $(stat -c %s "$ARCHIVE")"
if [ "$(cat sd-scripts/.lora-nb-extracted 2>/dev/null)" != "$STAMP" ]; then
  log "extracting $(basename "$ARCHIVE")"
  rm -rf sd-scripts .extract.partial venv        # a new tree needs a new venv (editable install)
  mkdir .extract.partial
  tar -xzf "$ARCHIVE" -C .extract.partial
  [ -f .extract.partial/sd-scripts/train_network.py ] || die "$ARCHIVE has no sd-scripts/train_network.py"
  mv .extract.partial/sd-scripts sd-scripts
  rmdir .extract.partial
  echo "$STAMP" > sd-scripts/.lora-nb-extracted
fi

# 2. the engine's own venv: CPU torch FIRST (a bare `torch` would pull GBs of CUDA packages), then
#    requirements.txt without bitsandbytes and `-e .`, constrained to that torch; then the torchvision
#    shim (../shared/tools/kohya-cpu/README.md, step 3)
# the venv's recipe: a change to the pins or to the shim rebuilds it
STAMP_VENV="recipe-1 torch==$TORCH torchvision==$TORCHVISION $(cat sd-scripts/requirements.txt "$TOOLS/torchvision_cpu_shim.py" \
  "$TOOLS/torchvision_cpu_shim.pth" | sha256sum | cut -c1-16)"
if [ "$(head -n1 venv/.lora-nb-ready 2>/dev/null)" != "$STAMP_VENV" ]; then
  log "creating the engine venv (PyPI: torch $TORCH CPU and sd-scripts' requirements, several hundred MB)"
  rm -rf venv requirements-cpu.txt constraints.txt
  "$PY" -m venv venv
  venv/bin/pip install -q "torch==$TORCH" >&2
  venv/bin/python -c "import torch, sys; sys.exit(0 if '+cpu' in torch.__version__ else 1)" \
    || die "torch==$TORCH did not resolve to the CPU build; check the pip index configuration"
  venv/bin/python -c "import torch; print(f'torch=={torch.__version__}')" > constraints.txt
  grep -v -e '^bitsandbytes' -e '^-e' sd-scripts/requirements.txt > requirements-cpu.txt
  venv/bin/pip install -q -r requirements-cpu.txt -c constraints.txt >&2
  venv/bin/pip install -q --no-deps -e sd-scripts >&2
  venv/bin/pip install -q "torchvision==$TORCHVISION" -c constraints.txt >&2
  SP="$(venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
  cp "$TOOLS/torchvision_cpu_shim.py" "$TOOLS/torchvision_cpu_shim.pth" "$SP/"
  (cd sd-scripts && ../venv/bin/python -c "import torchvision.transforms, accelerate, voluptuous, toml; import library.train_util") >&2 \
    || die "the engine venv was installed but sd-scripts' library does not import"
  venv/bin/pip freeze > venv/pip-freeze.txt
  echo "$STAMP_VENV" > venv/.lora-nb-ready
  log "venv ready ($((SECONDS - T0)) s so far)"
fi

# 3. a random full-size SD 1.5 (Diffusers folder, about 2.1 GB) and the small CLIP tokenizer
if [ ! -f sd15-random/.lora-nb-ready ]; then
  log "building the random SD 1.5 model (about 2 GB)"
  rm -rf sd15-random tok
  HF_HUB_OFFLINE=1 venv/bin/python "$TOOLS/make_model.py" >&2
  touch sd15-random/.lora-nb-ready
fi

# 4. the 4-image dataset data/img/5_alice
if [ ! -f data/.lora-nb-ready ]; then
  rm -rf data
  venv/bin/python "$TOOLS/make_data.py" >&2
  touch data/.lora-nb-ready
fi

log "ready in $((SECONDS - T0)) s: LORA_NB_REAL_KOHYA_DIR=$DIR"
echo "$DIR"
