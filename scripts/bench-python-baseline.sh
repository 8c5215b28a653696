#!/usr/bin/env bash
# `fraudops serve` against the Python stack such a service is commonly built with today, on the same core:
# FastAPI + pydantic v2 on uvicorn (uvloop + httptools), an XGBoost classifier of the same size as ours
# (200 trees, depth 5) trained in Python on the same simulator's data with the same 20 features, and the same
# POST /predict contract (bench/python-baseline/app.py).
#
#   scripts/bench-python-baseline.sh [--duration SECONDS] [--connections N] [--repeat N] [--startups N] [--rate RPS]
#
# Both servers run exactly as scripts/bench-serve.sh runs ours: pinned to CPU 0 (taskset), one process, load
# generators on CPU 1, the same request body (a transaction with precomputed history). Python runs one uvicorn
# worker (the per-core unit of the usual "one worker per core" deployment); ours runs its multi-thread tokio
# runtime, which sizes itself to the one CPU it is allowed. Measured per server:
#   - startup: spawn → first 200 from GET /ready (median of --startups starts after one warm-up start);
#   - idle RSS (VmRSS after ready, before any request) and peak RSS (VmHWM after all load);
#   - saturation: wrk, closed loop, --connections connections, after a 2 s warm-up;
#   - latency at a fixed rate both can sustain: the open_loop example (crates/fraudops-serve/examples), open
#     model, each latency counted from when the request was due, at --rate (default: half the Python
#     server's saturation), the same rate for every server.
# wrk and open_loop runs are repeated --repeat times (default 3), the three servers interleaved run by run; the table
# shows the median of each number, the report also the range.
# Two Python variants: `full` records what ours records per request (a JSON prediction_made log line and
# Prometheus metrics), `off` records nothing (an upper bound for Python).
# The measurement part (cargo build included) holds /tmp/fraudops-heavy.lock (a caller that already holds it
# sets FRAUDOPS_HEAVY_LOCK_HELD=1). Prints a markdown table and writes it with versions and caveats to
# reports/bench-python-baseline.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # free_port, median, parse_options, target_dir
duration=10
connections=64
startups=3
repeat=3
rate=""
parse_options duration connections startups repeat rate -- "$@"
log() { echo "bench-python-baseline: $*" >&2; }

here=bench/python-baseline
venv="$here/.venv"
scripts/ensure/apt.sh wrk:wrk taskset:util-linux flock:util-linux jq:jq

# ---- the Python environment (idempotent; no lock needed) ---------------------------------------------------
pinned_present() {
  [[ -x "$venv/bin/python" ]] && "$venv/bin/python" - "$here/requirements.txt" <<'PY'
import re, sys
from importlib.metadata import PackageNotFoundError, version
ok = True
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, want = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line).groups()
    try:
        ok &= version(name) == want
    except PackageNotFoundError:
        ok = False
sys.exit(0 if ok else 1)
PY
}
if ! pinned_present; then
  log "creating $venv and installing $here/requirements.txt"
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  pinned_present || { log "the venv does not match $here/requirements.txt after install"; exit 1; }
fi

