#!/usr/bin/env bash
# Compatibility checks for kcat (the command-line client on librdkafka; Debian's kcat 1.7.1 is built
# on librdkafka 2.0.2) against a Kafka broker.
#
# What it checks, in this order, each on its own (every check runs in its own process under
# `timeout`, so one failing or hanging does not stop the others), printing one JSON line per check:
#   metadata        kcat -L: brokers and topics
#   produce         100 keyed records (kcat -P -K:) into a new 3-partition topic <prefix>-plain, read
#                   back with kcat -C -o beginning -e (every partition assigned, no group); counts
#                   must match. kcat has no admin API: topics are created with
#                   `chinook topics create NAME --partitions 3` (CHINOOK_BIN, or chinook on PATH, or
#                   this repository's target/{debug,release}/chinook)
#   idempotent      the same with -X enable.idempotence=true, into <prefix>-idempotent
#   invalid_record  the value bytes 0a ff ff alone (a file sent as one message) into the schema-bound
#                   topic (customer_events): ok when kcat reports the delivery failed with
#                   INVALID_RECORD ("Broker failed to validate record")
#   group           three `kcat -G` processes join one group on <prefix>-group (3 partitions); once
#                   each holds a partition, 60 keyed records are produced; the members read them
#                   together (auto commit every 200 ms, and on leaving at SIGTERM). kcat cannot
#                   print committed offsets, so they are checked indirectly: `kcat -C -o stored`
#                   with the group's id starts every partition at the group's committed offset
#                   (OffsetFetch, no join) and must find nothing left before the end
#   transactions    kcat -P -X transactional.id=... sends its whole input as one transaction,
#                   committed at end of input and aborted when kcat gets SIGTERM: 10 records
#                   committed by one run, 10 aborted by another (killed once its records are
#                   visible to a read_uncommitted reader); then kcat -C -X isolation.level=
#                   read_committed must see exactly the 10 committed
# Each line: {"client", "version", "check", "ok", "detail", "secs"} (+ "na": true).
#
# Run:  CHINOOK_BROKERS=127.0.0.1:9092 CLIENT_PREFIX=kc1 bash tests/clients/kcat.sh [check...]
# Env:  CHINOOK_BROKERS (bootstrap, default localhost:9092), CLIENT_PREFIX (prefix of the topics and
#       groups created here; a fresh one per run), CLIENT_SCHEMA_TOPIC (default customer_events),
#       CLIENT_CHECK_TIMEOUT (seconds per check, default 60), KCAT (default kcat), CHINOOK_BIN.
# Needs kcat (Debian: kcat; .ci/clients.sh installs it) and coreutils' timeout.
# Exit code 0 when every check ran (whatever its result), 2 on a usage error.
set -uo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)
export CHINOOK_BROKERS=${CHINOOK_BROKERS:-localhost:9092}
BROKERS=$CHINOOK_BROKERS
export CLIENT_PREFIX=${CLIENT_PREFIX:-kcat-$$-$(date +%s)}
PREFIX=$CLIENT_PREFIX
SCHEMA_TOPIC=${CLIENT_SCHEMA_TOPIC:-customer_events}
CHECK_TIMEOUT=${CLIENT_CHECK_TIMEOUT:-60}
KCAT=${KCAT:-kcat}
CHECKS=(metadata produce idempotent invalid_record group transactions)

# "1.7.1 (librdkafka 2.0.2)" from `kcat -V`.
kcat_version() {
  "$KCAT" -V 2>&1 | sed -n 's/^Version \([^ ]*\) .*librdkafka \([^ ]*\).*/\1 (librdkafka \2)/p' | head -1
}

json_str() { # a JSON string literal of $1, on one line
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=$(printf '%s' "$s" | tr '\t\r\n' '   ' | tr -d '\000-\037')
  printf '"%s"' "$s"
}

