#!/usr/bin/env bash
# Serve benchmark: throughput, latency and memory of `fraudops serve` on ONE core, against a minimal hyper
# "hello" server on the same core (the ceiling), in the same run.
#
#   scripts/bench-serve.sh [--duration SECONDS] [--connections N] [--rounds N]
#
# The server is pinned to CPU 0 (taskset), the load generators to CPU 1. Closed loop: wrk at saturation
# for /predict, /predict/batch (100 transactions) and the ceiling (sent the same POST body, which it reads
# and ignores). This shared machine's speed drifts by tens of percent between minutes, so the ceiling and
# /predict alternate for --rounds rounds (default 3) and the table shows medians; the ratio is the median
# of the per-round ratios. Each server's CPU time per request (user and kernel, from /proc/PID/stat) is
# shown too: it says where the difference goes.
# Open model: the open_loop example at a fixed rate of half the measured /predict saturation, latency
# counted from when each request was due (no coordinated omission). It spins on its core, so its own
# wake-ups add nothing (oha's tokio timer ticks every millisecond, which alone put its p99 above 1 ms
# against hello). /predict and the ceiling alternate here too, --rounds times, medians shown; each
# round's p99 and the generator's own stalls are listed under the table, with how busy each server was
# (its CPU time over the round) and, measured by the core_stalls example on the server's core just before
# each round, how much of that core the machine took away: this VM takes milliseconds at a time, and the
# queue a stall leaves is what sets the p99 at half load.
# Logs are on (info, the `prediction_made` event per prediction) and written to /dev/null, as in
# production minus the collector. MIMALLOC_ARENA_EAGER_COMMIT=0 as in the image's Dockerfile.
# Prints a markdown table; writes it to reports/bench-serve.md as well. Then the overload table:
# scripts/bench-overload.sh (past saturation, 2,000 connections, 10,000 idle; reports/bench-overload.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # free_port, median, parse_options, target_dir, scratch_with_children
duration=10
connections=64
rounds=3
parse_options rounds duration connections -- "$@"
scripts/ensure/apt.sh wrk:wrk taskset:util-linux

cargo build --release --locked -p fraudops-cli -p fraudops-serve --bin fraudops --example hello_ceiling --example open_loop --example core_stalls >&2
target="$(target_dir)/release"
scratch_with_children

wait_port() { for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$1$2" && return 0; sleep 0.05; done; return 1; }

scripts/bench-requests.py "$work"

# wrk's summary and the server's CPU time per request → "rps p50_ms p99_ms user_us sys_us"
run_wrk() {
  local pid="$1" url="$2" lua="${3:-}"
  local args=(-t1 -c"$connections" -d"${duration}s" --latency)
  [[ -n "$lua" ]] && args+=(-s "$lua")
  local before after
  before="$(awk '{print $14, $15}' "/proc/$pid/stat")"
  local out
  out="$(taskset -c 1 wrk "${args[@]}" "$url")"
  after="$(awk '{print $14, $15}' "/proc/$pid/stat")"
  python3 -c '
import os, re, sys
text = sys.argv[1]
u0, s0 = map(int, sys.argv[2].split()); u1, s1 = map(int, sys.argv[3].split())
hz = os.sysconf("SC_CLK_TCK")
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
n = int(re.search(r"(\d+) requests in", text).group(1))
p50 = ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1)); p99 = ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: (.*)", text)
if non2xx or errors:
    print("bench-serve: wrk saw errors:", non2xx.group(0) if non2xx else "", errors.group(0) if errors else "", file=sys.stderr)
print(f"{rps:.0f} {p50:.3f} {p99:.3f} {(u1 - u0) / hz / n * 1e6:.1f} {(s1 - s0) / hz / n * 1e6:.1f}")' "$out" "$before" "$after"
}


# For each array NAME given, sets NAME_med to the median of its values.
set_medians() {
  local v
  for v in "$@"; do
    declare -n values="$v"
    printf -v "${v}_med" '%s' "$(median "${values[@]}")"
    unset -n values
  done
}

# open_loop at a fixed rate → "achieved_rps p50_ms p99_ms generator_stalled_ms_per_s generator_longest_stall_ms
# server_busy_percent" (the server's CPU time over the round's length, from /proc/PID/stat)
run_open() {
  local pid="$1" url="$2" body="$3" rate="$4"  # body: a file
  local before after out
  before="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
  out="$(taskset -c 1 "$target/examples/open_loop" --url "$url" --body "$body" --rate "$rate" \
    --duration "$duration" --connections "$connections")"
  after="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
  python3 -c '
import json, os, sys
r = json.loads(sys.argv[1])
if r["non_200"] or r["errors"]: print("bench-serve: open_loop saw failures:", r, file=sys.stderr)
busy = (int(sys.argv[3]) - int(sys.argv[2])) / os.sysconf("SC_CLK_TCK") / (r["completed"] / r["achieved_rps"]) * 100
print("%.0f %.3f %.3f %.2f %.3f %.0f" % (r["achieved_rps"], r["p50_ms"], r["p99_ms"],
      r["generator_stalled_ms_per_s"], r["generator_longest_stall_ms"], busy))' "$out" "$before" "$after"
}

# core_stalls on the server's core while the server is idle → "stalled_ms_per_s longest_ms over_1ms_per_s"
probe_server_core() {
  taskset -c 0 "$target/examples/core_stalls" --seconds 2 | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("%.2f %.3f %.2f" % (r["stalled_ms_per_s"], r["longest_ms"], r["over_1ms_per_s"]))'
}

rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

echo "bench-serve: ceiling (hyper hello) and fraudops serve on CPU 0, $rounds alternating rounds" >&2
hello_port="$(free_port)"
taskset -c 0 "$target/examples/hello_ceiling" "127.0.0.1:$hello_port" >/dev/null &
hello_pid=$!
pids+=("$hello_pid")
wait_port "$hello_port" /

