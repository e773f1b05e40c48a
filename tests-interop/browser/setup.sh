#!/usr/bin/env bash
# Makes sure a headless-capable Chromium is installed, idempotently.
#   * $WS_CHROMIUM set: that binary is used as is (nothing is installed).
#   * /usr/bin/chromium present: nothing to do.
#   * otherwise: Debian's `chromium` package via apt-get (needs root and apt-get;
#     `apt-get update` first when apt does not know the package yet).
# Exit status: 0 ready (prints the binary's path on stdout), 3 cannot install here
# (not root / no apt-get: the caller may skip), 1 anything else failed.
set -euo pipefail
log() { echo "browser-setup: $*" >&2; }

BIN="${WS_CHROMIUM:-/usr/bin/chromium}"
if [ -n "${WS_CHROMIUM:-}" ]; then
  [ -x "$BIN" ] || { log "WS_CHROMIUM=$BIN is not an executable"; exit 1; }
elif [ ! -x "$BIN" ]; then
  apt-get --version >/dev/null 2>&1 || { log "no $BIN and no apt-get to install it"; exit 3; }
  [ "$(id -u)" = 0 ] || { log "no $BIN and not root: cannot apt-get install chromium"; exit 3; }
  export DEBIAN_FRONTEND=noninteractive
  t0=$SECONDS
  # (Not `apt-cache … | grep -q`: with pipefail, grep's early exit fails the pipe.)
  policy=$(apt-cache policy chromium 2>/dev/null || true)
  if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
    log "apt-get update"
    apt-get update -qq >&2
  fi
  log "apt-get install chromium"
  apt-get install -y -qq --no-install-recommends chromium >&2
  [ -x "$BIN" ] || { log "chromium installed but $BIN is missing"; exit 1; }
  log "chromium installed in $((SECONDS - t0))s"
fi
# Proves the binary runs (shared libraries present) without starting a browser window.
ver=$("$BIN" --version 2>/dev/null) || { log "$BIN --version failed"; exit 1; }
log "$ver ok"
echo "$BIN"
