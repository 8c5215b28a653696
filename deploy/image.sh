#!/usr/bin/env bash
# Builds the fraudops container image for real and smoke-tests it.
#
#   deploy/image.sh            static musl binary → image (Dockerfile, `prebuilt` mode) → tags
#                              fraudops:<version> and fraudops:dev → smoke test from the image
#   deploy/image.sh --bench    also: wrk on one core, serve from the image vs the host (glibc) build
#
# The engine is docker when a daemon answers, otherwise buildah (--storage-driver vfs, --isolation chroot:
# no daemon, works as root in a sandbox). FROM scratch needs no registry. Installs what it needs (apt,
# rustup target) when missing; removes every container it made, on exit or Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # free_port, median
BENCH=0
[[ "${1:-}" == "--bench" ]] && BENCH=1

TARGET=x86_64-unknown-linux-musl
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | awk 'NR == 1')"
REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
say() { echo "image: $*" >&2; }
trap 'say "failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

scripts/ensure/apt.sh musl-gcc:musl-tools curl:curl
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
if docker info >/dev/null 2>&1; then
  ENGINE=(docker)
  RUN_ENGINE=docker
else
  scripts/ensure/apt.sh buildah:buildah
  ENGINE=(buildah --storage-driver vfs)
  RUN_ENGINE=buildah
fi

say "building the static binary ($TARGET)"
# CC for the C parts (librdkafka, zlib): musl's gcc wrapper.
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --profile dist --locked --target "$TARGET" -p fraudops-cli
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
binary="$target_dir/$TARGET/dist/fraudops"
file "$binary" 2>/dev/null | grep -q 'statically linked\|static-pie' || { say "$binary is not static"; exit 1; }
# The Dockerfile's `prebuilt` stage takes both files from ./target in the build context; with
# CARGO_TARGET_DIR elsewhere (CI keeps one machine-wide), the binary is staged there first.
context_binary="target/$TARGET/dist/fraudops"
if [[ "$(realpath "$binary")" != "$(realpath -m "$context_binary")" ]]; then
  mkdir -p "$(dirname "$context_binary")"
  cp "$binary" "$context_binary"
fi
cp /etc/ssl/certs/ca-certificates.crt target/ca-certificates.crt

say "building the image fraudops:$VERSION (engine: $RUN_ENGINE)"
if [[ $RUN_ENGINE == buildah ]]; then
  "${ENGINE[@]}" bud --isolation chroot --layers=false --build-arg BINARY_SOURCE=prebuilt \
    --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
    -t "fraudops:$VERSION" -t fraudops:dev -f Dockerfile . >&2
  # buildah 1.28 leaves the `binary` stage's working container behind; remove it, then the untagged
  # images (that stage and the previous build).
  for c in $(buildah --storage-driver vfs containers --format '{{.ContainerName}}' | grep -- '-working-container$' || true); do
    buildah --storage-driver vfs rm "$c" >/dev/null
  done
  buildah --storage-driver vfs rmi --prune >/dev/null 2>&1 || true
else
  docker build --build-arg BINARY_SOURCE=prebuilt --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
    -t "fraudops:$VERSION" -t fraudops:dev -f Dockerfile . >&2
fi

containers=() pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  for c in "${containers[@]}"; do
    if [[ $RUN_ENGINE == buildah ]]; then buildah --storage-driver vfs rm "$c" >/dev/null 2>&1 || true
    else docker rm -f "$c" >/dev/null 2>&1 || true; fi
  done
}
trap cleanup EXIT INT TERM

wait_ready() { for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$1/ready" && return 0; sleep 0.05; done; return 1; }

# Runs `fraudops ARGS...` from the image on the host network; prints its PID (of the engine's process).
start_in_image() {
  local name="fraudops-smoke-$$-$RANDOM"
  if [[ $RUN_ENGINE == buildah ]]; then
    "${ENGINE[@]}" from --name "$name" fraudops:dev >/dev/null
    containers+=("$name")
    "${ENGINE[@]}" run --isolation chroot --network host "$@" "$name" -- /usr/local/bin/fraudops "${FRAUDOPS_ARGS[@]}" \
      >"$LOG" 2>&1 &
  else
    containers+=("$name")
    docker run --rm --name "$name" --network host --read-only --tmpfs /tmp "$@" fraudops:dev "${FRAUDOPS_ARGS[@]}" >"$LOG" 2>&1 &
  fi
  pids+=($!)
}
run_in_image() {
  local name="fraudops-cmd-$$-$RANDOM"
  if [[ $RUN_ENGINE == buildah ]]; then
    "${ENGINE[@]}" from --name "$name" fraudops:dev >/dev/null
    containers+=("$name")
    "${ENGINE[@]}" run --isolation chroot --network host "$name" -- /usr/local/bin/fraudops "$@"
  else
    docker run --rm --network host fraudops:dev "$@"
  fi
}

say "smoke test"
LOG="$(mktemp)"
# Every failed check names itself, shows what the server answered and the server's own log: a silent
# `set -e` exit here once cost a CI run with nothing to go on.
smoke_fail() { say "smoke test failed: $*"; say "server log:"; cat "$LOG" >&2; exit 1; }
# GET/POST the path; prints "<status> <body>" (curl's status 000 when nothing answered).
http() { curl -s -o /dev/stdout -w ' %{http_code}' --max-time 10 "$@" 2>&1 || true; }
expect() { # expect NAME STATUS NEEDLE RESPONSE
  local answer="$4" code="${4##* }"
  [[ "$code" == "$2" && "$answer" == *"$3"* ]] || smoke_fail "$1: expected HTTP $2 with $3, got: $answer"
}
port="$(free_port)"
FRAUDOPS_ARGS=(serve --bind 127.0.0.1 --port "$port")
start_in_image --env REPLICA_ID=image-smoke
wait_ready "$port" || smoke_fail "serve from the image never became ready on port $port"
expect "GET /health" 200 '"status":"ok"' "$(http "http://127.0.0.1:$port/health")"
expect "GET /ready" 200 '"status":"ok"' "$(http "http://127.0.0.1:$port/ready")"
prediction="$(http "http://127.0.0.1:$port/predict" -H 'content-type: application/json' \
  -d '{"transaction_id": "smoke-1", "amount": 129.9, "customer_id": 42, "terminal_id": 3107}')"
