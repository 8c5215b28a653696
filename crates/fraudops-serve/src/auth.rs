//! Who is calling: API keys with scopes, from the file API_KEYS_FILE names (a Kubernetes Secret in the
//! cluster), re-read when it changes so keys rotate without a restart.
//!
//! Why scopes and not one key: the feature store's history is what the model decides on, so writing it is
//! a privilege of its own. `score` may only score (a direct call reads the store's windows and writes
//! nothing), `record` may also add its direct calls to the store (the payment flow, the stream worker),
//! `history` may send precomputed windows (the stream worker, backfills). Without API_KEYS_FILE every
//! caller is [`Caller::open`] (the quick start on one's own machine).
//!
//! The file holds SHA-256 digests, never keys: a leaked Secret lets nobody call. A presented key is hashed
//! and compared with every digest in constant time (no early exit), and it is never logged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::http::{HeaderMap, header};
use fraudops_store::Namespace;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::protection::ClientQuota;

/// What a key allows, as a set of [`Scope`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

/// One permission a key can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Score; a direct call reads the store's windows and records nothing.
    Score = 1,
    /// Score, and record direct calls in the feature store.
    Record = 2,
    /// Send precomputed `history`.
    History = 4,
}

impl Scope {
    const ALL: [Self; 3] = [Self::Score, Self::Record, Self::History];

    /// The name in the keys file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Score => "score",
            Self::Record => "record",
            Self::History => "history",
        }
    }
}

impl Scopes {
    /// Every scope: the caller of a server without keys.
    pub const ALL: Self = Self(7);

    /// Whether `scope` is held.
    pub fn allows(self, scope: Scope) -> bool {
        self.0 & scope as u8 != 0
    }

    /// `score,record`, as the keys file spells them.
    fn parse(text: &str) -> Result<Self, String> {
        let mut scopes = Self::default();
        for name in text.split(',') {
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| format!("unknown scope {name:?} (score, record, history)"))?;
            scopes.0 |= scope as u8;
        }
        Ok(scopes)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The client id of its key (the quota's key and the metrics' `client` label).
    pub client: Arc<str>,
    /// What it may do.
    pub scopes: Scopes,
    /// Its own quota (`rps=` in the keys file), shared by every key of the client; `None`: the server's
    /// RATE_LIMIT_RPS applies.
    pub quota: Option<ClientQuota>,
    /// Whose history its direct calls read and write in the feature store: `ns=synthetic` in the keys
    /// file for the attack's and the drills' keys, so their events never touch a real card's windows.
    pub namespace: Namespace,
}

impl Caller {
    /// The caller of a server without API_KEYS_FILE: anyone, with every scope.
    pub fn open() -> Self {
        Self {
            client: Arc::from(OPEN_CLIENT),
            scopes: Scopes::ALL,
            quota: None,
            namespace: Namespace::Real,
        }
    }
}

/// The `client` of callers of a server without keys.
pub const OPEN_CLIENT: &str = "anonymous";
/// The `client` label of a refusal whose caller is not known (no key, or a key nobody holds).
pub const UNKNOWN_CLIENT: &str = "unknown";

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    MissingKey,
    /// A key no line of the file holds.
    InvalidKey,
}

/// One line of the keys file.
#[derive(Debug, Clone)]
struct Entry {
    caller: Caller,
    digest: [u64; 4],
}

/// A SHA-256 digest as four words, compared a word at a time.
fn words(digest: &[u8; 32]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (word, chunk) in out.iter_mut().zip(digest.chunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        *word = u64::from_le_bytes(bytes);
    }
    out
}

/// A keys file, parsed.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    entries: Vec<Entry>,
}

/// A keys file that cannot be used; the line is named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum KeysFileError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `<client-id> <scope>[,<scope>…] sha256:<hex> [rps=<n>] [burst=<n>] [ns=synthetic]`.
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// No key at all: every request would be refused, which is never what was meant.
    #[error("{0}: no keys (lines `<client-id> <scope>[,<scope>...] sha256:<hex>`)")]
    Empty(PathBuf),
}

