//! How to reach the broker and which input topic to use: the SPEC's `KAFKA_BOOTSTRAP_SERVERS` and
//! `KAFKA_TOPIC`, shared by `attack` and `stream` so both always talk about the same topic.

use rdkafka::ClientConfig;

/// The input topic of SPEC §5 (and `KAFKA_TOPIC` in deploy/k8s/base/configmap.yaml).
pub const DEFAULT_INPUT_TOPIC: &str = "transactions-input";
/// The predictions topic of SPEC §5.
pub const DEFAULT_OUTPUT_TOPIC: &str = "fraud-predictions";
/// The dead-letter topic (deploy/k8s/base/kafka-topics.yaml).
pub const DEFAULT_DEAD_LETTER_TOPIC: &str = "transactions-dead-letter";
/// The confirmed outcomes (SPEC §5, `LABELS_TOPIC` in deploy/k8s/base/configmap.yaml): the attack writes
/// them after the label delay, `fraudops labels` applies them to the feature store.
pub const DEFAULT_LABELS_TOPIC: &str = "fraud-labels";

/// Broker and input topic options, flattened into both commands.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, `host:port[,host:port...]`.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "localhost:9092"
    )]
    pub bootstrap_servers: String,
    /// Topic of the transaction events (the attack writes it, the worker reads it).
    #[arg(long, env = "KAFKA_TOPIC", default_value = DEFAULT_INPUT_TOPIC)]
    pub topic: String,
    /// Partitions of topics this command creates when they are missing (existing topics are left as they are).
    #[arg(long, env = "KAFKA_PARTITIONS", default_value_t = 12)]
    pub partitions: i32,
    /// Replication factor of topics this command creates.
    #[arg(long, env = "KAFKA_REPLICATION_FACTOR", default_value_t = 1)]
    pub replication_factor: i32,
    /// TLS and SASL towards the broker (every client of this process: producers, consumers, admin).
    #[command(flatten)]
    pub security: KafkaSecurity,
}

/// librdkafka's standard security settings, from the environment (a deployment's Secrets mounted as files):
/// `security.protocol`, `sasl.mechanism`, `sasl.username`/`sasl.password`, `ssl.ca.location`,
/// `ssl.certificate.location`/`ssl.key.location`/`ssl.key.password`. Passwords are read from files when
/// the options are parsed, so a missing file stops the command at once with the variable's name, and they
/// never appear in the environment, the command line or `Debug` output.
#[derive(Clone, Default, clap::Args)]
pub struct KafkaSecurity {
    /// `security.protocol`: `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[arg(long = "kafka-security-protocol", env = "KAFKA_SECURITY_PROTOCOL")]
    pub protocol: Option<String>,
    /// `sasl.mechanism`, e.g. `SCRAM-SHA-512`.
    #[arg(long = "kafka-sasl-mechanism", env = "KAFKA_SASL_MECHANISM")]
    pub sasl_mechanism: Option<String>,
    /// `sasl.username`: this workload's Kafka user.
    #[arg(long = "kafka-sasl-username", env = "KAFKA_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    /// A file holding `sasl.password` (a mounted Secret).
    #[arg(long = "kafka-sasl-password-file", env = "KAFKA_SASL_PASSWORD_FILE", value_parser = read_secret)]
    pub sasl_password: Option<SecretText>,
    /// `ssl.ca.location`: the CA that signed the broker's certificate.
    #[arg(long = "kafka-ssl-ca-location", env = "KAFKA_SSL_CA_LOCATION")]
    pub ssl_ca_location: Option<String>,
    /// `ssl.certificate.location`: this client's certificate (mutual TLS).
    #[arg(
        long = "kafka-ssl-certificate-location",
        env = "KAFKA_SSL_CERTIFICATE_LOCATION"
    )]
    pub ssl_certificate_location: Option<String>,
    /// `ssl.key.location`: this client's private key (mutual TLS).
    #[arg(long = "kafka-ssl-key-location", env = "KAFKA_SSL_KEY_LOCATION")]
    pub ssl_key_location: Option<String>,
    /// A file holding `ssl.key.password`.
    #[arg(long = "kafka-ssl-key-password-file", env = "KAFKA_SSL_KEY_PASSWORD_FILE", value_parser = read_secret)]
    pub ssl_key_password: Option<SecretText>,
}

