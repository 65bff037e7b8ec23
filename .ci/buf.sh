#!/usr/bin/env bash
# Install the real `buf` (npm package @bufbuild/buf, pinned) into target/clients/buf.
# tests/schema_check.rs runs it next to `chinook schema check` on every schema pair in
# tests/schema-pairs/ and expects the same verdict and the same rule ids.
# Idempotent: kept as is when that version is already there. Needs node and npm
# (.ci/clients.sh installs them on Debian); fails with a message when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0
BUF_PREFIX=target/clients/buf
BUF="$BUF_PREFIX/node_modules/.bin/buf"

die() {
  echo "error: $*" >&2
  exit 1
}

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
  || die "node and npm are needed to install buf (Debian: apt-get install --no-install-recommends nodejs npm)"

buf_ready() { [ -x "$BUF" ] && [ "$("$BUF" --version 2>/dev/null)" = "$BUF_VERSION" ]; }
if buf_ready; then
  echo "buf: $BUF already is $BUF_VERSION"
else
  mkdir -p "$BUF_PREFIX"
  npm install --prefix "$BUF_PREFIX" --no-audit --no-fund --no-save --loglevel=error \
    "@bufbuild/buf@$BUF_VERSION" >/dev/null
  buf_ready || die "$BUF is not buf $BUF_VERSION after npm install"
fi
echo "buf: $("$BUF" --version), $BUF"
