//! JSON log lines that cost a request almost nothing: formatted by hand into tracing-subscriber's
//! flattened JSON layout, collected in memory, and written to stdout by a background thread in batches.
//!
//! Why not tracing-subscriber's `.json()` with tracing-appender's non-blocking writer: per
//! `prediction_made` event, the serde-based formatter took ~5 µs and the writer woke its thread (a
//! futex and a context switch, on the same core when the pod has one) — a third of a request's budget.
//! Here a line is appended to a buffer under a mutex, and the writer thread wakes every
//! [`FLUSH_INTERVAL`] or when [`HIGH_WATER`] bytes wait, whichever comes first.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{Datelike, Timelike};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Longest a line waits in memory before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Buffered bytes that wake the writer before the interval is up.
const HIGH_WATER: usize = 64 << 10;
/// Buffered bytes beyond which new lines are dropped (and counted) rather than grow memory: a stalled
/// log reader must not take the server down.
const CAPACITY: usize = 8 << 20;

/// JSON logs on stdout (the level from `RUST_LOG`, default `info`). Keep the guard alive until exit: its
/// drop writes what is still buffered.
pub fn init_logging() -> LogGuard {
    let (writer, guard) = BatchedStdout::start();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .event_format(JsonLines)
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init();
    guard
}

/// One JSON object per event, as tracing-subscriber's `.json().flatten_event(true)` lays it out:
/// `{"timestamp":"…Z","level":"INFO",<fields in order>,"target":"…"}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_char('"')?;
        let mut fields = JsonFields {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        write_json_str(&mut writer, meta.target())?;
        writer.write_str("}\n")
    }
}

/// Writes each field as `,"name":value`.
struct JsonFields<'a, W: fmt::Write> {
    out: &'a mut W,
    result: fmt::Result,
}

impl<W: fmt::Write> JsonFields<'_, W> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.out.write_char(',')?;
            write_json_str(self.out, field.name())?;
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl<W: fmt::Write> Visit for JsonFields<'_, W> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes them as null too.
        self.field(field, |w| {
            if value.is_finite() {
                // The shortest text that reads back as the same number, as serde_json writes it.
                w.write_str(zmij::Buffer::new().format_finite(value))
            } else {
                w.write_str("null")
            }
        });
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| write_json_str(w, value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |w| write_json_fmt(w, format_args!("{value}")));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| write_json_fmt(w, format_args!("{value:?}")));
    }
}

/// Formatted text as a JSON string, escaped on the way (no intermediate `String`).
fn write_json_fmt(w: &mut impl fmt::Write, text: fmt::Arguments<'_>) -> fmt::Result {
    w.write_char('"')?;
    Escaped(&mut *w).write_fmt(text)?;
    w.write_char('"')
}

fn write_json_str(w: &mut impl fmt::Write, value: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(&mut *w).write_str(value)?;
    w.write_char('"')
}

/// A writer that escapes what passes through it for the inside of a JSON string.
struct Escaped<W>(W);

/// Bytes that cannot appear raw inside a JSON string.
#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

impl<W: fmt::Write> fmt::Write for Escaped<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Nearly every string needs no escaping: one branch-free pass says so, then one write.
        if !s.bytes().fold(false, |any, b| any | needs_escape(b)) {
            return self.0.write_str(s);
        }
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            if !needs_escape(b) {
                continue;
            }
            self.0.write_str(&s[plain..i])?;
            match b {
                b'"' => self.0.write_str("\\\"")?,
                b'\\' => self.0.write_str("\\\\")?,
                b'\n' => self.0.write_str("\\n")?,
                b'\r' => self.0.write_str("\\r")?,
                b'\t' => self.0.write_str("\\t")?,
                _ => write!(self.0, "\\u{b:04x}")?,
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

/// RFC 3339 UTC with microseconds, e.g. `2026-11-23T17:35:33.232933Z`: log lines and responses carry
/// one each, so the date and time of day are formatted once per second and thread, not per call.
pub fn write_timestamp(w: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    thread_local! {
        /// The second last formatted on this thread, and its text up to the seconds.
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            let t = i64::try_from(secs)
                .ok()
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
            text.clear();
            write!(
                text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )?;
            *cached = secs;
        }
        w.write_str(text)
    })?;
    let mut micros = since_epoch.subsec_micros();
    let mut digits = *b".000000Z";
    for d in digits[1..7].iter_mut().rev() {
        *d = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    // ASCII digits, a dot and a Z.
    w.write_str(std::str::from_utf8(&digits).unwrap_or(".000000Z"))
}

