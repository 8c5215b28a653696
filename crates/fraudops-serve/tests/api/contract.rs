//! What SPEC §4 promises a client: the endpoints, the exact response fields, the docs, the metrics.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::{TestServer, metric, transaction};

/// SPEC §4's eight fields, and `feature_source` (issue 30: how the history windows were obtained).
const RESPONSE_FIELDS: [&str; 9] = [
    "feature_source",
    "transaction_id",
    "is_fraud",
    "fraud_probability",
    "confidence",
    "model_version",
    "prediction_time",
    "processing_time_ms",
    "replica_id",
];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn predict_answers_with_exactly_the_spec_fields() {
    let server = TestServer::embedded().await;
    let response = server.post_json("/predict", &transaction("tx-1")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        keys(&body),
        RESPONSE_FIELDS.iter().map(|s| (*s).to_owned()).collect()
    );
    assert_eq!(body["transaction_id"], "tx-1");
    assert_eq!(body["replica_id"], "test-replica");
    assert_eq!(
        body["feature_source"], "none",
        "no store: nothing to look up"
    );
    let p = body["fraud_probability"].as_f64().expect("probability");
    assert!((0.0..=1.0).contains(&p));
    let confidence = body["confidence"].as_f64().expect("confidence");
    assert!((confidence - p.max(1.0 - p)).abs() < 1e-12);
    assert!(
        body["model_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("gbdt-"))
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(body["prediction_time"].as_str().expect("time"))
            .is_ok()
    );

    // Integer ids come back as integers; the minimal request (id and amount) is enough.
    let response = server
        .post_json("/predict", &json!({"transaction_id": 77, "amount": 5}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["transaction_id"], 77);
}

#[tokio::test]
async fn the_same_transaction_always_gets_the_same_score() {
    let server = TestServer::embedded().await;
    let mut scores = Vec::new();
    for _ in 0..3 {
        let body: Value = server.post_for_json("/predict", &transaction("tx")).await;
        scores.push(body["fraud_probability"].as_f64().expect("p"));
    }
    assert!(scores.windows(2).all(|w| w[0] == w[1]), "{scores:?}");
}

#[tokio::test]
async fn write_coalescing_changes_no_answer() {
    let direct = TestServer::configured(|config| config.coalesce_writes = false).await;
    let coalesced = TestServer::embedded().await;
    let batch = json!({"transactions": [transaction("a"), transaction("b")]});
    for server in [&direct, &coalesced] {
        let single: Value = server.post_for_json("/predict", &transaction("tx")).await;
        let many: Value = server.post_for_json("/predict/batch", &batch).await;
        assert_eq!(many["count"], 2);
        assert_eq!(
            single["fraud_probability"],
            many["predictions"][0]["fraud_probability"]
        );
        let text = server.metrics().await;
        assert_eq!(
            metric(
                &text,
                "http_requests_total{endpoint=\"/predict/batch\",method=\"POST\",status=\"200\"}"
            ),
            Some(1.0)
        );
    }
}

#[tokio::test]
async fn history_features_change_the_score() {
    let server = TestServer::embedded().await;
    let plain: Value = server.post_for_json("/predict", &transaction("a")).await;
    let mut risky = transaction("b");
    risky["history"] = json!({"terminal": {"nb_tx_1day": 20, "risk_1day": 1.0, "nb_tx_7day": 90, "risk_7day": 0.9,
        "nb_tx_30day": 300, "risk_30day": 0.5}});
    let risky: Value = server.post_for_json("/predict", &risky).await;
    assert!(
        risky["fraud_probability"].as_f64() > plain["fraud_probability"].as_f64(),
        "a compromised terminal must raise the score: {risky} vs {plain}"
    );
}

#[tokio::test]
async fn batch_keeps_request_order() {
    let server = TestServer::embedded().await;
    let txs: Vec<Value> = (0..50).map(|i| transaction(&format!("tx-{i}"))).collect();
    let response = server
        .post_json("/predict/batch", &json!({"transactions": txs}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["count"], 50);
    let predictions = body["predictions"].as_array().expect("predictions");
    for (i, p) in predictions.iter().enumerate() {
        assert_eq!(p["transaction_id"], format!("tx-{i}"));
        assert_eq!(p["model_version"], body["model_version"]);
        assert_eq!(keys(p).len(), RESPONSE_FIELDS.len());
    }
}

#[tokio::test]
async fn identity_health_and_readiness() {
    let server = TestServer::embedded().await;
    let info: Value = server.get("/").await.json().await.expect("json");
    assert_eq!(info["service"], "fraudops");
    assert_eq!(info["replica_id"], "test-replica");
    assert_eq!(info["model_source"], "embedded");
    assert!(
        info["model_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("gbdt-"))
    );
    let health = server.get("/health").await;
    assert_eq!(health.status(), 200);
    let ready = server.get("/ready").await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["status"], "ok");
}

#[tokio::test]
async fn openapi_document_describes_the_api() {
    let server = TestServer::embedded().await;
    let doc: Value = server
        .get("/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/predict",
        "/predict/batch",
        "/health",
        "/ready",
        "/metrics",
        "/",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    let request = &doc["components"]["schemas"]["PredictRequest"];
    let required: BTreeSet<&str> = request["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, BTreeSet::from(["transaction_id", "amount"]));
    let response = &doc["components"]["schemas"]["PredictResponse"]["properties"];
    assert_eq!(
        keys(response),
        RESPONSE_FIELDS.iter().map(|s| (*s).to_owned()).collect()
    );
}

#[tokio::test]
async fn docs_page_works_offline() {
    let server = TestServer::embedded().await;
    let page = server.get("/docs").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        !html.contains("https://") && !html.contains("http://"),
        "the docs page must not load anything remote"
    );
    for (asset, content_type, min_size) in [
        (
            "/docs/swagger-ui-bundle.js",
            "application/javascript",
            500_000,
        ),
        ("/docs/swagger-ui.css", "text/css", 50_000),
    ] {
        assert!(html.contains(asset));
        let response = server.get(asset).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], content_type);
        assert!(
            response.bytes().await.expect("asset").len() > min_size,
            "{asset} looks truncated"
        );
    }
}

/// Every API metric of the contract file the dashboards and alerts are checked against is exported.
#[tokio::test]
async fn metrics_export_every_contract_name() {
    let server = TestServer::embedded().await;
    server.post_json("/predict", &transaction("m")).await;
    let text = server.metrics().await;
    let contract = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/monitoring/metrics-contract.txt"
    ))
    .expect("metrics contract");
    let api_names = contract
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| {
            // ml_model_online_*: the label consumer's online evaluation, not the API's;
            // ml_model_retrain_*: pushed by `fraudops register` (crates/fraudops-cli/src/pushgateway.rs).
            // fraudops_retrain_trigger_*: the bridge `fraudops retrain-trigger` (crates/fraudops-cli/src/retrain_trigger/).
            ![
                "kafka_",
                "stream_",
                "fraudops_labels_",
                "ml_model_online_",
                "ml_model_retrain_",
                "fraudops_retrain_trigger_",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        });
    // The PSI gauges exist once the drift window holds enough predictions (tests/api/drift.rs).
    let api_names =
        api_names.filter(|l| !["ml_model_score_psi", "ml_model_feature_psi"].contains(l));
    for name in api_names {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} is not exported"
        );
    }
    let version = fraudops_model::Model::embedded()
        .expect("model")
        .version()
        .to_owned();
    let total = metric(
        &text,
        &format!("ml_model_predictions_total{{model_version=\"{version}\",result=\"fraud\"}}"),
    )
    .unwrap_or(0.0)
        + metric(
            &text,
            &format!("ml_model_predictions_total{{model_version=\"{version}\",result=\"legit\"}}"),
        )
        .unwrap_or(0.0);
    assert_eq!(total, 1.0);
    assert!(
        text.contains("ml_model_info{library=")
            && text.contains(&format!("model_version=\"{version}\""))
    );
    assert_eq!(metric(&text, "ml_model_fraud_probability_count"), Some(1.0));
}

