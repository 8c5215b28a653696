//! The service every connection runs: `POST /predict` and `POST /predict/batch`, nearly all of the
//! traffic, are answered straight from hyper (admission, tracking, handler); every other request goes
//! through the axum router, which tracks it with [`crate::tracking::TrackLayer`].
//!
//! Why not the router for everything: on one core, axum's per-request machinery (the router clone, route
//! match, the extension map for the matched path, a boxed handler future, boxed bodies) was ~14% of
//! serve's user time for `/predict` in `perf`, more than parsing the transaction. The scoring routes are
//! two fixed paths, so matching them by hand costs nothing and the rest keeps axum's conveniences.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::BoxError;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fraudops_wire::ErrorBody;
use tower::ServiceExt;

use crate::auth::{AuthFailure, Authenticator, UNKNOWN_CLIENT};
use crate::error::ApiError;
use crate::protection::{Admission, BodyLimits};
use crate::queue_wait;
use crate::routes::{self, AppState, ScoringRequest};
use crate::telemetry::{ClientRefusal, SCORING_ENDPOINTS};
use crate::tracking::InProgress;

/// The two routes on the fast path, in the order of [`SCORING_ENDPOINTS`], which spells their templates
/// (the `endpoint` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoringRoute {
    /// `POST /predict`.
    Single = 0,
    /// `POST /predict/batch`.
    Batch = 1,
}

impl ScoringRoute {
    /// The route a request path names, if it is a scoring route (the query string is not part of it).
    pub fn of_path(path: &str) -> Option<Self> {
        [Self::Single, Self::Batch]
            .into_iter()
            .find(|route| route.template() == path)
    }

    /// The route template, as metrics label it.
    pub fn template(self) -> &'static str {
        SCORING_ENDPOINTS[self as usize]
    }
}

/// Routes each request: scoring routes to the fast path, the rest to the router.
pub struct Dispatch {
    state: AppState,
    guard: ScoringGuard,
    router: Router,
    coalesce_writes: bool,
}

/// What stands between a scoring request and its handler, in the order it applies: who is calling
/// (401), admission before the body is read (503 on the CPU wait, 429 on the client's quota), the body
/// read within its size, deadline and the budget of bodies in flight (413, 408, 503), then the cap on
/// requests in flight (503).
pub struct ScoringGuard {
    /// API keys.
    pub auth: Arc<Authenticator>,
    /// Shedding, quotas and the in-flight cap.
    pub admission: Admission,
    /// How bodies are read.
    pub bodies: BodyLimits,
}

impl Dispatch {
    /// `router` serves everything but the scoring routes; `guard` guards the scoring routes;
    /// `coalesce_writes` as `COALESCE_WRITES` says.
    pub fn new(
        state: AppState,
        guard: ScoringGuard,
        router: Router,
        coalesce_writes: bool,
    ) -> Self {
        Self {
            state,
            guard,
            router,
            coalesce_writes,
        }
    }

    /// Answers one request from `peer` (the quota's key on a server without API keys).
    pub async fn handle<B>(&self, request: Request<B>, peer: Option<SocketAddr>) -> Response
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        match ScoringRoute::of_path(request.uri().path()) {
            Some(route) => self.score(route, request, peer).await,
            None => match self.router.clone().oneshot(request.map(Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
        }
    }

    /// A scoring request from arrival to response, counted like every other request.
    async fn score<B>(
        &self,
        route: ScoringRoute,
        request: Request<B>,
        peer: Option<SocketAddr>,
    ) -> Response
    where
        B: HttpBody<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        // Read first: the wait of the poll that brought this request (see `queue_wait`).
        let queue_wait = queue_wait::current();
        let metrics = &self.state.metrics;
        metrics.queue_wait.observe(queue_wait.as_secs_f64());
        let _in_progress = InProgress::enter(metrics.clone());
        let method = request.method().clone();
        let response = if method != Method::POST {
            method_not_allowed()
        } else {
            self.answer(route, request, peer, queue_wait, started)
                .await
                .unwrap_or_else(IntoResponse::into_response)
        };
        if self.coalesce_writes {
            // Write coalescing: every request the runtime found ready with this one is scored before
            // any response is written, then the responses go out back to back. The kernel's send path
            // then runs N times in a row with warm caches instead of interleaved with our code, and a
            // client on the same host (a sidecar, the stream worker, a load generator) that sleeps
            // between responses is woken once per batch, not once per response. The cost: one more task
            // poll, plus, when nothing else is ready (low rates), one more zero-timeout poll of the I/O
            // driver (about one more epoll_wait per request; docs/performance.md has the measurement);
            // and a response waits for at most one batch of scoring.
            tokio::task::yield_now().await;
        }
        metrics.record_request(
            method.as_str(),
            route.template(),
            response.status(),
            started.elapsed().as_secs_f64(),
            response.extensions().get().copied(),
        );
        response
    }
}

impl Dispatch {
    /// A scoring request through [`ScoringGuard`] to its handler.
    async fn answer<B>(
        &self,
        route: ScoringRoute,
        request: Request<B>,
        peer: Option<SocketAddr>,
        queue_wait: Duration,
        started: Instant,
    ) -> Result<Response, ApiError>
    where
        B: HttpBody<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let metrics = &self.state.metrics;
        let (parts, body) = request.into_parts();
        let caller = self
            .guard
            .auth
            .authenticate(&parts.headers)
            .map_err(|why| {
                metrics.refuse_client(
                    UNKNOWN_CLIENT,
                    match why {
                        AuthFailure::MissingKey => ClientRefusal::MissingKey,
                        AuthFailure::InvalidKey => ClientRefusal::InvalidKey,
                    },
                );
                ApiError::Unauthenticated(why)
            })?;
        let admitted = self
            .guard
            .admission
            .admit(&parts.headers, &caller, peer, queue_wait)
            .inspect_err(|e| {
                if matches!(e, ApiError::RateLimited { .. }) {
                    metrics.refuse_client(&caller.client, ClientRefusal::Quota);
                }
            })?;
        routes::check_content_type(&parts.headers)?;
        let body = self.guard.bodies.read(&parts.headers, body).await?;
        let _permit = self.guard.admission.permit()?;
        let request = ScoringRequest {
            caller: &caller,
            body: &body.bytes,
            admitted,
        };
        Ok(match route {
            ScoringRoute::Single => routes::predict(&self.state, request, started)
                .await?
                .into_response(),
            ScoringRoute::Batch => routes::predict_batch(&self.state, request, started)
                .await?
                .into_response(),
        })
    }
}

/// The scoring routes take POST only; the answer names it, as axum's method router would.
fn method_not_allowed() -> Response {
    let mut response = (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(ErrorBody {
            error: "method not allowed; use POST".into(),
            field: None,
        }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}
