#!/usr/bin/env bash
# GPU check (issue 13, item 5): ONE table of GPU figures, each against a baseline measured in the same run:
# onnxruntime CUDA vs CPU tagging, LoRA resize CUDA vs CPU, real sd-scripts SD 1.5 and SDXL steps through lora_nb vs
# by hand, a real ai-toolkit FLUX LoRA step, Florence-2 and JoyCaption captioning in bf16 (issue 16), all on random
# full-size weights built on the machine. The rows and their
# goals are described in bench/gpu_check.py (the driver this script runs).
#
#   bash scripts/gpu-check.sh --prepare     # HERE, where PyPI and ../shared are reachable: fills .whl/gpu-check/
#   bash scripts/gpu-check.sh               # ON THE GPU MACHINE (device tool, carry [".whl/gpu-check"]): set-up + table
#   bash scripts/gpu-check.sh --dry-run     # any machine: CPU, tiny sizes, GPU rows "skipped: no CUDA device"
#   bash scripts/gpu-check.sh --dry-run --cpu-engines   # also the sd15/flux rows on the CPU engine set-ups (minutes)
#   options for the last three: --only ROW,ROW   --budget SECONDS (whole script, default 430)   --out DIR
#   bash scripts/gpu-check.sh --overlay VENV WHEEL_DIR...   # only make one overlay venv (below; tests, debugging)
#
# Why --prepare: the GPU machine reaches no package registry and only the working tree travels to it (plus `carry`
# paths, 64 MiB in all; ../shared does not travel). --prepare puts into the ignored folder .whl/gpu-check (about
# 56 MiB): the two engine archives from ../shared/engines, make_model.py/make_data.py from ../shared/tools/kohya-cpu,
# and wheels for Python 3.12 / x86-64 of what the machine's image lacks or has at other versions (KINDS.md lists its
# packages: torch 2.11 with CUDA, onnxruntime 1.30 CPU-only, transformers 5.17, accelerate 1.15, ... no diffusers):
#   wheels/pydantic   pydantic and its parts      (lora_nb and albumentations need them; the image has none)
#   wheels/lnb        tomli_w, toml                (lora_nb)
#   wheels/kohya      sd-scripts 48d368f's pins from its requirements.txt (accelerate 1.6.0, transformers 4.54.1,
#                     diffusers 0.32.1, huggingface-hub 0.34.3, safetensors 0.4.5, einops, toml, voluptuous, imagesize,
#                     rich) plus tokenizers 0.21.4 and tqdm 4.70.1 as pip resolved them in scripts/kohya-cpu-setup.sh
#   wheels/aitoolkit  what ai-toolkit 27a03a9 imports for a FLUX LoRA job and the image lacks, at the versions
#                     scripts/aitoolkit-cpu-setup.sh installs (diffusers 0.39.0, transformers 5.5.3, ...)
# On the machine each engine gets an "overlay" venv made from the machine's python3: its own site-packages hold these
# wheels (installed with --no-index --no-deps), and a .pth adds the machine's site-packages after them, so torch,
# torchvision, numpy, opencv ... are the machine's CUDA builds. The CPU set-up scripts (kohya-cpu-setup.sh,
# aitoolkit-cpu-setup.sh) cannot run there: they install a CPU torch and the requirements from PyPI. --dry-run
# --cpu-engines uses them, as they are, for the CPU rehearsal. PyAV (a 40 MB wheel) is replaced by a stub module: ai-toolkit
# imports it at the top of three modules but calls it only for audio/video datasets.
#
# Never hangs: every set-up step runs under `timeout`, the driver gets the remaining budget as its deadline and
# limits every step by it, and the driver itself runs under `timeout`. Anything missing becomes a
# "skipped: <reason>" row. Exit 0 with the table when nothing failed (skipped rows included), 1 when a check failed.
# Outputs: the table on stdout; gpu-check.md, gpu-check.json, logs.tar.gz and setup.log in --out (default $OUT when
# set, as on the device machine, else test-artifacts/gpu-check). Engine set-ups and built models are cached under
# ${LORA_NB_ENGINE_CACHE:-$HOME/.cache/lora-nb/engines}/gpu-check (reused by a rerun on a machine still warm).
set -uo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${LORA_NB_SHARED:-$REPO/../shared}"
PREP="${LORA_NB_GPU_CHECK_PREP:-$REPO/.whl/gpu-check}"
CACHE="${LORA_NB_ENGINE_CACHE:-$HOME/.cache/lora-nb/engines}/gpu-check"
T0=$(date +%s)

