#!/usr/bin/env bash
# Property-based API testing with schemathesis against the live /openapi.json of a real `fraudops serve`:
# valid and invalid requests generated from the schema; fails on any 5xx or any response that violates
# the documented schema (status codes, content types, bodies, headers).
#
#   scripts/test-schemathesis.sh [MAX_EXAMPLES]     (default 150 per operation)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # target_dir
max_examples="${1:-150}"
bin_dir="$(scripts/ensure/tools-venv.sh | tail -n1)"
cargo build --quiet --locked -p fraudops-cli
fraudops="$(target_dir)/debug/fraudops"

log="$(mktemp)"
PORT=0 BIND_ADDRESS=127.0.0.1 REPLICA_ID=schemathesis "$fraudops" serve >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"' EXIT
addr=""
for _ in $(seq 200); do
  addr="$(grep -o '"event":"server_started","addr":"[^"]*"' "$log" | sed 's/.*"addr":"//; s/"$//' || true)"
  [[ -z "$addr" ]] && addr="$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: e=json.loads(l)
    except ValueError: continue
    if e.get("event")=="server_started": print(e["addr"]); break' "$log")"
  [[ -n "$addr" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "serve exited" >&2; exit 1; }
  sleep 0.05
done
[[ -n "$addr" ]] || { echo "serve did not start" >&2; exit 1; }
echo "schemathesis: fraudops serve at $addr (pid $pid), $max_examples examples per operation"

# One worker: with two, Hypothesis describes strategies (ast.parse of lambda sources) from two threads at
# once, and CPython 3.11's parser is not thread-safe there ("SystemError: AST constructor recursion depth
# mismatch", a KeyError in Hypothesis' source cache): a flaky runtime error that fails the suite while
# every API check passes. Seen once in CI and once in three runs on one throttled core.
"$bin_dir/schemathesis" run "http://$addr/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --max-examples "$max_examples" --seed 42 --workers 1 --suppress-health-check too_slow,data_too_large \
  --warnings off
