#!/usr/bin/env bash
# The online evaluation on a small simulated file (300 cards, 600 terminals, 56 days ending with SPEC §3.3's
# default test week): direct /predict calls without history, scored through the feature store while labels
# flow through fraud-labels, must match the model offline bit for bit (scripts/eval-online.sh --check 1: no
# differing score), twice: on one redis-server, and on a real 3-shard Redis Cluster (redis-server
# --cluster-enabled yes x3, redis-cli --cluster create) given as --feature-store redis://…,redis://…,redis://….
# About 1.5 min on a warm machine. The full-size run is in README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh
scripts/ensure/apt.sh redis-server:redis-server redis-cli:redis-tools
cargo build --locked -p fraudops-cli --bin fraudops >&2
scratch_with_children
"$(target_dir)/debug/fraudops" simulate --out "$work/small.csv" --customers 300 --terminals 600 --days 56 \
  --start-date 2018-06-20 --seed 7 >&2
echo "--- one redis-server" >&2
scripts/eval-online.sh --data "$work/small.csv" --check 1 | tee "$work/single.txt"

echo "--- a 3-shard Redis Cluster" >&2
nodes=()
for shard in 1 2 3; do
  port="$(free_cluster_port)"
  mkdir -p "$work/shard$shard"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$work/shard$shard" --save "" --appendonly no \
    --cluster-enabled yes --cluster-config-file nodes.conf >"$work/shard$shard.log" 2>&1 &
  pids+=($!)
  nodes+=("127.0.0.1:$port")
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$work/cluster-create.log"
for node in "${nodes[@]}"; do
  for _ in $(seq 300); do
    redis-cli -h "${node%:*}" -p "${node#*:}" cluster info | grep -q cluster_state:ok && break
    sleep 0.1
  done
done
urls="$(printf 'redis://%s,' "${nodes[@]}")"
scripts/eval-online.sh --data "$work/small.csv" --check 1 --feature-store "${urls%,}" | tee "$work/cluster.txt"
# Keys on every shard, and the same scores as on one primary: the same last-line metrics, every call made.
python3 - "$work/single.txt" "$work/cluster.txt" <<'PY'
import json, sys
single, cluster = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:])
assert single == cluster, (single, cluster)
assert cluster["events"] > 0 and cluster["differing"] == 0, cluster
print(f'test-eval-online: the cluster scored like one primary: {cluster["events"]} direct calls, 0 differing', file=sys.stderr)
PY
for node in "${nodes[@]}"; do
  keys="$(redis-cli -h "${node%:*}" -p "${node#*:}" dbsize)"
  echo "test-eval-online: $node holds $keys keys" >&2
  ((keys > 0)) || { echo "FAIL: shard $node holds no key" >&2; exit 1; }
done
