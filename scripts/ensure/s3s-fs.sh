#!/usr/bin/env bash
# Installs (idempotently) `s3s-fs`, a real S3-protocol server over a local directory, for the lake's S3 tests,
# and prints the path of its binary on stdout (last line). Chosen over RustFS for its build: a few minutes on
# 2 cores, one binary, no console or cluster parts the tests do not need. 0.14.1 is the newest release this
# machine's rustc (1.95) builds.
#   S3S_FS_VERSION  the version to require (default below)
set -euo pipefail
version="${S3S_FS_VERSION:-0.14.1}"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$cargo_bin:$PATH"
if command -v s3s-fs >/dev/null 2>&1 && [[ "$(s3s-fs --version 2>/dev/null)" == "s3s-fs $version" ]]; then
  command -v s3s-fs
  exit 0
fi
echo "ensure/s3s-fs: installing s3s-fs $version with cargo (a few minutes on a cold machine)" >&2
cargo install s3s-fs --version "$version" --features binary --locked >&2
command -v s3s-fs