work="$(mktemp -d)"
servers=(python-full python-off rust)
declare -A PID PORT R
stop_server() {
  local pid="${PID[$1]:-}"
  [[ -n "$pid" ]] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  PID[$1]=""
}
cleanup() {
  local name
  for name in "${servers[@]}"; do stop_server "$name"; done
  rm -rf "$work"
}
server_alive() {
  # A dead child stays a zombie until waited for, so kill -0 would still succeed: read its state.
  local state
  state="$(awk '$1 == "State:" {print $2}' "/proc/${PID[$1]}/status" 2>/dev/null || true)"
  if [[ -z "$state" || "$state" == Z ]]; then
    log "$1 (pid ${PID[$1]}) has died"
    exit 1
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- everything below measures or loads the CPUs: one at a time on this machine ----------------------------
exec 9>/tmp/fraudops-heavy.lock
if [[ "${FRAUDOPS_HEAVY_LOCK_HELD:-}" != 1 ]]; then
  log "waiting for /tmp/fraudops-heavy.lock (other CPU-heavy jobs finish first)"
  waited=0
  until flock -w 60 9; do
    waited=$((waited + 60))
    log "still waiting for the lock (${waited} s)"
  done
  log "lock acquired"
fi

log "cargo build --release --locked -p fraudops-cli -p fraudops-serve --bin fraudops --example open_loop"
cargo build --release --locked -p fraudops-cli -p fraudops-serve --bin fraudops --example open_loop >&2
fraudops="$(target_dir)/release/fraudops"
open_loop="$(dirname "$fraudops")/examples/open_loop"

log "training the Python model (fraudops simulate → pandas features → XGBoost)"
"$fraudops" simulate --out "$work/transactions.csv" --customers 500 --terminals 1000 --days 90 --seed 0 >&2
train_stats="$(cd "$here" && OMP_NUM_THREADS=2 .venv/bin/python train.py --data "$work/transactions.csv" --out "$work/model.json" | tail -n1)"
log "python model: $train_stats"

scripts/bench-requests.py "$work"

log "timing app.py's steps in-process on CPU 0 (micro.py)"
micro="$(cd "$here" && MODEL_PATH="$work/model.json" BASELINE_TELEMETRY=off OMP_NUM_THREADS=1 \
  taskset -c 0 .venv/bin/python micro.py "$work/single.json" | tail -n1)"
log "python steps: $micro"


# Polls URL from CPU 1 until it answers 200; prints the milliseconds since $2 (date +%s%N at spawn).
wait_ready_ms() {
  taskset -c 1 python3 - "$1" "$2" <<'PY'
import sys, time, urllib.request
url, t0 = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 120
while time.time() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                print("%.0f" % ((time.time_ns() - t0) / 1e6))
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.005)
sys.exit("not ready after 120 s: " + url)
PY
}

# wrk on server $1 for $2 s → "rps p50_ms p99_ms errors" (errors: non-2xx responses + socket errors)
run_wrk() {
  local name="$1" seconds="$2"
  taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$work/single.lua" \
    "http://127.0.0.1:${PORT[$name]}/predict" >"$work/wrk.txt"
  server_alive "$name"
  python3 - "$work/wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        sys.exit("bench-python-baseline: cannot read wrk's output:\n" + text)
    n, unit = m.groups()
    return float(n) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
# Anchored: the "+/- Stdev" column can end in "50%" or "99%" too (e.g. "63.50%").
p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1)); p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = int(non2xx.group(1)) if non2xx else 0
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if sock: errors += sum(int(g) for g in sock.groups())
if errors: print("bench-python-baseline: wrk:", non2xx.group(0) if non2xx else "", sock.group(0) if sock else "", file=sys.stderr)
print(f"{rps:.0f} {p50:.2f} {p99:.2f} {errors}")
PY
}

# open_loop on server $1 at a fixed rate $2 → "achieved_rps p50_ms p99_ms errors generator_stalled_ms_per_s"
run_open() {
  local name="$1" rps="$2"
  taskset -c 1 "$open_loop" --url "http://127.0.0.1:${PORT[$name]}/predict" --body "$work/single.json" \
    --rate "$rps" --duration "$duration" --connections "$connections" >"$work/open.json"
  server_alive "$name"
  python3 - "$work/open.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
errors = r["non_200"] + r["errors"]
if errors: print("bench-python-baseline: open_loop:", r, file=sys.stderr)
print("%.0f %.2f %.2f %d %.2f" % (r["achieved_rps"], r["p50_ms"], r["p99_ms"], errors, r["generator_stalled_ms_per_s"]))
PY
}

# Columns of a file of runs → per column the median (the last columns, counts, are summed instead) or
# "min–max"; with `range`, counts print as "-".
summarize() {
  python3 - "$1" "$2" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
out = []
for i, col in enumerate(zip(*rows)):
    v = [float(x) for x in col]
    count = i == 3  # errors are counts
    if sys.argv[2] == "median":
        m = sum(v) if count else statistics.median(v)
        out.append("%d" % m if count or i == 0 else "%.2f" % m)
    else:
        fmt = "%.0f" if i == 0 else "%.2f"
        out.append("-" if count else (fmt % min(v)) + "–" + (fmt % max(v)))
print(" ".join(out))
PY
}

status_mb() { awk -v k="$2:" '$1 == k {printf "%.1f", $2/1024}' "/proc/$1/status"; }

