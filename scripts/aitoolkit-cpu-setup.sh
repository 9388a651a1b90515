#!/usr/bin/env bash
# Set up the REAL ostris/ai-toolkit (commit 27a03a9, from ../shared/engines/) on a CPU-only machine, with tiny
# random models of the real architectures built locally (no Hub downloads), for tests and CI:
#   bash scripts/aitoolkit-cpu-setup.sh            # progress on stderr; on stdout the export lines the tests read
#   eval "$(bash scripts/aitoolkit-cpu-setup.sh 2>/dev/null | grep ^export)"     # what scripts/test.sh does
#   .venv/bin/python -m pytest tests/engines/test_engines_real_aitoolkit.py
#
# Everything goes under ${LORA_NB_ENGINE_CACHE:-$HOME/.cache/lora-nb/engines}/ai-toolkit (outside the repository,
# so a CI run in a fresh clone reuses it):
#   src/ai-toolkit/      the extracted source archive (never patched)
#   venv/                its own Python: torch==2.13.0 (local CPU build) first, pinned by constraints.txt,
#                        then ai-toolkit's requirements from PyPI (requirements-cpu.txt: what changed and why below)
#   models/              tiny random FLUX / SD 1.5 / SDXL diffusers folders (tests/engines/aitoolkit_real/make_tiny_models.py)
# Idempotent and restartable: every step writes to a temporary name or leaves a marker when it is complete, so an
# interrupted run is finished by the next one; a complete set-up costs a few seconds and needs no network.
# Environment: LORA_NB_ENGINE_CACHE (cache root), LORA_NB_SHARED (default <repo>/../shared), PYTHON (default python3).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${LORA_NB_SHARED:-$REPO/../shared}"
ARCHIVE="$SHARED/engines/ai-toolkit-27a03a9.tar.gz"
TOOLS="${KOHYA_CPU_TOOLS:-$SHARED/tools/kohya-cpu}"          # the torchvision CPU shim lives there
CACHE="${LORA_NB_ENGINE_CACHE:-$HOME/.cache/lora-nb/engines}/ai-toolkit"
PY="${PYTHON:-python3}"
t0=$(date +%s)
log() { printf '[aitoolkit-cpu-setup %3ss] %s\n' "$(( $(date +%s) - t0 ))" "$*" >&2; }
[ -f "$ARCHIVE" ] || { echo "aitoolkit-cpu-setup: source archive not found: $ARCHIVE" >&2; exit 1; }
[ -f "$TOOLS/torchvision_cpu_shim.py" ] || { echo "aitoolkit-cpu-setup: torchvision shim not found in $TOOLS" >&2; exit 1; }
SHIMS=("$TOOLS/torchvision_cpu_shim.py" "$REPO/tests/engines/aitoolkit_real/torchaudio_cpu_shim.py")
# bump the version when the install recipe below changes (a changed shim re-runs the step by itself)
STAMP="27a03a9-cpu-v2-$(cat "${SHIMS[@]}" | sha256sum | cut -c1-12)"
mkdir -p "$CACHE"
cd "$CACHE"
exec 9>"$CACHE/.lock"                                        # two set-ups at once (CI + a developer) wait for each other
flock 9

# 1. the source, extracted once (into a temporary folder, renamed when complete) ---------------------------
if [ ! -f src/ai-toolkit/run.py ] || [ ! -f src/.complete ]; then
  log "extracting $(basename "$ARCHIVE")"
  rm -rf src src.partial
  mkdir src.partial
  tar -xzf "$ARCHIVE" -C src.partial
  touch src.partial/.complete
  mv src.partial src
fi

