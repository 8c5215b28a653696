//! The options every command that uses the store takes (each also an environment variable).

use std::path::PathBuf;
use std::time::Duration;

/// Where the store is and how long a scorer waits for it.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Redis URL of the online feature store (`redis://host:6379/0`); unset: no store (requests without
    /// `history` are scored as a first transaction at an unseen terminal).
    #[arg(long = "feature-store", env = "FEATURE_STORE_URL")]
    pub url: Option<String>,
    /// Longest wait for one store call before scoring without history (the API) or retrying (labels).
    #[arg(long = "feature-store-timeout", env = "FEATURE_STORE_TIMEOUT", default_value = "25ms",
          value_parser = parse_duration)]
    pub timeout: Duration,
    /// How far ahead of this machine's clock a transaction's time may be and still be recorded (its
    /// `tx_datetime`, UTC): the store prunes history by event time, so a future time must not reach it.
    /// The API refuses such a request with 422; the stream worker scores it without recording it.
    #[arg(long = "max-clock-skew", env = "MAX_CLOCK_SKEW", default_value = "5m",
          value_parser = parse_duration)]
    pub max_clock_skew: Duration,
    /// Drain older layouts' keys on every touch: v2's card keys into v3 (one Redis or a cluster), v1's keys
    /// (one Redis upgraded from v1; a cluster never had them). One `EXISTS` per direct call in a cluster,
    /// six in one Redis: set `false` once every older scorer is gone.
    #[arg(long = "feature-store-drain", env = "FEATURE_STORE_DRAIN", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub drain: bool,
    /// The Redis ACL user this workload logs in as (`fraudops-scorer`, `fraudops-labels`: each may run its
    /// own script on the store's keys and nothing else, deploy/k8s/base/redis-users.acl); unset: the URL's
    /// user, else Redis's default user.
    #[arg(long = "feature-store-username", env = "FEATURE_STORE_USERNAME")]
    pub username: Option<String>,
    /// A file holding that user's password (a mounted Secret; read once at start, surrounding whitespace
    /// ignored), so the password is in neither the URL nor the environment.
    #[arg(
        long = "feature-store-password-file",
        env = "FEATURE_STORE_PASSWORD_FILE"
    )]
    pub password_file: Option<PathBuf>,
}

impl StoreArgs {
    /// The store these options name, or `None` without a URL.
    pub fn connect(&self) -> Result<Option<crate::FeatureStore>, crate::StoreError> {
        let Some(url) = self.url.as_deref() else {
            return Ok(None);
        };
        let password = self
            .password_file
            .as_deref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .map(|text| text.trim().to_owned())
                    .map_err(|source| crate::StoreError::PasswordFile {
                        path: path.to_owned(),
                        source,
                    })
            })
            .transpose()?;
        let credentials = crate::Credentials {
            username: self.username.clone(),
            password,
        };
        crate::FeatureStore::connect_as(url, self.timeout, credentials).map(|s| {
            Some(
                s.with_max_clock_skew(self.max_clock_skew)
                    .with_drain(self.drain),
            )
        })
    }
}

/// `25ms`, `2s`, `1m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit (ms, s, m)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a whole number and a unit"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{text:?}: unit must be ms, s or m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("25ms"), Ok(Duration::from_millis(25)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("25").is_err());
        assert!(parse_duration("5h").is_err());
    }

    fn args(password_file: Option<PathBuf>) -> StoreArgs {
        StoreArgs {
            url: Some("redis://127.0.0.1:1/0".into()),
            timeout: Duration::from_millis(25),
            max_clock_skew: crate::DEFAULT_MAX_CLOCK_SKEW,
            drain: true,
            username: Some("fraudops-scorer".into()),
            password_file,
        }
    }

    #[test]
    fn a_missing_password_file_stops_the_start_and_names_the_file() {
        let missing = std::env::temp_dir().join("fraudops-no-such-password-file");
        match args(Some(missing.clone())).connect() {
            Err(crate::StoreError::PasswordFile { path, .. }) => assert_eq!(path, missing),
            Err(e) => panic!("another error: {e}"),
            Ok(_) => panic!("started without its password"),
        }
    }

    #[tokio::test]
    async fn a_password_file_is_read_once_at_start() {
        let dir = std::env::temp_dir().join(format!("fraudops-password-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("scorer");
        std::fs::write(&file, "s3cret\n").expect("write");
        // Lazy: the store is not reached, the file is read (and a trailing newline dropped).
        assert!(matches!(args(Some(file)).connect(), Ok(Some(_))));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
