//! Alertmanager's webhook notification (payload version 4), reduced to the one incident it reports, the
//! Airflow run id that incident gets, and the run's `conf`.
//!
//! Why a deterministic run id: Alertmanager notifies a group again every `repeat_interval`, after a
//! restart of its own, and retries a notification this bridge answered with an error. Each of those
//! must land on the DAG run the first one created, so the id is a function of the incident only: the
//! group (Alertmanager's `groupKey`: the route and the grouping labels) and the earliest `startsAt` of
//! its firing alerts. Airflow answers 409 for an existing id, which the bridge counts as a duplicate.
//! An alert that resolves and fires again starts with a new `startsAt`: a new incident, a new run.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The notification as Alertmanager posts it (`webhook_configs`); unknown fields are ignored, so a newer
/// Alertmanager that adds some still parses.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    version: String,
    group_key: String,
    #[serde(default)]
    receiver: String,
    #[serde(default)]
    group_labels: BTreeMap<String, String>,
    #[serde(default)]
    common_labels: BTreeMap<String, String>,
    #[serde(default)]
    common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL", default)]
    external_url: String,
    alerts: Vec<Alert>,
}

/// One alert of the group.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    starts_at: DateTime<Utc>,
}

/// Why a body is not a notification the bridge can act on (answered 400: Alertmanager does not retry).
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON, or not the webhook's shape.
    #[error("not an Alertmanager webhook notification: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A payload version this code was not written for (the format is versioned for this reason).
    #[error("Alertmanager webhook payload version {0:?}, expected \"4\"")]
    Version(String),
    /// The group has no alert name to retrain for (the route groups by `alertname`).
    #[error("the notification's alerts carry no alertname label")]
    NoAlertName,
}

/// What one notification means for retraining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A firing incident: start (or find) its run.
    Firing(Incident),
    /// Nothing is firing (a resolved notification, should `send_resolved` be on): no run.
    Resolved,
}

/// A firing incident: the alert group and when its earliest firing alert started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// The alert's name (the group's `alertname`; every alert of a group shares it).
    pub alertname: String,
    /// The earliest `startsAt` of the group's firing alerts, whole seconds (UTC).
    pub starts_at: DateTime<Utc>,
    /// Alertmanager's key of the group (route + grouping labels).
    pub group_key: String,
    /// The labels every alert of the group shares.
    pub labels: BTreeMap<String, String>,
    /// The common `summary` annotation, if any (for the run's note).
    pub summary: Option<String>,
    /// How many alerts of the group are firing.
    pub firing: usize,
    /// The receiver that sent it.
    pub receiver: String,
    /// Alertmanager's URL, to find the group again.
    pub external_url: String,
}

/// Parses a webhook body into what it means for retraining.
pub fn parse(body: &[u8]) -> Result<Notice, PayloadError> {
    let n: Notification = serde_json::from_slice(body)?;
    if n.version != "4" {
        return Err(PayloadError::Version(n.version));
    }
    let firing: Vec<&Alert> = n.alerts.iter().filter(|a| a.status == "firing").collect();
    let Some(starts_at) = firing.iter().map(|a| a.starts_at).min() else {
        return Ok(Notice::Resolved);
    };
    let alertname = n
        .group_labels
        .get("alertname")
        .or_else(|| n.common_labels.get("alertname"))
        .or_else(|| firing.iter().find_map(|a| a.labels.get("alertname")))
        .cloned()
        .ok_or(PayloadError::NoAlertName)?;
    Ok(Notice::Firing(Incident {
        alertname,
        starts_at: DateTime::from_timestamp(starts_at.timestamp(), 0).unwrap_or(starts_at),
        group_key: n.group_key,
        labels: n.common_labels,
        summary: n.common_annotations.get("summary").cloned(),
        firing: firing.len(),
        receiver: n.receiver,
        external_url: n.external_url,
    }))
}

