#!/usr/bin/env bash
# The model path's speed in one table: simulator rows/s, feature rows/s, training seconds on the default
# window, single-row predict latency and batch predict throughput. README.md quotes its output.
#
#   scripts/bench-model.sh           criterion in --quick mode (a few minutes on 2 cores)
#   scripts/bench-model.sh --full    criterion's normal sampling (slower, tighter intervals)
#
# The numbers come from criterion's own estimates (target/criterion/<group>/<bench>/new/*.json): the mean
# time per iteration, and the element count each bench declares as its throughput.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode=(--quick)
[[ "${1:-}" == "--full" ]] && mode=()

target_dir=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
crit="$target_dir/criterion"

# package, bench target, criterion filter
runs=(
  "fraudops-data simulator ^data/generate$"
  "fraudops-features features ^features/batch$"
  "fraudops-train train ^train/default_window$"
  "fraudops-model predict ^predict/"
)
for run in "${runs[@]}"; do
  read -r package bench filter <<<"$run"
  echo "=== cargo bench -p $package --bench $bench -- ${mode[*]} $filter" >&2
  cargo bench --locked -p "$package" --bench "$bench" -- "${mode[@]}" "$filter" >&2
done

# mean nanoseconds per iteration, and elements per iteration, of a group/bench
mean_ns() { jq -r '.mean.point_estimate' "$crit/$1/new/estimates.json"; }
elements() { jq -r '.throughput.Elements // 1' "$crit/$1/new/benchmark.json"; }
rows_per_s() { awk -v n="$(elements "$1")" -v ns="$(mean_ns "$1")" 'BEGIN { printf "%.3g rows/s", n / ns * 1e9 }'; }

echo
printf '| %-40s | %-20s | %s\n' "measure" "value" "criterion bench"
printf '|%s|%s|%s\n' "------------------------------------------" "----------------------" "-----------------"
printf '| %-40s | %-20s | %s\n' "simulator throughput" "$(rows_per_s data/generate)" "data/generate"
printf '| %-40s | %-20s | %s\n' "feature throughput (batch)" "$(rows_per_s features/batch)" "features/batch"
printf '| %-40s | %-20s | %s\n' "training, default window (fit + eval)" \
  "$(awk -v ns="$(mean_ns train/default_window)" 'BEGIN { printf "%.2f s", ns / 1e9 }')" "train/default_window"
printf '| %-40s | %-20s | %s\n' "predict, single row (embedded model)" \
  "$(awk -v ns="$(mean_ns predict/single_row)" 'BEGIN { printf "%.0f ns", ns }')" "predict/single_row"
printf '| %-40s | %-20s | %s\n' "predict_batch, 10k rows (embedded model)" "$(rows_per_s predict/batch_10k)" "predict/batch_10k"
