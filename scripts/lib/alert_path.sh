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
