#!/usr/bin/env bash
# Feature store benchmark: what the online feature store costs a direct `POST /predict` on ONE core.
#
#   scripts/bench-store.sh [--duration SECONDS] [--connections N] [--rounds N] [--cards N]
#
# One `fraudops serve` on CPU 0 with FEATURE_STORE_URL set; redis-server (no persistence) and wrk on CPU 1.
# Closed loop (wrk at saturation), alternating --rounds times (this VM's speed drifts; medians shown):
#   * history supplied: the request brings its windows (the stream worker's way); the store is not asked;
#   * store lookups: no history; each request reads its windows and records itself in one Lua script call
#     (EVALSHA on one multiplexed connection). Every request is a new transaction of one of --cards cards
#     (1,000: about 107 transactions per card in 37 days, the depth of the busiest cards) at one of 10,000
#     terminals, event time moving 30 s per request, so windows fill as in real traffic.
# Also: the API's CPU per request (user + kernel, /proc/PID/stat), Redis's CPU per request (process time,
# network included, and INFO commandstats: time inside the window script, and inside every command a
# direct call causes: the script and the score recording), and the keys and memory Redis holds at the end.
# Prints a markdown table; writes it to reports/bench-store.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh
source scripts/lib/redis_cost.sh
duration=10
connections=64
rounds=3
cards=1000
parse_options rounds duration connections cards -- "$@"
scripts/ensure/apt.sh wrk:wrk taskset:util-linux redis-server:redis-server

cargo build --release --locked -p fraudops-cli --bin fraudops >&2
cargo build --release --locked -p fraudops-store --example store_load >&2
target="$(target_dir)/release"
scratch_with_children

wait_port() { for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$1$2" && return 0; sleep 0.05; done; return 1; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

cat >"$work/store.lua" <<'LUA'
-- A new transaction per request: unique id, one of CARDS cards, one of 10,000 terminals, time + 30 s; each
-- run goes on where the last one stopped (OFFSET), so no run replays the transactions of another.
local n = OFFSET
request = function()
  n = n + 1
  local body = string.format(
    '{"transaction_id": %d, "amount": %.2f, "customer_id": %d, "terminal_id": %d, "tx_datetime": "%s", "merchant_category": "grocery", "user_age": 41, "account_balance": 900}',
    n, 5 + (n * 7919 % 20000) / 100, n * 2654435761 % CARDS, n * 40503 % 10000,
    os.date("!%Y-%m-%d %H:%M:%S", 1533081600 + 30 * n))
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, body)
end
LUA
sed -i "s/CARDS/$cards/" "$work/store.lua"
store_offset=0
# The store script of the next run, starting after every transaction the runs before it sent.
next_store_lua() {
  sed "s/OFFSET/$store_offset/" "$work/store.lua" >"$work/store-$store_offset.lua"
  echo "$work/store-$store_offset.lua"
}
cat >"$work/history.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"transaction_id": 1, "amount": 129.9, "customer_id": 42, "terminal_id": 3107, "tx_datetime": "2018-08-15 02:13:00", "merchant_category": "electronics", "user_age": 37, "account_balance": 2400.5, "history": {"customer": {"nb_tx_1day": 2, "avg_amount_1day": 60.5, "nb_tx_7day": 9, "avg_amount_7day": 55.1, "nb_tx_30day": 31, "avg_amount_30day": 52.3}, "terminal": {"nb_tx_1day": 12, "risk_1day": 0.0, "nb_tx_7day": 80, "risk_7day": 0.0125, "nb_tx_30day": 330, "risk_30day": 0.006}}}'
LUA

redis_port="$(free_port)"
taskset -c 1 redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
redis_pid=$!
pids+=("$redis_pid")
port="$(free_port)"
PORT="$port" BIND_ADDRESS=127.0.0.1 MAX_IN_FLIGHT=4096 RUST_LOG=warn MIMALLOC_ARENA_EAGER_COMMIT=0 \
  FEATURE_STORE_URL="redis://127.0.0.1:$redis_port/0" FEATURE_STORE_TIMEOUT=1s \
  taskset -c 0 "$target/fraudops" serve >/dev/null 2>&1 &
serve_pid=$!
pids+=("$serve_pid")
wait_port "$port" /ready

# wrk → "rps p50_ms p99_ms api_us redis_us non2xx"
run() {
  local lua="$1" a0 r0 out
  a0="$(ticks "$serve_pid")"; r0="$(ticks "$redis_pid")"
  out="$(taskset -c 1 wrk -t1 -c"$connections" -d"${duration}s" --latency -s "$lua" "http://127.0.0.1:$port/predict")"
  python3 -c '
import os, re, sys
text = sys.argv[1]; hz = os.sysconf("SC_CLK_TCK")
a = int(sys.argv[3]) - int(sys.argv[2]); r = int(sys.argv[5]) - int(sys.argv[4])
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)); n = int(re.search(r"(\d+) requests in", text).group(1))
p50 = ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1)); p99 = ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {a / hz / n * 1e6:.1f} {r / hz / n * 1e6:.1f} {bad.group(1) if bad else 0} {n}")' \
    "$out" "$a0" "$(ticks "$serve_pid")" "$r0" "$(ticks "$redis_pid")"
}