# 2. the venv ------------------------------------------------------------------------------------------------
if [ ! -f venv/.lora-nb-ready ] || [ "$(cat venv/.lora-nb-ready)" != "$STAMP" ]; then
  if ! venv/bin/python -c 'import sys' 2>/dev/null; then
    rm -rf venv
    log "creating venv with $("$PY" --version)"
    "$PY" -m venv venv
  fi
  PIP=(venv/bin/python -m pip install -q --progress-bar off)
  # torch first, and pinned: a bare "torch" (or a requirement that names one) would pull GBs of CUDA packages
  log "installing torch==2.13.0 (CPU build)"
  "${PIP[@]}" torch==2.13.0
  TORCH="$(venv/bin/python -W ignore -c 'import torch; print(torch.__version__)' 2>/dev/null)"
  case "$TORCH" in *+cpu) ;; *) echo "aitoolkit-cpu-setup: got torch $TORCH, not a CPU build" >&2; exit 1;; esac
  printf 'torch==%s\ntorchvision==0.28.0\n' "$TORCH" > constraints.txt
  # ai-toolkit's requirements, changed only where PyPI or this CPU cannot take them:
  #  - diffusers is a git commit (c943837899b1, "0.39.0.dev0"): GitHub is unreachable here; 0.39.0 is the first
  #    release that contains that commit.
  #  - scipy==1.12.0 comes from requirements.txt itself; everything else from requirements_base.txt as written.
  #  - torchvision and torchaudio are not in the requirements (the README installs them with torch): 0.28.0 and
  #    2.11.0 as its README pairs them with torch 2.13.0. PyPI's wheels of both are CUDA builds whose C++ ops cannot
  #    load beside the CPU torch, hence the two import shims below (torchvision's from ../shared/tools/kohya-cpu,
  #    torchaudio's from tests/engines/aitoolkit_real); ai-toolkit imports torchaudio in every job but image LoRA
  #    training never calls it.
  { grep -v -e '^-r' -e '^#' -e '^git+https://github.com/huggingface/diffusers' src/ai-toolkit/requirements.txt
    grep -v -e '^#' -e '^git+https://github.com/huggingface/diffusers' src/ai-toolkit/requirements_base.txt
    echo "diffusers==0.39.0"; } | sed '/^\s*$/d' > requirements-cpu.txt
  log "installing ai-toolkit's requirements ($(wc -l < requirements-cpu.txt) lines) from PyPI"
  "${PIP[@]}" -r requirements-cpu.txt -c constraints.txt
  "${PIP[@]}" torchvision==0.28.0 torchaudio==2.11.0 -c constraints.txt
  SP="$(venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
  cp "$TOOLS/torchvision_cpu_shim.py" "$TOOLS/torchvision_cpu_shim.pth" "$SP/"
  cp "$REPO/tests/engines/aitoolkit_real/torchaudio_cpu_shim.py" "$REPO/tests/engines/aitoolkit_real/torchaudio_cpu_shim.pth" "$SP/"
  log "checking the imports ai-toolkit needs"
  (cd src/ai-toolkit && NO_ALBUMENTATIONS_UPDATE=1 ../../venv/bin/python -W ignore -c 'import torch, torchvision.transforms, torchaudio, diffusers, transformers, safetensors, yaml, oyaml, toolkit.job, jobs.ExtensionJob, toolkit.config_modules, extensions_built_in.sd_trainer' )
  echo "$STAMP" > venv/.lora-nb-ready
fi

# 3. tiny random models (rebuilt when the builder changes) ---------------------------------------------------
BUILDER="$REPO/tests/engines/aitoolkit_real/make_tiny_models.py"
WANT="$(sha256sum "$BUILDER" | cut -c1-16)"
if [ "$(cat models/.stamp 2>/dev/null)" != "$WANT" ]; then
  log "building tiny random models"
  rm -rf models models.partial
  venv/bin/python "$BUILDER" models.partial
  echo "$WANT" > models.partial/.stamp
  mv models.partial models
fi

log "ready in $(( $(date +%s) - t0 )) s"
cat <<EOF
export LORA_NB_REAL_AITOOLKIT_DIR=$CACHE/src/ai-toolkit
export LORA_NB_REAL_AITOOLKIT_PYTHON=$CACHE/venv/bin/python
export LORA_NB_REAL_AITOOLKIT_MODELS=$CACHE/models
ready: $CACHE
EOF