/// The SHA-256 digest of a key, as the keys file holds it (`sha256:<hex>`).
pub fn key_digest(key: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// The keys-file line of a new key (with its client's own quota, if given; `ns=synthetic` for the key of
/// an attack or a drill), checked as the server will read it.
pub fn keys_file_line(
    client: &str,
    scopes: &str,
    key: &str,
    rps: Option<u32>,
    synthetic: bool,
) -> Result<String, KeysFileError> {
    let mut line = format!("{client} {scopes} {}", key_digest(key));
    if let Some(rps) = rps {
        line.push_str(&format!(" rps={rps}"));
    }
    if synthetic {
        line.push_str(" ns=synthetic");
    }
    ApiKeys::parse(&line, Path::new("<new key>"))?;
    Ok(line)
}

impl ApiKeys {
    /// Parses the keys file's text; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, KeysFileError> {
        let mut entries = Vec::new();
        // One quota per client, whichever of its keys (two during a rotation) a request carries.
        let mut quotas: HashMap<String, (u32, u32, ClientQuota)> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| KeysFileError::Line {
                path: path.to_owned(),
                line: i + 1,
                message,
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [client, scopes, digest, ref options @ ..] = fields[..] else {
                return Err(err(format!(
                    "expected `<client-id> <scopes> sha256:<hex> [rps=<n>] [burst=<n>]`, got {} fields",
                    fields.len()
                )));
            };
            let (mut rps, mut burst, mut namespace) = (None, None, Namespace::Real);
            for option in options {
                let (name, value) = option.split_once('=').unwrap_or((option, ""));
                let n = || {
                    value.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(|| {
                        err(format!("{option:?}: expected rps=<n> or burst=<n>, n ≥ 1"))
                    })
                };
                match name {
                    "rps" => rps = Some(n()?),
                    "burst" => burst = Some(n()?),
                    "ns" => {
                        namespace = match value {
                            "real" => Namespace::Real,
                            "synthetic" => Namespace::Synthetic,
                            _ => {
                                return Err(err(format!(
                                    "{option:?}: expected ns=real or ns=synthetic"
                                )));
                            }
                        }
                    }
                    _ => return Err(err(format!("unknown option {option:?} (rps, burst, ns)"))),
                }
            }
            if burst.is_some() && rps.is_none() {
                return Err(err("burst= needs rps=".into()));
            }
            if client.len() > 64
                || !client
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(err(
                    "the client id must be 1-64 characters of [A-Za-z0-9._-]".into(),
                ));
            }
            let scopes = Scopes::parse(scopes).map_err(err)?;
            let hex_digest = digest
                .strip_prefix("sha256:")
                .ok_or_else(|| err("the digest must start with `sha256:`".into()))?;
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(hex_digest, &mut bytes)
                .map_err(|_| err("the digest must be 64 hex digits".into()))?;
            let quota = match rps {
                Some(rps) => {
                    let burst = burst.unwrap_or(rps);
                    let (r, b, quota) = quotas
                        .entry(client.to_owned())
                        .or_insert_with(|| (rps, burst, ClientQuota::new(rps, burst)));
                    if (*r, *b) != (rps, burst) {
                        return Err(err(format!(
                            "client {client} has another line with rps={r} burst={b}: one quota per client"
                        )));
                    }
                    Some(quota.clone())
                }
                None => None,
            };
            entries.push(Entry {
                caller: Caller {
                    client: Arc::from(client),
                    scopes,
                    quota,
                    namespace,
                },
                digest: words(&bytes),
            });
        }
        if entries.is_empty() {
            return Err(KeysFileError::Empty(path.to_owned()));
        }
        Ok(Self { entries })
    }

    /// The caller whose key this is. Every digest is compared, whatever matched, in constant time: the
    /// difference of each is folded without a branch (four 64-bit words) and tested with `subtle`.
    pub fn authenticate(&self, key: &str) -> Option<&Caller> {
        let digest = words(&Sha256::digest(key.as_bytes()).into());
        let mut found = None;
        for entry in &self.entries {
            let difference = entry
                .digest
                .iter()
                .zip(&digest)
                .fold(0u64, |acc, (a, b)| acc | (a ^ b));
            if bool::from(difference.ct_eq(&0)) {
                found = Some(&entry.caller);
            }
        }
        found
    }

    /// Keys in the file.
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// How often the keys file is checked for a change. A Kubernetes Secret reaches the pod up to a minute
/// after it changes; this adds at most a few seconds to that.
pub const KEYS_POLL: Duration = Duration::from_secs(5);