echo "bench-store: warming the store (one round of lookups fills the windows)" >&2
read -r _ _ _ _ _ _ g < <(run "$(next_store_lua)")
store_offset=$((store_offset + g))
redis-cli -p "$redis_port" config resetstat >/dev/null
declare -a h_rps h_p50 h_p99 h_api s_rps s_p50 s_p99 s_api s_redis
for ((r = 1; r <= rounds; r++)); do
  read -r a b c d _ f _ < <(run "$work/history.lua")
  h_rps+=("$a"); h_p50+=("$b"); h_p99+=("$c"); h_api+=("$d")
  [[ "$f" == 0 ]] || echo "bench-store: $f non-2xx answers with history" >&2
  read -r a b c d e f g < <(run "$(next_store_lua)")
  store_offset=$((store_offset + g))
  store_requests=$((${store_requests:-0} + g))
  s_rps+=("$a"); s_p50+=("$b"); s_p99+=("$c"); s_api+=("$d"); s_redis+=("$e")
  [[ "$f" == 0 ]] || echo "bench-store: $f non-2xx answers with store lookups" >&2
  echo "bench-store: round $r: history ${h_rps[-1]} req/s, store lookups $a req/s" >&2
done
# INFO commandstats since the warm-up: the script's µs per call, and every command's µs per direct call.
read -r script_us all_us < <(redis_command_usec "$redis_port" "$store_requests")
mkdir -p reports
redis-cli -p "$redis_port" info commandstats | tr -d "\r" >reports/bench-store-commandstats.txt
# Redis alone: the same transactions driven straight at the store (examples/store_load.rs) from the API's
# core while the API idles, so nothing competes for Redis's core and commandstats time is its own. First
# the window call and the score recording (the script's time per call is the window call's), then with
# every transaction's label applied too (all the commands a direct call causes).
# Sets alone_rate, alone_script, alone_all and alone_cpu (no subshell: store_offset moves on).
redis_alone() {
  local out calls r0
  redis-cli -p "$redis_port" config resetstat >/dev/null
  r0="$(ticks "$redis_pid")"
  out="$(taskset -c 0 "$target/examples/store_load" --url "redis://127.0.0.1:$redis_port/0" --cards "$cards" \
    --offset "$store_offset" --seconds "$duration" "$@")"
  calls="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["calls"])' "$out")"
  alone_rate="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["calls_per_second"])' "$out")"
  store_offset=$((store_offset + calls))
  read -r alone_script alone_all < <(redis_command_usec "$redis_port" "$calls")
  alone_cpu="$(awk -v t0="$r0" -v t1="$(ticks "$redis_pid")" -v hz="$(getconf CLK_TCK)" -v n="$calls" \
    'BEGIN { printf "%.1f", (t1 - t0) / hz / n * 1e6 }')"
}
echo "bench-store: Redis alone (store_load)" >&2
redis_alone
read -r window_rate window_script window_all window_cpu <<<"$alone_rate $alone_script $alone_all $alone_cpu"
redis_alone --labels
errors="$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^ml_model_feature_store_errors_total/ {s += $2} END {print s + 0}')"
keys="$(redis-cli -p "$redis_port" dbsize)"
used="$(redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ {printf "%.1f", $2 / 1048576}')"
m() { median "$@"; }

mkdir -p reports
{
  echo "| POST /predict on one core (${connections} connections, median of ${rounds} rounds) | req/s | p50 ms | p99 ms | API CPU µs/req | Redis CPU µs/req |"
  echo "|---|---:|---:|---:|---:|---:|"
  echo "| history supplied (no store call) | $(m "${h_rps[@]}") | $(m "${h_p50[@]}") | $(m "${h_p99[@]}") | $(m "${h_api[@]}") | – |"
  echo "| store lookups (read + record, one script call) | $(m "${s_rps[@]}") | $(m "${s_p50[@]}") | $(m "${s_p99[@]}") | $(m "${s_api[@]}") | $(m "${s_redis[@]}") |"
  echo
  echo "| Redis alone (store_load, ${duration} s, nothing else on its core) | calls/s | window script µs/call | every command µs/call | Redis process CPU µs/call |"
  echo "|---|---:|---:|---:|---:|"
  echo "| window call + score recording | $window_rate | $window_script | $window_all | $window_cpu |"
  echo "| + every transaction's label applied | $alone_rate | – | $alone_all | $alone_cpu |"
  echo
  echo "Store at the end: $keys keys, ${used} MiB; ${cards} cards; Redis time (INFO commandstats) inside the window script: ${script_us} µs per call, inside every command a direct call causes (script and score recording): ${all_us} µs per direct call; feature store errors counted by the API: $errors."
} | tee reports/bench-store.md