/// [`write_timestamp`] of now, as a string.
pub fn timestamp_now() -> String {
    let mut text = String::with_capacity(27);
    // Writing to a String cannot fail.
    let _ = write_timestamp(&mut text, SystemTime::now());
    text
}

/// The shared buffer between the request threads and the writer thread.
#[derive(Default)]
struct Batch {
    lines: Vec<u8>,
    dropped: u64,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    batch: Mutex<Batch>,
    wake: Condvar,
}

/// Where [`init_logging`]'s lines go: appended to memory, written to stdout in batches.
#[derive(Clone)]
pub struct BatchedStdout(Arc<Shared>);

impl BatchedStdout {
    /// Starts the writer thread; the guard stops it after a last write.
    pub fn start() -> (Self, LogGuard) {
        Self::start_with(io::stdout())
    }

    fn start_with(out: impl io::Write + Send + 'static) -> (Self, LogGuard) {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("log-writer".into())
                .spawn(move || write_batches(&shared, out))
                .ok()
        };
        (Self(shared.clone()), LogGuard { shared, thread })
    }
}

/// The writer thread: every [`FLUSH_INTERVAL`] (or sooner, past [`HIGH_WATER`]) swaps the buffer out
/// and writes it in one call.
fn write_batches(shared: &Shared, mut out: impl io::Write) {
    let mut spare = Vec::new();
    loop {
        let (closed, dropped) = {
            let mut batch = shared.batch.lock().unwrap_or_else(PoisonError::into_inner);
            // Wait even when lines are waiting: taking them the moment they arrive would, on a second
            // core, write a handful per call (the test below counted hundreds of writes for 10,000 lines).
            if batch.lines.len() < HIGH_WATER && !batch.closed {
                batch = shared
                    .wake
                    .wait_timeout(batch, FLUSH_INTERVAL)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut batch.lines, &mut spare);
            (batch.closed, std::mem::take(&mut batch.dropped))
        };
        if dropped > 0 {
            let _ = writeln!(
                spare,
                r#"{{"level":"WARN","event":"log_lines_dropped","lines":{dropped},"target":"fraudops_serve::logging"}}"#
            );
        }
        if !spare.is_empty() {
            // A closed or broken stdout loses the lines; nothing else can be done with them.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
        }
        if closed {
            return;
        }
    }
}

