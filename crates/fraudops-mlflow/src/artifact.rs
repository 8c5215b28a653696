//! Artifact locations: which `source` / `artifact_uri` forms map onto the tracking server's
//! artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/<path>`), and the path under it.
//!
//! Supported:
//! - `mlflow-artifacts:/<path>` and `mlflow-artifacts://<host:port>/<path>` (what a server started
//!   with `--serve-artifacts`, the default, hands out as run artifact roots);
//! - `http(s)://<host>[/prefix]/api/2.0/mlflow-artifacts/artifacts/<path>` (the same, spelled as a
//!   URL; only the path is used, the request goes to the client's tracking server);
//! - `runs:/<run_id>/<path>`, resolved through the run's `artifact_uri`, which must be one of the
//!   above;
//! - `models:/<model_id>`, an MLflow 3 logged model (what `fraudops train` registers), resolved
//!   through the logged model's `artifact_uri`, which must be one of the above.
//!
//! Not supported, on purpose: direct object-store or file URIs (`s3://`, `gs://`, `wasbs://`,
//! `file://`, local paths), and `models:/<name>/<version>` as a source. Serving the former would
//! mean cloud SDKs in the API server; the proxy keeps the credentials on the MLflow server.

use crate::MlflowError;

/// Where artifacts live, in the terms the artifact proxy understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArtifactSource {
    /// A path under the proxy root, without leading or trailing `/` (e.g. `1/<run>/artifacts`).
    Proxied(String),
    /// `runs:/<run_id>/<path>`: the run's `artifact_uri` decides where `path` lives.
    Run {
        /// The run whose artifact root to look up.
        run_id: String,
        /// Path inside the run's artifact root; empty for the root itself.
        path: String,
    },
    /// `models:/<model_id>`: an MLflow 3 logged model; its `artifact_uri` is the root.
    LoggedModel {
        /// The logged model's id (`m-...`).
        model_id: String,
    },
}

const PROXY_ANCHOR: &str = "/api/2.0/mlflow-artifacts/artifacts";

/// Parses a model version `source` (or any artifact URI) into an [`ArtifactSource`].
pub(crate) fn parse_source(source: &str) -> Result<ArtifactSource, MlflowError> {
    if let Some(rest) = source.strip_prefix("runs:") {
        let rest = rest.trim_start_matches('/');
        let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
        if run_id.is_empty() {
            return Err(MlflowError::InvalidUri(format!(
                "artifact source {source:?}: runs:/ URI without a run id"
            )));
        }
        return Ok(ArtifactSource::Run {
            run_id: run_id.to_owned(),
            path: normalize(source, path)?,
        });
    }
    if let Some(rest) = source.strip_prefix("models:/") {
        // MLflow's rule (`_parse_model_uri`): one path segment without `@` is a model id (MLflow
        // makes them `m-<32 hex>`); `<name>/<version>` and `<name>@<alias>` name registered
        // versions, which are not a model's storage.
        let model_id = rest.trim_start_matches('/');
        let id_like = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if model_id.is_empty() || !model_id.bytes().all(id_like) {
            return Err(MlflowError::InvalidUri(format!(
                "artifact source {source:?}: only MLflow 3 logged models (models:/<model_id>) are \
                 supported as a models:/ source"
            )));
        }
        return Ok(ArtifactSource::LoggedModel {
            model_id: model_id.to_owned(),
        });
    }
    proxied_root(source).map(ArtifactSource::Proxied)
}

/// The proxy path of an artifact root such as a run's `artifact_uri`; `runs:/` is not accepted
/// here because a run's own root can never point at another run.
pub(crate) fn proxied_root(uri: &str) -> Result<String, MlflowError> {
    let path = if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
        match rest.strip_prefix("//") {
            // mlflow-artifacts://host:port/path: the authority names the server, the path is ours.
            Some(authority_and_path) => authority_and_path
                .split_once('/')
                .map_or("", |(_, path)| path),
            None => rest,
        }
    } else if uri.starts_with("http://") || uri.starts_with("https://") {
        match uri.split_once(PROXY_ANCHOR) {
            Some((_, path)) if path.is_empty() || path.starts_with('/') => path,
            _ => return Err(unsupported(uri)),
        }
    } else {
        return Err(unsupported(uri));
    };
    normalize(uri, path)
}

/// Joins a caller's relative artifact path (`model.json`, `model/model.json`) onto a proxy root.
pub(crate) fn join(root: &str, relative_path: &str) -> Result<String, MlflowError> {
    if relative_path.starts_with('/') {
        return Err(MlflowError::InvalidUri(format!(
            "artifact path {relative_path:?} must be relative to the artifact root"
        )));
    }
    let relative = normalize(relative_path, relative_path)?;
    if relative.is_empty() {
        return Err(MlflowError::InvalidUri(
            "artifact path must name a file, got an empty path".into(),
        ));
    }
    Ok(if root.is_empty() {
        relative
    } else {
        format!("{root}/{relative}")
    })
}

