#!/usr/bin/env bash
# Creates the feature store's Redis passwords, once per cluster (deploy/README.md §3):
#
#   deploy/redis-users.sh [NAMESPACE]     # default: fraudops
#
# * Secret fraudops-redis-users: keys scorer, labels, exporter, each a fresh 32-byte random password. The
#   single Redis's init container renders deploy/k8s/base/redis-users.acl with their SHA-256; the API and the
#   stream worker read `scorer`, the label consumer `labels`, the exporter and the probes `exporter`.
# * Secret fraudops-redis-acl: key user.acl, the same ACL already rendered (the production Redis Cluster's
#   operator mounts it as the shards' aclfile).
# Existing Secrets are left alone (re-running changes nothing); to rotate, delete both and run it again, then
# restart Redis and the three workloads (kubectl rollout restart). The passwords are never printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ns="${1:-fraudops}"
if kubectl -n "$ns" get secret fraudops-redis-users >/dev/null 2>&1; then
  echo "redis-users: Secret fraudops-redis-users exists in $ns; nothing changed" >&2
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
umask 077
for user in scorer labels exporter; do
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/$user"
done
hash() { tr -d ' \n\r\t' <"$work/$1" | sha256sum | cut -d' ' -f1; }
grep -v -e '^#' -e '^[[:space:]]*$' deploy/k8s/base/redis-users.acl \
  | sed -e "s/PASSWORD_SCORER/$(hash scorer)/" -e "s/PASSWORD_LABELS/$(hash labels)/" \
        -e "s/PASSWORD_EXPORTER/$(hash exporter)/" >"$work/user.acl"
kubectl -n "$ns" create secret generic fraudops-redis-users \
  --from-file=scorer="$work/scorer" --from-file=labels="$work/labels" --from-file=exporter="$work/exporter"
kubectl -n "$ns" create secret generic fraudops-redis-acl --from-file=user.acl="$work/user.acl"
echo "redis-users: created fraudops-redis-users and fraudops-redis-acl in $ns" >&2
