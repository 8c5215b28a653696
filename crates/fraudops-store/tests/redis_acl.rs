//! The deployed Redis users (deploy/k8s/base/redis-users.acl) against a real `redis-server`: each workload's
//! user can do its job through the store's own calls, and nothing else — no other script's writes, no key
//! outside the store's, no FLUSHALL, CONFIG, KEYS, DEBUG or ACL; nobody gets in without a user.

use std::time::Duration;

use fraudops_store::testing::{RedisServer, render_acl};
use fraudops_store::{
    Credentials, EvaluatedLabel, FeatureStore, Label, Namespace, Observation, Recorded,
    ScoreRecord, StoredScore, keys,
};

const START: i64 = 1_522_540_800; // 2018-04-01
const DEADLINE: Duration = Duration::from_secs(2);
const ACL: &str = include_str!("../../../deploy/k8s/base/redis-users.acl");

/// The deployed ACL with test passwords, plus an administrator for setting the scene (not deployed).
fn server(test: &str) -> Option<RedisServer> {
    server_with(test, false)
}

fn server_with(test: &str, append_only: bool) -> Option<RedisServer> {
    let mut acl = render_acl(
        ACL,
        &[
            ("SCORER", "scorer-pw"),
            ("LABELS", "labels-pw"),
            ("EXPORTER", "exporter-pw"),
        ],
    );
    acl.push_str("user admin on >admin-pw ~* &* +@all\n");
    RedisServer::start_with_acl_or_skip(test, &acl, append_only)
}

fn store(server: &RedisServer, user: &str, password: &str) -> FeatureStore {
    let credentials = Credentials {
        username: Some(user.into()),
        password: Some(password.into()),
    };
    FeatureStore::connect_as(&server.url(), DEADLINE, credentials).expect("connect")
}

fn login(server: &RedisServer, user: &str, password: &str) -> redis::Connection {
    let url = format!("redis://{user}:{password}@127.0.0.1:{}/0", server.port());
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("login")
}

fn observation(id: u64, t: i64, card: u64, terminal: u64) -> Observation {
    Observation {
        transaction_id: id.to_string(),
        customer_id: card,
        terminal_id: terminal,
        time: t,
        amount: 12.5,
        record: true,
        namespace: Namespace::Real,
    }
}

fn score(id: u64, t: i64) -> ScoreRecord {
    ScoreRecord {
        transaction_id: id.to_string(),
        time: t,
        namespace: Namespace::Real,
        score: StoredScore {
            fraud_probability: 0.75,
            is_fraud: true,
            model_version: "gbdt-000000000000".into(),
        },
    }
}

fn label(id: u64, t: i64, terminal: u64) -> Label {
    Label {
        transaction_id: id.to_string(),
        terminal_id: terminal,
        time: t,
        fraud: true,
        namespace: Namespace::Real,
    }
}

/// Whether Redis refused `cmd`: for lack of permission (NOPERM), or, for DEBUG, because the server does not
/// allow it at all (Redis 7's `enable-debug-command no`, checked before the user's rights).
fn refused(conn: &mut redis::Connection, cmd: &mut redis::Cmd) -> bool {
    match cmd.query::<redis::Value>(conn) {
        Ok(_) => false,
        Err(e) => {
            let text = e.to_string();
            text.contains("NOPERM") || text.contains("permission") || text.contains("not allowed")
        }
    }
}

