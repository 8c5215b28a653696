# Shell helpers that the benchmark, test and installer scripts share. Source it (`source
# scripts/lib/common.sh` from the repository root); it defines functions only and runs nothing.

# A free TCP port on 127.0.0.1, chosen by the kernel (another process could still take it before the
# caller binds it; the scripts bind right away).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A free port for a Redis Cluster node: its bus listens on port + 10000, so at most 55535 (the kernel's
# ephemeral range reaches 60999, and a node given a higher port exits at once).
free_cluster_port() {
  local port
  while port="$(free_port)"; ((port > 55535)); do :; done
  echo "$port"
}

# The median of its arguments (numbers): the middle one, or the mean of the two middle ones.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# Cargo's target directory of this workspace.
target_dir() { cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])'; }

# parse_options NAME... -- ARG...: each `--NAME VALUE` in the ARGs sets the variable NAME (a dash in NAME
# is an underscore in the variable); anything else stops the script with exit status 2.
parse_options() {
  local names=() name n
  while [[ "$1" != -- ]]; do names+=("$1"); shift; done
  shift
  while (($#)); do
    name=""
    for n in "${names[@]}"; do [[ "$1" == "--$n" ]] && name="$n"; done
    [[ -n "$name" ]] || { echo "unknown option $1" >&2; exit 2; }
    (($# >= 2)) || { echo "option $1 needs a value" >&2; exit 2; }
    printf -v "${name//-/_}" '%s' "$2"
    shift 2
  done
}

# Sets `work` to a new scratch directory and `pids` to an empty list (the caller adds the background
# processes it starts); on exit those processes are killed and waited for and the directory removed.
scratch_with_children() {
  work="$(mktemp -d)"
  pids=()
  trap 'stop_children; rm -rf "$work"' EXIT
}
stop_children() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}

# For the real-component suites: sets TMP to a new scratch directory (named after NAME) and `pids` to an empty
# list of process-group leaders (start_group adds them); on exit each group gets SIGTERM and up to 10 s to go,
# then SIGKILL, and the directory is removed.
scratch_with_groups() {
  TMP="$(mktemp -d "${TMPDIR:-/tmp}/fraudops-$1.XXXXXX")"
  pids=()
  trap stop_groups EXIT
}
stop_groups() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}

# start_group LOG CMD...: CMD in its own process group, with cwd $TMP (so the repository's .env stays out of its
# configuration) and its output in $TMP/LOG; its PID joins `pids`, so scratch_with_groups stops it on exit.
start_group() {
  local log="$1"
  shift
  (cd "$TMP" && exec setsid "$@") >"$TMP/$log" 2>&1 &
  pids+=($!)
}

# start_tansu LOG PORT: the Kafka-protocol broker $TANSU_BIN, in memory, on 127.0.0.1:PORT (start_group), waited for
# until it accepts connections.
start_tansu() {
  start_group "$1" "$TANSU_BIN" broker --storage-engine memory://tansu/ \
    --listener-url "tcp://127.0.0.1:$2" --advertised-listener-url "tcp://127.0.0.1:$2"
  wait_until "tansu on port $2" 150 bash -c "exec 3<>/dev/tcp/127.0.0.1/$2"
}

# wait_until WHAT TRIES CMD...: polls CMD every 0.2 s, at most TRIES times; on failure names WHAT and shows the
# tail of the logs in $TMP (or of the files WAIT_LOGS names).
wait_until() {
  local what="$1" tries="$2" _
  shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "FAIL: $what" >&2
  # shellcheck disable=SC2086 # WAIT_LOGS is a list of globs
  tail -n 30 ${WAIT_LOGS:-"$TMP"/*.log} >&2
  return 1
}

# require_suite WHAT SKIP_PATTERN WHY CMD...: runs CMD (one `cargo test` suite), its output shown, and fails
# (status 1) if it fails, if its output matches SKIP_PATTERN (it skipped tests although WHY), or if no test
# passed: where the tools are installed, a skip or an empty run is a failure.
require_suite() {
  local what="$1" skipped="$2" why="$3" log status=0
  shift 3
  log="$(mktemp "${TMPDIR:-/tmp}/fraudops-suite.XXXXXX")"
  if ! "$@" 2>&1 | tee "$log"; then
    echo "FAIL: $what" >&2
    status=1
  elif grep -q "$skipped" "$log"; then
    echo "FAIL: $what skipped tests although $why" >&2
    status=1
  elif ! grep -Eq '^test result: ok\. [1-9][0-9]* passed' "$log"; then
    echo "FAIL: $what ran no test" >&2
    status=1
  fi
  rm -f "$log"
  return "$status"
}

# venv_create NAME DIR [PYTHON]: the Python virtualenv DIR, created with PYTHON (default python3) unless it
# exists; NAME starts what it says on stderr.
venv_create() {
  [[ -x "$2/bin/python" ]] && return 0
  echo "$1: creating virtualenv at $2" >&2
  "${3:-python3}" -m venv "$2"
}

# venv_require NAME DIR REQUIREMENT...: installs the pinned REQUIREMENTs (`pkg==version`) into the virtualenv DIR
# unless `pip freeze` already lists every one of them; NAME starts what it says on stderr.
venv_require() {
  local name="$1" dir="$2" frozen r
  shift 2
  frozen="$("$dir/bin/python" -m pip freeze 2>/dev/null || true)"
  for r in "$@"; do
    if ! grep -qx "$r" <<<"$frozen"; then
      echo "$name: installing $*" >&2
      venv_pip "$dir" "$@"
      return
    fi
  done
}

# venv_pip DIR ARG...: `pip install ARG...` in the virtualenv DIR, quietly, anything it says on stderr.
venv_pip() {
  local dir="$1"
  shift
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2
}
