//! Overload and abuse protection (the mission's DDoS concern): shed excess load at once, limit noisy
//! clients. Health, readiness and metrics routes are never behind these layers.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// A cap on prediction requests in flight; beyond it requests get 503 + `Retry-After` immediately.
#[derive(Clone)]
pub struct LoadShedder {
    permits: Arc<Semaphore>,
}

impl LoadShedder {
    /// Allows `max_in_flight` concurrent prediction requests.
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
        }
    }
}

/// Middleware: run the request if a permit is free, otherwise shed it.
pub async fn shed(State(shedder): State<LoadShedder>, request: Request, next: Next) -> Response {
    match shedder.permits.clone().try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => ApiError::Overloaded.into_response(),
    }
}

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
}

/// Middleware: 429 + `Retry-After` for a client over its rate.
pub async fn rate_limit(
    State(limit): State<ClientRateLimit>,
    request: Request,
    next: Next,
) -> Response {
    let key = limit.key(&request);
    match limit.limiter.check_key(&key) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
            .into_response()
        }
    }
}
