#!/usr/bin/env bash
# Online evaluation (issue: one online feature store for every scorer): does a direct `POST /predict`
# without history score as well as the model offline?
#
#   scripts/eval-online.sh --data FILE [--release 1] [--check 1] [--lanes N] [--feature-store URL]
#
# FILE: a transaction CSV in the simulator's or the handbook's layout (the extension columns may be absent),
# covering SPEC §3.3's default split (training from 2018-07-25 for 7 days, 7 days' delay, test 2018-08-08 ..
# 2018-08-14) and the 37 days before the test week. Starts redis-server, tansu, `fraudops serve` (the model
# trained here, FEATURE_STORE_URL set) and `fraudops labels`, all on free loopback ports and stopped by PID;
# trains a model on the file (`fraudops train --no-mlflow`); then `fraudops eval-online` replays the 37 days
# before the test week and the test week as direct /predict calls without history while each label goes to
# fraud-labels 3 days (event time) after its transaction. The last line is JSON:
#   {"online": {"roc_auc":…, "average_precision":…, "card_precision_at_100":…}, "offline": {…},
#    "events": <direct calls made>, "differing": <test transactions scored differently online>}
# --check 1 fails on any test transaction scored differently online than offline (the online path is the
# offline definition, bit for bit), on metrics that differ beyond float summation order (1e-9), or on any
# feature store error the API counted. --release 1 builds and runs
# the release binary (full-size files). --feature-store URL runs against an existing store instead of
# starting a redis-server: one URL, or several comma-separated for a Redis Cluster
# (redis://h1:p1,redis://h2:p2,…); its keys must not hold the file's cards already (a fresh store).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh
data="" release=0 check=0 lanes=32 feature_store=""
parse_options data release check lanes feature-store -- "$@"
[[ -n "$data" && -f "$data" ]] || { echo "eval-online: give --data FILE (an existing transaction CSV)" >&2; exit 2; }
data="$(realpath "$data")"

tansu="$(scripts/ensure/tansu.sh | tail -n1)"
scripts/ensure/apt.sh redis-server:redis-server
profile=debug; cargo_flags=()
((release)) && { profile=release; cargo_flags=(--release); }
cargo build --locked "${cargo_flags[@]}" -p fraudops-cli --bin fraudops >&2
fraudops="$(target_dir)/$profile/fraudops"
scratch_with_children

wait_for() {  # wait_for WHAT CMD...: polls CMD for up to 60 s
  local what="$1"; shift
  for _ in $(seq 600); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "eval-online: $what did not come up" >&2; exit 1
}

echo "eval-online: training on $data (SPEC §3.3 split)" >&2
"$fraudops" train --data "$data" --out "$work/model" --no-mlflow >&2

redis_port="$(free_port)" kafka_port="$(free_port)" api_port="$(free_port)" labels_port="$(free_port)"
if [[ -z "$feature_store" ]]; then
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
  pids+=($!)
  wait_for redis redis-cli -p "$redis_port" ping
  feature_store="redis://127.0.0.1:$redis_port/0"
fi
"$tansu" broker --storage-engine memory://tansu/ --listener-url "tcp://127.0.0.1:$kafka_port" \
  --advertised-listener-url "tcp://127.0.0.1:$kafka_port" >"$work/tansu.log" 2>&1 &
pids+=($!)
wait_for tansu bash -c "exec 3<>/dev/tcp/127.0.0.1/$kafka_port"
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$kafka_port" FEATURE_STORE_URL="$feature_store"
# A generous deadline: the evaluation measures the features, not the store's latency under a debug build.
PORT="$api_port" BIND_ADDRESS=127.0.0.1 MODEL_PATH="$work/model/model.json" FEATURE_STORE_TIMEOUT=5s \
  MAX_IN_FLIGHT=4096 RUST_LOG=warn "$fraudops" serve >"$work/api.log" 2>&1 &
pids+=($!)
FEATURE_STORE_TIMEOUT=5s RUST_LOG=warn "$fraudops" labels --metrics-port "$labels_port" >"$work/labels.log" 2>&1 &
pids+=($!)
wait_for "the API" curl -sf "http://127.0.0.1:$api_port/ready"
wait_for "the label consumer" curl -sf "http://127.0.0.1:$labels_port/metrics"

"$fraudops" eval-online --data "$data" --model "$work/model/model.json" --api-url "http://127.0.0.1:$api_port" \
  --lanes "$lanes" | tee "$work/eval.txt"
errors="$(curl -sf "http://127.0.0.1:$api_port/metrics" | awk '/^ml_model_feature_store_errors_total/ {s += $2} END {print s + 0}')"
echo "eval-online: feature store errors counted by the API: $errors" >&2
if ((check)); then
  tail -n1 "$work/eval.txt" | python3 -c '
import json, sys
r = json.load(sys.stdin); errors = int(sys.argv[1])
on, off = r["online"], r["offline"]
# Equal scores give equal metrics up to the summation order of their floating-point sums.
bad = [f"{k}: online {on[k]!r} vs offline {off[k]!r}" for k in ("roc_auc", "average_precision",
       "card_precision_at_100") if abs(on[k] - off[k]) > 1e-9]
if r["differing"]: bad.append("%d test transactions scored differently online than offline" % r["differing"])
if errors: bad.append(f"{errors} feature store errors")
if bad: sys.exit("eval-online: FAIL " + "; ".join(bad))
print("eval-online: online equals offline (%d direct calls, 0 differing scores)" % r["events"], file=sys.stderr)' "$errors"
fi
