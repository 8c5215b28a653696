#!/usr/bin/env bash
# The lake's two performance claims (issue 28), measured and printed as a table:
#   1. archive throughput on one core: FILE's transactions and labels are produced to Kafka first (tansu, in
#      memory), then `fraudops archive` (release build, pinned to one CPU with taskset) starts against the full
#      topics; events/s = records committed to the lake / seconds from its start until the last is committed
#      (JSON parsing, Parquet encoding and the local-directory writes included);
#   2. training from the lake vs from the CSV file on the same SPEC §3.3 window: `fraudops train --lake` and
#      `fraudops train --data`, alternated, RUNS times each; medians and their ratio.
#
#   scripts/bench-lake.sh [--data FILE] [--runs N] [--train-start YYYY-MM-DD]
#
# Default FILE: data/transactions.csv.gz (the reference scale: `fraudops simulate` with its defaults writes it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # free_port, parse_options, scratch_with_groups, start_group, wait_until, target_dir, median

data="data/transactions.csv.gz" runs=3 train_start=""
parse_options data runs train-start -- "$@"
[[ -f "$data" ]] || { echo "no such file: $data (fraudops simulate --out $data writes the reference scale)" >&2; exit 2; }
TANSU_BIN="$(scripts/ensure/tansu.sh | tail -n1)"
cargo build --locked -q --release -p fraudops-cli --bin fraudops >&2
FRAUDOPS="$(target_dir)/release/fraudops"

scratch_with_groups bench-lake
kafka_port="$(free_port)" metrics_port="$(free_port)"
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$kafka_port"
start_group tansu.log taskset -c 0 "$TANSU_BIN" broker --storage-engine memory://tansu/ \
  --listener-url "tcp://127.0.0.1:$kafka_port" --advertised-listener-url "tcp://127.0.0.1:$kafka_port"
wait_until "tansu" 150 bash -c "exec 3<>/dev/tcp/127.0.0.1/$kafka_port"
"$FRAUDOPS" lake replay --data "$data" >"$TMP/replay.log" 2>&1 || { cat "$TMP/replay.log" >&2; exit 1; }
read -r n_tx n_labels <<<"$(sed -n 's/^replayed \([0-9]*\) transactions and \([0-9]*\) labels.*/\1 \2/p' "$TMP/replay.log")"
total=$((n_tx + n_labels))

t_start="$(date +%s.%N)"
start_group archive.log taskset -c 1 "$FRAUDOPS" archive --lake "$TMP/lake" --metrics-port "$metrics_port" --flush-interval 1s
WAIT_LOGS="$TMP/archive.log" wait_until "the archive committing all $total records" 6000 \
  bash -c "[[ \"\$(curl -sf http://127.0.0.1:$metrics_port/metrics | awk '/^lake_rows_written_total\\{/ {s += \$2} END {print s + 0}')\" -ge $total ]]"
t_end="$(date +%s.%N)"
archive_s="$(python3 -c "print(round($t_end - $t_start, 2))")"
rate="$(python3 -c "print(round($total / ($t_end - $t_start)))")"
kill -TERM -- "-${pids[-1]}"

split=()
[[ -n "$train_start" ]] && split=(--train-start "$train_start")
lake_times=() file_times=()
for _ in $(seq "$runs"); do
  for source in lake file; do
    args=(--lake "$TMP/lake")
    [[ "$source" == file ]] && args=(--data "$data")
    t0="$(date +%s.%N)"
    "$FRAUDOPS" train --no-mlflow "${args[@]}" "${split[@]}" --out "$TMP/model-$source" >"$TMP/train-$source.log" 2>&1 \
      || { cat "$TMP/train-$source.log" >&2; exit 1; }
    t1="$(date +%s.%N)"
    s="$(python3 -c "print(round($t1 - $t0, 2))")"
    if [[ "$source" == lake ]]; then lake_times+=("$s"); else file_times+=("$s"); fi
  done
done
lake_median="$(median "${lake_times[@]}")" file_median="$(median "${file_times[@]}")"
ratio="$(python3 -c "print(round($lake_median / $file_median, 2))")"

echo
echo "lake benchmark ($data: $n_tx transactions + $n_labels labels; $(nproc) cores, $(date -u +%F))"
printf '%-52s %14s\n' "measure" "value"
printf '%-52s %14s\n' "archive: records committed (one core, taskset)" "$total"
printf '%-52s %14s\n' "archive: seconds from start to last commit" "$archive_s"
printf '%-52s %14s\n' "archive: events/s on one core" "$rate"
printf '%-52s %14s\n' "train --lake: median seconds ($runs runs)" "$lake_median"
printf '%-52s %14s\n' "train --data (CSV): median seconds ($runs runs)" "$file_median"
printf '%-52s %14s\n' "train: lake / CSV" "$ratio"
