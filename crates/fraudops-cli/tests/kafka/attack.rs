//! `fraudops attack`: the rate it promises is the rate the broker records; HTTP, replay, closed loop.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fraudops_stream::attack::AttackReport;

use crate::helpers::{Api, Broker, Proc, free_port, http_get, metric, prometheus_sum, wait_for};

fn results(path: &std::path::Path) -> AttackReport {
    let text = std::fs::read_to_string(path).expect("results file");
    serde_json::from_str(&text).expect("results JSON")
}

/// `fraudops attack <args>` as `name`, serving metrics on `port` and writing its results to a file in the
/// broker's directory; the process and that file's path (for [`results`]).
fn spawn_reporting(broker: &Broker, name: &str, args: &[&str], port: u16) -> (Proc, PathBuf) {
    let results_path = broker.path("results.json");
    let port = port.to_string();
    let mut all = vec!["attack"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--metrics-port",
        &port,
        "--results",
        results_path.to_str().expect("utf-8 path"),
    ]);
    (broker.spawn(name, &all, &[]), results_path)
}

/// Runs `rate:seconds` into a fresh broker; checks the count the broker holds, the keys, the reported
/// rate and the live produced counter.
fn holds_rate(rate: u64, seconds: u64) {
    let broker = Broker::start();
    let port = free_port();
    let phases = format!("{rate}:{seconds}s");
    let (mut attack, results_path) =
        spawn_reporting(&broker, "attack", &["--phases", &phases], port);
    // kafka_messages_produced_total is live while the attack runs.
    wait_for(
        "kafka_messages_produced_total to count acknowledged messages",
        Duration::from_secs(30),
        || {
            metric(
                port,
                "kafka_messages_produced_total",
                &["topic=\"transactions-input\""],
            )
            .is_some_and(|v| v >= rate as f64)
        },
    );
    assert!(
        attack.wait(Duration::from_secs(seconds + 60)),
        "attack failed:\n{}",
        attack.output()
    );

    let expected = rate * seconds;
    let records = broker.read("transactions-input");
    let n = records.len() as f64;
    assert!(
        (n - expected as f64).abs() <= expected as f64 * 0.01,
        "broker holds {n} messages, expected {expected} ± 1%"
    );
    let mut ids = HashSet::new();
    for r in &records {
        let event: serde_json::Value = serde_json::from_slice(&r.payload).expect("JSON event");
        let key =
            String::from_utf8(r.key.clone().expect("every message has a key")).expect("utf-8 key");
        assert_eq!(
            key,
            event["customer_id"].to_string(),
            "the key is the customer id"
        );
        ids.insert(event["transaction_id"].as_u64().expect("id"));
    }
    assert_eq!(
        ids.len(),
        records.len(),
        "every message is a distinct transaction"
    );

    let report = results(&results_path);
    let phase = &report.phases[0];
    assert_eq!(phase.sent, expected);
    assert_eq!(phase.delivered, expected);
    assert_eq!(phase.errors, 0);
    let accuracy = phase.accuracy_pct.expect("a paced phase has an accuracy");
    assert!(
        (99.0..=101.0).contains(&accuracy),
        "achieved {accuracy}% of the target"
    );
    let table = attack.output();
    assert!(
        table.contains("achieved/s"),
        "the final table is printed:\n{table}"
    );
    println!(
        "    attack {rate}/s for {seconds} s: broker holds {n}, achieved {:.1}/s ({accuracy:.2}%), worst second {:.2}% off, p99 delivery {:.1} ms",
        phase.achieved_rate,
        phase.worst_second_deviation_pct.unwrap_or(0.0),
        phase.latency_ms.p99
    );
}

pub fn holds_2000_per_second_for_10_s() {
    holds_rate(2000, 10);
}

pub fn holds_20000_per_second_for_30_s() {
    holds_rate(20_000, 30);
}

pub fn over_http() {
    let broker = Broker::start();
    let api = Api::start(&broker, "api-attack");
    let (mut attack, results_path) = spawn_reporting(
        &broker,
        "attack-http",
        &["--http", &api.url, "--phases", "300:2s"],
        free_port(),
    );
    assert!(attack.wait(Duration::from_secs(60)), "{}", attack.output());
    let report = results(&results_path);
    assert_eq!(report.mode, "http");
    assert_eq!(
        (report.phases[0].sent, report.phases[0].delivered),
        (600, 600)
    );
    assert_eq!(report.phases[0].errors, 0);
    // The API counted every one of them as a 200 on /predict.
    let metrics = http_get(&api.addr, "/metrics");
    let answered = prometheus_sum(
        &metrics,
        "http_requests_total",
        &["endpoint=\"/predict\"", "status=\"200\""],
    );
    assert_eq!(answered, Some(600.0), "API metrics:\n{metrics}");
}

