//! The drill's one error type: what failed, with enough context to act on it.

use std::path::PathBuf;

/// Everything that can stop a drill.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A manifest or rule file does not say what the drill needs.
    #[error("{path}: {message}")]
    Manifest {
        /// The file (or the command that rendered it).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A YAML document could not be parsed.
    #[error("{context}: {source}")]
    Yaml {
        /// Which document.
        context: String,
        /// The cause.
        #[source]
        source: serde_yaml::Error,
    },
    /// A tool the drill runs is missing or failed.
    #[error("{0}")]
    Tool(String),
    /// An HTTP call to a component (Prometheus, Alertmanager, a replica) failed.
    #[error("{context}: {source}")]
    Http {
        /// What was asked.
        context: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The options contradict each other or the machine.
    #[error("{0}")]
    Config(String),
    /// A component did not come up in time.
    #[error("{0}")]
    Timeout(String),
    /// CPU limits could not be set up (and the accounting fallback was not allowed).
    #[error("cgroup: {0}")]
    Cgroup(String),
    /// Ctrl-C (or SIGTERM) before the attack started; everything started was stopped.
    #[error("interrupted before the attack started; everything that was started has been stopped")]
    Interrupted,
    /// The report could not be drawn.
    #[error("chart: {0}")]
    Chart(String),
}

impl DrillError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// An HTTP error with what was being asked.
    pub fn http(context: impl Into<String>, source: reqwest::Error) -> Self {
        Self::Http {
            context: context.into(),
            source,
        }
    }

    /// A manifest problem in `path`.
    pub fn manifest(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Manifest {
            path: path.into(),
            message: message.into(),
        }
    }
}
