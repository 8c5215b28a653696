//! The deployed Prometheus rule files, as the drill loads them: byte for byte the sources in
//! `deploy/monitoring/rules/` (recording rules included), except that a quick drill multiplies every
//! alert's `for:` by its time factor. The change is made here, by program, from the sources, never in a
//! copy; and it is checked: parsed back, the output differs from the source in the `for:` values only.
//!
//! Range windows inside expressions (`rate(...[2m])`) are part of the rules' meaning and are not touched,
//! so a quick drill still needs two minutes of data before a rate is complete.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::Value;

use crate::error::DrillError;

/// The rule files, in evaluation-group order (deploy/monitoring/render.py `RULE_FILES`).
pub const RULE_FILES: [&str; 3] = ["recording.cluster.yaml", "recording.yaml", "alerts.yaml"];

/// Parses a Prometheus duration (`1h30m`, `5m`, `250ms`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = [
            ("ms", 2, Duration::from_millis(1)),
            ("s", 1, Duration::from_secs(1)),
            ("m", 1, Duration::from_secs(60)),
            ("h", 1, Duration::from_secs(3600)),
            ("d", 1, Duration::from_secs(86_400)),
            ("w", 1, Duration::from_secs(604_800)),
            ("y", 1, Duration::from_secs(31_536_000)),
        ]
        .iter()
        .find(|(u, _, _)| rest.starts_with(u))
        .map(|(_, l, d)| (*d, *l))?;
        total += unit.checked_mul(u32::try_from(n).ok()?)?;
        rest = &rest[len..];
    }
    Some(total)
}

/// Formats a duration the way Prometheus reads it: whole seconds as `30s`, otherwise milliseconds.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `text` (a rule file) with every `for:` multiplied by `factor`, everything else byte-identical.
pub fn scale_for(text: &str, factor: f64) -> Result<String, String> {
    if !(factor.is_finite() && factor > 0.0) {
        return Err(format!("time factor {factor} is not a positive number"));
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let indent = body.len() - body.trim_start().len();
        match body.trim_start().strip_prefix("for:") {
            Some(value) => {
                let (value, comment) = match value.find('#') {
                    Some(i) => (&value[..i], &value[i..]),
                    None => (value, ""),
                };
                let d = parse_duration(value.trim())
                    .ok_or_else(|| format!("`for:{value}` is not a Prometheus duration"))?;
                let scaled =
                    Duration::from_millis(((d.as_millis() as f64) * factor).round() as u64);
                if scaled == d {
                    out.push_str(line);
                    continue;
                }
                out.push_str(&body[..indent]);
                out.push_str("for: ");
                out.push_str(&format_duration(scaled));
                if !comment.is_empty() {
                    out.push(' ');
                    out.push_str(comment);
                }
                out.push_str(ending);
            }
            None => out.push_str(line),
        }
    }
    // The promise: nothing but `for:` changed. Checked on the parsed documents, not the text.
    let mut original: Value =
        serde_yaml::from_str(text).map_err(|e| format!("the source does not parse: {e}"))?;
    let mut scaled: Value =
        serde_yaml::from_str(&out).map_err(|e| format!("the output does not parse: {e}"))?;
    strip_for(&mut original);
    strip_for(&mut scaled);
    if original != scaled {
        return Err(
            "scaling `for:` changed more than `for:` (a `for:` line inside a block scalar?)".into(),
        );
    }
    Ok(out)
}

/// Removes `groups[].rules[].for`, to compare everything else.
fn strip_for(doc: &mut Value) {
    let Some(groups) = doc.get_mut("groups").and_then(Value::as_sequence_mut) else {
        return;
    };
    for group in groups {
        let Some(rules) = group.get_mut("rules").and_then(Value::as_sequence_mut) else {
            continue;
        };
        for rule in rules {
            if let Some(map) = rule.as_mapping_mut() {
                map.remove("for");
            }
        }
    }
}

/// Writes the rule files of `source_dir` to `out_dir` with `for:` scaled; returns the written paths.
pub fn write_scaled(
    source_dir: &Path,
    out_dir: &Path,
    factor: f64,
) -> Result<Vec<PathBuf>, DrillError> {
    std::fs::create_dir_all(out_dir)
        .map_err(|e| DrillError::io(format!("creating {}", out_dir.display()), e))?;
    let mut written = Vec::new();
    for name in RULE_FILES {
        let src = source_dir.join(name);
        let text = std::fs::read_to_string(&src)
            .map_err(|e| DrillError::io(format!("reading {}", src.display()), e))?;
        let out = if (factor - 1.0).abs() < f64::EPSILON {
            text
        } else {
            scale_for(&text, factor).map_err(|m| DrillError::manifest(&src, m))?
        };
        let dst = out_dir.join(name);
        std::fs::write(&dst, out)
            .map_err(|e| DrillError::io(format!("writing {}", dst.display()), e))?;
        written.push(dst);
    }
    Ok(written)
}