impl std::fmt::Debug for KafkaSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSecurity")
            .field("protocol", &self.protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field("sasl_password", &self.sasl_password)
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("ssl_certificate_location", &self.ssl_certificate_location)
            .field("ssl_key_location", &self.ssl_key_location)
            .field("ssl_key_password", &self.ssl_key_password)
            .finish()
    }
}

/// A password read from a file; its `Debug` says only that it is there.
#[derive(Clone)]
pub struct SecretText(String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// clap's parser for a `*_FILE` option: the file's text, surrounding whitespace dropped.
fn read_secret(path: &str) -> Result<SecretText, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{path} is empty"));
    }
    Ok(SecretText(text.to_owned()))
}

impl KafkaSecurity {
    /// Sets what is given on `config` (nothing: librdkafka's plaintext default).
    fn apply(&self, config: &mut ClientConfig) {
        let settings = [
            ("security.protocol", self.protocol.as_deref()),
            ("sasl.mechanism", self.sasl_mechanism.as_deref()),
            ("sasl.username", self.sasl_username.as_deref()),
            (
                "sasl.password",
                self.sasl_password.as_ref().map(|s| s.0.as_str()),
            ),
            ("ssl.ca.location", self.ssl_ca_location.as_deref()),
            (
                "ssl.certificate.location",
                self.ssl_certificate_location.as_deref(),
            ),
            ("ssl.key.location", self.ssl_key_location.as_deref()),
            (
                "ssl.key.password",
                self.ssl_key_password.as_ref().map(|s| s.0.as_str()),
            ),
        ];
        for (key, value) in settings {
            if let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) {
                config.set(key, value);
            }
        }
    }
}

impl KafkaArgs {
    /// Local defaults with the given bootstrap servers (tests, benchmarks).
    pub fn local(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            topic: DEFAULT_INPUT_TOPIC.into(),
            partitions: 12,
            replication_factor: 1,
            security: KafkaSecurity::default(),
        }
    }

    /// A librdkafka configuration with the bootstrap servers and a client id; callers add their role's
    /// settings. The client id shows up in broker logs, which is how an operator tells workers apart.
    pub fn client_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", client_id)
            // The broker's metadata may briefly lag a topic we just created.
            .set("topic.metadata.refresh.interval.ms", "10000");
        self.security.apply(&mut config);
        // librdkafka's own debug contexts (e.g. `cgrp,fetch`) for an operator chasing a broker problem.
        if let Ok(debug) = std::env::var("KAFKA_DEBUG")
            && !debug.trim().is_empty()
        {
            config.set("debug", debug.trim());
        }
        config
    }
}

/// A process's replica id: `explicit` when given, else the host name (the pod name in Kubernetes), else
/// `fallback` (the subcommand's name). Shared by the worker and the label consumer.
pub fn replica_id(explicit: Option<&str>, fallback: &str) -> String {
    explicit
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| fallback.into())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaArgs,
    }

    #[test]
    fn security_settings_reach_librdkafka_and_the_password_stays_out_of_sight() {
        let dir =
            std::env::temp_dir().join(format!("fraudops-kafka-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("password");
        std::fs::write(&file, "hunter2\n").expect("write");
        let cli = Cli::try_parse_from([
            "x",
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-mechanism",
            "SCRAM-SHA-512",
            "--kafka-sasl-username",
            "fraudops-stream",
            "--kafka-sasl-password-file",
            file.to_str().expect("path"),
            "--kafka-ssl-ca-location",
            "/etc/kafka/ca.crt",
        ])
        .expect("parse");
        let config = cli.kafka.client_config("fraudops-test");
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("fraudops-stream"));
        assert_eq!(config.get("sasl.password"), Some("hunter2"));
        assert_eq!(config.get("ssl.ca.location"), Some("/etc/kafka/ca.crt"));
        let shown = format!("{:?}", cli.kafka);
        assert!(
            !shown.contains("hunter2") && shown.contains("<secret>"),
            "{shown}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_missing_password_file_stops_the_command_at_once_and_names_it() {
        let err = Cli::try_parse_from([
            "x",
            "--kafka-sasl-password-file",
            "/nonexistent/kafka-password",
        ])
        .err()
        .expect("refused")
        .to_string();
        assert!(err.contains("/nonexistent/kafka-password"), "{err}");
    }

    #[test]
    fn without_settings_the_client_is_plaintext_as_before() {
        let config = KafkaArgs::local("localhost:9092").client_config("fraudops-test");
        assert_eq!(config.get("security.protocol"), None);
        assert_eq!(config.get("sasl.username"), None);
    }
}
