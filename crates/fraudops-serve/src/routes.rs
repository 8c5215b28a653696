//! The handlers of SPEC §4. Each reads the shared [`AppState`]; none knows metric names.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use fraudops_features::FeatureVector;

use fraudops_wire::{
    BatchResponse, ErrorBody, FeatureSource, HealthStatus, PredictResponse, ServiceInfo,
    ValidTransaction, ValidationError, parse_batch, parse_single,
};

use crate::auth::{Caller, Scope};
use crate::drift::WhenScored;
use crate::error::ApiError;
use crate::events::{FeatureStoreFailed, PredictionMade};
use crate::model_store::{ModelStore, ServedModel};
use crate::protection::Admitted;
use crate::telemetry::{ClientRefusal, Metrics, STORE_OP_OBSERVE, STORE_OP_RECORD};
use fraudops_store::{
    FeatureStore, Namespace, Observation, Recorded, ScoreRecord, ScoreRecorder, StoredScore,
};

/// What every handler shares.
pub struct AppInner {
    /// The served model.
    pub store: Arc<ModelStore>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// This replica's id.
    pub replica_id: String,
    /// Set on SIGTERM: readiness turns false while in-flight requests finish.
    pub draining: AtomicBool,
    /// MAX_BODY_BYTES.
    pub max_body_bytes: usize,
    /// MAX_BATCH_SIZE.
    pub max_batch_size: usize,
    /// The OpenAPI document, rendered once.
    pub openapi_json: String,
    /// The online feature store, when FEATURE_STORE_URL is set.
    pub features: Option<FeatureStore>,
    /// Writes the scores of transactions recorded in the store, off the response path, for the label
    /// consumer's online evaluation (with `features`).
    pub scores: Option<ScoreRecorder>,
}

/// Cheap-to-clone handle on [`AppInner`].
pub type AppState = Arc<AppInner>;

/// Decrements `ml_model_active_requests` however the request ends.
struct ActiveGuard<'a>(&'a Metrics);

impl<'a> ActiveGuard<'a> {
    fn new(metrics: &'a Metrics) -> Self {
        metrics.active_requests.inc();
        Self(metrics)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active_requests.dec();
    }
}

/// JSON or absent (`application/json`, any `+json` type, any parameters, any case); else a 415.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let mime = text.split(';').next().unwrap_or("").trim().as_bytes();
    let is_json = mime.eq_ignore_ascii_case(b"application/json")
        || (mime.len() >= 5 && mime[mime.len() - 5..].eq_ignore_ascii_case(b"+json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(text.to_owned()))
    }
}

/// Scores one validated transaction and records its metrics.
fn score(
    state: &AppInner,
    served: &ServedModel,
    tx: ValidTransaction,
    history: History,
    started: Instant,
) -> PredictResponse {
    let t0 = Instant::now();
    let features: FeatureVector = tx.row.to_vector();
    let p = served.model.predict(&features);
    let scored = Instant::now();
    let processing_time_ms = scored.duration_since(started).as_secs_f64() * 1e3;
    PredictionMade {
        served,
        transaction_id: &tx.id,
        features: &features,
        fraud_probability: p.fraud_probability,
        confidence: p.confidence,
        is_fraud: p.is_fraud,
        scoring_seconds: scored.duration_since(t0).as_secs_f64(),
        processing_time_ms,
        replica_id: &state.replica_id,
        unknown_merchant_category: tx.unknown_merchant_category,
        feature_source: history.source,
        when: WhenScored {
            day_and_hour: tx.day_and_hour,
            time: tx.time,
        },
    }
    .emit(&state.metrics);
    // Only a transaction the store recorded has its score kept for its label: a caller that may not
    // record must not overwrite the score of a real transaction with the same id either.
    if let (Some(recorder), Some(key), true) = (&state.scores, tx.store_key, history.recorded) {
        let queued = recorder.record(ScoreRecord {
            transaction_id: tx.id.to_string(),
            time: key.time,
            namespace: history.namespace,
            score: StoredScore {
                fraud_probability: p.fraud_probability,
                is_fraud: p.is_fraud,
                model_version: served.model.version().to_owned(),
            },
        });
        if !queued {
            state
                .metrics
                .feature_store_errors
                .with_label_values(&[STORE_OP_RECORD])
                .inc();
        }
    }
    PredictResponse {
        transaction_id: tx.id,
        is_fraud: p.is_fraud,
        fraud_probability: p.fraud_probability,
        confidence: p.confidence,
        model_version: served.model.version().to_owned(),
        prediction_time: crate::logging::timestamp_now(),
        processing_time_ms,
        replica_id: state.replica_id.clone(),
        feature_source: history.source,
    }
}