/// The keys in force: none (every caller is [`Caller::open`]) or the file's, swapped when it changes.
pub struct Authenticator {
    keys: Option<(PathBuf, ArcSwap<ApiKeys>)>,
    /// The text last parsed, so an unchanged file is not parsed again.
    last_text: std::sync::Mutex<String>,
}

impl Authenticator {
    /// No keys: every caller may do everything.
    pub fn open() -> Self {
        Self {
            keys: None,
            last_text: Default::default(),
        }
    }

    /// The keys of `path`; an unreadable or invalid file is an error at start-up (fail fast).
    pub fn from_file(path: &Path) -> Result<Self, KeysFileError> {
        let text = read(path)?;
        let keys = ApiKeys::parse(&text, path)?;
        Ok(Self {
            keys: Some((path.to_owned(), ArcSwap::from_pointee(keys))),
            last_text: std::sync::Mutex::new(text),
        })
    }

    /// Whether keys are required.
    pub fn is_enforced(&self) -> bool {
        self.keys.is_some()
    }

    /// Keys in force (0 without a file).
    pub fn key_count(&self) -> usize {
        self.keys.as_ref().map_or(0, |(_, k)| k.load().len())
    }

    /// The caller of a request with these headers.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthFailure> {
        let Some((_, keys)) = &self.keys else {
            return Ok(Caller::open());
        };
        let key = bearer(headers).ok_or(AuthFailure::MissingKey)?;
        keys.load()
            .authenticate(key)
            .cloned()
            .ok_or(AuthFailure::InvalidKey)
    }

    /// Re-reads the file; a changed, valid file replaces the keys (`Ok(true)`), an invalid one is an
    /// error and the keys in force stay.
    pub fn reload(&self) -> Result<bool, KeysFileError> {
        let Some((path, keys)) = &self.keys else {
            return Ok(false);
        };
        let text = read(path)?;
        let mut last = self
            .last_text
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last == text {
            return Ok(false);
        }
        let parsed = ApiKeys::parse(&text, path)?;
        keys.store(Arc::new(parsed));
        *last = text;
        Ok(true)
    }
}

