//! `models:/` URIs: parsed once at the edge, so the rest of the code holds a name and a selector.

use std::fmt;
use std::str::FromStr;

use crate::MlflowError;

/// A registered-model reference such as `models:/fraud-detector@champion` or
/// `models:/fraud-detector/3`: what `MLFLOW_MODEL_URI` holds and what the API server follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelUri {
    /// Registered model name (`fraud-detector`).
    pub name: String,
    /// Which version of it: a moving alias or a fixed version number.
    pub selector: ModelSelector,
}

/// How a [`ModelUri`] picks a version; an alias moves when the trainer promotes a new champion,
/// a version number never does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModelSelector {
    /// `@alias`, e.g. `champion`: resolved on every poll.
    Alias(String),
    /// `/N`, a fixed registered version (1-based).
    Version(u64),
}

const SCHEME: &str = "models:/";

impl FromStr for ModelUri {
    type Err = MlflowError;

    /// Accepts exactly `models:/<name>@<alias>` and `models:/<name>/<version>`. Stage URIs
    /// (`/Production`), `/latest` and MLflow 3 logged-model ids (`models:/m-...`) are refused
    /// with a message saying what to write instead.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            MlflowError::InvalidUri(format!(
                "{s:?}: {why}; expected models:/<name>@<alias> or models:/<name>/<version>"
            ))
        };
        let rest = s
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("must start with models:/"))?;
        let rest = rest.trim_start_matches('/');
        if rest.is_empty() {
            return Err(bad("missing model name"));
        }
        let (name, selector) = match rest.split_once('/') {
            Some((name, suffix)) => {
                if suffix.contains('/') {
                    return Err(bad("too many path segments"));
                }
                if suffix.is_empty() {
                    return Err(bad("missing version after '/'"));
                }
                if !suffix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(
                        "version must be a number (stages and 'latest' are not supported; use an alias)",
                    ));
                }
                let version: u64 = suffix
                    .parse()
                    .map_err(|_| bad("version does not fit in 64 bits"))?;
                if version == 0 {
                    return Err(bad("versions start at 1"));
                }
                (name, ModelSelector::Version(version))
            }
            None => {
                let (name, alias) = rest.rsplit_once('@').ok_or_else(|| {
                    bad("no @alias or /version (logged-model ids are not supported)")
                })?;
                if alias.trim().is_empty() {
                    return Err(bad("empty alias"));
                }
                (name, ModelSelector::Alias(alias.to_owned()))
            }
        };
        if name.trim().is_empty() {
            return Err(bad("missing model name"));
        }
        Ok(ModelUri {
            name: name.to_owned(),
            selector,
        })
    }
}

impl fmt::Display for ModelUri {
    /// Writes the canonical form, so a parsed URI round-trips into logs and metrics labels.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.selector {
            ModelSelector::Alias(alias) => write!(f, "{SCHEME}{}@{alias}", self.name),
            ModelSelector::Version(version) => write!(f, "{SCHEME}{}/{version}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ModelUri, MlflowError> {
        s.parse()
    }

    #[test]
    fn alias_and_version_uris_parse() {
        for (s, name, selector) in [
            (
                "models:/fraud-detector@champion",
                "fraud-detector",
                ModelSelector::Alias("champion".into()),
            ),
            (
                "models:/fraud-detector/3",
                "fraud-detector",
                ModelSelector::Version(3),
            ),
            // An alias splits at the last at sign.
            (
                "models:/team@fraud@champion",
                "team@fraud",
                ModelSelector::Alias("champion".into()),
            ),
        ] {
            let uri = parse(s).expect("valid");
            assert_eq!(uri.name, name, "{s}");
            assert_eq!(uri.selector, selector, "{s}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "models:/fraud-detector@champion",
            "models:/fraud-detector/12",
        ] {
            assert_eq!(parse(s).expect("valid").to_string(), s);
        }
    }

    #[test]
    fn bad_uris_are_refused_with_a_reason() {
        for (s, reason) in [
            ("fraud-detector@champion", "must start with models:/"),
            ("runs:/abc/model", "must start with models:/"),
            ("models:/", "missing model name"),
            ("models:/@champion", "missing model name"),
            ("models:/fraud-detector@", "empty alias"),
            ("models:/fraud-detector/", "missing version"),
            ("models:/fraud-detector/0", "versions start at 1"),
            ("models:/fraud-detector/Production", "stages and 'latest'"),
            ("models:/fraud-detector/latest", "stages and 'latest'"),
            ("models:/fraud-detector/-1", "must be a number"),
            ("models:/fraud-detector/1/2", "too many path segments"),
            ("models:/m-0123456789abcdef", "logged-model ids"),
            ("models:/x/99999999999999999999999", "64 bits"),
        ] {
            match parse(s) {
                Err(MlflowError::InvalidUri(msg)) => {
                    assert!(msg.contains(reason), "{s}: {msg:?} lacks {reason:?}")
                }
                other => panic!("{s}: expected InvalidUri, got {other:?}"),
            }
        }
    }
}
