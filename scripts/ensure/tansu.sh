#!/usr/bin/env bash
# Installs (idempotently) the Kafka-protocol broker `tansu` the Kafka suites run against, and prints the
# path of its binary on stdout (last line). A warm machine returns at once; a cold one builds it from
# crates.io (about 20 minutes on 2 cores).
#
#   TANSU_VERSION  the version to require (default below)
#
# Usage in a test script:  export TANSU_BIN="$(scripts/ensure/tansu.sh | tail -n1)"
set -euo pipefail

version="${TANSU_VERSION:-0.6.0}"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$cargo_bin:$PATH"

if command -v tansu >/dev/null 2>&1 && [[ "$(tansu --version 2>/dev/null)" == "tansu $version" ]]; then
  command -v tansu
  exit 0
fi

echo "ensure/tansu: installing tansu $version with cargo (takes a while on a cold machine)" >&2
# dynostore: the in-memory storage engine the tests use (memory://tansu/).
cargo install tansu --version "$version" --features dynostore --locked >&2
command -v tansu
