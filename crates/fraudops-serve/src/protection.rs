//! Overload and abuse protection (the mission's DDoS concern): shed excess load at once, limit noisy
//! clients. One tower layer does both, in front of the scoring routes only: health, readiness and
//! metrics routes are never behind it.
//!
//! Hand-written rather than two `axum::middleware::from_fn`s: each of those boxes a future, clones its
//! state and the inner service per request, which on one core cost more than the checks themselves.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use crate::error::ApiError;

/// Per-client token buckets keyed by a header (an API key) or the peer address.
#[derive(Clone)]
pub struct ClientRateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    key_header: Option<String>,
}

impl ClientRateLimit {
    /// `rps` requests per second with `burst` extra; `None` when `rps` is 0 (disabled).
    pub fn new(rps: u32, burst: u32, key_header: Option<String>) -> Option<Self> {
        let rps = NonZeroU32::new(rps)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rps);
        Some(Self {
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(rps).allow_burst(burst),
            )),
            key_header: key_header.map(|h| h.to_ascii_lowercase()),
        })
    }

    /// Forgets clients idle long enough to have a full bucket (bounded memory under address spraying).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn key(&self, request: &Request) -> String {
        if let Some(value) = self
            .key_header
            .as_deref()
            .and_then(|h| request.headers().get(h))
            .and_then(|v| v.to_str().ok())
        {
            return format!("h:{value}");
        }
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |ci| format!("ip:{}", ci.0.ip()))
    }

    /// `Err` with the 429 for a client over its rate.
    fn check(&self, request: &Request) -> Result<(), ApiError> {
        self.limiter
            .check_key(&self.key(request))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                ApiError::RateLimited {
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                }
            })
    }
}

/// Admission control for the scoring routes: the client's rate limit first (429), then a cap on
/// requests in flight, beyond which requests get 503 + `Retry-After` immediately (shed, not queued).
#[derive(Clone)]
pub struct AdmissionLayer {
    permits: Arc<Semaphore>,
    rate_limit: Option<ClientRateLimit>,
}

impl AdmissionLayer {
    /// Allows `max_in_flight` concurrent scoring requests, each client at most `rate_limit`.
    pub fn new(max_in_flight: usize, rate_limit: Option<ClientRateLimit>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
            rate_limit,
        }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`AdmissionLayer`] wraps around a route.
#[derive(Clone)]
pub struct Admission<S> {
    inner: S,
    layer: AdmissionLayer,
}

impl<S> Service<Request> for Admission<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = AdmissionFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(Err(refused)) = self.layer.rate_limit.as_ref().map(|l| l.check(&request)) {
            return AdmissionFuture::Refused {
                response: Some(refused.into_response()),
            };
        }
        match self.layer.permits.clone().try_acquire_owned() {
            Ok(permit) => AdmissionFuture::Admitted {
                inner: self.inner.call(request),
                permit,
            },
            Err(_) => AdmissionFuture::Refused {
                response: Some(ApiError::Overloaded.into_response()),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// An admitted request, holding its in-flight permit until the response is ready, or the refusal.
    #[project = AdmissionProj]
    pub enum AdmissionFuture<F> {
        /// Running; the permit is released when the response is ready or the request is dropped.
        Admitted {
            #[pin]
            inner: F,
            permit: OwnedSemaphorePermit,
        },
        /// Refused; the response, until taken.
        Refused { response: Option<Response> },
    }
}

impl<F, E> Future for AdmissionFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AdmissionProj::Admitted { inner, permit: _ } => inner.poll(cx),
            AdmissionProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| ApiError::Overloaded.into_response()))),
        }
    }
}
