#!/usr/bin/env bash
# Run every client compatibility program (tests/clients/) against one broker and print all their
# JSON lines on stdout: exactly one line per client and check, in the order below. A client that
# is not installed, or a program that dies before reporting a check, gets ok:false lines saying
# so, so the matrix is always complete. Timings and a summary go to stderr.
#
# Usage: CHINOOK_BROKERS=127.0.0.1:9092 bash tests/clients/run.sh [client...]
#   clients: kcat kafka_python confluent kafkajs sarama (default: all, one after the other)
# Env:   CHINOOK_BROKERS (default localhost:9092); CLIENT_PREFIX (base of the per-client prefixes,
#        default compat-<time>-<pid>; each client gets <base>-<client>); CLIENT_CHECK_TIMEOUT
#        (seconds per check, default 60); CLIENT_LAB_TOPICS=0 to skip `chinook topics create`.
# Install the clients first: bash .ci/clients.sh
# Before the clients run, the lab topics (customer_events, schema-bound, which invalid_record
# needs) are created with `chinook topics create` when a chinook binary is found (CHINOOK_BIN,
# chinook on PATH, target/debug or target/release); it is idempotent.
set -uo pipefail
cd "$(dirname "$0")/../.."

export CHINOOK_BROKERS=${CHINOOK_BROKERS:-localhost:9092}
BASE=${CLIENT_PREFIX:-compat-$(date +%s)-$$}
CHECK_TIMEOUT=${CLIENT_CHECK_TIMEOUT:-60}
CLIENTS=(kcat kafka_python confluent kafkajs sarama)
CHECKS=(metadata produce idempotent invalid_record group transactions)
VENV_PY=target/clients-venv/bin/python

for arg in "$@"; do
  case " ${CLIENTS[*]} " in *" $arg "*) ;; *)
    echo "usage: $0 [client...]; unknown: $arg; clients: ${CLIENTS[*]}" >&2
    exit 2
    ;;
  esac
done
[ $# -gt 0 ] && CLIENTS=("$@")

# The name each program puts in "client".
display_name() {
  case $1 in
    kafka_python) echo kafka-python ;;
    confluent) echo confluent-kafka ;;
    *) echo "$1" ;;
  esac
}

# Prints the command line of a client, or fails with what is missing.
command_for() {
  case $1 in
    kcat)
      command -v kcat >/dev/null 2>&1 || { echo "kcat not installed"; return 1; }
      echo "bash tests/clients/kcat.sh" ;;
    kafka_python | confluent)
      [ -x "$VENV_PY" ] || { echo "$VENV_PY missing"; return 1; }
      echo "$VENV_PY tests/clients/$1.py" ;;
    kafkajs)
      command -v node >/dev/null 2>&1 || { echo "node not installed"; return 1; }
      [ -f target/clients/node/node_modules/kafkajs/package.json ] || { echo "kafkajs missing in target/clients/node"; return 1; }
      echo "node tests/clients/kafkajs.js" ;;
    sarama)
      [ -x target/clients/sarama-check ] || { echo "target/clients/sarama-check not built"; return 1; }
      echo "target/clients/sarama-check" ;;
  esac
}

filler() { # client check detail: an ok:false line for a check that has no result
  printf '{"client":"%s","version":"unknown","check":"%s","ok":false,"detail":"%s","secs":0}\n' "$1" "$2" "$3"
}

chinook=""
for c in "${CHINOOK_BIN:-}" "$(command -v chinook 2>/dev/null)" target/debug/chinook target/release/chinook; do
  if [ -n "$c" ] && [ -x "$c" ]; then chinook=$c; break; fi
done
if [ "${CLIENT_LAB_TOPICS:-1}" != 0 ]; then
  if [ -n "$chinook" ]; then
    timeout 60 "$chinook" topics create --brokers "$CHINOOK_BROKERS" --quiet --color never >/dev/null 2>&1 \
      || echo "run.sh: warning: '$chinook topics create' failed; invalid_record needs customer_events" >&2
  else
    echo "run.sh: warning: no chinook binary to create the lab topics; invalid_record needs customer_events" >&2
  fi
fi
export CHINOOK_BIN=${CHINOOK_BIN:-$chinook}

ok=0 failed=0 na=0
for client in "${CLIENTS[@]}"; do
  name=$(display_name "$client")
  start=$(date +%s.%N)
  if ! cmd=$(command_for "$client"); then
    out=""
    for check in "${CHECKS[@]}"; do out+=$(filler "$name" "$check" "not installed: $cmd (run .ci/clients.sh)")$'\n'; done
  else
    # Every check bounds itself; this is only a backstop for a program that hangs as a whole.
    out=$(CLIENT_PREFIX="$BASE-${client//_/-}" CLIENT_CHECK_TIMEOUT=$CHECK_TIMEOUT \
      timeout -k 10 $(((CHECK_TIMEOUT + 10) * ${#CHECKS[@]} + 30)) $cmd)
    rc=$?
    for check in "${CHECKS[@]}"; do
      printf '%s\n' "$out" | grep -q "\"check\": *\"$check\"" \
        || out+=$'\n'$(filler "$name" "$check" "no result: $client program exited with $rc before reporting it")
    done
  fi
  printf '%s\n' "$out" | grep .
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  c_ok=$(printf '%s\n' "$out" | grep -c '"ok": *true')
  c_na=$(printf '%s\n' "$out" | grep -c '"na": *true')
  c_failed=$(($(printf '%s\n' "$out" | grep -c '"ok": *false') - c_na))
  echo "run.sh: $name: $c_ok ok, $c_failed failed, $c_na n/a in $secs s" >&2
  ok=$((ok + c_ok)) failed=$((failed + c_failed)) na=$((na + c_na))
done
echo "run.sh: all clients: $ok ok, $failed failed, $na n/a" >&2
exit 0
