//! Bad input gets a clear 4xx naming the field, is counted, never causes a 5xx, and loses nothing.

use fraudops_serve::ModelSource;
use fraudops_serve::ServeConfig;
use serde_json::{Value, json};

use crate::support::{TestServer, metric, transaction};

fn with(field: &str, value: Value) -> Value {
    let mut tx = transaction("bad");
    tx[field] = value;
    tx
}

fn without(field: &str) -> Value {
    let mut tx = transaction("bad");
    tx.as_object_mut().expect("object").remove(field);
    tx
}

/// (case, body, expected status, expected `field`)
fn bad_single_requests() -> Vec<(&'static str, String, u16, Option<&'static str>)> {
    let j = |v: Value| v.to_string();
    vec![
        (
            "truncated JSON",
            r#"{"transaction_id": "a", "amount": 1"#.into(),
            400,
            None,
        ),
        ("not JSON", "hello".into(), 400, None),
        ("empty body", String::new(), 400, None),
        (
            "NaN literal",
            r#"{"transaction_id": "a", "amount": NaN}"#.into(),
            400,
            None,
        ),
        ("array instead of object", "[]".into(), 422, None),
        ("missing amount", j(without("amount")), 422, Some("amount")),
        (
            "missing transaction_id",
            j(without("transaction_id")),
            422,
            Some("transaction_id"),
        ),
        (
            "amount as text",
            j(with("amount", json!("ten"))),
            422,
            Some("amount"),
        ),
        (
            "negative amount",
            j(with("amount", json!(-1.0))),
            422,
            Some("amount"),
        ),
        (
            "absurd amount",
            j(with("amount", json!(1e300))),
            422,
            Some("amount"),
        ),
        (
            "overflowing amount",
            r#"{"transaction_id": "a", "amount": 1e999}"#.into(),
            400,
            Some("amount"),
        ),
        (
            "negative customer id",
            j(with("customer_id", json!(-5))),
            422,
            Some("customer_id"),
        ),
        (
            "fractional terminal id",
            j(with("terminal_id", json!(1.5))),
            422,
            Some("terminal_id"),
        ),
        (
            "empty transaction id",
            j(with("transaction_id", json!(""))),
            422,
            Some("transaction_id"),
        ),
        (
            "huge transaction id",
            j(with("transaction_id", json!("x".repeat(10_000)))),
            422,
            Some("transaction_id"),
        ),
        (
            "object transaction id",
            j(with("transaction_id", json!({"a": 1}))),
            422,
            Some("transaction_id"),
        ),
        (
            "unparsable date",
            j(with("tx_datetime", json!("yesterday"))),
            422,
            Some("tx_datetime"),
        ),
        ("hour 24", j(with("hour", json!(24))), 422, Some("hour")),
        (
            "day of week 7",
            j(with("day_of_week", json!(7))),
            422,
            Some("day_of_week"),
        ),
        (
            "age 200",
            j(with("user_age", json!(200))),
            422,
            Some("user_age"),
        ),
        (
            "unknown category",
            j(with("merchant_category", json!("casino"))),
            422,
            Some("merchant_category"),
        ),
        (
            "absurd balance",
            j(with("account_balance", json!(1e30))),
            422,
            Some("account_balance"),
        ),
        (
            "terminal risk above 1",
            j(with(
                "history",
                json!({"terminal": {"nb_tx_1day": 1, "risk_1day": 2.0, "nb_tx_7day": 1, "risk_7day": 0.0, "nb_tx_30day": 1, "risk_30day": 0.0}}),
            )),
            422,
            Some("history.terminal.risk_1day"),
        ),
        (
            "deeply nested",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            400,
            None,
        ),
    ]
}

#[tokio::test]
async fn every_bad_request_is_a_named_4xx_and_counted() {
    let server = TestServer::embedded().await;
    let cases = bad_single_requests();
    for (case, body, status, field) in &cases {
        let response = server
            .post_raw("/predict", Some("application/json"), body.clone())
            .await;
        assert_eq!(response.status().as_u16(), *status, "{case}");
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{case}: error body is not JSON: {e}"));
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{case}: {body}"
        );
        if let Some(field) = field {
            assert_eq!(body["field"], *field, "{case}: {body}");
        }
    }
    let text = server.metrics().await;
    assert_eq!(
        metric(&text, "ml_model_errors_total{type=\"validation\"}"),
        Some(cases.len() as f64)
    );
    assert_eq!(
        metric(&text, "http_errors_total{status_class=\"5xx\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&text, "ml_model_failed_predictions_total"),
        Some(cases.len() as f64)
    );
    // Nothing was lost: the server still scores.
    assert_eq!(
        server
            .post_json("/predict", &transaction("after"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let server = TestServer::embedded().await;
    let response = server
        .post_raw("/predict", Some("text/plain"), transaction("a").to_string())
        .await;
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("application/json"))
    );
    // No content type at all is read as JSON (curl --data-binary without -H).
    let response = server
        .post_raw("/predict", None, transaction("a").to_string())
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn batch_errors_name_the_index() {
    let server = TestServer::embedded().await;
    let mut txs: Vec<Value> = (0..5).map(|i| transaction(&format!("t{i}"))).collect();
    txs[3]["amount"] = json!(-2);
    let response = server
        .post_json("/predict/batch", &json!({"transactions": txs}))
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["field"], "transactions[3].amount");

    let response = server
        .post_json("/predict/batch", &json!({"transactions": []}))
        .await;
    assert_eq!(response.status(), 422);

    let txs: Vec<Value> = (0..1001)
        .map(|i| json!({"transaction_id": i, "amount": 1}))
        .collect();
    let response = server
        .post_json("/predict/batch", &json!({"transactions": txs}))
        .await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["field"], "transactions");
    let text = server.metrics().await;
    assert_eq!(
        metric(
            &text,
            "http_requests_rejected_total{reason=\"batch_too_large\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn oversized_bodies_are_413_declared_or_not() {
    let mut config = ServeConfig::for_tests();
    config.max_body_bytes = 4096;
    let server = TestServer::start(config, ModelSource::Embedded).await;
    let mut big = transaction("big");
    big["padding"] = json!("x".repeat(10_000));
    let response = server.post_json("/predict", &big).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("json");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("4096")));

    // Chunked, without Content-Length: the limit is enforced while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..10).map(|_| Ok(vec![b' '; 1000])).collect();
    let stream = futures_util::stream::iter(chunks);
    let response = server
        .post_raw(
            "/predict",
            Some("application/json"),
            reqwest::Body::wrap_stream(stream),
        )
        .await;
    assert_eq!(response.status(), 413);
    let text = server.metrics().await;
    assert_eq!(
        metric(
            &text,
            "http_requests_rejected_total{reason=\"body_too_large\"}"
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn unknown_fields_are_ignored_for_forward_compatibility() {
    let server = TestServer::embedded().await;
    let response = server
        .post_json("/predict", &with("channel", json!("mobile")))
        .await;
    assert_eq!(response.status(), 200);
}
