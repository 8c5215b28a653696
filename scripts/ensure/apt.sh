#!/usr/bin/env bash
# Installs Debian packages only when one of the named commands is missing (idempotent, quiet when warm).
#   scripts/ensure/apt.sh CMD:PACKAGE [CMD:PACKAGE ...]     e.g. promtool:prometheus wrk:wrk
set -euo pipefail
missing=()
for pair in "$@"; do
  cmd="${pair%%:*}" pkg="${pair#*:}"
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0
echo "ensure/apt: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
sudo_=""; [[ $(id -u) -ne 0 ]] && sudo_="sudo"
$sudo_ apt-get update -qq >&2
$sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
