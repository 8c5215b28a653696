//! Bad input gets a clear 4xx naming the field, is counted, never causes a 5xx, and loses nothing.

use serde_json::{Value, json};

use crate::support::{TestServer, transaction};

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
    // A valid request with `field` set to `value`: a 422 naming that field.
    let invalid = |case: &'static str, field: &'static str, value: Value| {
        (case, j(with(field, value)), 422, Some(field))
    };
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
        invalid("amount as text", "amount", json!("ten")),
        invalid("negative amount", "amount", json!(-1.0)),
        invalid("absurd amount", "amount", json!(1e300)),
        (
            "overflowing amount",
            r#"{"transaction_id": "a", "amount": 1e999}"#.into(),
            400,
            Some("amount"),
        ),
        invalid("negative customer id", "customer_id", json!(-5)),
        invalid("fractional terminal id", "terminal_id", json!(1.5)),
        invalid("empty transaction id", "transaction_id", json!("")),
        invalid(
            "huge transaction id",
            "transaction_id",
            json!("x".repeat(10_000)),
        ),
        invalid("object transaction id", "transaction_id", json!({"a": 1})),
        invalid("unparsable date", "tx_datetime", json!("yesterday")),
        invalid("hour 24", "hour", json!(24)),
        invalid("day of week 7", "day_of_week", json!(7)),
        invalid("age 200", "user_age", json!(200)),
        invalid("empty category", "merchant_category", json!(" ")),
        invalid("huge category", "merchant_category", json!("x".repeat(65))),
        invalid(
            "control character in category",
            "merchant_category",
            json!("a\u{7}b"),
        ),
        invalid("absurd balance", "account_balance", json!(1e30)),
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
    server
        .assert_samples(&[
            (
                "ml_model_errors_total{type=\"validation\"}",
                cases.len() as f64,
            ),
            ("http_errors_total{status_class=\"5xx\"}", 0.0),
            ("ml_model_failed_predictions_total", cases.len() as f64),
        ])
        .await;
    // Nothing was lost: the server still scores.
    assert_eq!(server.predict_status("after").await, 200);
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

/// `POST /predict/batch` with `txs`.
async fn post_batch(server: &TestServer, txs: &[Value]) -> reqwest::Response {
    server
        .post_json("/predict/batch", &json!({ "transactions": txs }))
        .await
}

#[tokio::test]
async fn batch_errors_name_the_index() {
    let server = TestServer::embedded().await;
    let mut txs: Vec<Value> = (0..5).map(|i| transaction(&format!("t{i}"))).collect();
    txs[3]["amount"] = json!(-2);
    let response = post_batch(&server, &txs).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["field"], "transactions[3].amount");

    let response = post_batch(&server, &[]).await;
    assert_eq!(response.status(), 422);

    let txs: Vec<Value> = (0..1001)
        .map(|i| json!({"transaction_id": i, "amount": 1}))
        .collect();
    let response = post_batch(&server, &txs).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["field"], "transactions");
    server
        .assert_samples(&[(
            "http_requests_rejected_total{reason=\"batch_too_large\"}",
            1.0,
        )])
        .await;
}

#[tokio::test]
async fn oversized_bodies_are_413_declared_or_not() {
    let server = TestServer::configured(|config| config.max_body_bytes = 4096).await;
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
    server
        .assert_samples(&[(
            "http_requests_rejected_total{reason=\"body_too_large\"}",
            2.0,
        )])
        .await;
}

#[tokio::test]
async fn unknown_fields_are_ignored_for_forward_compatibility() {
    let server = TestServer::embedded().await;
    let response = server
        .post_json("/predict", &with("channel", json!("mobile")))
        .await;
    assert_eq!(response.status(), 200);
}

/// A merchant category the model has never seen (a new kind of merchant) is scored as unknown and
/// counted, not refused: refusing would let exactly the unfamiliar traffic through unscored.
#[tokio::test]
async fn an_unknown_merchant_category_is_scored_and_counted() {
    let server = TestServer::embedded().await;
    let mut body = transaction("new-merchant");
    body["merchant_category"] = json!("casino");
    let answer = server.post_json("/predict", &body).await;
    assert_eq!(answer.status(), 200);
    let prediction: serde_json::Value = answer.json().await.expect("json");
    assert!(
        prediction["fraud_probability"]
            .as_f64()
            .is_some_and(|p| (0.0..=1.0).contains(&p))
    );
    // Scored exactly as a transaction without a category.
    let mut without = transaction("no-category");
    without
        .as_object_mut()
        .map(|o| o.remove("merchant_category"));
    let reference = server.post_for_json("/predict", &without).await;
    assert_eq!(
        prediction["fraud_probability"],
        reference["fraud_probability"]
    );
    server
        .assert_samples(&[
            ("ml_model_unknown_category_total", 1.0),
            ("ml_model_errors_total{type=\"validation\"}", 0.0),
        ])
        .await;
}