impl Incident {
    /// The DAG run id of this incident: `alert__<alertname>__<startsAt>__<12 hex of the group key's
    /// SHA-256>`, e.g. `alert__ScoreDistributionDrift__20261202T074012Z__3f1c0a9e5b27`. Only
    /// `[A-Za-z0-9_-]` (Airflow's default `allowed_run_id_pattern` also allows `.~:+`), at most 250
    /// characters (Airflow's column); readable in the UI, unique per group and start.
    pub fn run_id(&self) -> String {
        let name: String = self
            .alertname
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(150)
            .collect();
        let digest = hex::encode(Sha256::digest(self.group_key.as_bytes()));
        format!(
            "alert__{name}__{}__{}",
            self.starts_at.format("%Y%m%dT%H%M%SZ"),
            &digest[..12]
        )
    }

    /// `startsAt` as the run's conf carries it: RFC 3339, whole seconds, `Z`.
    pub fn starts_at_rfc3339(&self) -> String {
        self.starts_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// The run's `conf`: `{"alert": {...}}`. The DAG reads `alert.alertname` and `alert.starts_at`
    /// (its window ends with the alert's day); the rest is for whoever reads the run.
    pub fn conf(&self) -> serde_json::Value {
        serde_json::json!({
            "alert": {
                "alertname": self.alertname,
                "starts_at": self.starts_at_rfc3339(),
                "group_key": self.group_key,
                "labels": self.labels,
                "firing": self.firing,
                "receiver": self.receiver,
                "external_url": self.external_url,
            }
        })
    }

    /// The run's note in Airflow's UI.
    pub fn note(&self) -> String {
        let mut note = format!(
            "Started by Alertmanager: {} firing since {}",
            self.alertname,
            self.starts_at_rfc3339()
        );
        if let Some(summary) = &self.summary {
            note.push_str(" (");
            note.push_str(summary);
            note.push(')');
        }
        note
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notification as Alertmanager 0.25+ posts it for the retrain route (group_by: [alertname]).
    pub(crate) fn notification(alertname: &str, alerts: &[(&str, &str)]) -> String {
        let alerts: Vec<serde_json::Value> = alerts
            .iter()
            .map(|(status, starts_at)| {
                serde_json::json!({
                    "status": status,
                    "labels": {"alertname": alertname, "severity": "warning", "job": "fraudops-api"},
                    "annotations": {"summary": "drifted"},
                    "startsAt": starts_at,
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus/graph",
                    "fingerprint": "c0ffee",
                })
            })
            .collect();
        serde_json::json!({
            "version": "4",
            "groupKey": format!("{{}}/{{alertname=~\"ModelQualityDegraded|ScoreDistributionDrift\"}}:{{alertname=\"{alertname}\"}}"),
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "fraudops-retrain",
            "groupLabels": {"alertname": alertname},
            "commonLabels": {"alertname": alertname, "severity": "warning"},
            "commonAnnotations": {"summary": "drifted"},
            "externalURL": "http://alertmanager:9093",
            "alerts": alerts,
        })
        .to_string()
    }

    fn incident(body: &str) -> Incident {
        match parse(body.as_bytes()).expect("parses") {
            Notice::Firing(incident) => incident,
            Notice::Resolved => panic!("expected a firing incident"),
        }
    }

    #[test]
    fn parses_the_incident_with_the_earliest_firing_start() {
        let body = notification(
            "ScoreDistributionDrift",
            &[
                ("firing", "2026-12-02T07:40:12.123456789Z"),
                ("firing", "2026-12-02T07:10:00.5Z"),
                ("resolved", "2026-12-01T00:00:00Z"),
            ],
        );
        let i = incident(&body);
        assert_eq!(i.alertname, "ScoreDistributionDrift");
        assert_eq!(i.starts_at_rfc3339(), "2026-12-02T07:10:00Z");
        assert_eq!(i.firing, 2);
        assert_eq!(i.summary.as_deref(), Some("drifted"));
        assert_eq!(i.labels["severity"], "warning");
    }

    #[test]
    fn the_same_incident_gets_the_same_run_id() {
        // The first notification, the repeat 24 h later (one more alert joined, same earliest start,
        // sub-second noise), and a retry: one run.
        let first = incident(&notification(
            "ScoreDistributionDrift",
            &[("firing", "2026-12-02T07:40:12.25Z")],
        ));
        let repeat = incident(&notification(
            "ScoreDistributionDrift",
            &[
                ("firing", "2026-12-02T07:40:12.75Z"),
                ("firing", "2026-12-02T09:00:00Z"),
            ],
        ));
        assert_eq!(first.run_id(), repeat.run_id());
        assert!(
            first
                .run_id()
                .starts_with("alert__ScoreDistributionDrift__20261202T074012Z__"),
            "{}",
            first.run_id()
        );
        assert!(
            first
                .run_id()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
    }

    #[test]
    fn a_new_incident_gets_a_new_run_id() {
        let first = incident(&notification(
            "ScoreDistributionDrift",
            &[("firing", "2026-12-02T07:40:12Z")],
        ));
        // Resolved and fired again: a new start.
        let refired = incident(&notification(
            "ScoreDistributionDrift",
            &[("firing", "2026-12-03T01:00:00Z")],
        ));
        // The other alert at the same second: another group.
        let other = incident(&notification(
            "ModelQualityDegraded",
            &[("firing", "2026-12-02T07:40:12Z")],
        ));
        assert_ne!(first.run_id(), refired.run_id());
        assert_ne!(first.run_id(), other.run_id());
        // Same name and start, another group (e.g. grouped by model too): another run.
        let mut regrouped = first.clone();
        regrouped.group_key.push_str("{model=\"b\"}");
        assert_ne!(first.run_id(), regrouped.run_id());
    }

    #[test]
    fn the_conf_carries_the_alert_for_the_dag() {
        let i = incident(&notification(
            "ModelQualityDegraded",
            &[("firing", "2026-12-02T07:40:12.9Z")],
        ));
        let conf = i.conf();
        assert_eq!(conf["alert"]["alertname"], "ModelQualityDegraded");
        assert_eq!(conf["alert"]["starts_at"], "2026-12-02T07:40:12Z");
        assert_eq!(conf["alert"]["firing"], 1);
        assert_eq!(conf["alert"]["group_key"], i.group_key.as_str());
        assert_eq!(conf["alert"]["labels"]["severity"], "warning");
        // Only the alert: the DAG's own params (days, end_date, ...) keep their defaults.
        assert_eq!(conf.as_object().map(|o| o.len()), Some(1));
        assert_eq!(
            i.note(),
            "Started by Alertmanager: ModelQualityDegraded firing since 2026-12-02T07:40:12Z (drifted)"
        );
    }

    #[test]
    fn nothing_firing_is_resolved() {
        let body = notification(
            "ScoreDistributionDrift",
            &[("resolved", "2026-12-02T07:40:12Z")],
        );
        assert_eq!(parse(body.as_bytes()).unwrap(), Notice::Resolved);
    }

    #[test]
    fn rejects_what_is_not_a_v4_notification() {
        assert!(matches!(
            parse(b"not json"),
            Err(PayloadError::Malformed(_))
        ));
        assert!(matches!(
            parse(br#"{"version": "4", "groupKey": "k"}"#),
            Err(PayloadError::Malformed(_))
        ));
        let v3 = notification(
            "ScoreDistributionDrift",
            &[("firing", "2026-12-02T07:40:12Z")],
        )
        .replace(r#""version":"4""#, r#""version":"3""#);
        assert!(matches!(
            parse(v3.as_bytes()),
            Err(PayloadError::Version(v)) if v == "3"
        ));
        let bad_time = notification("ScoreDistributionDrift", &[("firing", "yesterday")]);
        assert!(matches!(
            parse(bad_time.as_bytes()),
            Err(PayloadError::Malformed(_))
        ));
        let nameless = serde_json::json!({
            "version": "4", "groupKey": "{}:{}", "groupLabels": {}, "commonLabels": {},
            "alerts": [{"status": "firing", "labels": {}, "startsAt": "2026-12-02T07:40:12Z"}],
        });
        assert!(matches!(
            parse(nameless.to_string().as_bytes()),
            Err(PayloadError::NoAlertName)
        ));
    }
}
