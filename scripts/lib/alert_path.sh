# Sourced by scripts/test-retrain-trigger.sh and scripts/test-retrain-loop.sh: Airflow as the bridge meets it,
# and the alert path's two servers.
#
# prepare_airflow_for_bridge: the environment both run Airflow 3 in ($AIRFLOW_BIN; AIRFLOW_HOME in $TMP, the
# repository's DAGs in local mode, SimpleAuthManager with the bridge's own user, role "op": may trigger DAG
# runs), the bridge's credentials in $TMP/secrets as the Secret would mount them (its Airflow password, the
# token Alertmanager sends), and the migrated database. Callers export their own extra settings before.
prepare_airflow_for_bridge() {
  export AIRFLOW_HOME="$TMP/airflow"
  export AIRFLOW__CORE__DAGS_FOLDER="$REPO/deploy/airflow/dags"
  export AIRFLOW__CORE__LOAD_EXAMPLES=False
  export AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING
  export PYTHONWARNINGS=ignore
  export FRAUDOPS_AIRFLOW_MODE=local
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="fraudops-retrain-trigger:op"
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$TMP/airflow-passwords.json"
  mkdir -p "$TMP/secrets"
  local password="pw-$RANDOM$RANDOM$RANDOM"
  printf '%s\n' "$password" >"$TMP/secrets/airflow-password"
  printf '{"fraudops-retrain-trigger": "%s"}\n' "$password" >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
  printf 'am-token-%s\n' "$RANDOM$RANDOM$RANDOM" >"$TMP/secrets/retrain-trigger-token"
  "$AIRFLOW_BIN" db migrate >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log"; return 1; }
}
#
# start_bridge_and_alertmanager: `fraudops retrain-trigger` ($FRAUDOPS_BIN) on $bridge_port against $AIRFLOW,
# its credentials in $TMP/secrets; then Alertmanager on $am_port with the deployed
# deploy/monitoring/alertmanager/alertmanager.yaml, only the bridge's in-cluster URL rewritten to $BRIDGE
# (Alertmanager 0.25 has no webhook url_file; checked: the files differ in that line alone), the chat URLs
# pointing at the webhook sink whose port is in $TMP/sink.port. Both run in their own process group, added
# to `pids` (scripts/lib/common.sh: scratch_with_groups stops them).
start_bridge_and_alertmanager() {
  (cd "$TMP" && RUST_LOG=info AIRFLOW_URL="$AIRFLOW" AIRFLOW_USERNAME=fraudops-retrain-trigger \
    AIRFLOW_PASSWORD_FILE="$TMP/secrets/airflow-password" RETRAIN_TRIGGER_TOKEN_FILE="$TMP/secrets/retrain-trigger-token" \
    exec setsid "$FRAUDOPS_BIN" retrain-trigger --bind 127.0.0.1 --port "$bridge_port") >"$TMP/bridge.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [[ -s "$TMP/sink.port" ]] && break; sleep 0.1; done
  printf 'http://127.0.0.1:%s/oncall\n' "$(cat "$TMP/sink.port")" >"$TMP/secrets/oncall-chat-url"
  printf 'http://127.0.0.1:%s/admin\n' "$(cat "$TMP/sink.port")" >"$TMP/secrets/admin-chat-url"
  printf 'not-a-real-password\n' >"$TMP/secrets/smtp-password"
  mkdir -p "$TMP/am"
  sed "s|http://fraudops-retrain-trigger.fraudops.svc:8080|$BRIDGE|" \
    "$REPO/deploy/monitoring/alertmanager/alertmanager.yaml" >"$TMP/am/alertmanager.yaml"
  cp -r "$REPO/deploy/monitoring/alertmanager/templates" "$TMP/am/"
  cp -r "$TMP/secrets" "$TMP/am/"
  # Only the URL differs from the deployed file.
  [[ "$(diff "$REPO/deploy/monitoring/alertmanager/alertmanager.yaml" "$TMP/am/alertmanager.yaml" | grep -c '^[<>]')" == 2 ]]
  (cd "$TMP/am" && exec setsid prometheus-alertmanager --config.file=alertmanager.yaml --storage.path=data \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= --log.level=warn) >"$TMP/alertmanager.log" 2>&1 &
  pids+=($!)
}

#
# start_prometheus_on_deployed_rules SERVE_PORT: a real Prometheus (start_group) on deploy/monitoring/rules/*.yaml
# with every `for:` x 1/120 (ScoreDistributionDrift's 30m -> 15s; checked: nothing else differs), scraping the API
# on SERVE_PORT as job fraudops-api every second and alerting to $am_port; sets PROM to its URL. Needs $PY with
# PyYAML.
start_prometheus_on_deployed_rules() {
  local serve_port="$1" prom_port
  prom_port="$(free_port)"
  PROM="http://127.0.0.1:$prom_port"
  mkdir -p "$TMP/prometheus/rules"
  "$PY" - "$REPO/deploy/monitoring/rules" "$TMP/prometheus/rules" <<'PY'
import pathlib, re, sys, yaml
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
def scaled(match):
    value = int(match.group(2)) * UNIT[match.group(3)] / 120  # 30m -> 15s
    return f"{match.group(1)}{int(value * 1000)}ms" if value % 1 else f"{match.group(1)}{int(value)}s"
def strip_for(doc):
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("for", None)
    return doc
for path in sorted(src.glob("*.yaml")):
    text = path.read_text()
    out = re.sub(r"^(\s+for: )(\d+)(ms|s|m|h)$", scaled, text, flags=re.M)
    assert strip_for(yaml.safe_load(text)) == strip_for(yaml.safe_load(out)), path  # only `for:` differs
    (dst / path.name).write_text(out)
PY
  cat >"$TMP/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["rules/*.yaml"]
alerting:
  alertmanagers:
    - static_configs: [{targets: ["127.0.0.1:$am_port"]}]
scrape_configs:
  - job_name: fraudops-api
    static_configs: [{targets: ["127.0.0.1:$serve_port"]}]
EOF
  start_group prometheus.log prometheus --config.file="$TMP/prometheus/prometheus.yml" \
    --storage.tsdb.path="$TMP/prometheus/data" --web.listen-address="127.0.0.1:$prom_port" --log.level=warn
}