#[tokio::test]
async fn endpoint_labels_are_route_templates() {
    let server = TestServer::embedded().await;
    for path in ["/nope/123", "/nope/456", "/predict/../../etc/passwd"] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.expect("json error body");
        assert!(body["error"].is_string());
    }
    server.post_json("/predict", &transaction("x")).await;
    let missing_id = server.post_json("/predict", &json!({"amount": 1.0})).await;
    assert_eq!(missing_id.status(), 422);
    let batch = json!({"transactions": [transaction("b")]});
    assert_eq!(
        server.post_json("/predict/batch", &batch).await.status(),
        200
    );
    let text = server.metrics().await;
    // The scoring routes' series are resolved once at start-up; other statuses still get their own.
    for (series, count) in [
        (
            "http_requests_total{endpoint=\"/predict\",method=\"POST\",status=\"422\"}",
            1.0,
        ),
        (
            "http_requests_total{endpoint=\"/predict/batch\",method=\"POST\",status=\"200\"}",
            1.0,
        ),
        (
            "http_request_duration_seconds_count{endpoint=\"/predict\",method=\"POST\"}",
            2.0,
        ),
        (
            "http_request_duration_seconds_count{endpoint=\"/predict/batch\",method=\"POST\"}",
            1.0,
        ),
    ] {
        assert_eq!(metric(&text, series), Some(count), "{series}");
    }
    assert!(
        !text.contains("/nope"),
        "raw paths must never become label values"
    );
    assert_eq!(
        metric(
            &text,
            "http_requests_total{endpoint=\"unmatched\",method=\"GET\",status=\"404\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        metric(
            &text,
            "http_requests_total{endpoint=\"/predict\",method=\"POST\",status=\"200\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn scoring_routes_refuse_other_methods_and_name_post() {
    let server = TestServer::embedded().await;
    for path in ["/predict", "/predict/batch"] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 405, "GET {path}");
        assert_eq!(
            response.headers().get("allow").map(|v| v.as_bytes()),
            Some(&b"POST"[..])
        );
        let body: Value = response.json().await.expect("json error body");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("POST")));
    }
    let text = server.metrics().await;
    assert_eq!(
        metric(
            &text,
            "http_requests_total{endpoint=\"/predict\",method=\"GET\",status=\"405\"}"
        ),
        Some(1.0)
    );
    assert_eq!(metric(&text, "http_requests_in_progress"), Some(1.0));
}

#[tokio::test]
async fn metrics_port_serves_metrics_alone() {
    let server = TestServer::configured(|config| config.metrics_port = Some(0)).await;
    let metrics_addr = server.metrics_addr.expect("a metrics listener");
    server.post_json("/predict", &transaction("x")).await;
    let text = server
        .client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(text.contains("ml_model_predictions_total"));
    let other = server
        .client
        .get(format!("http://{metrics_addr}/predict"))
        .send()
        .await
        .expect("get");
    assert_eq!(other.status(), 404);
}
