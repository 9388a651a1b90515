#!/usr/bin/env bash
# Set up everything the tests need, then run the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh dev,cpu
# Browser tests drive Debian's Chromium; never a browser that a tool downloads itself.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "test.sh: could not install chromium; browser tests will be skipped"
  else
    echo "test.sh: /usr/bin/chromium is missing (sudo apt-get install chromium); browser tests will be skipped"
  fi
fi
mkdir -p test-artifacts
# The REAL ai-toolkit on CPU for tests/engines/test_engines_real_aitoolkit.py: set up once in the engine cache outside
# the repository (first time about 5 minutes, then seconds, offline); on CI a failed set-up makes those tests fail.
echo "test.sh: ai-toolkit CPU set-up (log: test-artifacts/aitoolkit-cpu-setup.log)"
if aitk_env="$(bash scripts/aitoolkit-cpu-setup.sh 2> test-artifacts/aitoolkit-cpu-setup.log)"; then
  eval "$(printf '%s\n' "$aitk_env" | grep '^export LORA_NB_REAL_AITOOLKIT_')"
else
  echo "test.sh: the ai-toolkit CPU set-up failed (see test-artifacts/aitoolkit-cpu-setup.log); its real-engine tests fail on CI, else skip"
fi
# The REAL kohya sd-scripts on CPU for tests/engines/real/ and tests/engines/test_engines_real_kohya.py: extracted from
# ../shared/engines into the engine cache outside the repository, its own venv and a random SD 1.5 (first time about
# 4 minutes and ~3.6 GB, then instant, offline); on CI a failed set-up makes those tests fail.
echo "test.sh: sd-scripts CPU set-up (log: test-artifacts/kohya-cpu-setup.log)"
if kohya_dir="$(bash scripts/kohya-cpu-setup.sh 2> test-artifacts/kohya-cpu-setup.log)"; then
  export LORA_NB_REAL_KOHYA_DIR="$kohya_dir"
else
  echo "test.sh: the sd-scripts CPU set-up failed (see test-artifacts/kohya-cpu-setup.log); its real-engine tests fail on CI, else skip"
fi
# SkyPilot for tests/cloud (lora-nb cluster): its own venv in the cache outside the repository (its pins clash with
# Jupyter's); first time about 2 minutes from PyPI, then instant. Without it those tests skip here and fail on CI.
echo "test.sh: SkyPilot venv (log: test-artifacts/skypilot-venv.log)"
# sky.launch(dryrun=True) checks for rsync (it syncs files to the nodes) before it plans anything
if ! command -v rsync >/dev/null && [ "$(id -u)" = 0 ]; then
  (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync >/dev/null 2>&1 \
    || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync >/dev/null 2>&1)) \
    || echo "test.sh: could not install rsync; lora-nb cluster --dryrun tests fail"
fi
if sky_py="$(bash scripts/skypilot-venv.sh 2> test-artifacts/skypilot-venv.log)"; then
  export LORA_NB_SKYPILOT_PYTHON="$sky_py"
else
  echo "test.sh: the SkyPilot venv could not be made (see test-artifacts/skypilot-venv.log); tests/cloud's SkyPilot tests skip (fail on CI)"
fi
exec .venv/bin/python -m pytest "$@"
