#!/usr/bin/env bash
# Installs the Autobahn|Testsuite (wstest 0.8.2, the reference WebSocket
# conformance suite) plus the wsaccel C speedups into a private prefix, without
# touching the system. Idempotent: re-running on a complete install is a no-op.
#
# wstest is Python 2.7 code. Python 2.7 comes from Debian bullseye packages,
# unpacked (dpkg -x) into the prefix through a private apt list; its libraries
# come from PyPI, pinned to the last versions that still run on Python 2.7.
# wsaccel 0.6.3 (C UTF-8 validator + XOR masker, picked up by autobahn 0.10.9
# when importable) is compiled with gcc against the bullseye Python 2.7 headers;
# without it wstest itself is the bottleneck of sections 9, 12 and 13.
#
# Usage: scripts/autobahn-install.sh [PREFIX]
#        (default: $AUTOBAHN_HOME, else $HOME/.cache/ws-autobahn)
# Then:  PREFIX/wstest -m fuzzingclient -s spec.json
# Needs: apt-get + dpkg (Debian-like host), python3 with pip, gcc.
set -euo pipefail

PREFIX="${1:-${AUTOBAHN_HOME:-$HOME/.cache/ws-autobahn}}"
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
STAMP="$PREFIX/.ws-autobahn-complete-v1"
ACCEL_CHECK='import site, sys; site.addsitedir(sys.argv[1]); import wsaccel.utf8validator, wsaccel.xormask'

log() { echo "autobahn-install: $*" >&2; }

if [ -f "$STAMP" ] && [ -x "$PREFIX/wstest" ] && "$PREFIX/wstest" --help >/dev/null 2>&1 \
   && "$PREFIX/python2.7" -c "$ACCEL_CHECK" "$PREFIX/site" 2>/dev/null; then
  log "already installed in $PREFIX"
  exit 0
fi
for tool in apt-get dpkg python3 gcc; do
  command -v "$tool" >/dev/null || { log "missing required tool: $tool"; exit 1; }
done
mkdir -p "$PREFIX"/{apt/lists/partial,apt/sources,debs,debs-dev,root,dev,site,wheels}

APTO=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$PREFIX/apt/sources"
      -o "Dir::State::Lists=$PREFIX/apt/lists" -o "Dir::Cache=$PREFIX/apt/cache"
      -o Debug::NoLocking=1 -o APT::Sandbox::User=root)

# ---------------------------------------------------------------- 1. Python 2.7
if [ ! -x "$PREFIX/root/usr/bin/python2.7" ]; then
  # The mirror is the one this machine's apt already uses for its main Debian suite.
  MIRROR=$(grep -h -E '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -v -- '-security' | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' \
    | awk '{print $1; exit}' || true)
  [ -n "$MIRROR" ] || { log "no Debian mirror found in the apt configuration"; exit 1; }
  KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$KEYRING" ] || { log "missing $KEYRING (apt-get install debian-archive-keyring)"; exit 1; }
  cat > "$PREFIX/apt/sources/bullseye.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: bullseye
