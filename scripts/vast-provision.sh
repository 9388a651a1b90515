#!/bin/bash
# lora-nb provisioning for a Vast.ai template (vastai/pytorch or vastai/base-image family).
#
# Use it as the template's PROVISIONING_SCRIPT (a raw URL of this file), or run it by hand on a
# box: `bash vast-provision.sh`. It is idempotent: running it again updates lora-nb and leaves
# one copy of every entry it adds.
#
# What it does:
#   1. installs lora-nb into the template's Python environment (/venv/main) WITHOUT touching its
#      torch: the torch version is pinned with a constraints file and checked afterwards;
#   2. puts the workspace under $WORKSPACE/lora-nb (LORA_NB_HOME in /etc/environment);
#   3. registers the dashboard as a supervisor service bound to 127.0.0.1:$LORA_NB_PORT;
#   4. adds an Instance Portal entry, so Caddy serves it on $LORA_NB_PORTAL_PORT behind the
#      portal's authentication (the app itself never listens on a public address);
#   5. optionally installs a training engine (LORA_NB_ENGINE=kohya or ai-toolkit), reusing the
#      template's torch.
# Steps 3 and 4 are skipped with LORA_NB_DASHBOARD=0 (SkyPilot nodes: `lora-nb cluster up` runs this script
# as every node's setup, non-interactively; jobs reach those nodes through Ray, not the dashboard).
#
# Settings (environment variables; the defaults suit a stock template):
#   LORA_NB_SPEC         pip requirement for lora-nb   (default: lora-nb[gpu]; e.g. git+https://…/lora-nb.git)
#   LORA_NB_PIP_ARGS     extra pip arguments            (default: none)
#   LORA_NB_PORT         loopback port of the dashboard (default: 18866)
#   LORA_NB_PORTAL_PORT  external port Caddy serves     (default: 8866; open it in the template: -p 8866:8866)
#   LORA_NB_ENGINE       kohya | ai-toolkit | empty     (default: empty)
#   LORA_NB_WITH         more pip requirements installed with lora-nb, same torch pin (default: none; nodes: ray)
#   LORA_NB_DASHBOARD    1: register the dashboard service and portal entry; 0: skip both (default: 1)
#   LORA_NB_VENV         Python environment             (default: /venv/main if present, else the system python3)
#   WORKSPACE            persistent folder              (default: /workspace)
#   LORA_NB_ROOT         prefix for /etc and /opt       (default: empty; tests use a scratch folder)
set -euo pipefail

LORA_NB_SPEC="${LORA_NB_SPEC:-lora-nb[gpu]}"
LORA_NB_PIP_ARGS="${LORA_NB_PIP_ARGS:-}"
LORA_NB_PORT="${LORA_NB_PORT:-18866}"
LORA_NB_PORTAL_PORT="${LORA_NB_PORTAL_PORT:-8866}"
LORA_NB_ENGINE="${LORA_NB_ENGINE:-}"
LORA_NB_WITH="${LORA_NB_WITH:-}"
LORA_NB_DASHBOARD="${LORA_NB_DASHBOARD:-1}"
WORKSPACE="${WORKSPACE:-/workspace}"
ROOT="${LORA_NB_ROOT:-}"
LORA_NB_HOME="${WORKSPACE}/lora-nb"
SUPERVISORCTL="${SUPERVISORCTL:-supervisorctl}"

log() { printf '[lora-nb provision] %s\n' "$*"; }
die() { printf '[lora-nb provision] ERROR: %s\n' "$*" >&2; exit 1; }

case "$LORA_NB_PORT$LORA_NB_PORTAL_PORT" in *[!0-9]*) die "LORA_NB_PORT and LORA_NB_PORTAL_PORT must be numbers.";; esac
[ "$LORA_NB_PORT" != "$LORA_NB_PORTAL_PORT" ] || die "LORA_NB_PORT must differ from LORA_NB_PORTAL_PORT: equal ports make Caddy skip authentication."
case "$LORA_NB_ENGINE" in ""|kohya|ai-toolkit) ;; *) die "LORA_NB_ENGINE must be kohya, ai-toolkit or empty (got '$LORA_NB_ENGINE').";; esac
case "$LORA_NB_DASHBOARD" in 0|1) ;; *) die "LORA_NB_DASHBOARD must be 0 or 1 (got '$LORA_NB_DASHBOARD').";; esac

# 1. the template's Python ----------------------------------------------------------------------
VENV="${LORA_NB_VENV:-}"
if [ -z "$VENV" ] && [ -x /venv/main/bin/python ]; then VENV=/venv/main; fi
if [ -n "$VENV" ]; then
    [ -x "$VENV/bin/python" ] || die "$VENV/bin/python does not exist; set LORA_NB_VENV to the template's environment."
    PY="$VENV/bin/python"
else
    PY="$(command -v python3)" || die "no python3 found; set LORA_NB_VENV."
fi
BIN="$(dirname "$PY")"
log "python: $PY"

torch_version() { "$PY" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true; }
TORCH_BEFORE="$(torch_version)"
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
if [ -n "$TORCH_BEFORE" ]; then
    echo "torch==$TORCH_BEFORE" > "$CONSTRAINTS"
    log "keeping the template's torch $TORCH_BEFORE"
else
    log "no torch in this environment (lora-nb itself does not need it; engines bring their own)"
fi

if command -v uv >/dev/null 2>&1 && [ -n "$VENV" ]; then
    PIP=(uv pip install --python "$PY")
else
    PIP=("$PY" -m pip install --progress-bar off)
