#!/usr/bin/env bash
# The transaction lake's CI stage: the readers and the S3 path (scripts/test-lake-readers.sh), then training from
# the lake equals training from the file (scripts/eval-lake.sh on a small simulated file, the test build; the
# reference-scale run is `scripts/eval-lake.sh --data data/transactions.csv.gz`, a few minutes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # target_dir
scripts/test-lake-readers.sh
cargo build --locked -q -p fraudops-cli --bin fraudops
data="$(mktemp -d "${TMPDIR:-/tmp}/fraudops-eval-lake-data.XXXXXX")"
trap 'rm -rf "$data" "${lake:-}"' EXIT
"$(target_dir)/debug/fraudops" simulate --out "$data/world.csv.gz" --customers 500 --terminals 1000 --days 60 \
  --start-date 2018-04-01 --seed 9 >/dev/null
last="$(scripts/eval-lake.sh --data "$data/world.csv.gz" --train-start 2018-05-10 --release 0 | tail -n1)"
lake="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["lake_path"])' "$last")"
python3 - "$last" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert r["lake"]["rows"] == r["file"]["rows"] > 0, r
assert all(abs(r["lake"][k] - r["file"][k]) <= 1e-9 for k in ("roc_auc", "average_precision", "card_precision_at_100")), r
assert any(p.startswith("transaction") for p in __import__("os").listdir(r["lake_path"])), r
print(f"ok   [eval-lake] lake and file agree on {r['lake']['rows']} rows: {json.dumps(r['lake'])}")
PY
