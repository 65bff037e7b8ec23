#!/usr/bin/env bash
# Producer and consumer figures against a fresh embedded broker, compared in the
# same run with a reference librdkafka client (confluent-kafka from PyPI).
# Usage: cargo build --release && pip install confluent-kafka && bash benches/pipeline.sh
# Env: N (records, default 100000), RSS_N (records for the memory figures, default 1000000),
#      ROUNDS (alternating chinook/reference produce runs, default 5),
#      BIN (the chinook binary, default target/release/chinook: set it to compare two builds).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-"$root/target/release/chinook"}
n=${N:-100000}
rss_n=${RSS_N:-1000000}
rounds=${ROUNDS:-5}
work=$(mktemp -d)
cd "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
brokers="127.0.0.1:$port"
"$bin" broker start --port "$port" -q
trap '"$bin" broker stop -q; rm -rf "$work"' EXIT
"$bin" topics create -q > /dev/null
event="$root/fixtures/events/customer_created.bin"
export CHINOOK_BROKERS=$brokers
# The interpreter itself, not a version manager's shim: the reference's start-up is timed too.
py=$(python3 -c 'import sys; print(sys.executable)')

# Whole processes, start-up included: "wall seconds, peak RSS KB" on one line of $1.
timed() {
  local out=$1
  shift
  /usr/bin/time -o "$out" -f "%e %M" "$@"
}

echo "== produce $n CustomerEvents to customer_events (schema-enforced, 3 partitions), $rounds rounds alternating"
for round in $(seq "$rounds"); do
  timed "chinook-$round.time" "$bin" produce customer-created --count "$n" --id 1 --format json -q > "chinook-$round.json"
  timed "reference-$round.time" "$py" "$root/benches/reference.py" produce "$brokers" customer_events "$n" "$event" \
    > "reference-$round.json"
  python3 - "$round" <<'EOF'
import json, sys
r = sys.argv[1]
c, p = json.load(open(f"chinook-{r}.json")), json.load(open(f"reference-{r}.json"))
(cw, crss), (pw, prss) = (open(f"{w}-{r}.time").read().split() for w in ("chinook", "reference"))
assert c["acked"] == p["acked"], (c["acked"], p["acked"])
print(f"round {r}: chinook {cw} s ({crss} KB, {c['per_second']:.0f} msg/s first enqueue → last ack) · "
      f"reference {pw} s ({prss} KB, {p['per_second']:.0f} msg/s loop only) · whole-process ratio {float(pw) / float(cw):.2f}")
EOF
done
python3 - "$rounds" "$n" <<'EOF'
import statistics, sys
rounds, n = int(sys.argv[1]), int(sys.argv[2])
wall = lambda who: [float(open(f"{who}-{r}.time").read().split()[0]) for r in range(1, rounds + 1)]
c, p = statistics.median(wall("chinook")), statistics.median(wall("reference"))
print(f"median whole process: chinook {c:.2f} s ({n / c:,.0f} msg/s) · reference {p:.2f} s ({n / p:,.0f} msg/s) · "
      f"ratio {p / c:.2f}")
EOF

echo "== consume the records from the start"
total=$((2 * rounds * n))
/usr/bin/time -f "chinook consume+decode to jsonl: wall %e s, peak RSS %M KB" \
  "$bin" consume --group "bench-$RANDOM" --offset start --until-end --format jsonl > consumed.jsonl
echo "chinook consumed $(wc -l < consumed.jsonl) records"
python3 "$root/benches/reference.py" consume "$brokers" customer_events "$total"

echo "== peak memory of producing $rss_n CustomerEvents"
/usr/bin/time -f "chinook produce of $rss_n: wall %e s, peak RSS %M KB" \
  "$bin" produce customer-created --count "$rss_n" --id 1 --format json -q > produce-rss.json
python3 -c "import json; r=json.load(open('produce-rss.json')); print('chinook   acked', r['acked'], 'failed', r['failed'])"

echo "== peak memory of consuming $rss_n records"
"$bin" topics create rss --partitions 3 -q > /dev/null
python3 "$root/benches/reference.py" produce "$brokers" rss "$rss_n" "$event" > /dev/null
/usr/bin/time -f "chinook consume of $rss_n: wall %e s, peak RSS %M KB" \
  "$bin" consume --topic rss --type events.v1.CustomerEvent --group "rss-$RANDOM" --offset start --until-end --format jsonl --no-dlq > /dev/null
