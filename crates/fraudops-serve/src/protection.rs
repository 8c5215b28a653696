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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::BoxError;
use axum::body::{Bytes, HttpBody};
use axum::http::{HeaderMap, header};
use fraudops_wire::ValidationError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body_util::BodyExt;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::auth::{Caller, OPEN_CLIENT};
use crate::error::ApiError;

/// Per-client token buckets: keyed by the authenticated client id, or by the peer address on a server
/// without API keys (never by a header the client sets, which any client can vary).
#[derive(Clone)]
pub struct ClientRateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<Arc<str>>>,
}

impl ClientRateLimit {
    /// `rps` requests per second with `burst` extra; `None` when `rps` is 0 (disabled).
    pub fn new(rps: u32, burst: u32) -> Option<Self> {
        let rps = NonZeroU32::new(rps)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rps);
        Some(Self {
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(rps).allow_burst(burst),
            )),
        })
    }

    /// Forgets clients idle long enough to have a full bucket (bounded memory under address spraying).
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// The bucket of this caller: its client id, or its address when the server has no keys.
    fn key(caller: &Caller, peer: Option<SocketAddr>) -> Arc<str> {
        if &*caller.client != OPEN_CLIENT {
            return caller.client.clone();
        }
        Arc::from(peer.map_or_else(|| "unknown".to_owned(), |peer| format!("ip:{}", peer.ip())))
    }

    /// `Err` with the 429 for a client over its rate.
    fn check(&self, caller: &Caller, peer: Option<SocketAddr>) -> Result<(), ApiError> {
        self.limiter
            .check_key(&Self::key(caller, peer))
            .map_err(|not_until| too_many(&not_until))
    }
}

/// A client's own quota (`rps=` in the keys file): one token bucket shared by its keys.
#[derive(Clone)]
pub struct ClientQuota(Arc<DefaultDirectRateLimiter>);

impl ClientQuota {
    /// `rps` requests per second with `burst` at once.
    pub fn new(rps: u32, burst: u32) -> Self {
        let rps = NonZeroU32::new(rps).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(rps);
        Self(Arc::new(RateLimiter::direct(
            Quota::per_second(rps).allow_burst(burst),
        )))
    }

    /// `Err` with the 429 when the client is over its quota.
    pub fn check(&self) -> Result<(), ApiError> {
        self.0.check().map_err(|not_until| too_many(&not_until))
    }
}

impl PartialEq for ClientQuota {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ClientQuota {}

impl std::fmt::Debug for ClientQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientQuota")
    }
}