impl io::Write for &BatchedStdout {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let shared = &self.0;
        let mut batch = shared.batch.lock().unwrap_or_else(PoisonError::into_inner);
        if batch.lines.len() + line.len() > CAPACITY {
            batch.dropped += 1;
        } else {
            let was_below = batch.lines.len() < HIGH_WATER;
            batch.lines.extend_from_slice(line);
            if was_below && batch.lines.len() >= HIGH_WATER {
                shared.wake.notify_one();
            }
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStdout {
    type Writer = &'a BatchedStdout;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// Writes the last lines and stops the writer thread when dropped.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared
            .batch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Collects what the writer thread writes, one `write_all` per message.
    struct Sink(mpsc::Sender<Vec<u8>>);

    impl io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.0.send(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Each line as written, and parsed.
    fn logged_lines(emit: impl FnOnce()) -> Vec<(String, serde_json::Value)> {
        let (tx, rx) = mpsc::channel();
        let (writer, guard) = BatchedStdout::start_with(Sink(tx));
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines)
                .with_writer(writer),
        );
        tracing::subscriber::with_default(subscriber, emit);
        drop(guard);
        let text: Vec<u8> = rx.try_iter().flatten().collect();
        String::from_utf8(text)
            .expect("utf-8")
            .lines()
            .map(|l| {
                let value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                (l.to_owned(), value)
            })
            .collect()
    }

    #[test]
    fn events_are_flat_json_objects_with_fields_in_order() {
        let lines = logged_lines(|| {
            tracing::info!(
                event = "prediction_made",
                transaction_id = %"tx\"1\n\u{1}",
                fraud_probability = 0.25,
                big = u64::MAX,
                negative = -3i64,
                fraud = true,
                missing = f64::NAN,
                model_version = "gbdt-1",
            );
            tracing::warn!(event = "odd", "with a {} message", "formatted");
        });
        assert_eq!(lines.len(), 2);
        let (raw, line) = &lines[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["event"], "prediction_made");
        assert_eq!(line["transaction_id"], "tx\"1\n\u{1}");
        assert_eq!(line["fraud_probability"], 0.25);
        assert_eq!(line["big"], u64::MAX);
        assert_eq!(line["negative"], -3);
        assert_eq!(line["fraud"], true);
        assert!(line["missing"].is_null());
        assert_eq!(line["target"], module_path!());
        let timestamp = line["timestamp"].as_str().expect("a timestamp");
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok() && timestamp.len() == 27,
            "{timestamp}"
        );
        // The layout scripts grep for: timestamp and level first, fields in order, target last.
        assert!(raw.starts_with(r#"{"timestamp":""#), "{raw}");
        assert!(
            raw.contains(r#""level":"INFO","event":"prediction_made","transaction_id":"#),
            "{raw}"
        );
        assert!(
            raw.ends_with(&format!(r#""target":"{}"}}"#, module_path!())),
            "{raw}"
        );
        assert_eq!(lines[1].1["message"], "with a formatted message");
        assert_eq!(lines[1].1["level"], "WARN");
    }

    #[test]
    fn timestamps_are_rfc3339_with_microseconds_across_second_boundaries() {
        for (secs, micros, expected) in [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (1_542_300_000, 7, "2018-11-15T16:40:00.000007Z"),
            (1_542_300_000, 999_999, "2018-11-15T16:40:00.999999Z"),
            (1_542_300_001, 120_000, "2018-11-15T16:40:01.120000Z"),
        ] {
            let at = UNIX_EPOCH + Duration::new(secs, micros * 1_000);
            let mut text = String::new();
            write_timestamp(&mut text, at).expect("to a string");
            assert_eq!(text, expected);
        }
        let now = timestamp_now();
        assert!(chrono::DateTime::parse_from_rfc3339(&now).is_ok(), "{now}");
    }

    #[test]
    fn lines_are_written_in_batches_and_none_is_lost_at_shutdown() {
        let (tx, rx) = mpsc::channel();
        let (writer, guard) = BatchedStdout::start_with(Sink(tx));
        for i in 0..10_000 {
            let mut w = &writer;
            io::Write::write_all(&mut w, format!("{i}\n").as_bytes()).expect("in memory");
        }
        drop(guard);
        let writes: Vec<Vec<u8>> = rx.try_iter().collect();
        let text = String::from_utf8(writes.concat()).expect("utf-8");
        let numbers: Vec<usize> = text.lines().map(|l| l.parse().expect("a number")).collect();
        assert_eq!(numbers, (0..10_000).collect::<Vec<_>>());
        assert!(
            writes.len() < 100,
            "10,000 lines took {} writes",
            writes.len()
        );
    }

    #[test]
    fn a_full_buffer_drops_lines_and_says_how_many() {
        // A writer thread that never drains: everything waits in memory until the cap.
        let shared = Arc::new(Shared::default());
        let writer = BatchedStdout(shared.clone());
        let line = vec![b'x'; 1 << 20];
        for _ in 0..10 {
            let mut w = &writer;
            io::Write::write_all(&mut w, &line).expect("in memory");
        }
        let batch = shared.batch.lock().expect("not poisoned");
        assert!(batch.lines.len() <= CAPACITY);
        assert_eq!(batch.dropped, 2);
        drop(batch);
        shared.batch.lock().expect("not poisoned").closed = true;
        let (tx, rx) = mpsc::channel();
        write_batches(&shared, Sink(tx));
        let tail = String::from_utf8(rx.try_iter().flatten().collect()).expect("utf-8");
        assert!(tail.contains(r#""event":"log_lines_dropped","lines":2"#));
    }
}
