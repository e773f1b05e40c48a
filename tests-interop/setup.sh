#!/usr/bin/env bash
# Installs the interop peers idempotently into a cache dir:
#   Python websockets 17.x  -> $WS_INTEROP_HOME/venv
#   Node ws 8.x             -> $WS_INTEROP_HOME/node/node_modules
# WS_INTEROP_HOME defaults to $HOME/.cache/ws-interop.
# Prints nothing but a status line when already installed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HOME_DIR="${WS_INTEROP_HOME:-$HOME/.cache/ws-interop}"
mkdir -p "$HOME_DIR"
PY_SPEC=$(tr -d '[:space:]' < "$HERE/python/requirements.txt")
VENV="$HOME_DIR/venv"
log() { echo "interop-setup: $*" >&2; }

# ---- Python websockets
want_py() {
  "$VENV/bin/python" - "$1" <<'PY' 2>/dev/null
import sys, websockets
major = sys.argv[1]
sys.exit(0 if websockets.__version__.split(".")[0] == major else 1)
PY
}
if [ -x "$VENV/bin/python" ] && want_py 17; then
  log "python websockets $("$VENV/bin/python" -c 'import websockets; print(websockets.__version__)') ok"
else
  command -v python3 >/dev/null || { log "python3 not found"; exit 1; }
  log "creating venv $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$PY_SPEC"
  want_py 17 || { log "websockets 17 did not install"; exit 1; }
  log "python websockets $("$VENV/bin/python" -c 'import websockets; print(websockets.__version__)') installed"
fi

# ---- Node ws
NODE_DIR="$HOME_DIR/node"
want_node() {
  NODE_PATH="$NODE_DIR/node_modules" node -e \
    'process.exit(require("ws/package.json").version.split(".")[0] === "8" ? 0 : 1)' 2>/dev/null
}
if cmp -s "$HERE/node/package.json" "$NODE_DIR/package.json" && want_node; then
  log "node ws $(NODE_PATH="$NODE_DIR/node_modules" node -p 'require("ws/package.json").version') ok"
else
  command -v node >/dev/null && command -v npm >/dev/null || { log "node/npm not found"; exit 1; }
  mkdir -p "$NODE_DIR"
  cp "$HERE/node/package.json" "$NODE_DIR/package.json"
  [ -f "$HERE/node/package-lock.json" ] && cp "$HERE/node/package-lock.json" "$NODE_DIR/"
  ( cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error >/dev/null )
  want_node || { log "ws 8 did not install"; exit 1; }
  log "node ws $(NODE_PATH="$NODE_DIR/node_modules" node -p 'require("ws/package.json").version') installed"
fi
