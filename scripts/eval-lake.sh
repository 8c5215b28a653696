#!/usr/bin/env bash
# Does training from the lake equal training from the file? (issue 28, item 6)
#
#   scripts/eval-lake.sh --data FILE [--train-start YYYY-MM-DD] [--release 0|1]
#
# Starts what it needs: a Kafka-protocol broker (tansu, in memory), `fraudops archive` writing a lake in a
# new temporary directory. Replays FILE through Kafka (`fraudops lake replay`: every transaction the CSV
# reader accepts to transactions-input, its label to fraud-labels), waits until the archive has committed
# every one of them, stops it (SIGTERM: final flush), then trains twice on the same SPEC §3.3 window
# (--train-start, default train's own): `fraudops train --lake DIR` and `fraudops train --data FILE`.
#
# Prints the two trainings' metrics and, as its LAST line, one JSON object (a contract other checks read):
#   {"lake": {"rows": N, "roc_auc": ..., "average_precision": ..., "card_precision_at_100": ...},
#    "file": {...same...}, "lake_path": "<the lake's local directory>"}
# where lake.rows counts the transactions the lake holds, file.rows those the file's reader accepted, and
# the transactions table is the folder `transactions/` of lake_path (hive-partitioned: dt=YYYY-MM-DD/).
# The lake directory is kept for inspection (everything else is removed); exit status 1 when the two
# trainings differ by more than 1e-9 or the row counts differ.
#
# --release 1 (default) builds and runs the release binary: the reference-scale file (1.75 M rows) takes
# a few minutes on 2 cores. CI runs a small file with --release 0 (the test build it already has).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # free_port, parse_options, scratch_with_groups, start_group, start_tansu, target_dir

data="" train_start="" release=1
parse_options data train-start release -- "$@"
[[ -n "$data" ]] || { echo "usage: scripts/eval-lake.sh --data FILE [--train-start YYYY-MM-DD] [--release 0|1]" >&2; exit 2; }
[[ -f "$data" ]] || { echo "no such file: $data" >&2; exit 2; }
data="$(cd "$(dirname "$data")" && pwd)/$(basename "$data")"
t0=$SECONDS

TANSU_BIN="$(scripts/ensure/tansu.sh | tail -n1)"
profile=debug cargo_flags=()
((release)) && { profile=release; cargo_flags=(--release); }
cargo build --locked -q "${cargo_flags[@]}" -p fraudops-cli --bin fraudops >&2
FRAUDOPS="$(target_dir)/$profile/fraudops"

scratch_with_groups eval-lake  # TMP, pids, the EXIT trap
LAKE="$(mktemp -d "${TMPDIR:-/tmp}/fraudops-lake.XXXXXX")"
kafka_port="$(free_port)" metrics_port="$(free_port)"
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$kafka_port"
start_tansu tansu.log "$kafka_port"

# The archive flushes every 2 s here (60 s in the cluster), so the wait below is short.
RUST_LOG=info start_group archive.log "$FRAUDOPS" archive --lake "$LAKE" --metrics-port "$metrics_port" \
  --flush-interval 2s
archive_pid="${pids[-1]}"
wait_until "archive metrics" 300 curl -sf "http://127.0.0.1:$metrics_port/metrics"

echo "[eval-lake] replaying $data through Kafka" >&2
t_replay=$SECONDS
"$FRAUDOPS" lake replay --data "$data" --label-delay 0s >"$TMP/replay.log" 2>&1 \
  || { cat "$TMP/replay.log" >&2; exit 1; }
sed 's/^/[eval-lake] /' "$TMP/replay.log" >&2
replayed="$(sed -n 's/^replayed \([0-9]*\) transactions and \([0-9]*\) labels.*/\1 \2/p' "$TMP/replay.log")"
read -r n_tx n_labels <<<"$replayed"

written() { # written TABLE: the archive's lake_rows_written_total for TABLE
  curl -sf "http://127.0.0.1:$metrics_port/metrics" \
    | awk -v t="lake_rows_written_total{table=\"$1\"}" '$1 == t {print $2}'
}
archived() { [[ "$(written transactions)" == "$n_tx" && "$(written labels)" == "$n_labels" ]]; }
t_archive=$SECONDS
WAIT_LOGS="$TMP/archive.log" wait_until "the archive committing $n_tx transactions and $n_labels labels" 3000 archived
t_archived=$SECONDS
kill -TERM -- "-$archive_pid"
for _ in $(seq 300); do kill -0 "$archive_pid" 2>/dev/null || break; sleep 0.1; done
grep -h "archive summary" "$TMP/archive.log" | sed 's/^/[eval-lake] /' >&2 || true
echo "[eval-lake] replay $((t_archive - t_replay)) s, archive caught up $((t_archived - t_archive)) s later: $("$FRAUDOPS" lake stats --lake "$LAKE" --json)" >&2

split=()
[[ -n "$train_start" ]] && split=(--train-start "$train_start")
t_train=$SECONDS
"$FRAUDOPS" train --no-mlflow --lake "$LAKE" "${split[@]}" --out "$TMP/model-lake" >"$TMP/train-lake.log" 2>&1 \
  || { cat "$TMP/train-lake.log" >&2; exit 1; }
t_file=$SECONDS
"$FRAUDOPS" train --no-mlflow --data "$data" "${split[@]}" --out "$TMP/model-file" >"$TMP/train-file.log" 2>&1 \
  || { cat "$TMP/train-file.log" >&2; exit 1; }
echo "[eval-lake] train --lake $((t_file - t_train)) s, train --data $((SECONDS - t_file)) s (one run each; scripts/bench-lake.sh measures)" >&2
grep -h "^read" "$TMP/train-lake.log" "$TMP/train-file.log" | sed 's/^/[eval-lake] /' >&2

python3 - "$TMP/model-lake/metrics.json" "$TMP/model-file/metrics.json" "$("$FRAUDOPS" lake stats --lake "$LAKE" --json)" \
  "$n_tx" "$LAKE" <<'PY'
import json, math, sys
lake_metrics, file_metrics = (json.load(open(p)) for p in sys.argv[1:3])
stats, file_rows, lake_path = json.loads(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
keys = ("roc_auc", "average_precision", "card_precision_at_100")
result = {
    "lake": {"rows": stats["transactions"]["rows"], **{k: lake_metrics[k] for k in keys}},
    "file": {"rows": file_rows, **{k: file_metrics[k] for k in keys}},
    "lake_path": lake_path,
}
print(f"{'':24}{'lake':>22}{'file':>22}", file=sys.stderr)
for k in ("rows",) + keys:
    print(f"{k:24}{result['lake'][k]:>22}{result['file'][k]:>22}", file=sys.stderr)
differs = [k for k in keys if not math.isclose(result["lake"][k], result["file"][k], rel_tol=0, abs_tol=1e-9)]
if result["lake"]["rows"] != result["file"]["rows"]:
    differs.append("rows")
print(json.dumps(result))
if differs:
    print(f"eval-lake: lake and file differ in {', '.join(differs)}", file=sys.stderr)
    sys.exit(1)
PY
echo "[eval-lake] agree; done in $((SECONDS - t0)) s (lake kept at $LAKE)" >&2
