#!/usr/bin/env bash
# Kafka benchmark: the attack producer and the stream worker against a real Kafka-protocol broker (tansu,
# in-memory storage), compared in the same run with the seeds' design, a Python consumer (confluent-kafka +
# requests, one event one POST) on the same broker and the same API.
#
#   scripts/bench-kafka.sh [--seconds S] [--events N]
#
# Producer: the maximum sustained rate (`max` phase: acknowledged messages per second) and the rate
# accuracy at 1,500 and 20,000 msg/s (achieved vs target over the phase, worst single second, delivery
# latency). Worker: events/s and events per CPU-second, in-process and via the API, from a pre-filled topic
# (`--stop-after`, timed from the first event read to the last prediction acknowledged).
# Everything (broker, API, worker, producer) shares this machine's cores; nothing is pinned.
# Prints a markdown table; writes it to reports/bench-kafka.md as well.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # free_port, median, parse_options, target_dir, scratch_with_children
seconds=10
events=200000
parse_options seconds events -- "$@"
http_events=$((events / 4))
python_events=$((events / 20))

tansu="$(scripts/ensure/tansu.sh | tail -n1)"
venv="$(scripts/ensure/kafka-bench-venv.sh | tail -n1)"
cargo build --release --locked -p fraudops-cli >&2
target="$(target_dir)/release"
fraudops="$target/fraudops"
scratch_with_children

wait_port() { for _ in $(seq 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
field() { grep -o "$2=[0-9.]*" <<<"$1" | head -n1 | cut -d= -f2; }

kafka_port="$(free_port)"
"$tansu" broker --storage-engine memory://tansu/ --listener-url "tcp://127.0.0.1:$kafka_port" \
  --advertised-listener-url "tcp://127.0.0.1:$kafka_port" >"$work/tansu.log" 2>&1 &
pids+=($!)
wait_port "$kafka_port"
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$kafka_port"
api_port="$(free_port)"
# Logs on, to /dev/null, as in bench-serve.sh: production minus the collector.
RUST_LOG=info "$fraudops" serve --bind 127.0.0.1 --port "$api_port" >/dev/null 2>&1 &
api_pid=$!
pids+=($api_pid)
wait_port "$api_port"
api="http://127.0.0.1:$api_port"

# attack TOPIC PHASES → its results JSON
attack() {
  "$fraudops" attack --topic "$1" --phases "$2" --labels off --metrics-port 0 --results "$work/$1.json" >"$work/$1.txt" 2>&1 \
    || { cat "$work/$1.txt" >&2; exit 1; }
  cat "$work/$1.json"
}
# phase_row NAME JSON → a table row from the first phase
phase_row() {
  python3 - "$1" "$2" <<'PY'
import json, sys
name, report = sys.argv[1], json.loads(sys.argv[2])
p = report["phases"][0]
target = "max" if p["target_rate"] is None else f'{p["target_rate"]:,.0f}'
acc = "-" if p["accuracy_pct"] is None else f'{p["accuracy_pct"]:.2f}%'
worst = "-" if p["worst_second_deviation_pct"] is None else f'{p["worst_second_deviation_pct"]:.2f}%'
print(f'| {name} | {target} | {p["achieved_rate"]:,.0f} | {p["delivered_rate"]:,.0f} | {acc} | {worst} | '
      f'{p["latency_ms"]["p50"]:.1f} / {p["latency_ms"]["p99"]:.1f} | {p["errors"]} |')
PY
}

echo "bench-kafka: producer" >&2
max_json="$(attack bench-max "max:${seconds}s")"
acc1500_json="$(attack bench-1500 "1500:${seconds}s")"
acc20000_json="$(attack bench-20000 "20000:${seconds}s")"

echo "bench-kafka: filling bench-stream with $events events" >&2
fill_rate=$((events / 4))
attack bench-stream "${fill_rate}:4s" >/dev/null

# worker NAME ARGS... → its summary line
worker() {
  local name="$1"; shift
  "$fraudops" stream --topic bench-stream --group "bench-$name" --output-topic "bench-out-$name" \
    --metrics-port 0 "$@" >"$work/worker-$name.log" 2>"$work/worker-$name.err" \
    || { tail -20 "$work/worker-$name.err" >&2; exit 1; }
  grep '^stream summary' "$work/worker-$name.err"
}

echo "bench-kafka: worker in-process ($events events)" >&2
inproc="$(worker in-process --in-process --stop-after "$events")"
echo "bench-kafka: worker via the API ($http_events events)" >&2
api_cpu0="$(cpu_ticks "$api_pid")"
http="$(worker http --api-url "$api" --stop-after "$http_events")"
api_cpu_http=$(( $(cpu_ticks "$api_pid") - api_cpu0 ))
echo "bench-kafka: Python consumer via the API ($python_events events)" >&2
api_cpu0="$(cpu_ticks "$api_pid")"
python="$("$venv/python" scripts/bench-kafka-consumer.py "$KAFKA_BOOTSTRAP_SERVERS" bench-stream bench-python \
  bench-out-python "$api" "$python_events" | grep '^python summary')"
api_cpu_python=$(( $(cpu_ticks "$api_pid") - api_cpu0 ))
hz="$(getconf CLK_TCK)"

worker_row() {
  python3 - "$@" <<'PY'
import sys
name, events, eps, cpu, api_ticks, hz = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), \
    float(sys.argv[5]), float(sys.argv[6])
api_cpu = api_ticks / hz
per_core = events / cpu
with_api = events / (cpu + api_cpu)
api_col = f"{api_cpu:.1f}" if api_ticks > 0 else "-"
print(f"| {name} | {events:,.0f} | {eps:,.0f} | {cpu:.1f} | {per_core:,.0f} | {api_col} | {with_api:,.0f} |")
PY
}

{
  echo "### Producer (\`fraudops attack\`, ${seconds} s per phase)"
  echo
  echo "| phase | target msg/s | achieved msg/s | acked msg/s | accuracy | worst second | delivery p50 / p99 ms | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  phase_row "maximum sustained" "$max_json"
  phase_row "accuracy at 1,500" "$acc1500_json"
  phase_row "accuracy at 20,000" "$acc20000_json"
  echo
  echo "### Stream worker (pre-filled topic, first event read → last prediction acknowledged)"
  echo
  echo "| consumer | events | events/s | consumer CPU s | events per consumer CPU-s | API CPU s | events per CPU-s incl. API |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  worker_row "\`fraudops stream --in-process\`" "$(field "$inproc" predicted)" "$(field "$inproc" events_per_s)" \
    "$(field "$inproc" cpu_s)" 0 "$hz"
  worker_row "\`fraudops stream --api-url\` (HTTP, online features as history)" "$(field "$http" predicted)" \
    "$(field "$http" events_per_s)" "$(field "$http" cpu_s)" "$api_cpu_http" "$hz"
  worker_row "Python: confluent-kafka + requests, one event one POST" "$(field "$python" events)" \
    "$(field "$python" events_per_s)" "$(field "$python" cpu_s)" "$api_cpu_python" "$hz"
  echo
  echo "Machine: $(nproc) cores, $("$tansu" --version), $("$venv/python" -c 'import confluent_kafka as c, requests as r; print(f"confluent-kafka {c.__version__} (librdkafka {c.libversion()[0]}), requests {r.__version__}")'); broker, API, producer and consumers share the cores."
} | tee "$work/table.md"
mkdir -p reports
cp "$work/table.md" reports/bench-kafka.md