port="$(free_port)"
PORT="$port" BIND_ADDRESS=127.0.0.1 MAX_IN_FLIGHT=4096 RUST_LOG=info MIMALLOC_ARENA_EAGER_COMMIT=0 taskset -c 0 "$target/fraudops" serve >/dev/null 2>&1 &
serve_pid=$!
pids+=("$serve_pid")
wait_port "$port" /ready

declare -a h_rps h_p50 h_p99 h_usr h_sys s_rps s_p50 s_p99 s_usr s_sys ratios
for ((r = 1; r <= rounds; r++)); do
  read -r a b c d e < <(run_wrk "$hello_pid" "http://127.0.0.1:$hello_port/" "$work/single.lua")
  h_rps+=("$a"); h_p50+=("$b"); h_p99+=("$c"); h_usr+=("$d"); h_sys+=("$e")
  read -r a b c d e < <(run_wrk "$serve_pid" "http://127.0.0.1:$port/predict" "$work/single.lua")
  s_rps+=("$a"); s_p50+=("$b"); s_p99+=("$c"); s_usr+=("$d"); s_sys+=("$e")
  ratios+=("$(python3 -c "print(f'{$a / ${h_rps[-1]} * 100:.1f}')")")
  echo "bench-serve: round $r: hello ${h_rps[-1]} req/s, /predict $a req/s (${ratios[-1]}%)" >&2
done
set_medians h_rps h_p50 h_p99 h_usr h_sys s_rps s_p50 s_p99 s_usr s_sys ratios
hello_rps="$h_rps_med"; single_rps="$s_rps_med"
read -r batch_rps batch_p50 batch_p99 _ _ < <(run_wrk "$serve_pid" "http://127.0.0.1:$port/predict/batch" "$work/batch.lua")
half="$(python3 -c "print(int($single_rps) // 2)")"
# Open model, alternating too; the floor is the ceiling server at the same fixed rate, same body. Before each
# round, core_stalls measures how much of the server's core the machine takes away while both servers idle.
declare -a o_rps o_p50 o_p99 o_stall o_busy f_rps f_p50 f_p99 f_stall f_busy core_stall
for ((r = 1; r <= rounds; r++)); do
  read -r a b c < <(probe_server_core)
  core_stall+=("$a/$b/$c")
  read -r a b c d e g < <(run_open "$serve_pid" "http://127.0.0.1:$port/predict" "$work/single.json" "$half")
  o_rps+=("$a"); o_p50+=("$b"); o_p99+=("$c"); o_stall+=("$d/$e"); o_busy+=("$g")
  read -r a b c d e g < <(run_open "$hello_pid" "http://127.0.0.1:$hello_port/" "$work/single.json" "$half")
  f_rps+=("$a"); f_p50+=("$b"); f_p99+=("$c"); f_stall+=("$d/$e"); f_busy+=("$g")
  echo "bench-serve: open round $r at $half/s: /predict p99 ${o_p99[-1]} ms (server ${o_busy[-1]}% busy), hello p99 ${f_p99[-1]} ms (${f_busy[-1]}% busy); server core stalls ${core_stall[-1]}" >&2
done
set_medians o_rps o_p50 o_p99 o_busy f_rps f_p50 f_p99 f_busy
kill "$hello_pid"; wait "$hello_pid" 2>/dev/null || true
rss="$(rss_mb "$serve_pid")"

mkdir -p reports
{
  echo "| scenario (1 core, ${connections} connections, ${duration} s; median of $rounds rounds, the batch row one run) | requests/s | predictions/s | p50 ms | p99 ms | CPU µs/request (user + kernel) |"
  echo "|---|---:|---:|---:|---:|---:|"
  echo "| hyper hello (ceiling), wrk | $hello_rps | – | $h_p50_med | $h_p99_med | $h_usr_med + $h_sys_med |"
  echo "| \`POST /predict\`, wrk (saturation) | $single_rps | $single_rps | $s_p50_med | $s_p99_med | $s_usr_med + $s_sys_med |"
  echo "| \`POST /predict/batch\` ×100, wrk | $batch_rps | $((batch_rps * 100)) | $batch_p50 | $batch_p99 | – |"
  echo "| \`POST /predict\` at $half/s fixed rate, open_loop (open model; server ${o_busy_med}% busy) | $o_rps_med | $o_rps_med | $o_p50_med | $o_p99_med | – |"
  echo "| hyper hello at $half/s fixed rate, open_loop (the floor; ${f_busy_med}% busy) | $f_rps_med | – | $f_p50_med | $f_p99_med | – |"
  echo
  echo "/predict reaches ${ratios_med}% of the ceiling (median of the rounds: ${ratios[*]}); peak resident memory of serve: ${rss} MB."
  echo "Open-model p99 per round, /predict: ${o_p99[*]} ms; floor: ${f_p99[*]} ms. The generator's own stalls (its core taken away), ms per second / longest ms, per round: /predict ${o_stall[*]}; floor ${f_stall[*]}."
  echo "The server's core, idle, before each round (core_stalls, 2 s): stalled ms per second / longest ms / stalls over 1 ms per second: ${core_stall[*]}. A stall of S ms at a server busy a fraction u of the time leaves a queue that takes about S·u/(1−u) more to drain, so the p99 stays under 1 ms only while stalls and their drains cover less than 1% of the time."
} | tee reports/bench-serve.md

# Past saturation: the open model at 0.5×, 2× and 3× over 2,000 connections with shedding on and off, and
# 10,000 idle connections held while 0.5× is served (scripts/bench-overload.sh; reports/bench-overload.md).
echo
scripts/bench-overload.sh --duration 8