short() { # squeeze spaces, cut to 500 characters
  local s
  s=$(printf '%s' "$1" | tr -s ' \t\n' '   ')
  [ ${#s} -gt 500 ] && s="${s:0:497}..."
  printf '%s' "$s"
}

# emit CHECK OK(true|false) DETAIL SECS [na]
emit() {
  local na=""
  [ "${5:-}" = na ] && na=',"na":true'
  printf '{"client":"kcat","version":%s,"check":"%s","ok":%s,"detail":%s%s,"secs":%s}\n' \
    "$(json_str "${VERSION:-unknown}")" "$1" "$2" "$(json_str "$(short "$3")")" "$na" "$4"
}

now() { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# Seconds left before this check's deadline (at least 1), capped at $1 when given.
left() {
  local rest
  rest=$(awk -v d="$DEADLINE" -v n="$(now)" 'BEGIN { r = int(d - n); print (r < 1 ? 1 : r) }')
  if [ -n "${1:-}" ] && [ "$rest" -gt "$1" ]; then rest=$1; fi
  echo "$rest"
}
past_deadline() { awk -v d="$DEADLINE" -v n="$(now)" 'BEGIN { exit !(n > d) }'; }

# The most telling line of a kcat stderr file: the librdkafka failure if any, else kcat's error.
why() {
  local f=$1 line
  line=$(grep -m1 -i 'underflow' "$f" \
    || grep -m1 -E '% (ERROR|FATAL)|Delivery failed|commit_transaction|abort_transaction|init_transactions' "$f" \
    || grep -m1 -E '\|(FAIL|ERROR)\|' "$f" \
    || tail -n1 "$f")
  # drop librdkafka's log prefix: %4|1700000000.123|FAIL|rdkafka#producer-1| [thrd:...]: host/id:
  printf '%s' "$line" | sed -E 's/^%[0-9]\|[0-9.]+\|[A-Z]+\|[^|]*\| \[[^]]*\]: //' | cut -c1-300
}


chinook_bin() {
  local c
  for c in "${CHINOOK_BIN:-}" "$(command -v chinook 2>/dev/null)" "$REPO/target/debug/chinook" "$REPO/target/release/chinook"; do
    [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}

# create_topic NAME PARTITIONS: kcat has no admin API, so chinook's `topics create` does it;
# then wait until kcat's own metadata shows every partition.
create_topic() {
  local name=$1 partitions=$2 chinook out
  chinook=$(chinook_bin) || { FAIL="kcat cannot create topics and no chinook binary was found (set CHINOOK_BIN)"; return 1; }
  if ! out=$(timeout "$(left 20)" "$chinook" topics create "$name" --partitions "$partitions" --brokers "$BROKERS" --color never 2>&1); then
    FAIL="creating $name with chinook failed: $(printf '%s' "$out" | tail -n2)"
    return 1
  fi
  while :; do
    if ! out=$(timeout "$(left 15)" "$KCAT" -b "$BROKERS" -L -t "$name" -m 5 2>"$WORK/md.err"); then
      FAIL="kcat cannot read metadata: $(why "$WORK/md.err")"
      return 1
    fi
    [ "$(printf '%s\n' "$out" | grep -c '^    partition ')" = "$partitions" ] && return 0
    if past_deadline; then
      FAIL="kcat metadata never showed $partitions partitions of $name: $(why "$WORK/md.err")"
      return 1
    fi
    sleep 0.2
  done
}

# produce_keyed TOPIC COUNT KEYPREFIX [kcat options...]: one record per line, key:value.
produce_keyed() {
  local topic=$1 count=$2 kp=$3
  shift 3
  seq 0 $((count - 1)) | sed "s/.*/$kp&:value-&/" \
    | timeout "$(left 30)" "$KCAT" -b "$BROKERS" -X client.id="$PREFIX-compat" -P -t "$topic" -K : \
      -X linger.ms=5 -X message.timeout.ms=$(($(left 25) * 1000)) "$@" 2>"$WORK/produce.err"
  local rc=$?
  if [ $rc -ne 0 ] || grep -q 'Delivery failed' "$WORK/produce.err"; then
    FAIL="kcat -P exit $rc, $(grep -c 'Delivery failed' "$WORK/produce.err") delivery failures: $(why "$WORK/produce.err")"
    return 1
  fi
}

# read_all TOPIC [kcat options...] > keys: every partition from the beginning to its end (-e).
read_all() {
  local topic=$1
  shift
  timeout "$(left 30)" "$KCAT" -b "$BROKERS" -X client.id="$PREFIX-compat" -C -t "$topic" -o beginning -e \
    -f '%k\n' "$@" 2>"$WORK/read.err"
}

produce_and_read_back() {
  local topic=$1 keys n d
  shift
  create_topic "$topic" 3 || return 1
  produce_keyed "$topic" 100 k "$@" || return 1
  keys=$(read_all "$topic") || {
    FAIL="produced 100; reading back failed (exit $?): $(why "$WORK/read.err")"
    return 1
  }
  n=$(printf '%s\n' "$keys" | grep -c .)
  d=$(printf '%s\n' "$keys" | grep . | sort -u | wc -l)
  if [ "$n" -ne 100 ] || [ "$d" -ne 100 ]; then
    FAIL="produced 100, read back $n records ($d distinct keys)"
    return 1
  fi
  DETAIL="100 produced (kcat exit 0, no delivery failure), 100 read back from 3 partitions ($d distinct keys)"
}

# --- the checks (each sets DETAIL on success, or FAIL and returns 1; NA for not applicable) ----

check_metadata() {
  local out brokers topics
  if ! out=$(timeout "$(left 20)" "$KCAT" -b "$BROKERS" -L -m 5 2>"$WORK/md.err"); then
    FAIL="kcat -L failed: $(why "$WORK/md.err")"
    return 1
  fi
  brokers=$(printf '%s\n' "$out" | sed -n 's/^  broker \([0-9]*\) at \([^ ]*\).*/\1@\2/p' | paste -sd, -)
  topics=$(printf '%s\n' "$out" | sed -n 's/^ \([0-9]*\) topics:/\1/p')
  [ -n "$brokers" ] || { FAIL="kcat -L listed no broker: $(printf '%s' "$out" | head -n3)"; return 1; }
  DETAIL="brokers [$brokers], ${topics:-0} topics"
}

check_produce() { produce_and_read_back "$PREFIX-plain" -X enable.idempotence=false; }

check_idempotent() { produce_and_read_back "$PREFIX-idempotent" -X enable.idempotence=true; }

check_invalid_record() {
  printf '\x0a\xff\xff' >"$WORK/bad.bin"
  # A file argument is sent as one message (0x0a is a newline: stdin would split it).
  timeout "$(left 30)" "$KCAT" -b "$BROKERS" -X client.id="$PREFIX-compat" -P -t "$SCHEMA_TOPIC" \
    -X linger.ms=0 -X message.timeout.ms=$(($(left 25) * 1000)) "$WORK/bad.bin" 2>"$WORK/bad.err"
  local rc=$? line
  line=$(grep -m1 'Delivery failed' "$WORK/bad.err")
  if printf '%s' "$line" | grep -qiE 'failed to validate record|invalid.record'; then
    DETAIL="rejected (kcat exit $rc): ${line#% }"
    return 0
  fi
  if [ $rc -eq 0 ] && [ -z "$line" ]; then
    FAIL="the malformed value was accepted by $SCHEMA_TOPIC"
  elif [ -n "$line" ]; then
    FAIL="rejected, but not with INVALID_RECORD: ${line#% }"
  else
    FAIL="kcat -P exit $rc: $(why "$WORK/bad.err")"
  fi
  return 1
}

# Is member $1 holding at least one partition? (its last "rebalanced" line is an assignment)
member_assigned() {
  grep 'rebalanced' "$WORK/m$1.err" 2>/dev/null | tail -n1 | grep -q 'assigned: .*\['
}

check_group() {
  local topic="$PREFIX-group" group="$PREFIX-group" i pids=() settle_until settled seen split leftover
  create_topic "$topic" 3 || return 1
  for i in 0 1 2; do
    "$KCAT" -b "$BROKERS" -X client.id="$PREFIX-member-$i" -G "$group" "$topic" -u -f '%k\n' \
      -X auto.offset.reset=earliest -X enable.auto.commit=true -X auto.commit.interval.ms=200 \
      -X session.timeout.ms=10000 >"$WORK/m$i.out" 2>"$WORK/m$i.err" &
    pids+=($!)
  done
  stop_members() {
    local p n=0
    kill -TERM "${pids[@]}" 2>/dev/null
    # leaving the group commits the last offsets: wait (bounded) for the processes to exit
    while kill -0 "${pids[@]}" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait "${pids[@]}" 2>/dev/null
  }
  # Wait (polling, bounded) until every member holds a partition, then produce.
  settle_until=$(awk -v n="$(now)" -v t="$CHECK_TIMEOUT" -v d="$DEADLINE" 'BEGIN { s = n + t / 2; printf "%.3f", (s < d - 20 ? s : d - 20) }')
  while ! { member_assigned 0 && member_assigned 1 && member_assigned 2; } \
    && awk -v s="$settle_until" -v n="$(now)" 'BEGIN { exit !(n < s) }'; do
    sleep 0.2
  done
  if member_assigned 0 && member_assigned 1 && member_assigned 2; then
    settled="3 members held a partition each"
  else
    settled="not every member held a partition ($(for i in 0 1 2; do member_assigned $i && printf 'y' || printf 'n'; done))"
  fi
  produce_keyed "$topic" 60 g || { stop_members; return 1; }
  while :; do
    seen=$(cat "$WORK"/m[012].out | grep . | sort -u | wc -l)
    [ "$seen" -ge 60 ] && break
    past_deadline && break
    sleep 0.2
  done
  stop_members
  split=$(for i in 0 1 2; do grep -c . "$WORK/m$i.out"; done | paste -sd/ -)
  if [ "$seen" -lt 60 ]; then
    FAIL="$settled; the group saw $seen/60 distinct keys (per member $split); member 0: $(why "$WORK/m0.err")"
    return 1
  fi
  # Committed offsets: kcat cannot print them, but its simple consumer (-C, no group join) can
  # start from them: `-o stored` with the group's id fetches the committed offsets
  # (OffsetFetch) and reads from there to the end (-e); nothing may be left to read.
  # (A fourth `-G` member would also do, but it has to join the group the others just left.)
  leftover=$(timeout "$(left 30)" "$KCAT" -b "$BROKERS" -X client.id="$PREFIX-checker" -C -t "$topic" -o stored -e \
    -X group.id="$group" -X enable.auto.commit=false -X auto.offset.reset=earliest -f '%p:%o\n' \
    ${KCAT_DEBUG:+-d "$KCAT_DEBUG"} 2>"$WORK/check.err")
  local rc=$? ends
  ends=$(sed -n 's/.*Reached end of topic .* \[\([0-9]*\)\] at offset \([0-9]*\).*/\1:\2/p' "$WORK/check.err" | sort -n | paste -sd' ' -)
  if [ $rc -ne 0 ]; then
    FAIL="$settled; 60/60 seen (per member $split), but reading from the committed offsets (kcat -C -o stored) failed (exit $rc): $(why "$WORK/check.err")"
    return 1
  fi
  leftover=$(printf '%s\n' "$leftover" | grep -c .)
  if [ "$leftover" -ne 0 ]; then
    FAIL="$settled; 60/60 seen (per member $split), but $leftover records lie between the group's committed offsets and the end (partition:end $ends)"
    return 1
  fi
  DETAIL="$settled; 60/60 distinct keys seen (records per member $split); committed offsets = end (partition:end $ends; read with kcat -C -o stored, which starts at the committed offsets, and found nothing left)"
}

check_transactions() {
  if ! "$KCAT" -V 2>&1 | grep -q 'Transactions'; then
    NA=1
    FAIL="not supported by this client version (kcat built without transactions)"
    return 1
  fi
  local topic="$PREFIX-tx" problems=() rc pid n keys committed aborted
  create_topic "$topic" 3 || return 1
  local txn=(-P -t "$topic" -K : -X linger.ms=5 -m "$(left 15)")

  # 1. commit: the whole input is one transaction, committed when the input ends.
  seq 0 9 | sed 's/.*/commit-&:committed/' \
    | timeout "$(left 30)" "$KCAT" -b "$BROKERS" -X client.id="$PREFIX-compat" "${txn[@]}" \
      -X transactional.id="$PREFIX-tx-commit" 2>"$WORK/commit.err"
  rc=$?
  [ $rc -eq 0 ] || problems+=("commit run exit $rc: $(why "$WORK/commit.err")")

  # 2. abort: keep the input open, wait until the 10 records are in the log (read_uncommitted),
  #    then SIGTERM (kcat aborts the transaction) and close the input.
  #    kcat 1.7 reads its input with fread() in blocks of 1024 bytes and acts on nothing before a
  #    block is full, so the 10 lines are padded to exactly 1024 bytes: kcat then produces all
  #    ten and blocks reading with nothing pending, and at SIGTERM + end of input it aborts
  #    (with a partial line pending it would instead exit "terminated while producing").
  #    kcat runs without its own `timeout` wrapper so that SIGTERM reaches it at once (through
  #    timeout it could arrive after the end of input, and kcat would commit instead); the
  #    check's own timeout still bounds it.
  mkfifo "$WORK/abort.fifo"
  "$KCAT" -b "$BROKERS" -X client.id="$PREFIX-compat" "${txn[@]}" \
    -X transactional.id="$PREFIX-tx-abort" <"$WORK/abort.fifo" 2>"$WORK/abort.err" &
  pid=$!
  exec 3>"$WORK/abort.fifo"
  # "abort-i:" + value + newline: 6 lines of 102 bytes and 4 of 103 = 1024 bytes
  for i in 0 1 2 3 4 5 6 7 8 9; do
    printf 'abort-%d:%s\n' "$i" "$(printf "%0$((i < 6 ? 93 : 94))d" 0)"
  done >&3
  n=0
  while kill -0 "$pid" 2>/dev/null && ! past_deadline; do
    n=$(read_all "$topic" -X isolation.level=read_uncommitted | grep -c '^abort-')
    [ "$n" -ge 10 ] && break
    sleep 0.2
  done
  kill -TERM "$pid" 2>/dev/null
  exec 3>&-
  while kill -0 "$pid" 2>/dev/null && ! past_deadline; do sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid"
  rc=$?
  if [ "$n" -lt 10 ]; then
    problems+=("abort run: only $n of its 10 records became visible to read_uncommitted (kcat exit $rc: $(why "$WORK/abort.err"))")
  elif [ $rc -ne 0 ] || grep -qE 'abort_transaction\(\): ' "$WORK/abort.err"; then
    problems+=("abort run exit $rc: $(why "$WORK/abort.err")")
  fi

  # 3. read_committed from the beginning to the end (the last stable offset) of every partition.
  keys=$(read_all "$topic" -X isolation.level=read_committed)
  rc=$?
  committed=$(printf '%s\n' "$keys" | grep -c '^commit-')
  aborted=$(printf '%s\n' "$keys" | grep -c '^abort-')
  local seen="read_committed saw $committed committed + $aborted aborted records"
  [ $rc -eq 0 ] || seen="$seen (reader exit $rc: $(why "$WORK/read.err"))"
  if ((${#problems[@]})); then
    FAIL="$seen; $(printf '%s; ' "${problems[@]}")"
    FAIL=${FAIL%; }
    return 1
  fi
  if [ "$committed" -ne 10 ] || [ "$aborted" -ne 0 ] || [ $rc -ne 0 ]; then
    FAIL="$seen, expected exactly the 10 committed"
    return 1
  fi
  DETAIL="10 committed, 10 aborted; $seen"
}

# --- running ---------------------------------------------------------------------------------

# One check in this process: prints its JSON line.
run_one() {
  local name=$1 start
  start=$(now)
  DEADLINE=$(awk -v n="$start" -v t="$CHECK_TIMEOUT" 'BEGIN { printf "%.3f", n + t - 3 }')
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/kcat-check-$name.XXXXXX")
  [ -n "${CLIENT_KEEP_WORK:-}" ] && echo "kcat.sh: $name keeps $WORK" >&2 || trap 'rm -rf "$WORK"' EXIT
  DETAIL="" FAIL="" NA=""
  if "check_$name"; then
    emit "$name" true "$DETAIL" "$(secs_since "$start")"
  elif [ -n "$NA" ]; then
    emit "$name" false "$FAIL" "$(secs_since "$start")" na
  else
    emit "$name" false "${FAIL:-failed without a message}" "$(secs_since "$start")"
  fi
}

VERSION=$(kcat_version)
if [ "${1:-}" = --one ]; then
  run_one "$2"
  exit 0
fi

for arg in "$@"; do
  case " ${CHECKS[*]} " in *" $arg "*) ;; *)
    echo "usage: $0 [check...]; unknown: $arg; checks: ${CHECKS[*]}" >&2
    exit 2
    ;;
  esac
done
if ! command -v "$KCAT" >/dev/null 2>&1; then
  VERSION="not installed"
  for name in "${CHECKS[@]}"; do emit "$name" false "kcat not found (Debian: apt-get install kcat; or .ci/clients.sh)" 0; done
  exit 0
fi
for name in "${CHECKS[@]}"; do
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
  start=$(now)
  # Each check in its own process group under timeout: on expiry every kcat it started is killed.
  out=$(timeout -k 5 "$((CHECK_TIMEOUT + 5))" bash "$SELF" --one "$name")
  rc=$?
  if [ -n "$out" ]; then
    printf '%s\n' "$out"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    emit "$name" false "timed out after ${CHECK_TIMEOUT} s" "$(secs_since "$start")"
  else
    emit "$name" false "the check died without a result (exit $rc)" "$(secs_since "$start")"
  fi
done
exit 0
