//! The tower layer that counts every HTTP request by route template (never the raw path), its status,
//! latency and error kind, and keeps `http_requests_in_progress` true however a request ends.
//!
//! It wraps the axum router, which serves every route but the two scoring ones; [`crate::dispatch`]
//! counts those itself, the same way.
//!
//! Hand-written rather than `axum::middleware::from_fn`, which boxes a future and clones its state and
//! the inner service on every request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use tower::{Layer, Service};

use crate::telemetry::ErrorKind;
use crate::telemetry::Metrics;

/// Wraps every route of the router (`Router::layer`), so the route template is known.
#[derive(Clone)]
pub struct TrackLayer {
    metrics: Arc<Metrics>,
}

impl TrackLayer {
    /// Counts into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`TrackLayer`] wraps around a route.
#[derive(Clone)]
pub struct Track<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for Track<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Both are cheap clones (a shared string, a known method), not copies of the text.
        let endpoint = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        let in_progress = InProgress::enter(self.metrics.clone());
        TrackFuture {
            inner: self.inner.call(request),
            started: Instant::now(),
            endpoint,
            method,
            in_progress,
        }
    }
}

/// `http_requests_in_progress` up while it lives: a request dropped half-way (client gone, shutdown)
/// is no longer counted as in progress.
pub(crate) struct InProgress(Arc<Metrics>);

impl InProgress {
    pub(crate) fn enter(metrics: Arc<Metrics>) -> Self {
        metrics.http_in_progress.inc();
        Self(metrics)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.http_in_progress.dec();
    }
}

pin_project_lite::pin_project! {
    /// A tracked request: counted when its response is ready.
    pub struct TrackFuture<F> {
        #[pin]
        inner: F,
        started: Instant,
        endpoint: Option<MatchedPath>,
        method: Method,
        in_progress: InProgress,
    }
}

impl<F, E> Future for TrackFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            this.in_progress.0.record_request(
                this.method.as_str(),
                this.endpoint
                    .as_ref()
                    .map_or("unmatched", MatchedPath::as_str),
                response.status(),
                this.started.elapsed().as_secs_f64(),
                response.extensions().get::<ErrorKind>().copied(),
            );
        }
        Poll::Ready(result)
    }
}
