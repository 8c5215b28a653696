//! Overload and abuse protection (the mission's DDoS concern): shed excess load at once, limit noisy
//! clients. [`Admission`] does both, in front of the scoring routes only ([`crate::dispatch`]): health,
//! readiness and metrics routes are never behind it.
//!
//! Shedding has two triggers. The one that works when the CPU is the bottleneck is the request's own
//! wait for the CPU ([`crate::queue_wait`]): past MAX_QUEUE_WAIT_MS the caller's deadline is being spent
//! in our run queue, so the request is answered 503 before its body is read or parsed — if its body is
//! large enough for the 503 to save something ([`WORTH_SHEDDING_BYTES`]). Answering costs the same
//! syscalls and HTTP work either way; what a 503 saves is parsing and scoring the body. One transaction
//! takes a few microseconds of that on top of ~25 of HTTP and kernel under a CPU quota, so shedding a
//! single `/predict` would turn answers into refusals at nearly the same CPU (measured:
//! scripts/bench-overload.sh); a batch costs many times its 503 and is shed. The size is the request's
//! own `Content-Length`, known before anything is read, unaffected by how the CPU is shared (a measured
//! handler time is not: a CFS throttling pause inflates it a hundredfold). The cap on
//! requests in flight (MAX_IN_FLIGHT) catches the other case, requests that hold a place while they
//! wait on something else (the feature store): on a busy core each request is scored to completion once
//! polled, so that cap alone never sees a CPU queue. docs/performance.md has the measurements behind the
//! choice.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, header};
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

/// The body size from which shedding a request saves more than its 503 costs: about ten transactions,
/// whose parsing and scoring take several times the HTTP exchange itself (~10 µs at saturation, ~25 µs
/// under a quota). A body of unknown length (chunked) counts as large.
pub const WORTH_SHEDDING_BYTES: u64 = 4096;

/// Admission control for the scoring routes: a request that waited too long for the CPU is shed (503 +
/// `Retry-After`) if its body is worth shedding, then the client's rate limit applies (429), then the cap
/// on requests in flight (503). Shed means answered at once, never queued.
pub struct Admission {
    permits: Semaphore,
    rate_limit: Option<ClientRateLimit>,
    max_queue_wait: Option<Duration>,
}

impl Admission {
    /// Allows `max_in_flight` concurrent scoring requests, each client at most `rate_limit`, and sheds
    /// those that waited longer than `max_queue_wait` for the CPU (`None`: never on the wait).
    pub fn new(
        max_in_flight: usize,
        rate_limit: Option<ClientRateLimit>,
        max_queue_wait: Option<Duration>,
    ) -> Self {
        Self {
            permits: Semaphore::new(max_in_flight.max(1)),
            rate_limit,
            max_queue_wait,
        }
    }

    /// Admits a request from `peer` with these headers that waited `queue_wait` for the CPU, or says why
    /// not. The request holds its place among those in flight until the permit drops, however it ends.
    pub fn admit(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        queue_wait: Duration,
    ) -> Result<SemaphorePermit<'_>, ApiError> {
        // First and cheapest: under CPU overload every instruction spent on a request we shed is taken
        // from one we could have answered in time.
        if self.max_queue_wait.is_some_and(|max| queue_wait > max) && worth_shedding(headers) {
            return Err(ApiError::Overloaded);
        }
        if let Some(limit) = &self.rate_limit {
            limit.check(headers, peer)?;
        }
        self.permits.try_acquire().map_err(|_| ApiError::Overloaded)
    }
}

/// Whether a request with these headers costs enough more than its 503 to be shed on its wait.
fn worth_shedding(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_none_or(|bytes| bytes >= WORTH_SHEDDING_BYTES)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn body_of(bytes: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes));
        headers
    }

    #[test]
    fn a_large_request_that_waited_past_the_limit_is_shed_and_one_within_it_is_admitted() {
        let admission = Admission::new(4, None, Some(20 * MS));
        let batch = body_of(40_000);
        assert_eq!(
            admission.admit(&batch, None, 21 * MS).err(),
            Some(ApiError::Overloaded)
        );
        assert!(admission.admit(&batch, None, 20 * MS).is_ok());
        assert!(admission.admit(&batch, None, Duration::ZERO).is_ok());
        assert_eq!(
            admission.admit(&HeaderMap::new(), None, 21 * MS).err(),
            Some(ApiError::Overloaded),
            "a body of unknown length counts as large"
        );
    }

    #[test]
    fn a_request_cheaper_than_its_503_is_never_shed_on_its_wait() {
        let admission = Admission::new(4, None, Some(20 * MS));
        assert!(admission.admit(&body_of(350), None, 500 * MS).is_ok());
        assert!(
            admission
                .admit(&body_of(WORTH_SHEDDING_BYTES - 1), None, 500 * MS)
                .is_ok()
        );
        assert!(
            admission
                .admit(&body_of(WORTH_SHEDDING_BYTES), None, 500 * MS)
                .is_err()
        );
    }

    #[test]
    fn without_a_wait_limit_only_the_in_flight_cap_sheds() {
        let admission = Admission::new(1, None, None);
        let headers = HeaderMap::new();
        let held = admission.admit(&headers, None, 10_000 * MS);
        assert!(held.is_ok(), "no wait limit: any wait is admitted");
        assert_eq!(
            admission.admit(&headers, None, Duration::ZERO).err(),
            Some(ApiError::Overloaded),
            "the one permit is held"
        );
        drop(held);
        assert!(admission.admit(&headers, None, Duration::ZERO).is_ok());
    }

    #[test]
    fn a_shed_request_does_not_spend_the_clients_rate() {
        let limit = ClientRateLimit::new(1, 1, None);
        let admission = Admission::new(4, limit, Some(MS));
        let headers = body_of(40_000);
        let peer = Some(SocketAddr::from(([10, 0, 0, 1], 1234)));
        for _ in 0..3 {
            assert_eq!(
                admission.admit(&headers, peer, 5 * MS).err(),
                Some(ApiError::Overloaded)
            );
        }
        assert!(admission.admit(&headers, peer, Duration::ZERO).is_ok());
    }
}
