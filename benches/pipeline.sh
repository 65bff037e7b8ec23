#!/usr/bin/env bash
# Producer and consumer figures against a fresh embedded broker, compared in the
# same run with a reference librdkafka client (confluent-kafka from PyPI).
# Usage: cargo build --release && pip install confluent-kafka && bash benches/pipeline.sh
# Env: N (records, default 100000), RSS_N (records for the memory figure, default 1000000).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/chinook"
n=${N:-100000}
rss_n=${RSS_N:-1000000}
work=$(mktemp -d)
cd "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
brokers="127.0.0.1:$port"
"$bin" broker start --port "$port" -q
trap '"$bin" broker stop -q; rm -rf "$work"' EXIT
"$bin" topics create -q > /dev/null
event="$root/fixtures/events/customer_created.bin"
export CHINOOK_BROKERS=$brokers

echo "== produce $n CustomerEvents to customer_events (schema-enforced, 3 partitions)"
/usr/bin/time -f "chinook wall %e s, peak RSS %M KB" "$bin" produce customer-created --count "$n" --id 1 --format json -q > chinook-produce.json
python3 -c "import json; r=json.load(open('chinook-produce.json')); print('chinook   acked', r['acked'], 'failed', r['failed'], '%.0f msg/s' % r['per_second'])"
python3 "$root/benches/reference.py" produce "$brokers" customer_events "$n" "$event" | tee reference-produce.json

echo "== consume the $((2 * n)) records from the start"
/usr/bin/time -f "chinook consume+decode to jsonl: wall %e s, peak RSS %M KB" \
  "$bin" consume --group "bench-$RANDOM" --offset start --until-end --format jsonl > consumed.jsonl
echo "chinook consumed $(wc -l < consumed.jsonl) records"
python3 "$root/benches/reference.py" consume "$brokers" customer_events $((2 * n))

echo "== peak memory of consuming $rss_n records"
"$bin" topics create rss --partitions 3 -q > /dev/null
python3 "$root/benches/reference.py" produce "$brokers" rss "$rss_n" "$event" > /dev/null
/usr/bin/time -f "chinook consume of $rss_n: wall %e s, peak RSS %M KB" \
  "$bin" consume --topic rss --type events.v1.CustomerEvent --group "rss-$RANDOM" --offset start --until-end --format jsonl --no-dlq > /dev/null
