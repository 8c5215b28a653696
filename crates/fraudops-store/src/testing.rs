//! A real `redis-server` for tests of this crate and of the crates that use it (feature `testing`).
//!
//! Which binary: `REDIS_SERVER_BIN`, else `redis-server` on the `PATH`. When there is none,
//! [`RedisServer::start_or_skip`] writes a visible `SKIPPED` line past the harness's capture and the test
//! returns early; with `FRAUDOPS_REQUIRE_REDIS=1` (set by `scripts/test.sh`) a missing binary fails.
//! The server runs on a free loopback port in its own temporary directory and is killed by PID on drop.

/// The deployed ACL file (deploy/k8s/base/redis-users.acl) as the Redis pod's init container renders it:
/// comment and blank lines dropped (an ACL file has none), each `PASSWORD_<NAME>` placeholder replaced by
/// the SHA-256 (hex) of that password, `passwords` being `(NAME, password)` pairs.
pub fn render_acl(template: &str, passwords: &[(&str, &str)]) -> String {
    use sha2::{Digest, Sha256};
    let mut out = String::new();
    for line in template.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut line = line.to_owned();
        for (name, password) in passwords {
            let digest = hex::encode(Sha256::digest(password.as_bytes()));
            line = line.replace(&format!("PASSWORD_{name}"), &digest);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The definition's numbers as `observe.lua` reads them: for tests that run an older release's script.
pub use crate::scripts::observe_header;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the `redis-server` executable.
pub const BIN_ENV: &str = "REDIS_SERVER_BIN";
/// Set to `1` to turn a missing binary into a test failure instead of a skip.
pub const REQUIRE_ENV: &str = "FRAUDOPS_REQUIRE_REDIS";

/// One running `redis-server`; killed when dropped.
pub struct RedisServer {
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    append_only: bool,
    /// Started with `--cluster-enabled yes` (a [`RedisCluster`] node).
    cluster: bool,
    /// Started with `--aclfile` (its users, the default user off).
    aclfile: Option<PathBuf>,
}

impl RedisServer {
    /// Starts a server (append-only file with `fsync` on every write when `append_only`, else no
    /// persistence), or skips `test` visibly when there is no binary.
    pub fn start_or_skip(test: &str, append_only: bool) -> Option<Self> {
        let bin = match std::env::var_os(BIN_ENV) {
            Some(b) => PathBuf::from(b),
            None => match which("redis-server") {
                Some(b) => b,
                None => {
                    skip(test, "no redis-server on PATH and REDIS_SERVER_BIN unset");
                    return None;
                }
            },
        };
        let dir = tempfile::Builder::new()
            .prefix("fraudops-redis-")
            .tempdir()
            .unwrap_or_else(|e| panic!("{test}: temporary directory: {e}"));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{test}: free port: {e}"));
        let mut server = Self {
            bin,
            port,
            child: None,
            dir,
            append_only,
            cluster: false,
            aclfile: None,
        };
        server.restart();
        Some(server)
    }

    /// Starts a server whose users are `acl` (an ACL file's text, as [`render_acl`] makes it), or skips.
    /// [`Self::url`] then names no user: log in with the ACL's.
    pub fn start_with_acl_or_skip(test: &str, acl: &str, append_only: bool) -> Option<Self> {
        let mut server = Self::start_or_skip(test, append_only)?;
        let path = server.dir.path().join("users.acl");
        std::fs::write(&path, acl).unwrap_or_else(|e| panic!("{test}: writing the ACL file: {e}"));
        server.aclfile = Some(path);
        server.restart();
        Some(server)
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A plain connection for a test's own commands (`DBSIZE`, `CONFIG SET`, …).
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .unwrap_or_else(|e| panic!("connecting to the test redis-server: {e}"))
    }

    /// Every window key (`c`, `t`, `f`) with its members and their times, sorted: two equal dumps mean
    /// every card's and terminal's windows are the same for every later transaction.
    pub fn dump_windows(&self) -> Vec<(String, Vec<(String, f64)>)> {
        fn query<T: redis::FromRedisValue>(cmd: &redis::Cmd, conn: &mut redis::Connection) -> T {
            cmd.query(conn)
                .unwrap_or_else(|e| panic!("reading the test redis-server: {e}"))
        }
        let mut conn = self.connection();
        // Cards `{c…}`, terminals `{t…}:t` and `{t…}:f`, in both namespaces; not the day hashes `{s…}`/`{e…}`.
        // Every layout's (v3's cards, v2's terminals, any v1/v2 key a drain has yet to take).
        let mut keys: Vec<String> = query(redis::cmd("KEYS").arg("fraudops:v*:{*"), &mut conn);
        keys.retain(|k| {
            let tag = k.split_once(":{").map_or("", |(_, tag)| tag);
            tag.starts_with('c') || tag.starts_with('t') || tag.starts_with("syn")
        });
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let members: Vec<(String, f64)> = query(
                    redis::cmd("ZRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES"),
                    &mut conn,
                );
                (k, members)
            })
            .collect()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (SIGKILL: what a crashed pod does) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (after [`Self::kill`]) and waits until it
    /// answers.
    pub fn restart(&mut self) {
        self.kill();
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--save")
            .arg("");
        if self.append_only {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        if self.cluster {
            cmd.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ]);
        }
        if let Some(acl) = &self.aclfile {
            cmd.arg("--aclfile").arg(acl);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Skips `test` visibly, or fails it when [`REQUIRE_ENV`] is `1`.
fn skip(test: &str, reason: &str) {
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{test}: {REQUIRE_ENV}=1 but {reason}");
    }
    let line = format!("SKIPPED {test}: {reason} (set {REQUIRE_ENV}=1 to make this a failure)\n");
    // Past libtest's capture: the terminal itself when there is one, else stderr.
    match std::fs::OpenOptions::new().write(true).open("/dev/tty") {
        Ok(mut tty) => {
            let _ = std::io::Write::write_all(&mut tty, line.as_bytes());
        }
        Err(_) => {
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        }
    }
}

/// A free port whose bus port (+ 10000) exists too.
fn cluster_port(test: &str) -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{test}: free port: {e}"));
        if port <= 55_535 {
            return port;
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// A real Redis Cluster of `redis-server --cluster-enabled yes` processes (no replicas), made with
/// `redis-cli --cluster create`; every node killed when dropped.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `shards` primaries and joins them into one cluster (slots split evenly), or skips `test`
    /// visibly when there is no `redis-server` or `redis-cli`.
    pub fn start_or_skip(test: &str, shards: usize) -> Option<Self> {
        let cli = match std::env::var_os("REDIS_CLI_BIN")
            .map(PathBuf::from)
            .or_else(|| which("redis-cli"))
        {
            Some(cli) => cli,
            None => {
                skip(test, "no redis-cli on PATH and REDIS_CLI_BIN unset");
                return None;
            }
        };
        let mut nodes = Vec::with_capacity(shards);
        for _ in 0..shards {
            let mut node = RedisServer::start_or_skip(test, false)?;
            node.kill();
            // A cluster node also listens on its port + 10000 (the bus): at most 55535, which the
            // kernel's ephemeral range (up to 60999) does not guarantee.
            node.port = cluster_port(test);
            node.cluster = true;
            node.restart();
            nodes.push(node);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new(&cli)
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("{test}: running redis-cli --cluster create: {e}"));
        assert!(
            out.status.success(),
            "{test}: redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.nodes.iter().all(|n| {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut n.connection())
                .unwrap_or_default();
            info.contains("cluster_state:ok")
        }) {
            assert!(
                Instant::now() < deadline,
                "{test}: the cluster never became ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(cluster)
    }

    /// `FEATURE_STORE_URL` for it: every node's URL, comma-separated.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node serving `key`, by the cluster's own answer (`CLUSTER KEYSLOT`, `CLUSTER SLOTS`).
    pub fn node_of_key(&self, key: &str) -> usize {
        self.node_of_key_asking(key, 0)
    }

    fn node_of_key_asking(&self, key: &str, ask: usize) -> usize {
        let mut conn = self.nodes[ask].connection();
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("CLUSTER KEYSLOT: {e}"));
        let ranges: Vec<(i64, i64, i64)> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query::<Vec<redis::Value>>(&mut conn)
            .unwrap_or_else(|e| panic!("CLUSTER SLOTS: {e}"))
            .into_iter()
            .filter_map(|v| match v {
                redis::Value::Array(items) if items.len() >= 3 => {
                    let int = |v: &redis::Value| match v {
                        redis::Value::Int(i) => Some(*i),
                        _ => None,
                    };
                    let (lo, hi) = (int(&items[0])?, int(&items[1])?);
                    let redis::Value::Array(node) = &items[2] else {
                        return None;
                    };
                    Some((lo, hi, int(node.get(1)?)?))
                }
                _ => None,
            })
            .collect();
        let port = ranges
            .iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&slot))
            .map(|(_, _, port)| *port)
            .unwrap_or_else(|| panic!("no node serves slot {slot}"));
        self.nodes
            .iter()
            .position(|n| i64::from(n.port) == port)
            .unwrap_or_else(|| panic!("no node on port {port}"))
    }

    /// Whether `key` lives on node `dead` (asked of another node, `dead` being down).
    pub fn node_of_key_alive(&self, key: &str, dead: usize) -> bool {
        let alive = (0..self.nodes.len()).find(|&i| i != dead).unwrap_or(0);
        self.node_of_key_asking(key, alive) == dead
    }

    /// Kills node `i` (SIGKILL): its slots are down.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Every window key of every live node, as [`RedisServer::dump_windows`] gives them, merged and sorted.
    pub fn dump_windows(&self) -> Vec<(String, Vec<(String, f64)>)> {
        let mut all: Vec<_> = self
            .nodes
            .iter()
            .filter(|n| n.child.is_some())
            .flat_map(RedisServer::dump_windows)
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}