#[tokio::test]
async fn each_workload_s_user_does_its_job_and_nothing_else() {
    let Some(server) = server("redis_acl_jobs") else {
        return;
    };
    // The scorer: windows read and recorded, scores kept.
    let scorer = store(&server, "fraudops-scorer", "scorer-pw");
    let events: Vec<Observation> = (0..5)
        .map(|i| observation(i, START + 60 * i as i64, 7, 3))
        .collect();
    let seen = scorer.observe(&events).await.expect("the scorer observes");
    assert!(seen.iter().all(|o| o.recorded == Recorded::Yes));
    assert_eq!(seen[4].windows.customer.nb_tx[0], 5);
    let scores: Vec<ScoreRecord> = (0..5).map(|i| score(i, START + 60 * i as i64)).collect();
    scorer
        .record_scores(&scores)
        .await
        .expect("the scorer records scores");
    // ... but it cannot label: the label script's fraud write is refused.
    let labels: Vec<Label> = (0..5).map(|i| label(i, START + 60 * i as i64, 3)).collect();
    assert!(
        scorer.apply_labels(&labels).await.is_err(),
        "a scorer applied labels"
    );

    // The label consumer: labels applied and joined with their scores, evaluation samples kept.
    let labeller = store(&server, "fraudops-labels", "labels-pw");
    let joined = labeller
        .apply_labels(&labels)
        .await
        .expect("the label consumer labels");
    assert!(
        joined
            .iter()
            .all(|s| s.as_ref().is_some_and(|s| s.is_fraud))
    );
    let samples: Vec<EvaluatedLabel> = (0..5)
        .map(|i| EvaluatedLabel {
            transaction_id: i.to_string(),
            time: START + 60 * i as i64,
            customer_id: 7,
            fraud: true,
            score: score(i, 0).score,
        })
        .collect();
    labeller
        .record_evaluations(&samples)
        .await
        .expect("evaluation samples kept");
    let days = labeller
        .evaluation_days(7)
        .await
        .expect("evaluation days read");
    assert_eq!(days, [START.div_euclid(86_400)]);
    // ... but it cannot touch a card: the window script is refused.
    assert!(
        labeller
            .observe(&[observation(9, START + 600, 7, 3)])
            .await
            .is_err(),
        "the label consumer wrote a card's history"
    );
    // The frauds the labels added count in a later transaction's terminal windows (8 days on).
    let later = scorer
        .observe(&[observation(10, START + 8 * 86_400, 8, 3)])
        .await
        .expect("the scorer observes");
    assert_eq!(later[0].windows.terminal.nb_tx[1], 5);
    assert!(later[0].windows.terminal.risk[1] > 0.99);

    // Nobody may do what no workload needs.
    for (user, password) in [
        ("fraudops-scorer", "scorer-pw"),
        ("fraudops-labels", "labels-pw"),
        ("fraudops-exporter", "exporter-pw"),
    ] {
        let mut conn = login(&server, user, password);
        for (what, cmd) in [
            ("FLUSHALL", redis::cmd("FLUSHALL")),
            (
                "CONFIG SET",
                redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxmemory")
                    .arg("1")
                    .clone(),
            ),
            ("KEYS", redis::cmd("KEYS").arg("*").clone()),
            ("DEBUG", redis::cmd("DEBUG").arg("SLEEP").arg("0").clone()),
            ("ACL LIST", redis::cmd("ACL").arg("LIST").clone()),
            ("SCRIPT FLUSH", redis::cmd("SCRIPT").arg("FLUSH").clone()),
            ("SHUTDOWN", redis::cmd("SHUTDOWN").arg("NOSAVE").clone()),
            (
                "GET another key",
                redis::cmd("GET").arg("session:42").clone(),
            ),
        ] {
            let mut cmd = cmd;
            assert!(refused(&mut conn, &mut cmd), "{user} may {what}");
        }
    }
    // What only another workload may do: the label consumer and the exporter cannot delete a card; a
    // scorer cannot write a terminal's frauds directly either.
    for (user, password) in [
        ("fraudops-labels", "labels-pw"),
        ("fraudops-exporter", "exporter-pw"),
    ] {
        let mut conn = login(&server, user, password);
        let card = keys::customer(Namespace::Real, 7);
        assert!(
            refused(&mut conn, redis::cmd("DEL").arg(&card)),
            "{user} may delete a card"
        );
    }
    let mut conn = login(&server, "fraudops-scorer", "scorer-pw");
    let frauds = keys::terminal_fraud(Namespace::Real, 3);
    assert!(refused(
        &mut conn,
        redis::cmd("ZADD").arg(&frauds).arg(START).arg("99")
    ));
    assert!(refused(&mut conn, redis::cmd("ZREM").arg(&frauds).arg("1")));
    assert!(refused(&mut conn, redis::cmd("DEL").arg(&frauds)));

    // The exporter reads server information, and no key.
    let mut exporter = login(&server, "fraudops-exporter", "exporter-pw");
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut exporter)
        .expect("INFO");
    assert!(info.contains("used_memory:"));
    let maxmemory: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query(&mut exporter)
        .expect("CONFIG GET");
    assert_eq!(maxmemory[0], "maxmemory");
    assert!(refused(
        &mut exporter,
        redis::cmd("ZRANGE")
            .arg(keys::terminal(Namespace::Real, 3))
            .arg(0)
            .arg(-1)
    ));
    assert!(refused(
        &mut exporter,
        redis::cmd("EVAL").arg("return 1").arg(0)
    ));
    // Nobody gets in without a user (the default user is off).
    let mut anonymous = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("a connection");
    let err = redis::cmd("PING")
        .query::<String>(&mut anonymous)
        .expect_err("the default user answered");
    assert!(
        err.to_string().contains("NOAUTH") || err.to_string().contains("AUTH"),
        "{err}"
    );
}