MODE=gpu
CPU_ENGINES=0
BUDGET=430
ONLY=""
OUTDIR="${OUT:-$REPO/test-artifacts/gpu-check}"
while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) MODE=prepare ;;
    --dry-run) MODE=dry ;;
    --cpu-engines) CPU_ENGINES=1 ;;
    --budget) BUDGET="$2"; shift ;;
    --only) ONLY="$2"; shift ;;
    --out) OUTDIR="$2"; shift ;;
    --overlay) MODE=overlay; shift; break ;;       # --overlay VENV WHEEL_DIR...: only make an overlay venv (tests, debugging)
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
DEADLINE=$((T0 + BUDGET))
left() { echo $((DEADLINE - $(date +%s))); }
log() { printf '[gpu-check %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }

# ------------------------------------------------------------------------------------------------ --prepare (here)
# name==version lists; a pure-Python package without a wheel on the index is built with `pip wheel`
PYDANTIC_WHEELS="pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing_extensions==4.16.0"
LNB_WHEELS="tomli_w==1.2.0 toml==0.10.2"
KOHYA_WHEELS="accelerate==1.6.0 transformers==4.54.1 diffusers==0.32.1 huggingface-hub==0.34.3 safetensors==0.4.5 einops==0.7.0
  toml==0.10.2 voluptuous==0.15.2 imagesize==1.4.1 rich==14.1.0 tokenizers==0.21.4 tqdm==4.70.1"
AITOOLKIT_WHEELS="diffusers==0.39.0 transformers==5.5.3 tokenizers==0.22.2 huggingface_hub==1.23.0 peft==0.18.1 timm==1.0.22
  oyaml==1.0 python-dotenv==1.2.4 albumentations==1.4.15 albucore==0.0.16 eval_type_backport==0.4.0 torchao==0.10.0
  optimum-quanto==0.2.4 lycoris-lora==1.8.3 lpips==0.1.4 controlnet_aux==0.0.10 open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4"

prepare() {
  local pyv="${GPU_CHECK_PYTHON_VERSION:-3.12}" tmp="$PREP.partial" plat=() n
  for n in 17 24 27 28 31 34 35; do plat+=(--platform "manylinux_2_${n}_x86_64"); done
  plat+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
  [ -d "$SHARED/engines" ] || { echo "gpu-check --prepare: $SHARED/engines not found (set LORA_NB_SHARED)" >&2; exit 1; }
  rm -rf "$tmp"
  mkdir -p "$tmp/engines" "$tmp/tools"
  cp "$SHARED"/engines/sd-scripts-*.tar.gz "$SHARED"/engines/ai-toolkit-*.tar.gz "$tmp/engines/"
  cp "$SHARED/tools/kohya-cpu/make_model.py" "$SHARED/tools/kohya-cpu/make_data.py" "$tmp/tools/"
  # the pins must still be sd-scripts' own
  local req; req="$(tar -xzOf "$tmp"/engines/sd-scripts-*.tar.gz sd-scripts/requirements.txt)"
  for spec in $KOHYA_WHEELS; do
    local name="${spec%%==*}"
    if grep -qi "^${name}\(\[[a-z]*\]\)\?==" <<<"$req" && ! grep -qi "^${name}\(\[[a-z]*\]\)\?==${spec#*==}\$" <<<"$req"; then
      echo "gpu-check --prepare: $spec differs from sd-scripts' requirements.txt: $(grep -i "^${name}" <<<"$req")" >&2; exit 1
    fi
  done
  local set dir
  for set in pydantic lnb kohya aitoolkit; do
    dir="$tmp/wheels/$set"; mkdir -p "$dir"
    case $set in pydantic) list=$PYDANTIC_WHEELS ;; lnb) list=$LNB_WHEELS ;; kohya) list=$KOHYA_WHEELS ;; aitoolkit) list=$AITOOLKIT_WHEELS ;; esac
    for spec in $list; do
      if ! python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyv" --implementation cp "${plat[@]}" \
             -d "$dir" "$spec" 2>/dev/null; then
        log "$spec: no wheel on the index, building it (pure Python only)"
        python3 -m pip wheel -q --no-deps -w "$dir" "$spec" >/dev/null 2>&1 || { echo "gpu-check --prepare: cannot get $spec" >&2; exit 1; }
      fi
    done
    if ls "$dir"/*.whl | grep -v -e '-none-any\.whl$' -e "cp${pyv/./}" -e 'abi3' >&2; then
      echo "gpu-check --prepare: the wheels above are not for CPython $pyv" >&2; exit 1
    fi
  done
  rm -rf "$PREP"
  mv "$tmp" "$PREP"
  local mib; mib=$(( $(du -sb "$PREP" | cut -f1) / 1048576 ))
  log "ready: $PREP, $mib MiB ($(find "$PREP" -name '*.whl' | wc -l) wheels); the working tree travels too, 64 MiB in all"
  [ "$mib" -le 60 ] || echo "gpu-check --prepare: WARNING: $mib MiB leaves little room for the working tree (64 MiB)" >&2
  echo "carry: [\"${PREP#"$REPO"/}\"]"
}

# ------------------------------------------------------------------------------------------------ set-up helpers
# overlay VENV WHEEL_DIR... : a venv of $PY whose own site-packages hold the wheels, then the machine's site-packages
overlay() {
  local venv="$1"; shift
  local wheels=() d
  for d in "$@"; do [ -d "$d" ] && wheels+=("$d"/*.whl); done
  local stamp; stamp="$("$PY" -c 'import sys; print(sys.version)' | head -1) $(ls "${wheels[@]}" 2>/dev/null | xargs -r -n1 basename | sort | md5sum | cut -c1-16)"
  [ "$(cat "$venv/.gpu-check-stamp" 2>/dev/null)" == "$stamp" ] && return 0
  rm -rf "$venv"
  timeout 120 "$PY" -m venv --without-pip "$venv" || return 1
  local sp; sp="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" || return 1
  timeout 60 "$PY" - "$sp" <<'EOF' || return 1
import os, site, sys
dirs = [p for p in site.getsitepackages() + [site.getusersitepackages()] if os.path.isdir(p)]
with open(os.path.join(sys.argv[1], "zz_machine_site_packages.pth"), "w") as f:   # read after the overlay's own packages
    f.write("import site; " + "; ".join(f"site.addsitedir({d!r})" for d in dirs) + "\n")
EOF
  if [ ${#wheels[@]} -gt 0 ]; then
    timeout 300 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
      --target "$sp" "${wheels[@]}" > "$venv.pip.log" 2>&1 || { cat "$venv.pip.log" >&2; return 1; }
  fi
  echo "$stamp" > "$venv/.gpu-check-stamp"
}

# extract ARCHIVE TOP: sd-scripts/ or ai-toolkit/ under $CACHE/src, once per archive
extract() {
  local archive="$1" top="$2" stamp
  stamp="$(basename "$archive") $(stat -c %s "$archive")"
  [ "$(cat "$CACHE/src/$top/.gpu-check-extracted" 2>/dev/null)" == "$stamp" ] && return 0
  rm -rf "$CACHE/src/$top" "$CACHE/src/.partial"
  mkdir -p "$CACHE/src/.partial"
  timeout 120 tar -xzf "$archive" -C "$CACHE/src/.partial" || return 1
  [ -d "$CACHE/src/.partial/$top" ] || return 1
  mv "$CACHE/src/.partial/$top" "$CACHE/src/$top" && rmdir "$CACHE/src/.partial"
  echo "$stamp" > "$CACHE/src/$top/.gpu-check-extracted"
}

archive_of() { ls "$PREP"/engines/"$1"-*.tar.gz "$SHARED"/engines/"$1"-*.tar.gz 2>/dev/null | head -1; }
last_line() { grep -v '^\s*$' "$1" | tail -1 | cut -c1-300; }
NO_WHEELS_HINT="run 'bash scripts/gpu-check.sh --prepare' where PyPI is reachable and carry .whl/gpu-check"

setup_gpu() {   # sets LNB_PY, KOHYA_*, AITK_*
  PY="${PYTHON:-python3}"
  mkdir -p "$CACHE"
  [ -d "$PREP/wheels" ] || log "no $PREP/wheels: using only the machine's packages ($NO_WHEELS_HINT)"
  local check="import lora_nb.engines.launch, lora_nb.jobs.supervise, lora_nb.tagging.pipeline, lora_nb.lora.rank_resize"
  LNB_PY="$PY"
  if overlay "$CACHE/lnb-venv" "$PREP/wheels/pydantic" "$PREP/wheels/lnb"; then
    # the checkout itself on the path of every lora-nb process (supervisors start with other working folders)
    "$CACHE/lnb-venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' | xargs -I{} sh -c "echo '$REPO' > {}/lora_nb_checkout.pth"
    (cd /tmp && timeout 120 "$CACHE/lnb-venv/bin/python" -c "$check") >&2 && LNB_PY="$CACHE/lnb-venv/bin/python"
  fi
  if [ "$LNB_PY" == "$PY" ]; then
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    log "lora-nb runs on the machine's own $PY (its overlay venv did not work; see setup.log)"
  fi
  # sd-scripts
  local a; a="$(archive_of sd-scripts)"
  KOHYA_DIR="$CACHE/src/sd-scripts" KOHYA_PY="$CACHE/kohya-venv/bin/python" KOHYA_SKIP=""
  if [ -z "$a" ]; then KOHYA_SKIP="sd-scripts is not set up: no sd-scripts-*.tar.gz in $PREP/engines or $SHARED/engines ($NO_WHEELS_HINT)"
  elif ! extract "$a" sd-scripts; then KOHYA_SKIP="sd-scripts is not set up: extracting $(basename "$a") failed"
  elif ! overlay "$CACHE/kohya-venv" "$PREP/wheels/kohya"; then KOHYA_SKIP="sd-scripts is not set up: its overlay venv could not be made: $(last_line "$CACHE/kohya-venv.pip.log" 2>/dev/null)"
  elif ! (cd "$KOHYA_DIR" && timeout 240 "$KOHYA_PY" -c "import torch, torchvision.transforms, accelerate.commands.launch, diffusers, transformers, voluptuous, toml, imagesize, library.train_util, library.sdxl_train_util, library.strategy_sdxl, networks.lora; assert torch.cuda.is_available(), 'torch sees no CUDA'") >"$CACHE/kohya-check.log" 2>&1; then
    KOHYA_SKIP="sd-scripts does not import in its overlay venv on this machine: $(last_line "$CACHE/kohya-check.log")"
  fi
  [ -n "$KOHYA_SKIP" ] && log "$KOHYA_SKIP" || log "sd-scripts ready: $KOHYA_DIR with $KOHYA_PY"
  # ai-toolkit
  a="$(archive_of ai-toolkit)"
  AITK_DIR="$CACHE/src/ai-toolkit" AITK_PY="$CACHE/aitoolkit-venv/bin/python" AITK_SKIP=""
  if [ -z "$a" ]; then AITK_SKIP="ai-toolkit is not set up: no ai-toolkit-*.tar.gz in $PREP/engines or $SHARED/engines ($NO_WHEELS_HINT)"
  elif ! extract "$a" ai-toolkit; then AITK_SKIP="ai-toolkit is not set up: extracting $(basename "$a") failed"
  elif ! overlay "$CACHE/aitoolkit-venv" "$PREP/wheels/aitoolkit" "$PREP/wheels/pydantic"; then AITK_SKIP="ai-toolkit is not set up: its overlay venv could not be made: $(last_line "$CACHE/aitoolkit-venv.pip.log" 2>/dev/null)"
  else
    local sp; sp="$("$AITK_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    if ! "$AITK_PY" -c "import av" 2>/dev/null; then
      mkdir -p "$sp/av"
      cat > "$sp/av/__init__.py" <<'EOF'
"""gpu-check stub for PyAV (NOT PyAV): ai-toolkit imports `av` at the top of toolkit/audio/*.py and
toolkit/data_transfer_object/data_loader.py but calls it only for audio and video datasets. The real
wheel (40 MB) does not fit in what travels to the GPU machine. Any use raises ImportError."""


def __getattr__(name):
    raise ImportError(f"av.{name}: PyAV is not installed here (scripts/gpu-check.sh stub; image LoRA training never uses it)")
EOF
    fi
    if ! (cd "$AITK_DIR" && NO_ALBUMENTATIONS_UPDATE=1 timeout 300 "$AITK_PY" -W ignore -c "import sys, os; sys.path.insert(0, os.getcwd()); import torch, torchvision, torchaudio, diffusers, transformers, yaml, oyaml, toolkit.job, jobs.ExtensionJob, toolkit.config_modules, toolkit.stable_diffusion_model, extensions_built_in.sd_trainer.SDTrainer; from toolkit.extension import get_all_extensions_process_dict as g; g(); assert torch.cuda.is_available(), 'torch sees no CUDA'") >"$CACHE/aitoolkit-check.log" 2>&1; then
      AITK_SKIP="ai-toolkit does not import in its overlay venv on this machine: $(last_line "$CACHE/aitoolkit-check.log")"
    fi
  fi
  [ -n "$AITK_SKIP" ] && log "$AITK_SKIP" || log "ai-toolkit ready: $AITK_DIR with $AITK_PY"
}

setup_cpu_engines() {   # the CPU rehearsal: the project's own CPU set-up scripts, as they are
  local k out
  if k="$(timeout "$(left)" bash "$REPO/scripts/kohya-cpu-setup.sh" 2>>"$OUTDIR/setup.log" | tail -1)" && [ -d "$k/sd-scripts" ]; then
    DRIVER_ENGINES+=(--kohya-dir "$k/sd-scripts" --kohya-python "$k/venv/bin/python" --sd15-model "$k/sd15-random" --sd15-tok "$k/tok")
  else
    DRIVER_ENGINES+=(--kohya-skip "scripts/kohya-cpu-setup.sh failed or timed out (see setup.log)")
  fi
  if out="$(timeout "$(left)" bash "$REPO/scripts/aitoolkit-cpu-setup.sh" 2>>"$OUTDIR/setup.log")"; then
    eval "$(grep '^export ' <<<"$out")"
    DRIVER_ENGINES+=(--aitoolkit-dir "$LORA_NB_REAL_AITOOLKIT_DIR" --aitoolkit-python "$LORA_NB_REAL_AITOOLKIT_PYTHON"
                     --flux-model "$LORA_NB_REAL_AITOOLKIT_MODELS/flux-tiny")
  else
    DRIVER_ENGINES+=(--aitoolkit-skip "scripts/aitoolkit-cpu-setup.sh failed or timed out (see setup.log)")
  fi
}

# ------------------------------------------------------------------------------------------------ main
if [ "$MODE" == prepare ]; then prepare; exit 0; fi
if [ "$MODE" == overlay ]; then PY="${PYTHON:-python3}"; overlay "$@"; exit $?; fi
mkdir -p "$OUTDIR"
: > "$OUTDIR/setup.log"
DRIVER_ENGINES=()
DRIVER_MODE=()
if [ "$MODE" == dry ]; then
  LNB_PY="${PYTHON:-$REPO/.venv/bin/python}"
  [ -x "$LNB_PY" ] || LNB_PY=python3
  DRIVER_MODE=(--dry-run)
  if [ "$CPU_ENGINES" == 1 ]; then
    DRIVER_MODE+=(--cpu-engines)
    setup_cpu_engines
  fi
else
  log "setting up (cache $CACHE)"
  setup_gpu 2>>"$OUTDIR/setup.log"
  DRIVER_ENGINES=(--kohya-dir "$KOHYA_DIR" --kohya-python "$KOHYA_PY" --aitoolkit-dir "$AITK_DIR" --aitoolkit-python "$AITK_PY"
                  --tools "$PREP/tools")
  [ -d "$PREP/tools" ] || DRIVER_ENGINES+=(--tools "$SHARED/tools/kohya-cpu")
  [ -n "$KOHYA_SKIP" ] && DRIVER_ENGINES+=(--kohya-skip "$KOHYA_SKIP")
  [ -n "$AITK_SKIP" ] && DRIVER_ENGINES+=(--aitoolkit-skip "$AITK_SKIP")
  log "set-up done ($(left) s of the budget left)"
fi
[ -n "$ONLY" ] && DRIVER_MODE+=(--only "$ONLY")
LEFT=$(left)
[ "$LEFT" -gt 10 ] || LEFT=10
# the driver stops starting steps at the deadline; `timeout` is the backstop (a step's own limit plus its clean-up)
cd "$REPO"
timeout -k 10 $((LEFT + 45)) "$LNB_PY" bench/gpu_check.py "${DRIVER_MODE[@]}" "${DRIVER_ENGINES[@]}" --deadline "$DEADLINE" \
  --out "$OUTDIR" --work "$CACHE/work" --models "$CACHE/models"
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
  echo "gpu-check: the driver ended with status $rc (124: killed at the time limit) before printing its table; rows so far:"
  cat "$OUTDIR/gpu-check.md" 2>/dev/null || echo "(none)"
  exit 1
fi
exit $rc