expect "POST /predict" 200 '"transaction_id":"smoke-1"' "$prediction"
expect "POST /predict (replica id from the environment)" 200 '"replica_id":"image-smoke"' "$prediction"
for cmd in train stream attack simulate archive lake; do
  run_in_image "$cmd" --help >/dev/null || { say "$cmd --help failed in the image"; exit 1; }
done
if [[ $RUN_ENGINE == buildah ]]; then
  user="$(buildah --storage-driver vfs inspect --type image --format '{{.OCIv1.Config.User}}' fraudops:dev)"
  # awk reads to the end: `head -n1` exits after one line, and buildah, still writing the next, dies of
  # SIGPIPE (exit 141 under pipefail) whenever more than one image matches, as on a machine with older builds.
  size="$(buildah --storage-driver vfs images --format '{{.Size}}' --filter reference=fraudops:dev | awk 'NR == 1')"
else
  user="$(docker image inspect --format '{{.Config.User}}' fraudops:dev)"
  size="$(docker image inspect --format '{{.Size}}' fraudops:dev) bytes"
fi
[[ "$user" == "65532:65532" ]] || { say "image user is '$user', expected 65532:65532"; exit 1; }
say "ok: /health, /ready, /predict answered from the image; train/stream/attack/simulate/archive/lake --help work; user $user"
echo "image fraudops:$VERSION (also fraudops:dev): ${size}, binary $(du -m "$binary" | cut -f1) MB"

if ((BENCH)); then
  # Both servers run at once on CPU 0 and wrk (CPU 1) loads one at a time, alternating for 3 rounds:
  # this machine's speed drifts by tens of percent between minutes, so one run each would compare
  # minutes, not builds. Medians shown; the ratio is the median of the per-round ratios.
  scripts/ensure/apt.sh wrk:wrk
  lua="$(mktemp)"
  printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n' \
    "'{\"transaction_id\": \"b\", \"amount\": 129.9, \"customer_id\": 42, \"terminal_id\": 3107}'" >"$lua"
  rps() { taskset -c 1 wrk -t1 -c64 -d10s -s "$lua" "http://127.0.0.1:$1/predict" | awk '/Requests\/sec/ {print int($2)}'; }
  cargo build --release --locked -p fraudops-cli >&2
  host_port="$(free_port)"
  PORT="$host_port" BIND_ADDRESS=127.0.0.1 taskset -c 0 "$target_dir/release/fraudops" serve >/dev/null 2>&1 &
  pids+=($!)
  wait_ready "$host_port"
  img_port="$(free_port)"
  FRAUDOPS_ARGS=(serve --bind 127.0.0.1 --port "$img_port")
  LOG=/dev/null
  start_in_image
  wait_ready "$img_port"
  # Pin the server (not the engine) to CPU 0, as the host run.
  for p in $(pgrep -f "fraudops serve --bind 127.0.0.1 --port $img_port"); do taskset -pc 0 "$p" >/dev/null; done
  host_runs=(); img_runs=(); ratios=()
  for round in 1 2 3; do
    host_runs+=("$(rps "$host_port")")
    img_runs+=("$(rps "$img_port")")
    ratios+=("$(python3 -c "print(f'{${img_runs[-1]} / ${host_runs[-1]} * 100:.0f}')")")
    say "bench round $round: host ${host_runs[-1]} req/s, image ${img_runs[-1]} req/s (${ratios[-1]}%)"
  done
  echo "| build | POST /predict requests/s (1 core, wrk -c64 10 s, median of 3 alternating rounds) |"
  echo "|---|---:|"
  echo "| host (glibc, target/release) | $(median "${host_runs[@]}") |"
  echo "| image (musl static + mimalloc) | $(median "${img_runs[@]}") ($(median "${ratios[@]}")% of host; rounds ${ratios[*]}%) |"
fi
