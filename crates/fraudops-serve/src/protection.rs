//! Overload and abuse protection (the mission's DDoS concern): shed excess load at once, limit noisy
//! clients. [`Admission`] does both, in front of the scoring routes only ([`crate::dispatch`]): health,
//! readiness and metrics routes are never behind it.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};

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

    fn key(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
        if let Some(value) = self
            .key_header
            .as_deref()
            .and_then(|h| headers.get(h))
            .and_then(|v| v.to_str().ok())
        {
            return format!("h:{value}");
        }
        peer.map_or_else(|| "unknown".to_owned(), |peer| format!("ip:{}", peer.ip()))
    }

    /// `Err` with the 429 for a client over its rate.
    fn check(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<(), ApiError> {
        self.limiter
            .check_key(&self.key(headers, peer))
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
pub struct Admission {
    permits: Semaphore,
    rate_limit: Option<ClientRateLimit>,
}

impl Admission {
    /// Allows `max_in_flight` concurrent scoring requests, each client at most `rate_limit`.
    pub fn new(max_in_flight: usize, rate_limit: Option<ClientRateLimit>) -> Self {
        Self {
            permits: Semaphore::new(max_in_flight.max(1)),
            rate_limit,
        }
    }

    /// Admits a request from `peer` with these headers, or says why not. The request holds its place
    /// among those in flight until the permit drops, however it ends.
    pub fn admit(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<SemaphorePermit<'_>, ApiError> {
        if let Some(limit) = &self.rate_limit {
            limit.check(headers, peer)?;
        }
        self.permits.try_acquire().map_err(|_| ApiError::Overloaded)
    }
}