/// The `for:` of `alert` in a rule file: how long the drill must hold the load for that alert to fire
/// (the model-quality alerts hold for 30 min and more; they must not stretch an attack drill).
pub fn alert_for(text: &str, alert: &str) -> Option<Duration> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    let rule = doc["groups"]
        .as_sequence()?
        .iter()
        .filter_map(|g| g["rules"].as_sequence())
        .flatten()
        .find(|r| r["alert"].as_str() == Some(alert))?;
    parse_duration(rule["for"].as_str()?)
}

/// The number `series > N` compares with in the expression of `alert` in a rule file: the deployed line
/// (e.g. the admin alert's 0.80 of the CPU limit), so the capacity statement follows the rule as deployed.
pub fn alert_threshold(text: &str, alert: &str, series: &str) -> Option<f64> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    let expr = doc["groups"]
        .as_sequence()?
        .iter()
        .filter_map(|g| g["rules"].as_sequence())
        .flatten()
        .find(|r| r["alert"].as_str() == Some(alert))?["expr"]
        .as_str()?;
    let rest = expr[expr.find(series)? + series.len()..].trim_start();
    let number = rest.strip_prefix('>')?.trim_start();
    let end = number
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(number.len());
    number[..end].parse().ok()
}

/// The longest range window (`[2m]`) in the expressions of a rule file: how long a rate needs data
/// before it is complete.
pub fn max_range(text: &str) -> Option<Duration> {
    text.match_indices('[')
        .filter_map(|(i, _)| {
            let end = text[i..].find(']')?;
            parse_duration(&text[i + 1..i + end])
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/monitoring/rules")
    }

    #[test]
    fn reads_the_admin_alerts_cpu_line_from_the_deployed_rules() {
        let text = std::fs::read_to_string(rules_dir().join("alerts.yaml")).expect("alerts.yaml");
        assert_eq!(
            alert_threshold(
                &text,
                "AdminNotification_MaxScaleHighCPU",
                "fraudops:pod_cpu_usage_ratio:max"
            ),
            Some(0.80)
        );
        assert_eq!(
            alert_threshold(&text, "NoSuchAlert", "fraudops:pod_cpu_usage_ratio:max"),
            None
        );
        assert_eq!(
            alert_threshold(&text, "AdminNotification_MaxScaleHighCPU", "no_such_series"),
            None
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn only_for_changes_in_the_deployed_alerts() {
        let src = std::fs::read_to_string(rules_dir().join("alerts.yaml")).expect("alerts.yaml");
        let out = scale_for(&src, 0.1).expect("scales");
        let admin = "AdminNotification_MaxScaleHighCPU";
        assert_eq!(alert_for(&src, admin), Some(Duration::from_secs(300)));
        assert_eq!(alert_for(&out, admin), Some(Duration::from_secs(30)));
        let changed: Vec<(&str, &str)> = src
            .lines()
            .zip(out.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert!(!changed.is_empty());
        for (a, b) in &changed {
            assert!(
                a.trim_start().starts_with("for:") && b.trim_start().starts_with("for:"),
                "{a} -> {b}"
            );
        }
        assert!(out.contains("for: 30s") && out.contains("for: 6s") && out.contains("for: 12s"));
        // Factor 1 is the identity.
        assert_eq!(scale_for(&src, 1.0).expect("scales"), src);
    }

    #[test]
    fn the_cluster_rate_window() {
        let text =
            std::fs::read_to_string(rules_dir().join("recording.cluster.yaml")).expect("source");
        assert_eq!(max_range(&text), Some(Duration::from_secs(120)));
    }

    #[test]
    fn recording_rules_are_written_unchanged() {
        let out = tempfile::tempdir().expect("tempdir");
        let written = write_scaled(&rules_dir(), out.path(), 0.1).expect("writes");
        assert_eq!(written.len(), 3);
        for name in ["recording.cluster.yaml", "recording.yaml"] {
            let a = std::fs::read(rules_dir().join(name)).expect("source");
            let b = std::fs::read(out.path().join(name)).expect("output");
            assert_eq!(a, b, "{name} must be loaded unchanged");
        }
    }

    #[test]
    fn refuses_a_for_hidden_in_a_block_scalar() {
        let text = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: |\n          up\n          for: 5m\n        for: 5m\n";
        assert!(scale_for(text, 0.5).is_err());
        assert!(scale_for("groups: []\n", 0.0).is_err());
    }

    /// promtool accepts what the drill loads (when promtool is installed; deploy/check.sh installs it).
    #[test]
    fn promtool_accepts_the_scaled_files() {
        let out = tempfile::tempdir().expect("tempdir");
        let written = write_scaled(&rules_dir(), out.path(), 0.1).expect("writes");
        match std::process::Command::new("promtool")
            .arg("check")
            .arg("rules")
            .args(&written)
            .output()
        {
            Ok(o) => assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout)),
            Err(e) => crate::test_support::skip(
                "promtool_accepts_the_scaled_files",
                &format!("promtool is not runnable ({e})"),
            ),
        }
    }
}
