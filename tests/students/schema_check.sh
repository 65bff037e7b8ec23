#!/bin/sh
# A student's CI schema check (Lab 3), written with the real buf CLI and nothing of chinook's:
# `buf breaking` on the changed schemas (CHINOOK_NEW_PROTO) against the deployed ones
# (CHINOOK_OLD_PROTO) with the WIRE_JSON rules; buf exits non-zero on a breaking change.
# BUF names the buf binary (tests: target/clients/buf/node_modules/.bin/buf, from `.ci/buf.sh`).
# STUDENT_BUG switches on one deliberate mistake:
#   backwards   compares the wrong way round (the deployed schemas against the change), so a
#               deleted field looks like an added one and an added field like a deleted one
set -eu
: "${BUF:?BUF must name the buf binary}"
old=$(cd "$CHINOOK_OLD_PROTO" && pwd)
new=$(cd "$CHINOOK_NEW_PROTO" && pwd)
case "${STUDENT_BUG:-}" in
  "") checked=$new against=$old ;;
  backwards) checked=$old against=$new ;;
  *) echo "student: unknown STUDENT_BUG ${STUDENT_BUG}" >&2; exit 2 ;;
esac
cd "$checked"
exec "$BUF" breaking . --against "$against" --config '{"version":"v2","breaking":{"use":["WIRE_JSON"]}}'