pub fn replays_a_file_in_a_loop() {
    let broker = Broker::start();
    let file = broker.path("replay.csv");
    let mut csv = String::from(
        "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_TIME_SECONDS,TX_TIME_DAYS,TX_FRAUD,TX_FRAUD_SCENARIO\n",
    );
    for i in 0..40u64 {
        csv.push_str(&format!(
            "{i},2018-04-01 {:02}:{:02}:00,{},{},{}.5,{},0,0,0\n",
            i / 4,
            (i * 7) % 60,
            i % 5,
            100 + i,
            10 + i,
            i * 900
        ));
    }
    std::fs::write(&file, csv).expect("write replay file");
    let mut attack = broker.spawn(
        "attack-replay",
        &[
            "attack",
            "--replay",
            file.to_str().expect("utf-8 path"),
            "--phases",
            "100:2s",
            "--metrics-port",
            &free_port().to_string(),
        ],
        &[],
    );
    assert!(attack.wait(Duration::from_secs(60)), "{}", attack.output());
    let ids = crate::helpers::input_ids(&broker, "transactions-input");
    assert_eq!(ids.len(), 200, "5 loops of 40 rows, every id distinct");
    assert!(ids.values().all(|&n| n == 1));
    assert!(
        ids.contains_key(&39) && ids.contains_key(&40),
        "loop 2 continues after the file's last id"
    );
}

/// A real Alertmanager on a free port (Debian's `prometheus-alertmanager`), or `None` when not installed.
fn start_alertmanager(broker: &Broker) -> Option<(Proc, String)> {
    let binary = ["prometheus-alertmanager", "alertmanager"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })?;
    let config = broker.path("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .expect("write alertmanager config");
    let port = free_port();
    let mut cmd = Command::new(binary);
    cmd.args([
        &format!("--config.file={}", config.display()),
        &format!("--storage.path={}", broker.path("am-data").display()),
        &format!("--web.listen-address=127.0.0.1:{port}"),
        "--cluster.listen-address=",
    ]);
    let proc = Proc::spawn(cmd, "alertmanager", broker.dir.path());
    let addr = format!("127.0.0.1:{port}");
    wait_for("Alertmanager to be ready", Duration::from_secs(20), || {
        http_get(&addr, "/-/ready").starts_with("HTTP/1.1 200")
    });
    Some((proc, format!("http://{addr}")))
}