/// The 429 of a bucket that has a token again at `not_until`.
fn too_many(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> ApiError {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    ApiError::RateLimited {
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// Bytes of request bodies held in memory at once, over a class of requests: with bodies read before a
/// request takes its place among those in flight, this is what bounds their memory, whatever mix of
/// sizes and speeds the clients send. Charged as bytes arrive (a slow body holds only what it sent).
pub struct BodyBudget {
    held: AtomicUsize,
    limit: usize,
}

/// A body read within the budget; its bytes count against the budget until this is dropped.
pub struct HeldBody<'a> {
    /// The body.
    pub bytes: Bytes,
    budget: &'a BodyBudget,
    held: usize,
}

impl Drop for HeldBody<'_> {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// Bodies declared at most this long are charged to the small bodies' budget: a transaction is ~400
/// bytes, a batch of 30 about 12 KiB.
pub const SMALL_BODY_BYTES: u64 = 16 * 1024;

/// How a body is read: its size limit, its deadline, the budgets it is charged to.
///
/// Two budgets, so that large bodies (batches, or an attacker's slow maximum-size bodies) can never take
/// the memory single transactions need: a quarter of MAX_BODY_BYTES_IN_FLIGHT is kept for bodies that
/// declare at most [`SMALL_BODY_BYTES`], the rest for the others (and for bodies of unknown length).
pub struct BodyLimits {
    /// MAX_BODY_BYTES.
    pub max_bytes: usize,
    /// BODY_READ_TIMEOUT_SECONDS: from the headers to the body's last byte.
    pub deadline: Duration,
    /// For bodies that declare at most [`SMALL_BODY_BYTES`].
    pub small: BodyBudget,
    /// For every other body.
    pub large: BodyBudget,
}

impl BodyLimits {
    /// Bodies of at most `max_bytes`, each read within `deadline`, all together at most `in_flight`
    /// bytes (a quarter of it for small bodies; the large bodies' part never below one largest body).
    pub fn new(max_bytes: usize, deadline: Duration, in_flight: usize) -> Self {
        let small = in_flight / 4;
        let budget = |limit: usize| BodyBudget {
            held: AtomicUsize::new(0),
            limit,
        };
        Self {
            max_bytes,
            deadline,
            small: budget(small.max(SMALL_BODY_BYTES as usize)),
            large: budget((in_flight - small).max(max_bytes)),
        }
    }

    /// Reads a body: 413 when it is (or says it is) larger than the limit, 408 when it is not in within
    /// the deadline, 503 when the bodies in flight already hold the budget.
    pub async fn read<B>(&self, headers: &HeaderMap, body: B) -> Result<HeldBody<'_>, ApiError>
    where
        B: HttpBody<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let limit = self.max_bytes;
        let declared = content_length(headers);
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(ApiError::BodyTooLarge { limit });
        }
        // hyper holds a body to its Content-Length, so a small body stays small.
        let budget = match declared {
            Some(len) if len <= SMALL_BODY_BYTES => &self.small,
            _ => &self.large,
        };
        let mut held = HeldBody {
            bytes: Bytes::new(),
            budget,
            held: 0,
        };
        let read = async {
            let mut body = std::pin::pin!(body);
            let mut chunks: Vec<Bytes> = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| {
                    ApiError::Validation(ValidationError::MalformedJson {
                        message: format!("could not read the request body: {}", e.into()),
                        field: None,
                    })
                })?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if held.held + data.len() > limit {
                    return Err(ApiError::BodyTooLarge { limit });
                }
                if !budget.take(data.len()) {
                    return Err(ApiError::Overloaded);
                }
                held.held += data.len();
                chunks.push(data);
            }
            Ok(join(chunks, held.held))
        };
        let seconds = self.deadline.as_secs();
        held.bytes = tokio::time::timeout(self.deadline, read)
            .await
            .map_err(|_| ApiError::BodyTimeout { seconds })??;
        Ok(held)
    }
}

impl BodyBudget {
    /// Charges `n` bytes; `false` (nothing charged) when that would exceed the budget.
    fn take(&self, n: usize) -> bool {
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                (held + n <= self.limit).then_some(held + n)
            })
            .is_ok()
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// A body's frames as one buffer (nearly always one frame: no copy).
fn join(mut chunks: Vec<Bytes>, len: usize) -> Bytes {
    if chunks.len() <= 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut joined = bytes::BytesMut::with_capacity(len);
    for chunk in chunks {
        joined.extend_from_slice(&chunk);
    }
    joined.freeze()
}

/// The `Content-Length` a request declares.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The body size from which shedding a request saves more than its 503 costs: about ten transactions,
/// whose parsing and scoring take several times the HTTP exchange itself (~10 µs at saturation, ~25 µs
/// under a quota). A body of unknown length (chunked) counts as large.
pub const WORTH_SHEDDING_BYTES: u64 = 4096;

/// Admission control for the scoring routes: a request that waited too long for the CPU is shed (503 +
/// `Retry-After`) if its body is worth shedding, then the client's rate limit applies (429); once its body
/// is in, the cap on requests in flight (503). Shed means answered at once, never queued.
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

    /// Admits a request of `caller` from `peer` with these headers that waited `queue_wait` for the CPU,
    /// before its body is read, or says why not.
    pub fn admit(
        &self,
        headers: &HeaderMap,
        caller: &Caller,
        peer: Option<SocketAddr>,
        queue_wait: Duration,
    ) -> Result<Admitted, ApiError> {
        // First and cheapest: under CPU overload every instruction spent on a request we shed is taken
        // from one we could have answered in time.
        let waited_too_long = self.max_queue_wait.is_some_and(|max| queue_wait > max);
        if waited_too_long && worth_shedding(headers) {
            return Err(ApiError::Overloaded);
        }
        match (&caller.quota, &self.rate_limit) {
            (Some(own), _) => own.check()?,
            (None, Some(limit)) => limit.check(caller, peer)?,
            (None, None) => {}
        }
        Ok(Admitted { waited_too_long })
    }

    /// A place among the requests in flight, taken once the body is in; held until the permit drops,
    /// however the request ends.
    pub fn permit(&self) -> Result<SemaphorePermit<'_>, ApiError> {
        self.permits.try_acquire().map_err(|_| ApiError::Overloaded)
    }
}