fi
# shellcheck disable=SC2086  # LORA_NB_PIP_ARGS and LORA_NB_WITH are lists of words on purpose
"${PIP[@]}" -c "$CONSTRAINTS" $LORA_NB_PIP_ARGS "$LORA_NB_SPEC" $LORA_NB_WITH \
    || die "installing '$LORA_NB_SPEC' failed (see above); a dependency may need another torch: the template's torch was left alone."
TORCH_AFTER="$(torch_version)"
[ "$TORCH_BEFORE" = "$TORCH_AFTER" ] || die "torch changed from '$TORCH_BEFORE' to '$TORCH_AFTER'; reinstall the template's torch."
[ -x "$BIN/lora-nb" ] || die "the lora-nb command was not installed into $BIN."
log "installed $("$PY" -c 'import lora_nb; print(lora_nb.__version__)' 2>/dev/null || echo '?') into $PY"

# 2. the workspace ------------------------------------------------------------------------------
mkdir -p "$LORA_NB_HOME" "$ROOT/etc"
touch "$ROOT/etc/environment"
if grep -q '^LORA_NB_HOME=' "$ROOT/etc/environment"; then
    sed -i "s#^LORA_NB_HOME=.*#LORA_NB_HOME=\"$LORA_NB_HOME\"#" "$ROOT/etc/environment"
else
    echo "LORA_NB_HOME=\"$LORA_NB_HOME\"" >> "$ROOT/etc/environment"
fi
log "workspace: $LORA_NB_HOME"

if [ "$LORA_NB_DASHBOARD" = 1 ]; then
# 3. the supervised dashboard -------------------------------------------------------------------
mkdir -p "$ROOT/opt/supervisor-scripts" "$ROOT/etc/supervisor/conf.d"
cat > "$ROOT/opt/supervisor-scripts/lora-nb.sh" <<EOF
#!/bin/bash
# lora-nb dashboard (written by vast-provision.sh)
utils=/opt/supervisor-scripts/utils
for u in logging.sh cleanup_generic.sh environment.sh; do [ -f "\$utils/\$u" ] && . "\$utils/\$u"; done
[ -f "\$utils/exit_portal.sh" ] && . "\$utils/exit_portal.sh" "lora-nb"
while [ -f /.provisioning ]; do
    echo "lora-nb: waiting for provisioning to finish"
    sleep 5
done
export LORA_NB_HOME="$LORA_NB_HOME"
exec "$BIN/lora-nb" dashboard --ip 127.0.0.1 --port $LORA_NB_PORT --workspace "$LORA_NB_HOME" --no-browser
EOF
chmod +x "$ROOT/opt/supervisor-scripts/lora-nb.sh"
cat > "$ROOT/etc/supervisor/conf.d/lora-nb.conf" <<EOF
[program:lora-nb]
environment=PROC_NAME="%(program_name)s"
command=/opt/supervisor-scripts/lora-nb.sh
autostart=true
autorestart=true
startsecs=5
stopasgroup=true
killasgroup=true
stopsignal=TERM
stopwaitsecs=20
stdout_logfile=/dev/stdout
redirect_stderr=true
stdout_logfile_maxbytes=0
stdout_logfile_backups=0
EOF
# training jobs are separate processes (their own sessions): restarting this service never stops a run
log "supervisor service: lora-nb on 127.0.0.1:$LORA_NB_PORT"

# 4. the Instance Portal entry ------------------------------------------------------------------
PORTAL="$ROOT/etc/portal.yaml"
if [ -f "$PORTAL" ] && grep -q '^applications:' "$PORTAL"; then
    if ! grep -q '^  lora-nb:' "$PORTAL"; then
        cat >> "$PORTAL" <<EOF
  lora-nb:
    hostname: localhost
    external_port: $LORA_NB_PORTAL_PORT
    internal_port: $LORA_NB_PORT
    open_path: /
    name: lora-nb
EOF
        log "portal: lora-nb added on port $LORA_NB_PORTAL_PORT"
        "$SUPERVISORCTL" restart caddy >/dev/null 2>&1 || log "could not restart caddy; restart it or the instance to see the portal entry"
    else
        log "portal: lora-nb entry already present"
    fi
else
    log "no /etc/portal.yaml with an applications list yet: add 'localhost:$LORA_NB_PORTAL_PORT:$LORA_NB_PORT:/:lora-nb' to the template's PORTAL_CONFIG"
fi

if command -v "$SUPERVISORCTL" >/dev/null 2>&1; then
    "$SUPERVISORCTL" reread >/dev/null && "$SUPERVISORCTL" update >/dev/null || log "supervisorctl could not load the service yet; it starts with supervisor"
fi
else
    log "LORA_NB_DASHBOARD=0: no dashboard service and no portal entry (a cluster node)"
fi

# 5. an engine (optional) -----------------------------------------------------------------------
if [ -n "$LORA_NB_ENGINE" ]; then
    torch_mode=system
    [ -n "$TORCH_BEFORE" ] || torch_mode=cuda
    log "installing $LORA_NB_ENGINE (torch: $torch_mode); this takes several minutes"
    LORA_NB_HOME="$LORA_NB_HOME" "$BIN/lora-nb" engines install "$LORA_NB_ENGINE" --torch "$torch_mode" \
        || log "the $LORA_NB_ENGINE install failed; run 'lora-nb engines install $LORA_NB_ENGINE --torch $torch_mode' later (the dashboard works without it)"
fi

if [ "$LORA_NB_DASHBOARD" = 1 ]; then
    log "done: open the lora-nb tab in the Instance Portal (port $LORA_NB_PORTAL_PORT)"
else
    log "done: lora-nb is in $BIN"
fi
