//! Where a `POST /predict` spends its user-space time, stage by stage, without sockets
//! (`cargo bench -p fraudops-serve`): parsing and validation, scoring, the `prediction_made` log line, and
//! the whole request through the service a connection runs (admission, tracking, handler, metrics, response
//! JSON) with and without logging, and with an API key (authentication's cost).
//!
//! `scripts/bench-serve.sh` measures the server over TCP; this bench says which stage to work on.

use std::hint::black_box;
use std::io;

use axum::body::Body;
use axum::http::{Request, header};
use criterion::{Criterion, criterion_group, criterion_main};
use fraudops_serve::JsonLines;
use fraudops_serve::ModelSource;
use fraudops_serve::{ServeConfig, Server};
use fraudops_wire::parse_single;

/// The transaction `scripts/bench-requests.py` sends (same fields, same values).
const BODY: &str = r#"{"transaction_id": "bench-1", "amount": 129.9, "customer_id": 42, "terminal_id": 3107, "tx_datetime": "2018-08-15 02:13:00", "merchant_category": "electronics", "user_age": 37, "account_balance": 2400.5, "history": {"customer": {"nb_tx_1day": 3, "avg_amount_1day": 80.0, "nb_tx_7day": 12, "avg_amount_7day": 60.0, "nb_tx_30day": 40, "avg_amount_30day": 55.0}, "terminal": {"nb_tx_1day": 9, "risk_1day": 0.0, "nb_tx_7day": 60, "risk_7day": 0.0, "nb_tx_30day": 250, "risk_30day": 0.004}}}"#;

/// Log lines go nowhere, after being formatted exactly as in production.
fn json_subscriber() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .event_format(JsonLines)
        .with_writer(io::sink)
        .with_max_level(tracing::Level::INFO)
        .finish()
}

fn stages(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let server = runtime
        .block_on(Server::bind(
            ServeConfig::for_tests(),
            ModelSource::Embedded,
        ))
        .unwrap_or_else(|e| panic!("server: {e}"));
    let dispatch = server.dispatch();
    // The same server with API keys: 20 clients, the request's key the last line (every digest is
    // compared anyway).
    let keys = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("keys file: {e}"));
    let lines: Vec<String> = (0..20)
        .map(|i| {
            fraudops_serve::keys_file_line(
                &format!("client-{i}"),
                "record,history",
                &format!("key-{i}"),
                None,
                false,
            )
        })
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("keys: {e}"));
    std::fs::write(keys.path(), lines.join("\n")).unwrap_or_else(|e| panic!("keys file: {e}"));
    let mut keyed = ServeConfig::for_tests();
    keyed.api_keys_file = Some(keys.path().to_owned());
    let keyed = runtime
        .block_on(Server::bind(keyed, ModelSource::Embedded))
        .unwrap_or_else(|e| panic!("server: {e}"))
        .dispatch();
    let model = fraudops_model::Model::embedded().unwrap_or_else(|e| panic!("model: {e}"));
    let tx = parse_single(BODY.as_bytes()).unwrap_or_else(|e| panic!("bench body: {e}"));

    let mut group = c.benchmark_group("request_path");
    group.bench_function("parse_and_validate", |b| {
        b.iter(|| parse_single(black_box(BODY.as_bytes())))
    });
    group.bench_function("features_and_score", |b| {
        b.iter(|| model.predict(&black_box(&tx.row).to_vector()))
    });
    group.bench_function("log_line", |b| {
        tracing::subscriber::with_default(json_subscriber(), || {
            b.iter(|| {
                tracing::info!(
                    event = "prediction_made",
                    transaction_id = "bench-1",
                    fraud_probability = black_box(0.012_345_678_9),
                    processing_time_ms = black_box(0.041_2),
                    model_version = "embedded-20261120",
                    replica_id = "fraudops-api-7d9c-x2x4z",
                );
            })
        })
    });
    let request = || {
        Request::post("/predict")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(BODY))
            .unwrap_or_else(|e| panic!("request: {e}"))
    };
    let full = |b: &mut criterion::Bencher| {
        b.iter(|| {
            runtime.block_on(async {
                let response = dispatch.handle(request(), None).await;
                assert!(response.status().is_success());
                axum::body::to_bytes(response.into_body(), usize::MAX).await
            })
        })
    };
    group.bench_function("dispatch_without_logs", full);
    group.bench_function("dispatch_with_api_key", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut req = request();
                req.headers_mut().insert(
                    header::AUTHORIZATION,
                    header::HeaderValue::from_static("Bearer key-19"),
                );
                let response = keyed.handle(req, None).await;
                assert!(response.status().is_success());
                axum::body::to_bytes(response.into_body(), usize::MAX).await
            })
        })
    });
    group.bench_function("dispatch_with_logs", |b| {
        tracing::subscriber::with_default(json_subscriber(), || full(b))
    });
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