/// Drops empty segments (`a//b`, leading and trailing `/`) and refuses `.`/`..`, which the server
/// would refuse anyway, so a path never climbs out of the artifact root.
fn normalize(whole: &str, path: &str) -> Result<String, MlflowError> {
    let mut segments = Vec::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." || segment.contains('\\') {
            return Err(MlflowError::InvalidUri(format!(
                "{whole:?}: path segment {segment:?} is not allowed"
            )));
        }
        segments.push(segment);
    }
    Ok(segments.join("/"))
}

fn unsupported(uri: &str) -> MlflowError {
    MlflowError::InvalidUri(format!(
        "artifact location {uri:?} is not reachable through the MLflow artifact proxy; supported: \
         mlflow-artifacts:/..., http(s)://<server>/api/2.0/mlflow-artifacts/artifacts/..., \
         runs:/<run_id>/... (run the server with --serve-artifacts, the default, and a \
         mlflow-artifacts default artifact root; direct s3://, gs://, file:// access is not supported)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxied(s: &str) -> ArtifactSource {
        ArtifactSource::Proxied(s.into())
    }

    #[test]
    fn mlflow_artifacts_sources() {
        for (source, want) in [
            (
                "mlflow-artifacts:/1/abc/artifacts/model",
                "1/abc/artifacts/model",
            ),
            (
                "mlflow-artifacts:/1/abc/artifacts/model/",
                "1/abc/artifacts/model",
            ),
            (
                "mlflow-artifacts://mlflow:5000/1/abc/artifacts",
                "1/abc/artifacts",
            ),
            ("mlflow-artifacts:/", ""),
            (
                "http://mlflow:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts",
                "1/abc/artifacts",
            ),
            (
                "https://h/prefix/api/2.0/mlflow-artifacts/artifacts/7/r/artifacts/m",
                "7/r/artifacts/m",
            ),
        ] {
            assert_eq!(
                parse_source(source).expect(source),
                proxied(want),
                "{source}"
            );
        }
    }

    #[test]
    fn runs_sources() {
        assert_eq!(
            parse_source("runs:/abc123/model").expect("valid"),
            ArtifactSource::Run {
                run_id: "abc123".into(),
                path: "model".into()
            }
        );
        assert_eq!(
            parse_source("runs:/abc123").expect("valid"),
            ArtifactSource::Run {
                run_id: "abc123".into(),
                path: String::new()
            }
        );
        assert!(matches!(
            parse_source("runs:/"),
            Err(MlflowError::InvalidUri(_))
        ));
    }

    #[test]
    fn direct_store_sources_are_refused_with_a_hint() {
        for source in [
            "s3://bucket/1/abc/artifacts/model",
            "gs://bucket/x",
            "file:///tmp/mlruns/1/abc/artifacts",
            "/tmp/mlruns/1",
            "http://mlflow:5000/some/other/path",
            "http://mlflow:5000/api/2.0/mlflow-artifacts/artifactsX/1",
        ] {
            match parse_source(source) {
                Err(MlflowError::InvalidUri(msg)) => {
                    assert!(msg.contains("--serve-artifacts"), "{source}: {msg}")
                }
                other => panic!("{source}: expected InvalidUri, got {other:?}"),
            }
        }
    }

    #[test]
    fn logged_model_sources() {
        assert_eq!(
            parse_source("models:/m-0123456789abcdef").expect("valid"),
            ArtifactSource::LoggedModel {
                model_id: "m-0123456789abcdef".into()
            }
        );
        for source in [
            "models:/",
            "models:/fraud-detector/3",
            "models:/fraud-detector@champion",
            "models:/..",
        ] {
            match parse_source(source) {
                Err(MlflowError::InvalidUri(msg)) => {
                    assert!(msg.contains("models:/<model_id>"), "{source}: {msg}")
                }
                other => panic!("{source}: expected InvalidUri, got {other:?}"),
            }
        }
    }

    #[test]
    fn traversal_is_refused() {
        assert!(parse_source("mlflow-artifacts:/1/../../etc").is_err());
        assert!(join("1/abc/artifacts", "../other/model.json").is_err());
        assert!(join("1/abc/artifacts", "./model.json").is_err());
    }

    #[test]
    fn join_builds_the_proxy_path() {
        assert_eq!(
            join("1/abc/artifacts/model", "model.json").expect("valid"),
            "1/abc/artifacts/model/model.json"
        );
        assert_eq!(
            join("1/abc/artifacts", "model//model.json").expect("valid"),
            "1/abc/artifacts/model/model.json"
        );
        assert_eq!(join("", "a.json").expect("valid"), "a.json");
        assert!(join("1/abc/artifacts", "").is_err());
        assert!(join("1/abc/artifacts", "/abs.json").is_err());
    }
}
