//! An open-model HTTP load generator for `scripts/bench-serve.sh`: sends requests at a fixed rate whether
//! or not earlier ones have been answered, and measures each latency from the moment the request was
//! *due*, so a stalled server cannot hide its queue (no coordinated omission).
//!
//! Why not oha, which does the same with `-q` and `--latency-correction`: its requests wait on tokio's
//! timer, which ticks every millisecond, so its own pacing puts p99 above 1 ms even against a server that
//! answers in 50 µs. This generator spins on its core (pin it to one the server does not use) and checks
//! its sockets and the schedule without sleeping, so what it reports is the server's latency.
//!
//! HTTP/1.1 keep-alive, one request in flight per connection; a request due while every connection is
//! busy waits for the first one to free (its wait counts). Prints one JSON line.
//!
//! `cargo run --release -p fraudops-serve --example open_loop -- --url http://127.0.0.1:8000/predict
//!  --body single.json --rate 10000 --duration 10`

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

#[path = "support/stalls.rs"]
mod stalls;
use stalls::Stalls;

/// Command line.
#[derive(Parser)]
struct Args {
    /// Where to POST, `http://host:port/path`.
    #[arg(long)]
    url: String,
    /// A file with the JSON body to send.
    #[arg(long)]
    body: std::path::PathBuf,
    /// Requests per second to hold.
    #[arg(long)]
    rate: f64,
    /// Seconds to send for.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Connections opened before the run and held, idle, until its end (what an idle-connection flood
    /// costs the server while it serves the load).
    #[arg(long, default_value_t = 0)]
    idle_connections: usize,
}

/// One keep-alive connection.
struct Connection {
    stream: TcpStream,
    /// When the request now in flight was due; `None` while idle.
    due: Option<Instant>,
    /// Response bytes read so far.
    read: Vec<u8>,
    /// Request bytes not yet accepted by the socket.
    unsent: Vec<u8>,
}