/// What the store did for one transaction of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct History {
    /// Where its windows came from.
    source: FeatureSource,
    /// The store recorded it (so its score is kept for its label).
    recorded: bool,
    /// The store namespace it was recorded in (the caller's key's).
    namespace: Namespace,
}

/// Whose history a transaction reads and writes in the store: the synthetic namespace for a key marked
/// `ns=synthetic` (the attack's, a drill's) or a request marked `synthetic`, else the real one.
fn namespace_of(caller: &Caller, tx: &ValidTransaction) -> Namespace {
    if tx.synthetic {
        Namespace::Synthetic
    } else {
        caller.namespace
    }
}

/// A scoring request once its caller is known and its body is in ([`crate::dispatch`]).
pub struct ScoringRequest<'a> {
    /// Who sent it, with what scopes.
    pub caller: &'a Caller,
    /// The JSON body.
    pub body: &'a [u8],
    /// What admission learned.
    pub admitted: Admitted,
}

/// Score one transaction.
#[utoipa::path(post, path = "/predict", request_body = fraudops_wire::PredictRequest,
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The prediction", body = PredictResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "API keys are required and none valid was sent", body = ErrorBody),
        (status = 403, description = "The key lacks the scope the request needs (`history`)", body = ErrorBody),
        (status = 408, description = "The body did not arrive within BODY_READ_TIMEOUT_SECONDS", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field (a recorded tx_datetime ahead of the server's clock included)", body = ErrorBody),
        (status = 429, description = "Client over its quota; retry after Retry-After", body = ErrorBody),
        (status = 503, description = "At capacity or no model loaded; retry after Retry-After", body = ErrorBody),
    ))]
pub async fn predict(
    state: &AppInner,
    request: ScoringRequest<'_>,
    started: Instant,
) -> Result<SizedJson<PredictResponse>, ApiError> {
    let single = |_: usize| String::new();
    let (mut txs, served, _active) = scoring_input(
        state,
        &request,
        |bytes| parse_single(bytes).map(|tx| vec![tx]),
        single,
    )?;
    let histories = with_stored_windows(state, &request, &mut txs, single).await?;
    let (Some(tx), Some(&history)) = (txs.pop(), histories.first()) else {
        // parse_single gives exactly one transaction.
        return Err(ApiError::NotReady);
    };
    Ok(SizedJson(
        score(state, &served, tx, history, started),
        PREDICTION_JSON_BYTES,
    ))
}

/// What both scoring routes start with, in this order so that a bad body is refused before the model is
/// asked for: the body parsed, the caller's scopes checked against it, the model to score with, and the
/// active-requests gauge held until the handler returns.
fn scoring_input<'s>(
    state: &'s AppInner,
    request: &ScoringRequest<'_>,
    parse: impl FnOnce(&[u8]) -> Result<Vec<ValidTransaction>, ValidationError>,
    prefix: impl Fn(usize) -> String,
) -> Result<(Vec<ValidTransaction>, Arc<ServedModel>, ActiveGuard<'s>), ApiError> {
    let parsed = parse(request.body)?;
    if !request.caller.scopes.allows(Scope::History)
        && let Some(i) = parsed.iter().position(|tx| tx.has_history)
    {
        state
            .metrics
            .refuse_client(&request.caller.client, ClientRefusal::Scope);
        return Err(ApiError::Forbidden {
            scope: Scope::History,
            field: format!("{}history", prefix(i)),
        });
    }
    let served = state.store.get().ok_or(ApiError::NotReady)?;
    Ok((parsed, served, ActiveGuard::new(&state.metrics)))
}

