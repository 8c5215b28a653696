//! [`ScoreRecorder`]: scorers hand each prediction to a background task that writes them to the store in
//! batches, so recording never adds latency to an answer nor fails one.
//!
//! Why a queue and a task rather than a call per request: the write is not needed for the answer, and
//! Redis is the cost of the store (a script per request already); a batch of up to [`MAX_BATCH`] scores
//! is one pipelined round trip. When the queue is full (the store is slow or down) a score is dropped and
//! the caller counts it; its label is then counted as unscored by the label consumer.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::client::{FeatureStore, ScoreRecord};
use crate::error::StoreError;

/// Most scores written in one round trip.
pub const MAX_BATCH: usize = 512;

/// Hands scores to the writer task. Cheap to clone; the task ends when every clone is dropped, or at
/// [`ScoreRecorder::stop`], after writing what is queued.
#[derive(Clone)]
pub struct ScoreRecorder {
    queue: mpsc::Sender<ScoreRecord>,
    stop: Arc<Notify>,
}

impl ScoreRecorder {
    /// Starts the writer with room for `capacity` queued scores; `on_error(scores, error)` is called for
    /// each batch the store did not take (the batch is not retried: a lost entry costs one unscored label).
    pub fn spawn(
        store: FeatureStore,
        capacity: usize,
        on_error: impl Fn(usize, &StoreError) + Send + 'static,
    ) -> (Self, JoinHandle<()>) {
        let (queue, mut rx) = mpsc::channel::<ScoreRecord>(capacity.max(1));
        let stop = Arc::new(Notify::new());
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            loop {
                let n = tokio::select! {
                    n = rx.recv_many(&mut batch, MAX_BATCH) => n,
                    () = stopped.notified() => {
                        // No more scores are taken; what is queued is written, then the task ends.
                        rx.close();
                        rx.recv_many(&mut batch, MAX_BATCH).await
                    }
                };
                if n == 0 {
                    break;
                }
                if let Err(error) = store.record_scores(&batch).await {
                    on_error(batch.len(), &error);
                }
                batch.clear();
            }
        });
        (Self { queue, stop }, task)
    }

    /// Stops taking scores; the writer task writes what is queued and ends (await its handle). At
    /// SIGTERM: the scores of the last requests reach the store, so their labels find them.
    pub fn stop(&self) {
        self.stop.notify_one();
    }

    /// Queues one score without waiting; `false` if the queue is full or the writer has stopped (the
    /// caller counts it).
    pub fn record(&self, record: ScoreRecord) -> bool {
        self.queue.try_send(record).is_ok()
    }
}
