#!/usr/bin/env bash
# Prepare the Python environment of the "student" programs in tests/students/:
# a venv at target/student-venv with confluent-kafka and the protobuf runtime.
# Idempotent: when the venv already imports both pinned packages, nothing is
# reinstalled. The student programs also need `protoc` and the well-known types
# (Debian: protobuf-compiler, libprotobuf-dev), which .ci/run installs.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFLUENT_KAFKA_VERSION=2.16.1
PROTOBUF_VERSION=7.36.2
# The Prometheus text-format parser the monitor tests check chinook's metrics with.
PROMETHEUS_CLIENT_VERSION=0.26.0
VENV=target/student-venv
PY="$VENV/bin/python"

# python3 with a working venv module (Debian ships `venv` and `ensurepip` in
# python3-venv, which a minimal machine may lack).
venv_ok() {
  command -v python3 >/dev/null 2>&1 \
    && python3 -m venv --help >/dev/null 2>&1 \
    && python3 -c 'import ensurepip' >/dev/null 2>&1
}
if ! venv_ok; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: python3 python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3 python3-venv
  fi
  if ! venv_ok; then
    echo "error: python3 with the venv module is needed (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
fi

# True when the venv imports both packages at the pinned versions.
venv_ready() {
  [ -x "$PY" ] && "$PY" - "$CONFLUENT_KAFKA_VERSION" "$PROTOBUF_VERSION" "$PROMETHEUS_CLIENT_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
import confluent_kafka, google.protobuf.message_factory, prometheus_client.parser
# The schema-registry extras (httpx, cachetools, googleapis-common-protos, ...) for tests/registry.rs.
import confluent_kafka.schema_registry.protobuf
assert version("confluent-kafka") == sys.argv[1], version("confluent-kafka")
assert version("protobuf") == sys.argv[2], version("protobuf")
assert version("prometheus-client") == sys.argv[3], version("prometheus-client")
EOF
}

if venv_ready; then
  echo "student venv: $VENV already has its packages"
else
  # A venv left broken (interrupted install, python3 upgraded) is made anew.
  if [ -d "$VENV" ] && ! "$PY" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV"
  fi
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-input \
    "confluent-kafka[schemaregistry,protobuf]==$CONFLUENT_KAFKA_VERSION" "protobuf==$PROTOBUF_VERSION" \
    "prometheus-client==$PROMETHEUS_CLIENT_VERSION"
  if ! venv_ready; then
    echo "error: $VENV does not import confluent-kafka $CONFLUENT_KAFKA_VERSION, protobuf $PROTOBUF_VERSION and prometheus-client $PROMETHEUS_CLIENT_VERSION" >&2
    exit 1
  fi
fi

"$PY" - <<'EOF'
import sys
from importlib.metadata import version
import confluent_kafka
print(f"student venv: python {sys.version.split()[0]}, "
      f"confluent-kafka {version('confluent-kafka')} (librdkafka {confluent_kafka.libversion()[0]}), "
      f"protobuf {version('protobuf')}")
EOF
