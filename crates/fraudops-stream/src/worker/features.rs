//! The feature stage: events leave it in the order they arrived, each with its windows from the shared
//! feature store, one store call for every batch of events waiting.
//!
//! Why a stage of its own: a card's events must reach the store in order (its windows include every
//! earlier transaction), while scoring runs concurrently. One task takes the events in arrival order,
//! asks the store for all that are queued in one round trip (a pipelined script, not one call each), and
//! only then hands them to scoring. With the store shared, any number of workers are exact: a card's
//! events are on one partition (keyed by customer), and a terminal's delayed windows count labelled
//! transactions, which `fraudops labels` records whoever scored them.
//!
//! Without a store, events go on without windows (the API decides: its own store, or no history). When
//! the store fails, the batch waits for it (see [`spawn`]), at most FEATURE_STORE_MAX_WAIT, and only then is
//! scored without history, counted and logged.

use std::time::{Duration, Instant};

use fraudops_features::FeatureRow;
use fraudops_store::{FeatureStore, Observation, Recorded};
use fraudops_wire::FeatureSource;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::message::Event;
use crate::telemetry::KafkaMetrics;

/// Most events in one store call: big enough to amortize the round trip at high rates, small enough
/// that one slow call holds few events.
pub const MAX_BATCH: usize = 256;

/// An event's windows as this stage found them.
#[derive(Debug, Clone, Copy)]
pub struct Found {
    /// The row with the store's windows (`None` without a store or when the store failed).
    pub row: Option<FeatureRow>,
    /// `store`, `none` (no store) or `store_unavailable` (the call failed).
    pub source: FeatureSource,
}

/// First pause before asking a failing store again; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Runs the stage until `events` closes: every event is handed to `then` in arrival order with what was
/// found for it. When the store fails, the batch waits and is tried again with backoff, for at most
/// `max_wait` (FEATURE_STORE_MAX_WAIT): the events are not scored, so not committed, and the consumer
/// stops reading once MAX_IN_FLIGHT are held — the lag grows and `HighKafkaQueueLength` fires, rather
/// than every transaction of the outage being scored without history and never recorded. Past
/// `max_wait` the batch is scored without history (`store_unavailable`, counted). On shutdown a waiting
/// batch is dropped unscored: its offsets are not committed, so it is read again after a restart.
pub fn spawn<T: Send + 'static>(
    store: Option<FeatureStore>,
    max_wait: Duration,
    metrics: KafkaMetrics,
    mut events: mpsc::Receiver<(Event, T)>,
    mut then: impl FnMut(Event, Found, T) + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while events.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let mut source = FeatureSource::None;
            let windows = match &store {
                Some(store) => {
                    let observations: Vec<Observation> =
                        batch.iter().map(|(e, _)| e.observation()).collect();
                    let first_try = Instant::now();
                    let mut backoff = FIRST_BACKOFF;
                    loop {
                        let started = Instant::now();
                        let result = store.observe(&observations).await;
                        metrics.feature_store_call(started.elapsed().as_secs_f64());
                        match result {
                            Ok(windows) => break Some(windows),
                            Err(error) => {
                                metrics.feature_store_failed(&error, batch.len());
                                let waited = first_try.elapsed();
                                if waited >= max_wait {
                                    metrics.scored_without_history(batch.len());
                                    source = FeatureSource::StoreUnavailable;
                                    break None;
                                }
                                if events.is_closed() {
                                    // Shutting down: leave the batch unscored and uncommitted.
                                    batch.clear();
                                    break None;
                                }
                                tokio::time::sleep(backoff.min(max_wait - waited)).await;
                                backoff = (backoff * 2).min(MAX_BACKOFF);
                            }
                        }
                    }
                }
                None => None,
            };
            match windows {
                Some(windows) => {
                    for ((event, item), o) in batch.drain(..).zip(windows) {
                        if o.recorded != Recorded::Yes {
                            metrics.store_unrecorded(o.recorded);
                        }
                        let row = event.row(&o.windows);
                        let found = Found {
                            row: Some(row),
                            source: FeatureSource::Store,
                        };
                        then(event, found, item);
                    }
                }
                None => {
                    for (event, item) in batch.drain(..) {
                        then(event, Found { row: None, source }, item);
                    }
                }
            }
        }
    })
}
