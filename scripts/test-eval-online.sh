#!/usr/bin/env bash
# The online evaluation on a small simulated file (300 cards, 600 terminals, 56 days ending with SPEC §3.3's
# default test week): direct /predict calls without history, scored through the feature store while labels
# flow through fraud-labels, must match the model offline (scripts/eval-online.sh --check 1; in practice
# bit for bit). About 40 s on a warm machine. The full-size run is in README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh
cargo build --locked -p fraudops-cli --bin fraudops >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$(target_dir)/debug/fraudops" simulate --out "$work/small.csv" --customers 300 --terminals 600 --days 56 \
  --start-date 2018-06-20 --seed 7 >&2
scripts/eval-online.sh --data "$work/small.csv" --check 1
