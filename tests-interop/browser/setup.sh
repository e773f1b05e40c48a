#!/usr/bin/env bash
# Makes sure a headless-capable Chromium and its WebDriver (chromedriver) are installed,
# idempotently.
#   * $WS_CHROMIUM / $WS_CHROMEDRIVER set: that binary is used as is (nothing is installed).
#   * /usr/bin/chromium and /usr/bin/chromedriver present: nothing to do.
#   * otherwise: Debian's `chromium` / `chromium-driver` packages via apt-get (needs root and
#     apt-get; `apt-get update` first when apt does not know a package yet).
# chromedriver is for tests/chat_browser.rs (WebDriver); run.js drives Chromium without it.
# Exit status: 0 ready (prints the Chromium binary's path on stdout), 3 cannot install here
# (not root / no apt-get: the caller may skip), 1 anything else failed.
set -euo pipefail
log() { echo "browser-setup: $*" >&2; }

BIN="${WS_CHROMIUM:-/usr/bin/chromium}"
DRIVER="${WS_CHROMEDRIVER:-/usr/bin/chromedriver}"
for var in WS_CHROMIUM WS_CHROMEDRIVER; do
  if [ -n "${!var:-}" ] && [ ! -x "${!var}" ]; then
    log "$var=${!var} is not an executable"; exit 1
  fi
done
missing=()
[ -x "$BIN" ] || missing+=(chromium)
[ -x "$DRIVER" ] || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get --version >/dev/null 2>&1 || { log "no ${missing[*]} and no apt-get to install it"; exit 3; }
  [ "$(id -u)" = 0 ] || { log "no ${missing[*]} and not root: cannot apt-get install it"; exit 3; }
  export DEBIAN_FRONTEND=noninteractive
  t0=$SECONDS
  # (Not `apt-cache … | grep -q`: with pipefail, grep's early exit fails the pipe.)
  policy=$(apt-cache policy "${missing[@]}" 2>/dev/null || true)
  if [ "$(grep -c 'Candidate: [0-9]' <<<"$policy" || true)" -lt ${#missing[@]} ]; then
    log "apt-get update"
    apt-get update -qq >&2
  fi
  log "apt-get install ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  [ -x "$BIN" ] || { log "chromium installed but $BIN is missing"; exit 1; }
  [ -x "$DRIVER" ] || { log "chromium-driver installed but $DRIVER is missing"; exit 1; }
  log "${missing[*]} installed in $((SECONDS - t0))s"
fi
# Proves the binaries run (shared libraries present) without starting a browser window.
ver=$("$BIN" --version 2>/dev/null) || { log "$BIN --version failed"; exit 1; }
log "$ver ok"
dver=$("$DRIVER" --version 2>/dev/null) || { log "$DRIVER --version failed"; exit 1; }
log "${dver%% (*} ok"
echo "$BIN"
