#!/usr/bin/env bash
# The transaction lake as its users meet it (issue 28): filled through Kafka by `fraudops archive`, read back
# with pyarrow and DuckDB, on a local directory and on a real S3-protocol server, and what the archive does when
# the object store fails.
#
#   1. a small world (300 cards, 30 days) replayed through tansu to transactions-input and fraud-labels; two
#      archives (two consumer groups) write it, one to a directory, one to s3://fraudops-lake/lake on s3s-fs
#      (scripts/ensure/s3s-fs.sh) with its own access key;
#   2. s3s-fs is stopped before the world's second half arrives: the S3 archive commits nothing, counts its
#      failed writes (lake_write_errors_total), its lag grows and lake_seconds_since_last_commit with it; the
#      directory archive goes on;
#   3. s3s-fs comes back: the S3 archive catches up;
#   4. pyarrow and DuckDB read the directory lake, pyarrow the S3 lake (scripts/lib/read_lake.py): exactly the
#      file's transactions and labels, each once, typed.
#
#   scripts/test-lake-readers.sh        (~1 min warm)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # free_port, scratch_with_groups, start_group, start_tansu, wait_until, target_dir
t0=$SECONDS
TANSU_BIN="$(scripts/ensure/tansu.sh | tail -n1)"
S3S_BIN="$(scripts/ensure/s3s-fs.sh | tail -n1)"
PY="$(scripts/ensure/lake-venv.sh | tail -n1)/python"
cargo build --locked -q -p fraudops-cli --bin fraudops
FRAUDOPS="$(target_dir)/debug/fraudops"

scratch_with_groups lake-readers
kafka_port="$(free_port)" s3_port="$(free_port)" local_metrics="$(free_port)" s3_metrics="$(free_port)"
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$kafka_port"
start_tansu tansu.log "$kafka_port"
# The S3 side: the lake's own key (a fresh random secret each run, for this throwaway server only), the bucket
# the archive writes to.
AWS_SECRET_ACCESS_KEY="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
export AWS_ACCESS_KEY_ID="lake-writer-$RANDOM" AWS_SECRET_ACCESS_KEY
export AWS_REGION=us-east-1 AWS_ENDPOINT="http://127.0.0.1:$s3_port" AWS_ALLOW_HTTP=true
mkdir -p "$TMP/s3/fraudops-lake"
start_s3() {
  start_group s3s-fs.log "$S3S_BIN" --host 127.0.0.1 --port "$s3_port" --access-key "$AWS_ACCESS_KEY_ID" \
    --secret-key "$AWS_SECRET_ACCESS_KEY" "$TMP/s3"
  s3_pid="${pids[-1]}"
  wait_until "s3s-fs" 150 bash -c "exec 3<>/dev/tcp/127.0.0.1/$s3_port"
}
start_s3

# The world, in two halves by day (the second half arrives while S3 is down).
"$FRAUDOPS" simulate --out "$TMP/world.csv.gz" --customers 300 --terminals 600 --days 30 --start-date 2018-04-01 \
  --seed 3 >"$TMP/simulate.log" 2>&1
"$PY" - "$TMP/world.csv.gz" "$TMP/first.csv.gz" "$TMP/second.csv.gz" <<'PY'
import gzip, sys
src, first, second = sys.argv[1:]
with gzip.open(src, "rt") as f, gzip.open(first, "wt") as a, gzip.open(second, "wt") as b:
    header = f.readline()
    a.write(header); b.write(header)
    column = [c.strip().lower() for c in header.split(",")].index("tx_datetime")
    for line in f:
        (a if line.split(",")[column] < "2018-04-16" else b).write(line)
PY

archive() { # archive LOG GROUP LAKE METRICS_PORT
  RUST_LOG=info start_group "$1" "$FRAUDOPS" archive --group "$2" --lake "$3" --metrics-port "$4" --flush-interval 300ms \
    --lag-interval 300ms
}
archive archive-local.log archive-local "$TMP/lake" "$local_metrics"
archive archive-s3.log archive-s3 "s3://fraudops-lake/lake" "$s3_metrics"
metric() { # metric PORT NAME: the sum of NAME's series
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $2} END {print s + 0}'
}
rows() { "$FRAUDOPS" lake stats --lake "$1" --json | "$PY" -c 'import json,sys; s=json.load(sys.stdin); print(s["transactions"]["rows"], s["labels"]["rows"])'; }
holds() { [[ "$(rows "$1")" == "$2 $2" ]]; }

replay() { "$FRAUDOPS" lake replay --data "$1" >"$TMP/replay.log" 2>&1 || { cat "$TMP/replay.log"; exit 1; }
  sed -n 's/^replayed \([0-9]*\) transactions.*/\1/p' "$TMP/replay.log"; }
n1="$(replay "$TMP/first.csv.gz")"
WAIT_LOGS="$TMP/archive-local.log" wait_until "the directory lake holding $n1" 600 holds "$TMP/lake" "$n1"
WAIT_LOGS="$TMP/archive-s3.log" wait_until "the S3 lake holding $n1" 600 holds "s3://fraudops-lake/lake" "$n1"
echo "ok   [lake readers] first half: $n1 transactions and labels in both lakes ($((SECONDS - t0)) s)"

# S3 goes away; the second half arrives.
kill -TERM -- "-$s3_pid"
for _ in $(seq 100); do kill -0 "$s3_pid" 2>/dev/null || break; sleep 0.1; done
n2="$(replay "$TMP/second.csv.gz")"
total=$((n1 + n2))
WAIT_LOGS="$TMP/archive-local.log" wait_until "the directory lake holding all $total" 600 holds "$TMP/lake" "$total"
failing() { (( $(metric "$s3_metrics" lake_write_errors_total) >= 2 && $(metric "$s3_metrics" kafka_consumer_lag) > 0 )); }
WAIT_LOGS="$TMP/archive-s3.log" wait_until "the S3 archive failing its writes with lag" 300 failing
since="$(metric "$s3_metrics" lake_seconds_since_last_commit)"
echo "ok   [lake readers] S3 down: $(metric "$s3_metrics" lake_write_errors_total) failed writes, lag $(metric "$s3_metrics" kafka_consumer_lag), $since s since the last commit; the directory archive went on to $total"
grep -q '"event":"lake_flush_failed"' "$TMP/archive-s3.log" || { echo "FAIL: no lake_flush_failed log line" >&2; exit 1; }

# S3 comes back: the archive catches up, every record once.
start_s3
WAIT_LOGS="$TMP/archive-s3.log" wait_until "the S3 lake catching up to $total" 600 holds "s3://fraudops-lake/lake" "$total"
lag_zero() { (( $(metric "$s3_metrics" kafka_consumer_lag) == 0 )); }
WAIT_LOGS="$TMP/archive-s3.log" wait_until "the S3 archive's lag back to 0" 300 lag_zero
echo "ok   [lake readers] S3 back: the S3 lake caught up to $total transactions and labels, lag 0"

"$PY" scripts/lib/read_lake.py "$TMP/world.csv.gz" "$TMP/lake"
"$PY" scripts/lib/read_lake.py "$TMP/world.csv.gz" "s3://fraudops-lake/lake" --s3-endpoint "$AWS_ENDPOINT"
echo "test-lake-readers: passed in $((SECONDS - t0)) s"
