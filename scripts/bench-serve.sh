#!/usr/bin/env bash
# Serve benchmark: throughput, latency and memory of `fraudops serve` on ONE core, against a minimal hyper
# "hello" server on the same core (the ceiling), in the same run.
#
#   scripts/bench-serve.sh [--duration SECONDS] [--connections N]
#
# The server is pinned to CPU 0 (taskset), the load generators to CPU 1. Closed loop: wrk at saturation for
# /predict, /predict/batch (100 transactions) and the ceiling. Open model: oha at a fixed rate of half the
# measured /predict saturation, with latency correction (no coordinated omission). Logs are on (info, the
# `prediction_made` event per prediction) and written to /dev/null, as in production minus the collector.
# MIMALLOC_ARENA_EAGER_COMMIT=0 as in the image's Dockerfile.
# Prints a markdown table; writes it to reports/bench-serve.md as well.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration=10
connections=64
while (($#)); do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
scripts/ensure/apt.sh wrk:wrk taskset:util-linux
command -v oha >/dev/null || { echo "bench-serve: installing oha (cargo install)" >&2; cargo install --locked oha >&2; }

cargo build --release --locked -p fraudops-cli -p fraudops-serve --example hello_ceiling >&2
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$1$2" && return 0; sleep 0.05; done; return 1; }

scripts/bench-requests.py "$work"

# wrk's summary → "rps p50_ms p99_ms"
run_wrk() {
  local url="$1" lua="${2:-}"
  local args=(-t1 -c"$connections" -d"${duration}s" --latency)
  [[ -n "$lua" ]] && args+=(-s "$lua")
  taskset -c 1 wrk "${args[@]}" "$url" | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"^\s*50%\s+(\S+)", text, re.M).group(1)); p99 = ms(re.search(r"^\s*99%\s+(\S+)", text, re.M).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: (.*)", text)
if non2xx or errors:
    print("bench-serve: wrk saw errors:", non2xx.group(0) if non2xx else "", errors.group(0) if errors else "", file=sys.stderr)
print(f"{rps:.0f} {p50:.3f} {p99:.3f}")'
}

# oha at a fixed rate → "achieved_rps p50_ms p99_ms"
run_oha() {
  local url="$1" body="$2" rate="$3"  # body: a file
  taskset -c 1 oha --no-tui --output-format json -z "${duration}s" -q "$rate" --latency-correction \
    -c "$connections" -m POST -H 'content-type: application/json' -D "$body" "$url" | python3 -c '
import json, sys
r = json.load(sys.stdin)
s = r["summary"]; p = r["latencyPercentiles"]
codes = r.get("statusCodeDistribution", {})
bad = {k: v for k, v in codes.items() if k != "200"}
if bad: print("bench-serve: oha saw non-200:", bad, file=sys.stderr)
print("%.0f %.3f %.3f" % (s["requestsPerSec"], p["p50"] * 1e3, p["p99"] * 1e3))'
}

rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

echo "bench-serve: ceiling (hyper hello) on CPU 0" >&2
port="$(free_port)"
taskset -c 0 "$target/examples/hello_ceiling" "127.0.0.1:$port" >/dev/null &
pids+=($!)
wait_port "$port" /
read -r hello_rps hello_p50 hello_p99 < <(run_wrk "http://127.0.0.1:$port/")
hello_port="$port"
hello_pid="${pids[-1]}"

echo "bench-serve: fraudops serve on CPU 0" >&2
port="$(free_port)"
PORT="$port" BIND_ADDRESS=127.0.0.1 MAX_IN_FLIGHT=4096 RUST_LOG=info MIMALLOC_ARENA_EAGER_COMMIT=0 taskset -c 0 "$target/fraudops" serve >/dev/null 2>&1 &
serve_pid=$!
pids+=("$serve_pid")
wait_port "$port" /ready
read -r single_rps single_p50 single_p99 < <(run_wrk "http://127.0.0.1:$port/predict" "$work/single.lua")
read -r batch_rps batch_p50 batch_p99 < <(run_wrk "http://127.0.0.1:$port/predict/batch" "$work/batch.lua")
half=$((single_rps / 2))
read -r open_rps open_p50 open_p99 < <(run_oha "http://127.0.0.1:$port/predict" "$work/single.json" "$half")
# The load generator's own floor: the ceiling server at the same fixed rate, same body.
read -r hello_open_rps hello_open_p50 hello_open_p99 < <(run_oha "http://127.0.0.1:$hello_port/" "$work/single.json" "$half")
kill "$hello_pid"; wait "$hello_pid" 2>/dev/null || true
rss="$(rss_mb "$serve_pid")"

ratio="$(python3 -c "print(f'{$single_rps / $hello_rps * 100:.0f}')")"
mkdir -p reports
{
  echo "| scenario (1 core, ${connections} connections, ${duration} s) | requests/s | predictions/s | p50 ms | p99 ms |"
  echo "|---|---:|---:|---:|---:|"
  echo "| hyper hello (ceiling), wrk | $hello_rps | – | $hello_p50 | $hello_p99 |"
  echo "| \`POST /predict\`, wrk (saturation) | $single_rps | $single_rps | $single_p50 | $single_p99 |"
  echo "| \`POST /predict/batch\` ×100, wrk | $batch_rps | $((batch_rps * 100)) | $batch_p50 | $batch_p99 |"
  echo "| \`POST /predict\` at $half/s fixed rate, oha (open model) | $open_rps | $open_rps | $open_p50 | $open_p99 |"
  echo "| hyper hello at $half/s fixed rate, oha (the generator's floor) | $hello_open_rps | – | $hello_open_p50 | $hello_open_p99 |"
  echo
  echo "/predict reaches ${ratio}% of the ceiling; peak resident memory of serve: ${rss} MB."
} | tee reports/bench-serve.md