fn read(path: &Path) -> Result<String, KeysFileError> {
    std::fs::read_to_string(path).map_err(|source| KeysFileError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The key of `Authorization: Bearer <key>` (the scheme in any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn keys(text: &str) -> Result<ApiKeys, KeysFileError> {
        ApiKeys::parse(text, Path::new("keys"))
    }

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        h
    }

    #[test]
    fn a_key_is_known_by_its_digest_and_carries_its_clients_scopes() {
        let text = format!(
            "# payment flow\n\npayments record {}\nworker record,history {}\n",
            key_digest("k-pay"),
            key_digest("k-worker")
        );
        let keys = keys(&text).expect("parse");
        assert_eq!(keys.len(), 2);
        let pay = keys.authenticate("k-pay").expect("known");
        assert_eq!(&*pay.client, "payments");
        assert!(pay.scopes.allows(Scope::Record));
        assert!(!pay.scopes.allows(Scope::History));
        let worker = keys.authenticate("k-worker").expect("known");
        assert!(worker.scopes.allows(Scope::History));
        assert!(keys.authenticate("k-other").is_none());
        assert!(keys.authenticate("").is_none());
    }

    #[test]
    fn a_bad_line_is_named() {
        for (text, says) in [
            ("a score", "2 fields"),
            ("a score sha256:00 rps=x", "rps=<n>"),
            ("a score sha256:00 rps=0", "rps=<n>"),
            ("a score sha256:00 speed=3", "unknown option"),
            ("a write sha256:00", "unknown scope"),
            ("a score md5:00", "sha256:"),
            ("a score sha256:zz", "64 hex"),
            ("a/b score sha256:00", "client id"),
        ] {
            let e = keys(text).expect_err(text).to_string();
            assert!(e.contains("keys:1:") && e.contains(says), "{text}: {e}");
        }
        assert!(matches!(keys("# none\n"), Err(KeysFileError::Empty(_))));
    }

    #[test]
    fn a_synthetic_key_scores_in_the_synthetic_namespace() {
        let line = keys_file_line("attack", "record", "k-attack", Some(40_000), true).unwrap();
        assert!(line.ends_with(" rps=40000 ns=synthetic"), "{line}");
        let keys = ApiKeys::parse(&format!("{line}\n"), Path::new("keys")).unwrap();
        assert_eq!(
            keys.authenticate("k-attack").map(|c| c.namespace),
            Some(Namespace::Synthetic)
        );
        let e = ApiKeys::parse("a score sha256:00 ns=fake", Path::new("keys")).unwrap_err();
        assert!(e.to_string().contains("ns=real or ns=synthetic"), "{e}");
    }

    #[test]
    fn a_clients_keys_share_its_quota_and_must_agree_on_it() {
        let text = format!(
            "w record,history {} rps=2\nw record,history {} rps=2\np score {}\n",
            key_digest("old"),
            key_digest("new"),
            key_digest("p")
        );
        let keys = keys(&text).expect("parse");
        let old = keys
            .authenticate("old")
            .and_then(|c| c.quota.clone())
            .expect("quota");
        let new = keys
            .authenticate("new")
            .and_then(|c| c.quota.clone())
            .expect("quota");
        assert_eq!(old, new, "one bucket for both keys of the client");
        assert!(old.check().is_ok() && new.check().is_ok());
        assert!(
            old.check().is_err(),
            "the third request of the second is over rps=2"
        );
        assert!(keys.authenticate("p").is_some_and(|c| c.quota.is_none()));
        let conflicting = format!(
            "w score {} rps=2\nw score {} rps=3\n",
            key_digest("a"),
            key_digest("b")
        );
        let e = super::ApiKeys::parse(&conflicting, Path::new("keys")).expect_err("conflict");
        assert!(e.to_string().contains("one quota per client"), "{e}");
    }

    #[test]
    fn only_a_bearer_key_authenticates() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("keys");
        std::fs::write(&path, format!("c score {}\n", key_digest("secret"))).expect("write");
        let auth = Authenticator::from_file(&path).expect("load");
        assert_eq!(
            auth.authenticate(&HeaderMap::new()),
            Err(AuthFailure::MissingKey)
        );
        assert_eq!(
            auth.authenticate(&with_auth("Basic c2VjcmV0")),
            Err(AuthFailure::MissingKey)
        );
        assert_eq!(
            auth.authenticate(&with_auth("Bearer nope")),
            Err(AuthFailure::InvalidKey)
        );
        let caller = auth
            .authenticate(&with_auth("bearer secret"))
            .expect("known");
        assert_eq!(&*caller.client, "c");
        assert!(
            Authenticator::open()
                .authenticate(&HeaderMap::new())
                .is_ok()
        );
    }

    #[test]
    fn a_changed_file_rotates_keys_and_an_invalid_one_keeps_the_old() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("keys");
        std::fs::write(&path, format!("c score {}\n", key_digest("old"))).expect("write");
        let auth = Authenticator::from_file(&path).expect("load");
        assert!(!auth.reload().expect("unchanged"));
        std::fs::write(&path, format!("c score {}\n", key_digest("new"))).expect("write");
        assert!(auth.reload().expect("rotated"));
        assert_eq!(
            auth.authenticate(&with_auth("Bearer old")),
            Err(AuthFailure::InvalidKey)
        );
        assert!(auth.authenticate(&with_auth("Bearer new")).is_ok());
        std::fs::write(&path, "garbage\n").expect("write");
        assert!(auth.reload().is_err());
        assert!(
            auth.authenticate(&with_auth("Bearer new")).is_ok(),
            "an invalid file keeps the keys in force"
        );
    }
}
