//! One Redis or a Redis Cluster behind the same calls.
//!
//! `FEATURE_STORE_URL` with one address is one Redis (a multiplexed `ConnectionManager`, reconnecting on its
//! own); with several, comma-separated (`redis://h1:p1,redis://h2:p2,…`), it is a cluster: redis-rs's
//! cluster client finds the slot map from any of them, follows `MOVED`/`ASK` and a failover. Every call the
//! store makes touches one slot in cluster mode (the keys are hash-tagged, `keys.rs`), and [`Grouping`]
//! says which calls may share one script call: everything in one Redis, what shares a slot in a cluster.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use tokio::sync::OnceCell;

use crate::error::StoreError;

/// Slots of a Redis Cluster.
const SLOTS: u16 = 16_384;

/// Where the calls go.
#[derive(Clone)]
pub(crate) enum Backend {
    /// One Redis.
    Single(ConnectionManager),
    /// A cluster, connected on first use (a cluster that is down at start-up is not an error: the calls
    /// fail and are counted until it answers).
    Cluster {
        client: Arc<redis::cluster::ClusterClient>,
        conn: Arc<OnceCell<ClusterConnection>>,
    },
}

/// A connection for one call.
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Who the store logs in as (Redis ACL). Either part unset leaves the URL's (or Redis's default user).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The ACL user.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<String>,
}

impl Backend {
    /// One Redis for one URL, a cluster for several (comma-separated); lazy either way. `credentials`
    /// override what the URLs say.
    pub(crate) fn open(
        url: &str,
        deadline: Duration,
        credentials: &Credentials,
    ) -> Result<Self, StoreError> {
        let bad = |source| StoreError::Url {
            url: url.to_owned(),
            source,
        };
        let nodes: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let connect_timeout = deadline.max(Duration::from_millis(100));
        if let [single] = nodes[..] {
            let info = redis::IntoConnectionInfo::into_connection_info(single).map_err(bad)?;
            let mut settings = info.redis_settings().clone();
            if let Some(username) = &credentials.username {
                settings = settings.set_username(username);
            }
            if let Some(password) = &credentials.password {
                settings = settings.set_password(password);
            }
            let client = redis::Client::open(info.set_redis_settings(settings)).map_err(bad)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(deadline))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            return ConnectionManager::new_lazy_with_config(client, config)
                .map(Self::Single)
                .map_err(bad);
        }
        let mut builder = ClusterClientBuilder::new(nodes);
        if let Some(username) = &credentials.username {
            builder = builder.username(username);
        }
        if let Some(password) = &credentials.password {
            builder = builder.password(password);
        }
        let client = builder
            .connection_timeout(deadline.min(Duration::from_millis(50)))
            .response_timeout(deadline)
            .retries(0)
            .build()
            .map_err(bad)?;
        Ok(Self::Cluster {
            client: Arc::new(client),
            conn: Arc::new(OnceCell::new()),
        })
    }

    /// Whether this is a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster { .. })
    }

    /// A connection for a call (the first call to a cluster connects).
    pub(crate) async fn conn(&self) -> redis::RedisResult<Conn> {
        match self {
            Self::Single(c) => Ok(Conn::Single(c.clone())),
            Self::Cluster { client, conn } => conn
                .get_or_try_init(|| client.get_async_connection())
                .await
                .map(|c| Conn::Cluster(c.clone())),
        }
    }

    /// Which calls may share one script call or pipeline ([`Grouping::of`]).
    pub(crate) fn grouping(&self) -> Grouping {
        Grouping {
            cluster: self.is_cluster(),
        }
    }
}

/// Groups the keys of a batch: one group in one Redis, one per slot in a cluster.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grouping {
    cluster: bool,
}

impl Grouping {
    /// The group of `key`: its slot in a cluster, else 0.
    pub(crate) fn of(self, key: &str) -> u16 {
        if self.cluster { slot(key) } else { 0 }
    }
}

/// The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag (the text between the first `{` and the
/// next `}`, when not empty) or of the whole key, modulo 16,384.
pub(crate) fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &bytes[open + 1..];
        rest.iter()
            .position(|&b| b == b'}')
            .filter(|&close| close > 0)
            .map(|close| &rest[..close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(bytes)) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::cluster_routing::Slot;

    #[test]
    fn slots_are_redis_s() {
        // The example of the Redis Cluster specification, and redis-rs's own computation.
        assert_eq!(slot("123456789"), 0x31C3 % SLOTS);
        for key in [
            "fraudops:v3:{c42}",
            "fraudops:v2:{t7}:f",
            "a{}b",
            "{",
            "plain",
            "x{y}z{w}",
        ] {
            assert_eq!(
                Slot::for_key(key),
                Slot::new(slot(key)).expect("in range"),
                "{key}"
            );
        }
    }
}