# Starts server $1 (rust | python-full | python-off) on a fresh port, pinned to CPU 0; sets PID[$1], PORT[$1]
# and startup_ms.
start_server() {
  local port t0
  port="$(free_port)"
  t0="$(date +%s%N)"
  case "$1" in
    rust)
      PORT="$port" BIND_ADDRESS=127.0.0.1 MAX_IN_FLIGHT=4096 RUST_LOG=info MIMALLOC_ARENA_EAGER_COMMIT=0 \
        taskset -c 0 "$fraudops" serve >/dev/null 2>&1 &
      ;;
    python-*)
      MODEL_PATH="$work/model.json" BASELINE_TELEMETRY="${1#python-}" OMP_NUM_THREADS=1 \
        taskset -c 0 "$venv/bin/uvicorn" app:app --app-dir "$here" --host 127.0.0.1 --port "$port" \
        --loop uvloop --http httptools --no-access-log --log-level warning >/dev/null 2>&1 &
      ;;
  esac
  PID[$1]=$!
  PORT[$1]="$port"
  startup_ms="$(wait_ready_ms "http://127.0.0.1:$port/ready" "$t0")"
}

# interleaved FILE TOOL DETAIL COLUMNS RUN ARG: --repeat rounds of `RUN <server> ARG` over every server in
# turn (so that slow drifts of the machine hit all alike), each result line appended to $work/<server>.FILE
# and shown on stderr as "<server>: TOOL run i/n DETAIL: COLUMNS: <line>".
interleaved() {
  local file="$1" tool="$2" detail="$3" columns="$4" run="$5" arg="$6" i name
  for ((i = 1; i <= repeat; i++)); do
    for name in "${servers[@]}"; do
      "$run" "$name" "$arg" | tee -a "$work/$name.$file" |
        sed "s|^|bench-python-baseline: $name: $tool run $i/$repeat$detail: $columns: |" >&2
    done
  done
}

# "nice_ticks busy_ticks total_ticks" of the whole machine (/proc/stat): our processes run at nice 0, so nice
# time during the load phases is someone else's (niced) work competing for the CPUs.
cpu_ticks() { awk '$1 == "cpu" {t = 0; for (i = 2; i <= NF; i++) t += $i; print $3, t - $5 - $6, t}' /proc/stat; }

# Phase 1: startups, one server at a time; the last start of each stays up (idle servers cost nothing:
# uvicorn wakes 10 times a second, ours less).
for name in "${servers[@]}"; do
  log "$name: startup (1 warm-up start + $startups measured)"
  start_server "$name"
  stop_server "$name"
  times=()
  for ((i = 0; i < startups; i++)); do
    ((i == 0)) || stop_server "$name"
    start_server "$name"
    times+=("$startup_ms")
  done
  R[$name.startup]="$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
  R[$name.startups]="${times[*]}"
  log "$name: ready in ${R[$name.startup]} ms (runs: ${times[*]})"
done
sleep 1
for name in "${servers[@]}"; do
  pid="${PID[$name]}"
  R[$name.idle_rss]="$(status_mb "$pid" VmRSS)"
  R[$name.threads]="$(awk '$1 == "Threads:" {print $2}' "/proc/$pid/status")"
  R[$name.affinity]="$(taskset -cp "$pid" | awk '{print $NF}')"
  R[$name.response]="$(curl -sf "http://127.0.0.1:${PORT[$name]}/predict" -H 'content-type: application/json' -d @"$work/single.json")"
  R[$name.model_version]="$(jq -r .model_version <<<"${R[$name.response]}")"
  log "$name: idle RSS ${R[$name.idle_rss]} MB, CPU ${R[$name.affinity]}, answer ${R[$name.response]}"
done

# Phase 2: saturation, the servers interleaved run by run so that slow drifts of the machine hit all alike.
read -r nice0 busy0 total0 < <(cpu_ticks)
for name in "${servers[@]}"; do
  log "$name: warm-up (2 s)"
  run_wrk "$name" 2 >/dev/null
done
interleaved sat wrk ", ${duration} s" "req/s p50 p99 errors" run_wrk "$duration"
for name in "${servers[@]}"; do
  read -r "R[$name.sat_rps]" "R[$name.sat_p50]" "R[$name.sat_p99]" "R[$name.sat_err]" < <(summarize "$work/$name.sat" median)
  read -r "R[$name.sat_rps_range]" _ "R[$name.sat_p99_range]" _ < <(summarize "$work/$name.sat" range)
done