/// Gives the transactions that name a card, a terminal and a time without history their windows from the
/// online feature store, and records them there if the caller may: one round trip for all of a request's
/// transactions, in request order. Returns, per transaction, where its windows came from and whether the
/// store recorded it.
///
/// Refused before the store is asked: a request that waited too long for the CPU (the store call is what
/// it would cost), and a recorded transaction whose time is ahead of the clock by more than
/// MAX_CLOCK_SKEW (422 naming it: the store prunes history by event time). When the store fails or misses
/// the deadline the transactions keep the no-history windows the parse gave them (a first transaction at
/// an unseen terminal): scoring degrades, the request never fails.
async fn with_stored_windows(
    state: &AppInner,
    request: &ScoringRequest<'_>,
    txs: &mut [ValidTransaction],
    prefix: impl Fn(usize) -> String,
) -> Result<Vec<History>, ApiError> {
    let mut histories: Vec<History> = txs
        .iter()
        .map(|tx| History {
            source: if tx.has_history {
                FeatureSource::Request
            } else {
                FeatureSource::None
            },
            recorded: false,
            namespace: namespace_of(request.caller, tx),
        })
        .collect();
    let Some(features) = &state.features else {
        return Ok(histories);
    };
    let record = request.caller.scopes.allows(Scope::Record);
    // The clock is read once, and only for a request that would record something.
    let mut latest = None;
    let mut keyed = Vec::new();
    let mut observations = Vec::new();
    for (i, tx) in txs.iter().enumerate() {
        let Some(key) = tx.store_key else { continue };
        let latest = if record {
            *latest.get_or_insert_with(|| features.latest_recordable_time())
        } else {
            i64::MAX
        };
        if key.time > latest {
            return Err(ApiError::Validation(ValidationError::invalid(
                format!("{}tx_datetime", prefix(i)),
                format!(
                    "is {} s ahead of this server's clock (UTC); a recorded transaction may be at most {} s ahead",
                    key.time - (latest - features.max_clock_skew_seconds()),
                    features.max_clock_skew_seconds()
                ),
            )));
        }
        keyed.push(i);
        observations.push(Observation {
            transaction_id: tx.id.to_string(),
            customer_id: key.customer_id,
            terminal_id: key.terminal_id,
            time: key.time,
            amount: tx.row.amount,
            record,
            namespace: namespace_of(request.caller, tx),
        });
    }
    if keyed.is_empty() {
        return Ok(histories);
    }
    if request.admitted.waited_too_long {
        return Err(ApiError::Overloaded);
    }
    let t0 = Instant::now();
    let result = features.observe(&observations).await;
    state
        .metrics
        .feature_store_duration
        .observe(t0.elapsed().as_secs_f64());
    match result {
        Ok(observed) => {
            for (&i, o) in keyed.iter().zip(observed) {
                txs[i].row.customer = o.windows.customer;
                txs[i].row.terminal = o.windows.terminal;
                histories[i] = History {
                    source: FeatureSource::Store,
                    recorded: o.recorded == Recorded::Yes,
                    namespace: namespace_of(request.caller, &txs[i]),
                };
                if !histories[i].recorded {
                    state
                        .metrics
                        .feature_store_unrecorded
                        .with_label_values(&[o.recorded.as_str()])
                        .inc();
                }
            }
        }
        Err(error) => {
            for &i in &keyed {
                histories[i].source = FeatureSource::StoreUnavailable;
            }
            FeatureStoreFailed {
                op: STORE_OP_OBSERVE,
                error: &error,
                transactions: keyed.len(),
            }
            .emit(&state.metrics)
        }
    }
    Ok(histories)
}

/// Room for one prediction's JSON (about 260 bytes): serialized without growing the buffer.
const PREDICTION_JSON_BYTES: usize = 384;

/// Like axum's [`Json`], with the body's buffer sized up front (axum's starts at 128 bytes and doubles).
pub struct SizedJson<T>(pub T, pub usize);

impl<T: serde::Serialize> IntoResponse for SizedJson<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(self.1);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            // Our response types always serialize; axum's own path reports the error if not.
            Err(_) => Json(self.0).into_response(),
        }
    }
}

/// Score many transactions; predictions come back in request order, all from one model version.
#[utoipa::path(post, path = "/predict/batch", request_body = fraudops_wire::BatchRequest,
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "Predictions in request order", body = BatchResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "API keys are required and none valid was sent", body = ErrorBody),
        (status = 403, description = "The key lacks the scope the request needs (`history`, named with its index)", body = ErrorBody),
        (status = 408, description = "The body did not arrive within BODY_READ_TIMEOUT_SECONDS", body = ErrorBody),
        (status = 413, description = "Body or batch too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field (named with its index)", body = ErrorBody),
        (status = 429, description = "Client over its quota; retry after Retry-After", body = ErrorBody),
        (status = 503, description = "At capacity or no model loaded; retry after Retry-After", body = ErrorBody),
    ))]
pub async fn predict_batch(
    state: &AppInner,
    request: ScoringRequest<'_>,
    started: Instant,
) -> Result<SizedJson<BatchResponse>, ApiError> {
    let item = |i: usize| format!("transactions[{i}].");
    let (mut txs, served, _active) = scoring_input(
        state,
        &request,
        |bytes| parse_batch(bytes, state.max_batch_size),
        item,
    )?;
    let histories = with_stored_windows(state, &request, &mut txs, item).await?;
    let predictions: Vec<PredictResponse> = txs
        .into_iter()
        .zip(histories)
        .map(|(tx, history)| score(state, &served, tx, history, started))
        .collect();
    let bytes = 128 + predictions.len() * PREDICTION_JSON_BYTES;
    Ok(SizedJson(
        BatchResponse {
            count: predictions.len(),
            predictions,
            model_version: served.model.version().to_owned(),
            processing_time_ms: started.elapsed().as_secs_f64() * 1e3,
        },
        bytes,
    ))
}