/// Posts a firing alert to Alertmanager's v2 API, as Prometheus does.
fn fire_alert(base: &str, name: &str) {
    let addr = base.trim_start_matches("http://");
    let body = format!(r#"[{{"labels":{{"alertname":"{name}","severity":"critical"}}}}]"#);
    let mut s = std::net::TcpStream::connect(addr).expect("connect to Alertmanager");
    let request = format!(
        "POST /api/v2/alerts HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).expect("post alert");
    let mut status = String::new();
    let _ = BufReader::new(s).read_line(&mut status);
    assert!(status.contains(" 200"), "Alertmanager answered {status}");
}

/// A stand-in serving `/api/v2/alerts` (empty until `fired` is set), for machines without Alertmanager.
fn stub_alertmanager(name: &'static str, fired: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind stub");
    let addr = listener.local_addr().expect("stub address");
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body = if fired.load(Ordering::Relaxed) {
                format!(r#"[{{"labels":{{"alertname":"{name}"}},"status":{{"state":"active"}}}}]"#)
            } else {
                "[]".to_owned()
            };
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

pub fn escalates_until_the_alert_fires() {
    const ALERT: &str = "AdminNotification_MaxScaleHighCPU";
    let broker = Broker::start();
    let stub_fired = Arc::new(AtomicBool::new(false));
    let (_am, am_url) = match start_alertmanager(&broker) {
        Some((proc, url)) => (Some(proc), url),
        None => {
            println!(
                "    (prometheus-alertmanager not installed: using a stand-in for its v2 API)"
            );
            (None, stub_alertmanager(ALERT, stub_fired.clone()))
        }
    };
    // 100 → 200 → 400 → 800 msg/s, 1 s each; the alert is made to fire during the 400 phase.
    let port = free_port();
    let (mut attack, results_path) = spawn_reporting(
        &broker,
        "attack-closed-loop",
        &[
            "--phases",
            "100:1s",
            "--until-alert",
            ALERT,
            "--alertmanager",
            &am_url,
            "--step",
            "2",
            "--alert-poll",
            "100ms",
        ],
        port,
    );
    wait_for(
        "the attack's third phase (400 msg/s)",
        Duration::from_secs(20),
        || metric(port, "attack_target_rate", &[]) == Some(400.0),
    );
    if _am.is_some() {
        fire_alert(&am_url, ALERT);
    } else {
        stub_fired.store(true, Ordering::Relaxed);
    }
    assert!(attack.wait(Duration::from_secs(30)), "{}", attack.output());
    let report = results(&results_path);
    let alert = report.alert.expect("closed-loop outcome");
    assert!(alert.fired);
    assert_eq!(alert.triggering_phase, Some(3), "{alert:?}");
    assert_eq!(alert.triggering_rate, Some(400.0));
    let t = alert.time_to_alert_s.expect("time to alert");
    assert!((2.0..4.0).contains(&t), "time to alert {t} s");
    assert!(
        attack.output().contains("during phase 3 at 400 msg/s"),
        "{}",
        attack.output()
    );

    // Without the alert, escalation ends at --max-rate and the command fails.
    let mut attack = broker.spawn(
        "attack-no-alert",
        &[
            "attack",
            "--phases",
            "100:500ms",
            "--until-alert",
            "NeverFires",
            "--alertmanager",
            &am_url,
            "--max-rate",
            "200",
            "--metrics-port",
            &free_port().to_string(),
        ],
        &[],
    );
    assert!(!attack.wait(Duration::from_secs(30)), "must exit non-zero");
    assert!(
        attack.output().contains("did not fire"),
        "{}",
        attack.output()
    );
}

/// The pre-flight check (`--check-only`, `--require-topics`, what the Airflow DAG runs first): a dead
/// broker fails in seconds with its address; a missing topic is named, and nothing is created or sent.
pub fn preflight_names_a_dead_broker_and_missing_topics() {
    let broker = Broker::start();
    let metrics_port = free_port().to_string();
    let check = |name: &str, extra: &[&str]| {
        let mut args = vec!["attack", "--check-only"];
        args.extend_from_slice(extra);
        let mut proc = broker.spawn(name, &args, &[]);
        let ok = proc.wait(Duration::from_secs(30));
        (ok, proc.output())
    };
    let attack = |name: &str| {
        let mut proc = broker.spawn(
            name,
            &[
                "attack",
                "--require-topics",
                "fraud-predictions",
                "--phases",
                "100:1s",
                "--metrics-port",
                &metrics_port,
            ],
            &[],
        );
        let ok = proc.wait(Duration::from_secs(60));
        (ok, proc.output())
    };

    let (ok, out) = check("check-fresh", &["--require-topics", "fraud-predictions"]);
    assert!(!ok, "a fresh broker has no topics:\n{out}");
    assert!(
        out.contains("missing Kafka topic(s)")
            && out.contains("transactions-input, fraud-predictions"),
        "{out}"
    );
    let (ok, out) = attack("attack-missing-output");
    assert!(
        !ok,
        "the attack must refuse without fraud-predictions:\n{out}"
    );
    assert!(out.contains("fraud-predictions"), "{out}");
    assert!(
        broker.read("transactions-input").is_empty(),
        "a refused attack sends nothing"
    );
    let (ok, out) = check("check-after-refusal", &[]);
    assert!(
        !ok && out.contains("transactions-input"),
        "a refused attack creates nothing:\n{out}"
    );

    // Once the stream's output topic exists, the attack runs and the check passes.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let kafka = fraudops_stream::KafkaArgs::local(broker.addr.as_str());
    runtime
        .block_on(fraudops_stream::ensure_topics(
            &kafka,
            &[("fraud-predictions", 3)],
        ))
        .expect("create fraud-predictions");
    let (ok, out) = attack("attack");
    assert!(ok, "{out}");
    assert_eq!(broker.read("transactions-input").len(), 100);
    let (ok, out) = check("check-ready", &["--require-topics", "fraud-predictions"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("topic transactions-input: 12 partitions")
            && out.contains("topic fraud-predictions: 3 partitions"),
        "{out}"
    );

    // Nothing listens on this port: the check fails with the address, in seconds.
    let dead = format!("127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    let mut proc = Proc::spawn(
        {
            let mut cmd = crate::helpers::fraudops(&["attack", "--check-only"]);
            cmd.env("KAFKA_BOOTSTRAP_SERVERS", &dead);
            cmd
        },
        "check-dead",
        broker.dir.path(),
    );
    assert!(
        !proc.wait(Duration::from_secs(30)),
        "a dead broker must fail"
    );
    let out = proc.output();
    assert!(
        out.contains(&format!("cannot reach the Kafka broker at {dead}")),
        "{out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}
