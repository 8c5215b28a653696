//! Asks Alertmanager (API v2) whether an alert is firing: the closed loop's stop condition.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

/// The part of an Alertmanager v2 alert we read.
#[derive(Debug, Deserialize)]
struct GettableAlert {
    labels: HashMap<String, String>,
}

/// A client for `GET /api/v2/alerts`.
#[derive(Clone)]
pub struct Alertmanager {
    http: reqwest::Client,
    alerts_url: String,
}

impl Alertmanager {
    /// A client for the Alertmanager at `base_url` (e.g. `http://alertmanager:9093`).
    pub fn new(base_url: &str) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            alerts_url: format!("{}/api/v2/alerts", base_url.trim_end_matches('/')),
        })
    }

    /// True when Alertmanager holds an unresolved alert named `alertname` (active, or silenced/inhibited:
    /// Prometheus fires it either way). Alertmanager's v2 API lists only alerts that are not resolved.
    pub async fn is_firing(&self, alertname: &str) -> Result<bool, reqwest::Error> {
        let filter = format!("alertname=\"{alertname}\"");
        let alerts: Vec<GettableAlert> = self
            .http
            .get(&self.alerts_url)
            .query(&[("filter", filter.as_str())])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(firing_in(&alerts, alertname))
    }
}

/// Whether `alerts` contain `alertname` (the filter is applied again: a proxy might ignore it).
fn firing_in(alerts: &[GettableAlert], alertname: &str) -> bool {
    alerts
        .iter()
        .any(|a| a.labels.get("alertname").is_some_and(|n| n == alertname))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_v2_alert_list() {
        // Shape as served by Alertmanager 0.2x at /api/v2/alerts.
        let body = r#"[{"annotations":{"summary":"peak capacity exhausted"},"endsAt":"2026-01-01T00:05:00Z",
            "fingerprint":"3f2a","receivers":[{"name":"admin"}],"startsAt":"2026-01-01T00:00:00Z",
            "status":{"inhibitedBy":[],"silencedBy":[],"state":"active"},"updatedAt":"2026-01-01T00:00:00Z",
            "labels":{"alertname":"AdminNotification_MaxScaleHighCPU","severity":"critical"}}]"#;
        let alerts: Vec<GettableAlert> = serde_json::from_str(body).unwrap();
        assert!(firing_in(&alerts, "AdminNotification_MaxScaleHighCPU"));
        assert!(!firing_in(&alerts, "HighCPUUsage"));
        assert!(!firing_in(&[], "HighCPUUsage"));
    }
}