/// During a rolling update from an older layout, the scorer's user may drain the old keys into the new
/// (the one write on a terminal's frauds it has besides pruning).
#[tokio::test]
async fn the_scorer_drains_older_layouts_under_its_user() {
    let Some(server) = server("redis_acl_drain") else {
        return;
    };
    let mut admin = login(&server, "admin", "admin-pw");
    let _: () = redis::cmd("ZADD")
        .arg(keys::v2_customer_of(Namespace::Real, 7))
        .arg(START)
        .arg("10:0:1")
        .query(&mut admin)
        .expect("a v2 card");
    let _: () = redis::cmd("ZADD")
        .arg(keys::v1::terminal(3))
        .arg(START)
        .arg("1")
        .query(&mut admin)
        .expect("a v1 terminal");
    let _: () = redis::cmd("ZADD")
        .arg(keys::v1::terminal_fraud(3))
        .arg(START)
        .arg("1")
        .query(&mut admin)
        .expect("a v1 fraud");
    let scorer = store(&server, "fraudops-scorer", "scorer-pw");
    let seen = scorer
        .observe(&[observation(2, START + 8 * 86_400, 7, 3)])
        .await
        .expect("the scorer drains and observes");
    // This transaction and the v2 card's, 8 days before it (the 30-day window only); the v1 terminal's,
    // 8 days before it too, in the terminal's delayed 7-day window.
    assert_eq!(seen[0].windows.customer.nb_tx, [1, 1, 2]);
    assert_eq!(seen[0].windows.terminal.nb_tx, [0, 1, 1]);
    let left: i64 = redis::cmd("EXISTS")
        .arg(keys::v2_customer_of(Namespace::Real, 7))
        .arg(keys::v1::terminal(3))
        .arg(keys::v1::terminal_fraud(3))
        .query(&mut admin)
        .expect("exists");
    assert_eq!(left, 0, "the old keys were drained");
}

/// Redis replays its append-only file as the default user and re-checks that user's rights at each EXEC
/// (a script's effects are written as MULTI/EXEC): with the default user stripped of every right, a
/// restart silently dropped every window. The deployed ACL keeps the default user off but with its
/// rights; the windows survive a crash.
#[tokio::test]
async fn the_windows_survive_a_crash_under_the_deployed_users() {
    let Some(mut server) = server_with("redis_acl_aof", true) else {
        return;
    };
    let scorer = store(&server, "fraudops-scorer", "scorer-pw");
    let events: Vec<Observation> = (0..3)
        .map(|i| observation(i, START + 60 * i as i64, 7, 3))
        .collect();
    scorer.observe(&events).await.expect("observe");
    server.kill();
    server.restart();
    let scorer = store(&server, "fraudops-scorer", "scorer-pw");
    let mut probe = observation(99, START + 600, 7, 3);
    probe.record = false;
    let seen = scorer
        .observe(&[probe])
        .await
        .expect("observe after the restart");
    assert_eq!(
        seen[0].windows.customer.nb_tx[0], 4,
        "the three recorded before the crash, and the probe"
    );
    assert_eq!(seen[0].windows.terminal.nb_tx, [0, 0, 0]);
}
