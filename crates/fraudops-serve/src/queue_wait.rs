//! How long a request waited for the CPU before the server looked at it: the signal admission sheds on.
//!
//! When the CPU is the bottleneck, the queue is not inside the handlers (each request is scored to
//! completion once polled, so a cap on requests in flight never trips) but in the runtime's run queue:
//! a connection whose bytes arrived is woken, then waits behind every other ready connection before it
//! is polled. [`Timed`] wraps each connection's task (and each HTTP/2 stream's, through
//! [`TimedExecutor`]) and measures exactly that wait, from the wake (or from the accept, for a new
//! connection) to the poll. While the wrapped future is polled, [`current`] returns the wait of this
//! poll, so the admission check at the start of a request reads its own wait.
//!
//! Cost: two reads of the monotonic clock per poll (vDSO, tens of nanoseconds) and one per wake; nothing
//! at all while the server is idle (no probe task, no timer).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;

thread_local! {
    /// The run-queue wait of the poll in progress on this thread, nanoseconds (0 outside a [`Timed`] poll).
    static CURRENT_WAIT_NS: Cell<u64> = const { Cell::new(0) };
}

/// The run-queue wait of the task being polled: how long ago it became ready to run. Zero outside a
/// [`Timed`] task.
pub fn current() -> Duration {
    Duration::from_nanos(CURRENT_WAIT_NS.get())
}

/// Nanoseconds on a process-wide monotonic clock, never 0 (0 means "not woken").
fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// The waker [`Timed`] hands its future: notes when the first wake since the last poll came, then wakes
/// the task.
struct Probe {
    /// When the task was first woken since its last poll; 0 if it has not been.
    woken_at: AtomicU64,
    /// The task's own waker, as of its last poll.
    task: AtomicWaker,
}

impl Wake for Probe {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // The earliest wake counts: a task woken twice before it runs has waited since the first.
        let _ = self
            .woken_at
            .compare_exchange(0, now_ns(), Ordering::Relaxed, Ordering::Relaxed);
        self.task.wake();
    }
}

pin_project_lite::pin_project! {
    /// A future whose every poll knows how long the task waited to be polled ([`current`]).
    pub struct Timed<F> {
        #[pin]
        inner: F,
        probe: Arc<Probe>,
        waker: Waker,
    }
}

impl<F: Future> Timed<F> {
    /// Wraps `inner`; its first poll's wait counts from now (a connection: from its accept).
    pub fn new(inner: F) -> Self {
        let probe = Arc::new(Probe {
            woken_at: AtomicU64::new(now_ns()),
            task: AtomicWaker::new(),
        });
        Self {
            inner,
            waker: Waker::from(probe.clone()),
            probe,
        }
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        this.probe.task.register(cx.waker());
        let woken_at = this.probe.woken_at.swap(0, Ordering::Relaxed);
        let wait = match woken_at {
            0 => 0,
            at => now_ns().saturating_sub(at),
        };
        let outer = CURRENT_WAIT_NS.replace(wait);
        let polled = this.inner.poll(&mut Context::from_waker(this.waker));
        CURRENT_WAIT_NS.set(outer);
        polled
    }
}

/// hyper's executor for HTTP/2 streams: spawns each on tokio inside a [`Timed`], so a stream's request
/// is admitted on its own wait like an HTTP/1 connection's.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimedExecutor;

impl<F> hyper::rt::Executor<F> for TimedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(Timed::new(future));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_task_woken_while_the_thread_is_busy_sees_how_long_it_waited() {
        let (wake, woken) = tokio::sync::oneshot::channel::<()>();
        let timed = tokio::spawn(Timed::new(async move {
            let _ = woken.await;
            current()
        }));
        tokio::task::yield_now().await; // the timed task now waits on the channel
        // Wake it, then keep the only thread busy for 30 ms before it can run.
        tokio::spawn(async move {
            let _ = wake.send(());
            std::thread::sleep(Duration::from_millis(30));
        });
        let waited = timed.await.expect("the timed task runs");
        assert!(
            waited >= Duration::from_millis(30),
            "woken, then 30 ms behind a busy task: saw {waited:?}"
        );
    }

    /// The waits of its first poll and of the poll after a wake from a timer.
    async fn waits_seen() -> (Duration, Duration) {
        let first = current();
        tokio::time::sleep(Duration::from_millis(1)).await;
        (first, current())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_unqueued_task_sees_almost_no_wait_and_outside_a_timed_task_there_is_none() {
        let (first, second) = tokio::spawn(Timed::new(waits_seen()))
            .await
            .expect("the timed task runs");
        assert!(
            first < Duration::from_millis(20),
            "first poll waited {first:?}"
        );
        assert!(
            second < Duration::from_millis(20),
            "second poll waited {second:?}"
        );
        assert_eq!(current(), Duration::ZERO);
    }
}
