#!/usr/bin/env bash
# Install the independent Kafka clients of the compatibility matrix (tests/clients/):
# - Debian: kcat (librdkafka 2.0.2), golang-go 1.19 + golang-github-shopify-sarama-dev
#   (sarama 1.22), and node + npm when there are none yet (a nodejs that bundles its
#   own npm, e.g. NodeSource's, counts: installing Debian's npm next to it would clash);
# - a venv at target/clients-venv with pinned kafka-python and confluent-kafka;
# - kafkajs and @kafkajs/confluent-schema-registry (pinned; it brings its own protobufjs)
#   in target/clients/node;
# - the sarama program built into target/clients/sarama-check (GOPATH mode: Debian's
#   Go sources in /usr/share/gocode, no module proxy).
# Idempotent: whatever is already there at the pinned version is kept. Fails with a
# message saying what is missing when it cannot install it (not root, no apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

KAFKA_PYTHON_VERSION=3.0.12
CONFLUENT_KAFKA_VERSION=2.16.1
KAFKAJS_VERSION=2.2.4
# The last 3.x: 4.x requires node >= 22.
KAFKAJS_SR_VERSION=3.9.0
VENV=target/clients-venv
PY="$VENV/bin/python"
NODE_PREFIX=target/clients/node
SARAMA_BIN=target/clients/sarama-check
GOPATH_LOCAL="$PWD/target/clients/gopath"

die() {
  echo "error: $*" >&2
  exit 1
}

# --- Debian packages -------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in kcat golang-go golang-github-shopify-sarama-dev; do
  installed "$p" || missing+=("$p")
done
# sarama 1.22 pulls in github.com/DataDog/zstd, a cgo package: go build needs a C compiler.
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# python3 with a working venv module (Debian: python3-venv carries ensurepip).
if ! { command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1; }; then
  missing+=(python3 python3-venv)
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing: ${missing[*]} (as root on Debian: apt-get install --no-install-recommends ${missing[*]})"
  fi
fi
command -v kcat >/dev/null 2>&1 || die "kcat is not on PATH after installing it"
command -v go >/dev/null 2>&1 || die "go is not on PATH after installing golang-go"
[ -d /usr/share/gocode/src/github.com/Shopify/sarama ] \
  || die "/usr/share/gocode/src/github.com/Shopify/sarama is missing (Debian: golang-github-shopify-sarama-dev)"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || die "node and npm are needed for kafkajs"

# --- Python: kafka-python and confluent-kafka in a venv -------------------------------
venv_ready() {
  [ -x "$PY" ] && "$PY" - "$KAFKA_PYTHON_VERSION" "$CONFLUENT_KAFKA_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
import kafka, confluent_kafka
assert version("kafka-python") == sys.argv[1], version("kafka-python")
assert version("confluent-kafka") == sys.argv[2], version("confluent-kafka")
EOF
}
if venv_ready; then
  echo "clients venv: $VENV already has its packages"
else
  # A venv left broken (interrupted install, python3 upgraded) is made anew.
  if [ -d "$VENV" ] && ! "$PY" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV"
  fi
  mkdir -p "$(dirname "$VENV")"
  [ -x "$PY" ] || python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-input \
    "kafka-python==$KAFKA_PYTHON_VERSION" "confluent-kafka==$CONFLUENT_KAFKA_VERSION"
  venv_ready || die "$VENV does not import kafka-python $KAFKA_PYTHON_VERSION and confluent-kafka $CONFLUENT_KAFKA_VERSION"
fi

# --- Node: kafkajs and its schema registry client --------------------------------------
# Both in one npm install: npm prunes what it was not asked for from a prefix without a
# package.json, so installing one alone would drop the other.
node_pkg_is() {
  node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
    "$PWD/$NODE_PREFIX/node_modules/$1/package.json" "$2" >/dev/null 2>&1
}
node_ready() {
  node_pkg_is kafkajs "$KAFKAJS_VERSION" && node_pkg_is @kafkajs/confluent-schema-registry "$KAFKAJS_SR_VERSION"
}
if node_ready; then
  echo "node clients: $NODE_PREFIX already has kafkajs $KAFKAJS_VERSION and @kafkajs/confluent-schema-registry $KAFKAJS_SR_VERSION"
else
  mkdir -p "$NODE_PREFIX"
  npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --no-save --loglevel=error \
    "kafkajs@$KAFKAJS_VERSION" "@kafkajs/confluent-schema-registry@$KAFKAJS_SR_VERSION" >/dev/null
  node_ready || die "$NODE_PREFIX does not hold kafkajs $KAFKAJS_VERSION and @kafkajs/confluent-schema-registry $KAFKAJS_SR_VERSION after npm install"
fi

# --- Go: the sarama program --------------------------------------------------------
# Rebuilt when the source is newer than the binary (or there is no binary yet).
SARAMA_DEB_VERSION=$(dpkg-query -W -f='${Version}' golang-github-shopify-sarama-dev 2>/dev/null || echo unknown)
if [ -x "$SARAMA_BIN" ] && [ "$SARAMA_BIN" -nt tests/clients/sarama/main.go ]; then
  echo "sarama-check: $SARAMA_BIN is up to date"
else
  mkdir -p "$GOPATH_LOCAL" "$(dirname "$SARAMA_BIN")"
  (
    cd tests/clients/sarama
    # (-Wno-deprecated-declarations: DataDog/zstd calls a zstd function that libzstd deprecates)
    GO111MODULE=off GOPATH="$GOPATH_LOCAL:/usr/share/gocode" GOFLAGS= \
      CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -Wno-deprecated-declarations" \
      go build -o "$OLDPWD/$SARAMA_BIN" -ldflags "-X main.saramaVersion=$SARAMA_DEB_VERSION" .
  ) || die "go build of tests/clients/sarama failed (GOPATH mode against /usr/share/gocode)"
fi

# --- versions --------------------------------------------------------------------
echo "kcat: $(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\) .*librdkafka \([^ ]*\).*/\1 (librdkafka \2)/p')"
"$PY" - <<'EOF'
import sys
from importlib.metadata import version
import confluent_kafka
print(f"clients venv: python {sys.version.split()[0]}, kafka-python {version('kafka-python')}, "
      f"confluent-kafka {version('confluent-kafka')} (librdkafka {confluent_kafka.libversion()[0]})")
EOF
echo "kafkajs: $(node -p "require('$PWD/$NODE_PREFIX/node_modules/kafkajs/package.json').version") (node $(node --version))"
echo "@kafkajs/confluent-schema-registry: $(node -p "require('$PWD/$NODE_PREFIX/node_modules/@kafkajs/confluent-schema-registry/package.json').version")"
echo "sarama: $SARAMA_DEB_VERSION ($(go version | awk '{print $3}')), $SARAMA_BIN"