# Phase 3: latency at one fixed rate for all: half the Python server's saturation unless --rate was given.
[[ -n "$rate" ]] || rate=$((${R[python-full.sat_rps]} / 2))
interleaved open open_loop " at $rate req/s" "req/s p50 p99 errors generator-stalled-ms/s" run_open "$rate"
read -r nice1 busy1 total1 < <(cpu_ticks)
for name in "${servers[@]}"; do
  read -r "R[$name.open_rps]" "R[$name.open_p50]" "R[$name.open_p99]" "R[$name.open_err]" _ < <(summarize "$work/$name.open" median)
  read -r _ "R[$name.open_p50_range]" "R[$name.open_p99_range]" _ _ < <(summarize "$work/$name.open" range)
  R[$name.peak_rss]="$(status_mb "${PID[$name]}" VmHWM)"
  log "$name: peak RSS ${R[$name.peak_rss]} MB"
  stop_server "$name"
done
niced_share="$(python3 -c "print(f'{($nice1 - $nice0) / max(1, $total1 - $total0) * 100:.1f}')")"
busy_share="$(python3 -c "print(f'{($busy1 - $busy0) / max(1, $total1 - $total0) * 100:.0f}')")"
log "during the load phases: both CPUs ${busy_share}% busy, ${niced_share}% of the CPU time went to niced (other) processes"
flock -u 9
exec 9>&-
log "measurements done, lock released"

# ---- report --------------------------------------------------------------------------------------------------
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.1f}×' if b else '–')" "$1" "$2"; }
py() { "$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))"; }
commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates Cargo.toml Cargo.lock models 2>/dev/null || echo '+local changes')"
rust_trees="$(python3 -c '
import json, sys
d = json.load(open("models/default/model.json"))
t = d["ensemble"]["trees"]
print(d["model_version"], len(t), sum(len(x["split_feature"]) for x in t))')"
read -r embedded_version rust_ntrees rust_nodes <<<"$rust_trees"
[[ "$embedded_version" == "${R[rust.model_version]}" ]] || rust_nodes="? (models/default is ${embedded_version})"
py_trees="$(jq -r '"\(.trees) \(.nodes) \(.test_roc_auc) \(.rows)"' <<<"$train_stats")"
read -r py_ntrees py_nodes py_auc py_rows <<<"$py_trees"
cpu="$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
mem_gb="$(awk '/MemTotal/ {printf "%.0f", $2/1048576}' /proc/meminfo)"

# What Python could reach with a free model: the rest of its request path alone (noisy: an estimate).
python_bound="$(python3 - "${R[python-off.sat_rps]}" "$(jq -r .predict_proba_us <<<"$micro")" "${R[rust.sat_rps]}" <<'PY'
import sys
py_rps, proba_us, rust_rps = map(float, sys.argv[1:])
rest_us = 1e6 / py_rps - proba_us
if rest_us > 0:
    bound = 1e6 / rest_us
    print(f"Bound: with a model that cost nothing, the rest of the Python path (≈ {rest_us:.0f} µs a request without "
          f"telemetry) would still cap one worker near {bound:.0f} req/s, {rust_rps / bound:.1f}× below ours (an estimate "
          f"from the in-process timing above).")
PY
)"