/// What admission learned about a request it let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// The request waited longer than MAX_QUEUE_WAIT_MS for the CPU but was too small to be worth
    /// shedding unread: if it turns out to need the feature store (a direct call), it is shed before the
    /// store call, which costs Redis far more than the 503 costs us.
    pub waited_too_long: bool,
}

/// Whether a request with these headers costs enough more than its 503 to be shed on its wait.
fn worth_shedding(headers: &HeaderMap) -> bool {
    content_length(headers).is_none_or(|bytes| bytes >= WORTH_SHEDDING_BYTES)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn open() -> Caller {
        Caller::open()
    }

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
            admission.admit(&batch, &open(), None, 21 * MS).err(),
            Some(ApiError::Overloaded)
        );
        assert!(admission.admit(&batch, &open(), None, 20 * MS).is_ok());
        assert!(
            admission
                .admit(&batch, &open(), None, Duration::ZERO)
                .is_ok()
        );
        assert_eq!(
            admission
                .admit(&HeaderMap::new(), &open(), None, 21 * MS)
                .err(),
            Some(ApiError::Overloaded),
            "a body of unknown length counts as large"
        );
    }

    #[test]
    fn a_request_cheaper_than_its_503_is_never_shed_on_its_wait() {
        let admission = Admission::new(4, None, Some(20 * MS));
        assert!(
            admission
                .admit(&body_of(350), &open(), None, 500 * MS)
                .is_ok()
        );
        assert!(
            admission
                .admit(&body_of(WORTH_SHEDDING_BYTES - 1), &open(), None, 500 * MS)
                .is_ok()
        );
        assert!(
            admission
                .admit(&body_of(WORTH_SHEDDING_BYTES), &open(), None, 500 * MS)
                .is_err()
        );
    }

    #[test]
    fn without_a_wait_limit_only_the_in_flight_cap_sheds() {
        let admission = Admission::new(1, None, None);
        let headers = HeaderMap::new();
        let admitted = admission.admit(&headers, &open(), None, 10_000 * MS);
        assert_eq!(
            admitted,
            Ok(Admitted {
                waited_too_long: false
            }),
            "no wait limit: any wait is admitted"
        );
        let held = admission.permit();
        assert!(held.is_ok());
        assert_eq!(
            admission.permit().err(),
            Some(ApiError::Overloaded),
            "the one permit is held"
        );
        drop(held);
        assert!(admission.permit().is_ok());
    }

    #[test]
    fn a_small_request_that_waited_too_long_is_admitted_and_marked() {
        let admission = Admission::new(4, None, Some(20 * MS));
        assert_eq!(
            admission.admit(&body_of(350), &open(), None, 21 * MS),
            Ok(Admitted {
                waited_too_long: true
            })
        );
    }

    #[test]
    fn a_shed_request_does_not_spend_the_clients_rate() {
        let limit = ClientRateLimit::new(1, 1);
        let admission = Admission::new(4, limit, Some(MS));
        let headers = body_of(40_000);
        let peer = Some(SocketAddr::from(([10, 0, 0, 1], 1234)));
        for _ in 0..3 {
            assert_eq!(
                admission.admit(&headers, &open(), peer, 5 * MS).err(),
                Some(ApiError::Overloaded)
            );
        }
        assert!(
            admission
                .admit(&headers, &open(), peer, Duration::ZERO)
                .is_ok()
        );
    }

    #[test]
    fn the_quota_follows_the_client_id_not_the_address() {
        let admission = Admission::new(4, ClientRateLimit::new(1, 1), None);
        let caller = |id: &str| Caller {
            client: Arc::from(id),
            scopes: crate::auth::Scopes::ALL,
            quota: None,
            namespace: fraudops_store::Namespace::Real,
        };
        let a = Some(SocketAddr::from(([10, 0, 0, 1], 1)));
        let b = Some(SocketAddr::from(([10, 0, 0, 2], 1)));
        let h = HeaderMap::new();
        assert!(admission.admit(&h, &caller("pay"), a, MS).is_ok());
        assert!(
            matches!(
                admission.admit(&h, &caller("pay"), b, MS),
                Err(ApiError::RateLimited { .. })
            ),
            "another address does not give the client a second bucket"
        );
        assert!(admission.admit(&h, &caller("worker"), a, MS).is_ok());
        // Without keys, the address is all there is.
        assert!(admission.admit(&h, &open(), a, MS).is_ok());
        assert!(admission.admit(&h, &open(), b, MS).is_ok());
    }

    fn chunked(
        parts: &[&'static [u8]],
    ) -> impl HttpBody<Data = Bytes, Error = std::convert::Infallible> {
        let frames: Vec<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>> = parts
            .iter()
            .map(|p| Ok(hyper::body::Frame::data(Bytes::from_static(p))))
            .collect();
        http_body_util::StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn bodies_in_flight_never_hold_more_than_the_budget() {
        let limits = BodyLimits::new(8, Duration::from_secs(1), 10);
        assert_eq!(limits.large.limit, 8, "at least one largest body");
        let first = limits
            .read(&HeaderMap::new(), chunked(&[b"1234", b"5678"]))
            .await
            .expect("within the budget");
        assert_eq!(&first.bytes[..], b"12345678");
        assert_eq!(limits.large.held(), 8);
        assert_eq!(
            limits
                .read(&HeaderMap::new(), chunked(&[b"abc"]))
                .await
                .err(),
            Some(ApiError::Overloaded),
            "8 + 3 bytes exceed the large bodies' budget of 8"
        );
        assert_eq!(limits.large.held(), 8, "a refused body holds nothing");
        drop(first);
        assert_eq!(limits.large.held(), 0);
        assert_eq!(
            limits
                .read(&HeaderMap::new(), chunked(&[b"12345", b"6789"]))
                .await
                .err(),
            Some(ApiError::BodyTooLarge { limit: 8 })
        );
        assert_eq!(limits.large.held(), 0);
    }

    #[tokio::test]
    async fn large_bodies_cannot_take_the_memory_of_small_ones() {
        let limits = BodyLimits::new(1 << 20, Duration::from_secs(1), 4 << 20);
        let big = vec![b'x'; 1 << 20];
        let mut held = Vec::new();
        for _ in 0..3 {
            let body = http_body_util::Full::new(Bytes::from(big.clone()));
            held.push(limits.read(&HeaderMap::new(), body).await.expect("large"));
        }
        let fourth = http_body_util::Full::new(Bytes::from(big.clone()));
        assert_eq!(
            limits.read(&HeaderMap::new(), fourth).await.err(),
            Some(ApiError::Overloaded),
            "3 MiB of 4 go to large bodies"
        );
        let small = b"{\"transaction_id\": 1, \"amount\": 1}";
        let body = http_body_util::Full::new(Bytes::from_static(small));
        let read = limits
            .read(&body_of(small.len() as u64), body)
            .await
            .expect("a transaction still gets in");
        assert_eq!(limits.small.held(), small.len());
        drop((read, held));
        assert_eq!(limits.small.held() + limits.large.held(), 0);
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_is_a_408() {
        let limits = BodyLimits::new(1024, Duration::from_millis(50), 4096);
        let never = http_body_util::StreamBody::new(futures_util::stream::pending::<
            Result<hyper::body::Frame<Bytes>, std::convert::Infallible>,
        >());
        assert_eq!(
            limits.read(&HeaderMap::new(), never).await.err(),
            Some(ApiError::BodyTimeout { seconds: 0 })
        );
        assert_eq!(limits.large.held(), 0);
    }
}