/// What the run saw.
#[derive(Default)]
struct Tally {
    /// Every answer's latency, from when its request was due.
    latencies_ns: Vec<u64>,
    /// The 200s' latencies.
    ok_ns: Vec<u64>,
    /// The 503s' latencies (shed requests).
    shed_ns: Vec<u64>,
    non_200: u64,
    errors: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(args.rate > 0.0 && args.duration > 0.0 && args.connections > 0) {
        bail!("--rate, --duration and --connections must be positive");
    }
    let (authority, path) = args
        .url
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))))
        .with_context(|| format!("{}: expected http://host:port/path", args.url))?;
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .with_context(|| format!("{authority} resolves to nothing"))?;
    let body = std::fs::read(&args.body).with_context(|| format!("reading {:?}", args.body))?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);

    let mut poll = Poll::new()?;
    let mut connections = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let stream =
            std::net::TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(stream);
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        connections.push(Connection {
            stream,
            due: None,
            read: Vec::with_capacity(4096),
            unsent: Vec::new(),
        });
    }
    // Held open and silent until the end of the run.
    let idle_flood = (0..args.idle_connections)
        .map(|_| std::net::TcpStream::connect(addr))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("opening {} idle connections", args.idle_connections))?;
    let mut idle: Vec<usize> = (0..args.connections).rev().collect();
    let mut waiting: VecDeque<Instant> = VecDeque::new();
    let mut tally = Tally::default();
    let mut events = Events::with_capacity(1024);

    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.duration);
    let mut scheduled: u64 = 0;
    let mut next_due = start;
    // After the last request is due, in-flight ones get this long to finish before they count as errors.
    let drain_until = end + Duration::from_secs(2);
    let mut stalls = Stalls::default();
    let mut last_turn = start;
    loop {
        let now = Instant::now();
        stalls.saw(now.duration_since(last_turn));
        last_turn = now;
        while next_due <= now && next_due < end {
            match idle.pop() {
                Some(c) => send(&mut connections[c], &request, next_due, &mut tally),
                None => waiting.push_back(next_due),
            }
            scheduled += 1;
            next_due = start + interval.mul_f64(scheduled as f64);
        }
        if now >= end {
            // Only while draining: counting the busy connections on every turn would slow the spin.
            let in_flight = connections.iter().filter(|c| c.due.is_some()).count();
            if waiting.is_empty() && in_flight == 0 {
                break;
            }
            if now >= drain_until {
                tally.errors += (in_flight + waiting.len()) as u64;
                break;
            }
        }
        poll.poll(&mut events, Some(Duration::ZERO))?;
        for event in &events {
            let c = event.token().0;
            let conn = &mut connections[c];
            if event.is_writable() && !conn.unsent.is_empty() {
                flush(conn, &mut tally);
            }
            if !event.is_readable() {
                continue;
            }
            let open = fill(conn);
            while let Some((status, used)) = parse_response(&conn.read)? {
                conn.read.drain(..used);
                let Some(due) = conn.due.take() else { break };
                let latency = Instant::now().duration_since(due);
                let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
                tally.latencies_ns.push(ns);
                match status {
                    200 => tally.ok_ns.push(ns),
                    503 => tally.shed_ns.push(ns),
                    _ => {}
                }
                if status != 200 {
                    tally.non_200 += 1;
                }
                match waiting.pop_front() {
                    Some(due) => send(conn, &request, due, &mut tally),
                    None => idle.push(c),
                }
            }
            if !open {
                // The server closed the connection: whatever was in flight on it is lost.
                tally.errors += u64::from(conn.due.take().is_some());
                idle.retain(|&i| i != c);
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64().min(args.duration);
    drop(idle_flood);
    report(&mut tally, &stalls, scheduled, elapsed, args.rate);
    Ok(())
}

/// Starts a request that was due at `due` on an idle connection.
fn send(conn: &mut Connection, request: &[u8], due: Instant, tally: &mut Tally) {
    conn.due = Some(due);
    conn.unsent.extend_from_slice(request);
    flush(conn, tally);
}

/// Writes what the socket takes now; the rest waits for the next writable event.
fn flush(conn: &mut Connection, tally: &mut Tally) {
    while !conn.unsent.is_empty() {
        match conn.stream.write(&conn.unsent) {
            Ok(0) => break,
            Ok(n) => {
                conn.unsent.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => {
                tally.errors += u64::from(conn.due.take().is_some());
                conn.unsent.clear();
            }
        }
    }
}

/// Reads everything available; `false` when the peer has closed the connection.
fn fill(conn: &mut Connection) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match conn.stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => conn.read.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// A complete response at the start of `bytes`: its status and length, or `None` if more is needed.
fn parse_response(bytes: &[u8]) -> anyhow::Result<Option<(u16, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(bytes).context("unparseable HTTP response")? {
        httparse::Status::Complete(head) => head,
        httparse::Status::Partial => return Ok(None),
    };
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .context("responses must carry Content-Length (chunked is not supported)")?;
    let status = response.code.unwrap_or(0);
    Ok((bytes.len() >= head + length).then_some((status, head + length)))
}

/// The `q` quantile of sorted `ns`, in milliseconds (NaN when empty).
fn quantile_ms(ns: &[u64], q: f64) -> f64 {
    if ns.is_empty() {
        return f64::NAN;
    }
    let i = ((q * ns.len() as f64).ceil() as usize).clamp(1, ns.len()) - 1;
    ns[i] as f64 / 1e6
}

/// One JSON line: the rate asked for and held, latency percentiles (of all answers, of the 200s and of the
/// 503s), failures, the generator's own stalls. NaN (no such answer) is written as null.
fn report(tally: &mut Tally, stalls: &Stalls, scheduled: u64, elapsed: f64, rate: f64) {
    for ns in [
        &mut tally.latencies_ns,
        &mut tally.ok_ns,
        &mut tally.shed_ns,
    ] {
        ns.sort_unstable();
    }
    let n = tally.latencies_ns.len();
    let ms = |v: f64| {
        if v.is_nan() {
            "null".to_owned()
        } else {
            format!("{v:.3}")
        }
    };
    let all = |q| ms(quantile_ms(&tally.latencies_ns, q));
    println!(
        "{{\"target_rps\":{rate:.0},\"scheduled\":{scheduled},\"completed\":{n},\"achieved_rps\":{:.0},\
         \"ok_rps\":{:.0},\"shed_rps\":{:.0},\
         \"p50_ms\":{},\"p90_ms\":{},\"p99_ms\":{},\"p999_ms\":{},\"max_ms\":{},\
         \"ok_p50_ms\":{},\"ok_p99_ms\":{},\"shed_p50_ms\":{},\"shed_p99_ms\":{},\
         \"non_200\":{},\"errors\":{},\"generator_stalled_ms_per_s\":{:.2},\"generator_longest_stall_ms\":{:.3},\
         \"generator_stalls_over_1ms_per_s\":{:.2}}}",
        n as f64 / elapsed,
        tally.ok_ns.len() as f64 / elapsed,
        tally.shed_ns.len() as f64 / elapsed,
        all(0.50),
        all(0.90),
        all(0.99),
        all(0.999),
        all(1.0),
        ms(quantile_ms(&tally.ok_ns, 0.50)),
        ms(quantile_ms(&tally.ok_ns, 0.99)),
        ms(quantile_ms(&tally.shed_ns, 0.50)),
        ms(quantile_ms(&tally.shed_ns, 0.99)),
        tally.non_200,
        tally.errors,
        stalls.total.as_secs_f64() * 1e3 / elapsed,
        stalls.longest.as_secs_f64() * 1e3,
        stalls.over_1ms as f64 / elapsed,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";

    #[test]
    fn a_response_is_complete_only_with_its_whole_body() {
        assert_eq!(parse_response(OK).ok().flatten(), Some((200, OK.len())));
        for cut in [10, OK.len() - 1] {
            assert_eq!(
                parse_response(&OK[..cut]).ok().flatten(),
                None,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn back_to_back_responses_are_taken_one_at_a_time() {
        let two = [
            OK,
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
        ]
        .concat();
        assert_eq!(parse_response(&two).ok().flatten(), Some((200, OK.len())));
        assert_eq!(
            parse_response(&two[OK.len()..]).ok().flatten(),
            Some((503, two.len() - OK.len()))
        );
    }

    #[test]
    fn a_response_without_content_length_is_an_error_not_a_hang() {
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        assert!(parse_response(chunked).is_err());
    }
}