Components: main
Signed-By: $KEYRING
SRC
  mkdir -p "$PREFIX/apt/cache/archives/partial"
  log "fetching Python 2.7 (Debian bullseye) from $MIRROR"
  apt-get "${APTO[@]}" update -qq
  rm -f "$PREFIX"/debs/*.deb
  ( cd "$PREFIX/debs" && apt-get "${APTO[@]}" download -qq \
      python2.7 python2.7-minimal libpython2.7-minimal libpython2.7-stdlib libssl1.1 libffi7 )
  for deb in "$PREFIX"/debs/*.deb; do dpkg -x "$deb" "$PREFIX/root"; done
fi

PY="$PREFIX/python2.7"
cat > "$PY" <<WRAP
#!/usr/bin/env bash
export PYTHONHOME="$PREFIX/root/usr"
export LD_LIBRARY_PATH="$PREFIX/root/usr/lib/x86_64-linux-gnu:$PREFIX/root/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
unset PYTHONPATH
exec "$PREFIX/root/usr/bin/python2.7" -W ignore "\$@"
WRAP
chmod +x "$PY"
"$PY" -c 'import ssl, ctypes, zlib' || { log "python2.7 in $PREFIX is broken"; exit 1; }

# ------------------------------------------------------- 2. wstest and its deps
if ! "$PY" -c 'import site, sys; site.addsitedir(sys.argv[1]); import autobahntestsuite.wstest' "$PREFIX/site" 2>/dev/null; then
  log "installing autobahntestsuite 0.8.2 and pinned dependencies"
  python3 -m pip download -q --disable-pip-version-check --no-deps -d "$PREFIX/wheels" \
    pip==20.3.4 setuptools==44.1.1 wheel==0.37.1
  PIPWHL="$PREFIX/wheels/pip-20.3.4-py2.py3-none-any.whl"
  pip2() {
    PYTHONHOME="$PREFIX/root/usr" \
    LD_LIBRARY_PATH="$PREFIX/root/usr/lib/x86_64-linux-gnu:$PREFIX/root/lib/x86_64-linux-gnu" \
    PYTHONPATH="$1" "$PREFIX/root/usr/bin/python2.7" -W ignore -m pip install -q --no-cache-dir \
      --disable-pip-version-check --no-python-version-warning --target "$PREFIX/site" "${@:2}" \
      2>&1 | grep -v -E "DEPRECATION|already exists|Target directory" || true
  }
  pip2 "$PIPWHL" "$PIPWHL" "$PREFIX/wheels/setuptools-44.1.1-py2.py3-none-any.whl" \
    "$PREFIX/wheels/wheel-0.37.1-py2.py3-none-any.whl"
  pip2 "$PREFIX/site" --upgrade \
    "autobahn[twisted]==0.10.9" "txaio==1.1.0" "Twisted==20.3.0" "zope.interface==5.5.2" \
    "jinja2==2.11.3" "markupsafe==1.1.1" "Werkzeug==1.0.1" "klein==20.6.0" "pyopenssl==21.0.0" \
    "cryptography==3.3.2" "service_identity==21.1.0" "unittest2==1.1.0" "treq==15.1.0" \
    "attrs==21.4.0" "Automat==22.10.0" "incremental==22.10.0" "hyperlink==21.0.0" "idna==2.10" \
    "PyHamcrest==1.10.1" "constantly==15.1.0" "six==1.17.0" "requests==2.27.1" "urllib3==1.26.20" \
    "certifi==2021.10.8" "chardet==4.0.0" "enum34==1.1.10" "ipaddress==1.0.23" "cffi==1.15.1" \
    "pycparser==2.21" "pyasn1==0.5.1" "pyasn1_modules==0.3.0" "typing==3.10.0.0" \
    "linecache2==1.0.0" "traceback2==1.4.0" "argparse==1.4.0" "Tubes==0.2.1"
  pip2 "$PREFIX/site" --upgrade --no-deps "autobahntestsuite==0.8.2"
fi

cat > "$PREFIX/wstest" <<WRAP
#!/usr/bin/env bash
# wstest, the Autobahn|Testsuite command line.
exec "$PY" -c "import site, sys; site.addsitedir('$PREFIX/site'); sys.argv = ['wstest'] + sys.argv[1:]; from autobahntestsuite.wstest import run; run()" "\$@"
WRAP
chmod +x "$PREFIX/wstest"
"$PREFIX/wstest" --help >/dev/null || { log "wstest does not start"; exit 1; }

# ------------------------------------------------------------------ 3. wsaccel
if ! "$PY" -c "$ACCEL_CHECK" "$PREFIX/site" 2>/dev/null; then
  log "building wsaccel 0.6.3"
  ls "$PREFIX"/apt/lists/*bullseye*Packages* >/dev/null 2>&1 || apt-get "${APTO[@]}" update -qq
  mkdir -p "$PREFIX/apt/cache/archives/partial"
  rm -f "$PREFIX"/debs-dev/*.deb
  ( cd "$PREFIX/debs-dev" && apt-get "${APTO[@]}" download -qq libpython2.7-dev python2.7-dev )
  for deb in "$PREFIX"/debs-dev/*.deb; do dpkg -x "$deb" "$PREFIX/dev"; done
  python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary=:all: \
    -d "$PREFIX/wheels" wsaccel==0.6.3
  SRC=$(mktemp -d); trap 'rm -rf "$SRC"' EXIT
  tar xzf "$PREFIX/wheels/wsaccel-0.6.3.tar.gz" -C "$SRC"
  mkdir -p "$PREFIX/site/wsaccel"
  cp "$SRC/wsaccel-0.6.3/wsaccel/__init__.py" "$PREFIX/site/wsaccel/"
  for m in utf8validator xormask; do
    gcc -shared -fPIC -O2 -w -I"$PREFIX/dev/usr/include" -I"$PREFIX/dev/usr/include/python2.7" \
        "$SRC/wsaccel-0.6.3/wsaccel/$m.c" -o "$PREFIX/site/wsaccel/$m.so"
  done
  "$PY" -c "$ACCEL_CHECK" "$PREFIX/site" || { log "wsaccel does not import"; exit 1; }
fi

touch "$STAMP"
log "installed in $PREFIX (wstest + wsaccel); run $PREFIX/wstest"
