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
exec .venv/bin/python -m pytest "$@"