/// Liveness: 200 while the process can serve.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "Alive", body = HealthStatus)))]
pub async fn health(State(state): State<AppState>) -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "ok".into(),
        model_version: state.store.get().map(|m| m.model.version().to_owned()),
    })
}

/// Readiness: 200 only with a model loaded and while not draining.
#[utoipa::path(get, path = "/ready", responses(
    (status = 200, description = "Ready for traffic", body = HealthStatus),
    (status = 503, description = "No model yet, or draining for shutdown", body = HealthStatus),
))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let model_version = state.store.get().map(|m| m.model.version().to_owned());
    let status = if state.draining.load(Ordering::Relaxed) {
        "draining"
    } else if model_version.is_none() {
        "not_ready"
    } else {
        "ok"
    };
    let code = if status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(HealthStatus {
            status: status.into(),
            model_version,
        }),
    )
        .into_response()
}

/// Prometheus metrics, text exposition format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    metrics_text(&state.store, &state.metrics)
}

/// The `/metrics` response for any listener.
pub fn metrics_text(store: &ModelStore, metrics: &Metrics) -> Response {
    crate::model_store::export_drift(store);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

/// Service identity: name, build, model and replica.
#[utoipa::path(get, path = "/", responses((status = 200, description = "Service identity", body = ServiceInfo)))]
pub async fn service_info(State(state): State<AppState>) -> Json<ServiceInfo> {
    let served = state.store.get();
    Json(ServiceInfo {
        service: "fraudops".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        model_version: served.as_ref().map(|m| m.model.version().to_owned()),
        model_source: served.as_ref().map(|m| m.source.clone()),
        replica_id: state.replica_id.clone(),
    })
}

/// The OpenAPI document.
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi_json.clone(),
    )
        .into_response()
}

const SWAGGER_JS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");
const DOCS_HTML: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fraudops API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>"##;

/// The browsable docs (Swagger UI, vendored: works offline).
pub async fn docs() -> Html<&'static str> {
    Html(DOCS_HTML)
}

/// Swagger UI script.
pub async fn docs_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/javascript"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        SWAGGER_JS,
    )
        .into_response()
}

/// Swagger UI stylesheet.
pub async fn docs_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        SWAGGER_CSS,
    )
        .into_response()
}

/// JSON 404 for unknown routes.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorBody {
            error: "no such route; see /docs".into(),
            field: None,
        }),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model_store::ModelSource;

    /// An app whose feature store is at a closed port: a call that reaches it fails and is scored
    /// without history (200), so a refusal proves the store was never asked.
    fn app() -> AppInner {
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let store = Arc::new(ModelStore::new(metrics.clone(), "test".into(), 300, false));
        store
            .load_initial(&ModelSource::Embedded)
            .expect("embedded model");
        AppInner {
            store,
            metrics,
            replica_id: "test".into(),
            draining: false.into(),
            max_body_bytes: 1 << 20,
            max_batch_size: 10,
            openapi_json: String::new(),
            features: Some(
                FeatureStore::connect(
                    "redis://127.0.0.1:1/0",
                    std::time::Duration::from_millis(50),
                )
                .expect("url"),
            ),
            scores: None,
        }
    }

    const DIRECT: &str = r#"{"transaction_id": 1, "amount": 10, "customer_id": 1, "terminal_id": 2, "tx_datetime": "2018-04-01 10:00:00"}"#;
    const NO_STORE: &str = r#"{"transaction_id": 1, "amount": 10}"#;

    async fn answer(app: &AppInner, body: &str, waited_too_long: bool) -> Result<(), ApiError> {
        let caller = Caller::open();
        let request = ScoringRequest {
            caller: &caller,
            body: body.as_bytes(),
            admitted: Admitted { waited_too_long },
        };
        predict(app, request, Instant::now()).await.map(|_| ())
    }

    #[tokio::test]
    async fn a_direct_call_that_waited_too_long_is_shed_before_the_store() {
        let app = app();
        assert_eq!(answer(&app, DIRECT, true).await, Err(ApiError::Overloaded));
        assert_eq!(
            answer(&app, NO_STORE, true).await,
            Ok(()),
            "without a store call, a small request is cheaper to answer than to shed"
        );
        assert_eq!(
            answer(&app, DIRECT, false).await,
            Ok(()),
            "in time: the store is asked (and, unreachable, the call scores without history)"
        );
    }
}
