//! The accept loop and what bounds each connection: how many may be open (MAX_CONNECTIONS), how long one
//! may take to send its headers or sit idle (HEADER_READ_TIMEOUT_SECONDS), how much it may buffer, and
//! the run-queue wait of its task ([`crate::queue_wait`]) that admission sheds on.
//!
//! An attacker's cheapest weapon is an open connection: one that sends nothing, or its headers a byte at
//! a time (slowloris). Each is bounded here: a connection that has sent nothing or no complete header
//! within the timeout is closed, one past the cap is closed at accept (and counted), and hyper's read
//! buffer is capped so an open connection costs a few kilobytes however it behaves.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::dispatch::Dispatch;
use crate::queue_wait::{Timed, TimedExecutor};
use crate::telemetry::Metrics;

/// hyper's read buffer per connection at most (its minimum is 8 KiB): a request's headers and the part of
/// its body in flight; bodies are streamed into the handler, which enforces MAX_BODY_BYTES.
const MAX_READ_BUFFER: usize = 64 * 1024;
/// HTTP/2 streams one connection may have open: a client that multiplexes gets parallelism, not a queue
/// of its own inside the server.
const MAX_STREAMS_PER_CONNECTION: u32 = 64;
/// File descriptors kept for everything but client connections (listeners, the store, logs, model files).
const RESERVED_FDS: u64 = 64;

/// The bounds every connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Client connections open at once, after the file-descriptor cap.
    pub max_connections: usize,
    /// Time to the end of a request's headers, idle keep-alive time included.
    pub header_read_timeout: Duration,
}

impl ConnectionLimits {
    /// `max_connections` as configured, lowered to what the process's file-descriptor limit allows once
    /// the soft limit is raised to the hard one (containers often start with a soft limit of 1,024).
    pub fn new(max_connections: usize, header_read_timeout: Duration) -> Self {
        let allowed = raise_fd_limit()
            .map(|fds| fds.saturating_sub(RESERVED_FDS).max(1))
            .and_then(|fds| usize::try_from(fds).ok())
            .unwrap_or(usize::MAX);
        if allowed < max_connections {
            tracing::warn!(
                event = "max_connections_lowered",
                configured = max_connections,
                allowed,
                "the file-descriptor limit allows fewer connections than MAX_CONNECTIONS"
            );
        }
        Self {
            max_connections: max_connections.min(allowed).max(1),
            header_read_timeout,
        }
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns it (`None` if it cannot be read).
fn raise_fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// One open connection: counted in the gauge and the cap while it lives.
struct OpenConnection {
    open: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl OpenConnection {
    /// Takes a place among the open connections, or `None` when all `max` are taken.
    fn enter(open: &Arc<AtomicUsize>, max: usize, metrics: &Arc<Metrics>) -> Option<Self> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()?;
        metrics.connections_open.inc();
        Some(Self {
            open: open.clone(),
            metrics: metrics.clone(),
        })
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.metrics.connections_open.dec();
    }
}

/// Accepts connections and serves each with `dispatch` (HTTP/1.1 or HTTP/2, keep-alive) within `limits`
/// until `stop` resolves; then stops accepting, asks every connection to finish its request in flight
/// and close, and returns when all have. What `axum::serve` does, with [`Dispatch`] in place of a router
/// and the bounds above.
pub async fn serve_connections(
    listener: TcpListener,
    dispatch: Arc<Dispatch>,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()>,
) {
    let mut builder = ConnectionBuilder::new(TimedExecutor);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_READ_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .keep_alive_interval(limits.header_read_timeout / 2)
        .keep_alive_timeout(limits.header_read_timeout / 2);
    let builder = Arc::new(builder);
    let open = Arc::new(AtomicUsize::new(0));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    wait_after_accept_error(e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Some(place) = OpenConnection::enter(&open, limits.max_connections, &metrics) else {
            // Closed at once: the client learns now, instead of waiting in the accept backlog.
            metrics.connections_refused.inc();
            drop(stream);
            continue;
        };
        // Responses are written whole; never let Nagle hold the tail of a large one for an ACK.
        let _ = stream.set_nodelay(true);
        let dispatch = dispatch.clone();
        let service = service_fn(move |request| {
            let dispatch = dispatch.clone();
            async move { Ok::<_, Infallible>(dispatch.handle(request, Some(peer)).await) }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let timeout = limits.header_read_timeout;
        tokio::spawn(Timed::new(async move {
            let _place = place;
            // Until its first byte the connection is hyper's protocol sniffing, which has no timer of its
            // own: a client that connects and sends nothing is closed here.
            let mut first = [0u8; 1];
            match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
                Ok(Ok(1..)) => {}
                _ => return, // silent past the timeout, closed, or broken
            }
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(event = "connection_error", peer = %peer, error = %e);
            }
        }));
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A client that resets its connection before it is accepted is no reason to pause; running out of
/// file descriptors (an attack, a leak) is: retrying at once would spin on the same error.
async fn wait_after_accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(event = "accept_failed", error = %e, "pausing accepts for one second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_holds_and_a_closed_connection_frees_its_place() {
        let metrics = Arc::new(Metrics::new().expect("metrics register"));
        let open = Arc::new(AtomicUsize::new(0));
        let first = OpenConnection::enter(&open, 2, &metrics);
        let second = OpenConnection::enter(&open, 2, &metrics);
        assert!(first.is_some() && second.is_some());
        assert!(OpenConnection::enter(&open, 2, &metrics).is_none());
        assert_eq!(metrics.connections_open.get(), 2);
        drop(first);
        assert_eq!(metrics.connections_open.get(), 1);
        assert!(OpenConnection::enter(&open, 2, &metrics).is_some());
    }

    #[test]
    fn the_limits_never_exceed_what_the_descriptors_allow() {
        let limits = ConnectionLimits::new(usize::MAX, Duration::from_secs(1));
        let fds = raise_fd_limit();
        match fds {
            Some(fds) => assert!(limits.max_connections as u64 <= fds),
            None => assert_eq!(limits.max_connections, usize::MAX),
        }
        assert_eq!(
            ConnectionLimits::new(10, Duration::from_secs(1)).max_connections,
            10
        );
    }
}