mkdir -p reports
{
  echo "# \`fraudops serve\` vs a Python FastAPI + XGBoost service, per core"
  echo
  echo "\`scripts/bench-python-baseline.sh --duration $duration --connections $connections --repeat $repeat --startups $startups\` — $(date -u +%Y-%m-%dT%H:%MZ), fraudops $commit."
  echo "Every server alone on CPU 0 (taskset), wrk/open_loop on CPU 1, $connections connections, ${duration} s per run, the body of scripts/bench-requests.py, as scripts/bench-serve.sh sends it (one transaction with precomputed history). Each load number is the median of $repeat runs (ranges below)."
  echo
  echo "| \`POST /predict\`, 1 core | fraudops serve (Rust) | Python, telemetry like ours | Python, no logs/metrics | Rust ÷ Python (like ours) |"
  echo "|---|---:|---:|---:|---:|"
  echo "| saturation, requests/s (wrk) | ${R[rust.sat_rps]} | ${R[python-full.sat_rps]} | ${R[python-off.sat_rps]} | $(ratio "${R[rust.sat_rps]}" "${R[python-full.sat_rps]}") |"
  echo "| at saturation: p50 / p99 ms | ${R[rust.sat_p50]} / ${R[rust.sat_p99]} | ${R[python-full.sat_p50]} / ${R[python-full.sat_p99]} | ${R[python-off.sat_p50]} / ${R[python-off.sat_p99]} | |"
  echo "| fixed $rate req/s (open_loop, open model): achieved | ${R[rust.open_rps]} | ${R[python-full.open_rps]} | ${R[python-off.open_rps]} | |"
  echo "| fixed $rate req/s: p50 ms | ${R[rust.open_p50]} | ${R[python-full.open_p50]} | ${R[python-off.open_p50]} | $(ratio "${R[python-full.open_p50]}" "${R[rust.open_p50]}") lower |"
  echo "| fixed $rate req/s: p99 ms | ${R[rust.open_p99]} | ${R[python-full.open_p99]} | ${R[python-off.open_p99]} | $(ratio "${R[python-full.open_p99]}" "${R[rust.open_p99]}") lower |"
  echo "| idle RSS MB (VmRSS after ready) | ${R[rust.idle_rss]} | ${R[python-full.idle_rss]} | ${R[python-off.idle_rss]} | $(ratio "${R[python-full.idle_rss]}" "${R[rust.idle_rss]}") less |"
  echo "| peak RSS MB (VmHWM after load) | ${R[rust.peak_rss]} | ${R[python-full.peak_rss]} | ${R[python-off.peak_rss]} | $(ratio "${R[python-full.peak_rss]}" "${R[rust.peak_rss]}") less |"
  echo "| startup to first 200 on /ready, ms (median) | ${R[rust.startup]} | ${R[python-full.startup]} | ${R[python-off.startup]} | $(ratio "${R[python-full.startup]}" "${R[rust.startup]}") faster |"
  echo "| failed requests (non-200, socket errors, wrk timeouts > 2 s), saturation / fixed rate, all runs | ${R[rust.sat_err]} / ${R[rust.open_err]} | ${R[python-full.sat_err]} / ${R[python-full.open_err]} | ${R[python-off.sat_err]} / ${R[python-off.open_err]} | |"
  echo
  echo "Ranges over the $repeat runs — saturation req/s: Rust ${R[rust.sat_rps_range]}, Python (like ours) ${R[python-full.sat_rps_range]}, Python (no telemetry) ${R[python-off.sat_rps_range]}; saturation p99 ms: ${R[rust.sat_p99_range]} / ${R[python-full.sat_p99_range]} / ${R[python-off.sat_p99_range]}; fixed-rate p50 ms: ${R[rust.open_p50_range]} / ${R[python-full.open_p50_range]} / ${R[python-off.open_p50_range]}; fixed-rate p99 ms: ${R[rust.open_p99_range]} / ${R[python-full.open_p99_range]} / ${R[python-off.open_p99_range]}."
  echo
  echo "Startup runs (ms): Rust ${R[rust.startups]}; Python (like ours) ${R[python-full.startups]}; Python (no telemetry) ${R[python-off.startups]}. Threads after startup: Rust ${R[rust.threads]}, Python ${R[python-full.threads]}; CPU affinity: ${R[rust.affinity]} / ${R[python-full.affinity]} / ${R[python-off.affinity]}."
  echo
  echo "Where a Python request's time goes (bench/python-baseline/micro.py, the steps of app.py alone on CPU 0, µs per call): $(jq -r '"pydantic validate_json \(.validate_json_us), features \(.feature_row_us), XGBClassifier.predict_proba \(.predict_proba_us) (Booster.inplace_predict alone \(.booster_inplace_predict_us))"' <<<"$micro"); the rest of the $(python3 -c "print(round(1e6 / float('${R[python-off.sat_rps]}')))") µs per request at saturation (no telemetry) is uvicorn, Starlette/FastAPI and the response."
  echo
  echo "## What runs"
  echo
  echo "- **fraudops serve**: \`cargo build --release --locked -p fraudops-cli\`; \`PORT=… BIND_ADDRESS=127.0.0.1 MAX_IN_FLIGHT=4096 RUST_LOG=info MIMALLOC_ARENA_EAGER_COMMIT=0 taskset -c 0 fraudops serve\` (logs to /dev/null), as in scripts/bench-serve.sh; the embedded model ${R[rust.model_version]} (forust-ml, $rust_ntrees trees, depth 5, $rust_nodes nodes). Per request: validation, 20 features, scoring, Prometheus metrics, a JSON \`prediction_made\` log line."
  echo "- **Python**: \`MODEL_PATH=… OMP_NUM_THREADS=1 taskset -c 0 uvicorn app:app --loop uvloop --http httptools --no-access-log\` (one worker process), bench/python-baseline/app.py: a pydantic v2 request model with the same fields and ranges, the same 20 features per request (features.py), \`XGBClassifier.predict_proba\` on one float32 row, the same response fields; an \`async def\` endpoint. *Telemetry like ours*: prometheus_client metrics through a pure ASGI middleware plus the model metrics, and a JSON \`prediction_made\` log line to stdout (/dev/null). *No logs/metrics*: neither. Model ${R[python-full.model_version]}: XGBoost \`hist\`, $py_ntrees trees, depth 5, $py_nodes nodes (learning rate 0.05, subsample 0.8, λ 1, seed 42), trained by bench/python-baseline/train.py on \`fraudops simulate --customers 500 --terminals 1000 --days 90 --seed 0\` ($py_rows transactions) with the handbook's pandas rolling-window features; hold-out ROC AUC $py_auc (sanity check only)."
  echo
  echo "## Versions and machine"
  echo
  echo "- machine: $cpu, $(nproc) CPUs, ${mem_gb} GiB RAM, Linux $(uname -r)"
  echo "- Rust: $(rustc --version), $("$fraudops" --version 2>/dev/null || echo fraudops)"
  echo "- Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'): fastapi $(py fastapi), starlette $(py starlette), pydantic $(py pydantic) (pydantic-core $(py pydantic-core)), uvicorn $(py uvicorn), uvloop $(py uvloop), httptools $(py httptools), xgboost-cpu $(py xgboost-cpu), numpy $(py numpy), scikit-learn $(py scikit-learn), prometheus-client $(py prometheus-client), pandas $(py pandas) (training only); all pins in bench/python-baseline/requirements.txt"
  echo "- load: $(wrk --version 2>&1 | head -n1 | awk '{print $1, $2}'), open_loop (crates/fraudops-serve/examples/open_loop.rs)"
  echo
  echo "## Caveats"
  echo
  echo "- Per core, not per machine: Python is usually deployed as one uvicorn/gunicorn worker per core, ours as one process using every core; both scale roughly with cores, so the per-core ratio is the comparison that carries over. Each extra Python worker also costs its own RSS (the model and libraries are per process); ours shares one."
  echo "- The two models are not the same trees: ours is the embedded model (trained on the reference-scale simulation), Python's is trained on a small simulation; both are 200 trees of depth ≤ 5 with a similar node count. For one row XGBoost's cost is mostly per-call overhead, not tree walking (even \`Booster.inplace_predict\`, which skips the DMatrix, is in the hundreds of µs), and it is the largest single part of a Python request: that is the price of the usual Python model library. $python_bound"
  echo "- Validation is equivalent, not identical: pydantic is laxer in places (e.g. a numeric string is accepted as an amount, an integer as a timestamp), error bodies mimic ours ({error, field}) but their messages differ; \`processing_time_ms\` in Python covers the endpoint only (ours: from the first byte read)."
  echo "- Python is given the usual tunings: uvloop + httptools, \`async def\` endpoint (no thread-pool hop), no uvicorn access log, a pure ASGI metrics middleware (not BaseHTTPMiddleware), numpy instead of a pandas DataFrame for the one row, xgboost-cpu with one OpenMP thread. Not tried: orjson/ORJSONResponse, gunicorn, PyPy, \`gc.freeze()\`."
  echo "- All three servers stay up on CPU 0 for the whole load phase; only the one under test gets requests (an idle uvicorn wakes 10 times a second, ours less).
- Startup is warm (one unmeasured start first: page cache filled, .pyc compiled); a cold start of the Python image is slower. Our startup includes parsing and checking the embedded model; Python's includes importing FastAPI, XGBoost (and scikit-learn) and loading the model."
  echo "- A shared 2-core VM: the lock keeps other benchmarks off it, not every background process (during the load phases both CPUs were ${busy_share}% busy and ${niced_share}% of all CPU time went to niced processes, e.g. someone's cargo build; any non-niced stranger is not counted). The servers are interleaved run by run, so slow drifts affect all of them alike; differences of a few percent are noise. Python's p99 varies much more between runs than its p50 (garbage collection, event-loop scheduling): read its p99 with the range."
} >"$work/report.md"
cp "$work/report.md" reports/bench-python-baseline.md
sed -n '/^| `POST/,/^$/p' "$work/report.md"
log "written reports/bench-python-baseline.md"
