//! `fraudops retrain-trigger`: the Alertmanager → Airflow bridge (`crate::retrain_trigger`). This file
//! parses the options and runs the server until SIGTERM/SIGINT.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::retrain_trigger::{Airflow, AirflowConfig, BridgeConfig};

/// Options of `fraudops retrain-trigger` (each also an environment variable).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "RETRAIN_TRIGGER_BIND", default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Port to listen on (0: any free port, logged in `server_started`).
    #[arg(long, env = "RETRAIN_TRIGGER_PORT", default_value_t = 8080)]
    port: u16,
    /// Airflow's API server (Airflow 3), e.g. http://airflow-api-server.airflow.svc:8080.
    #[arg(long, env = "AIRFLOW_URL")]
    airflow_url: String,
    /// The Airflow user that triggers the DAG.
    #[arg(long, env = "AIRFLOW_USERNAME")]
    airflow_username: String,
    /// File holding that user's password (a mounted Secret; never the password itself).
    #[arg(long, env = "AIRFLOW_PASSWORD_FILE")]
    airflow_password_file: PathBuf,
    /// The DAG an alert starts.
    #[arg(long, env = "RETRAIN_DAG_ID", default_value = "ml_model_retrain")]
    dag_id: String,
    /// Alert names that start a run (comma-separated); other notifications are answered and ignored.
    #[arg(
        long,
        env = "RETRAIN_ALERTS",
        value_delimiter = ',',
        default_value = "ModelQualityDegraded,ScoreDistributionDrift"
    )]
    alerts: Vec<String>,
    /// File holding the bearer token Alertmanager sends (`http_config.authorization.credentials_file`).
    /// Required, unless `--local` says this bridge runs where nobody else can reach it.
    #[arg(long, env = "RETRAIN_TRIGGER_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Accept any caller when no token file is given: a laptop or a test, never a shared cluster (anyone
    /// who reaches the port could start retrainings).
    #[arg(long, env = "RETRAIN_TRIGGER_LOCAL", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    local: bool,
}

/// Checks the options (a bad URL or a missing password file fails at start, not at the first alert)
/// and serves until SIGTERM/SIGINT.
pub fn run(args: Args) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(&args.airflow_url)
        .with_context(|| format!("AIRFLOW_URL {:?} is not a URL", args.airflow_url))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!(
            "AIRFLOW_URL {:?} must be http(s)://host[:port]",
            args.airflow_url
        );
    }
    std::fs::metadata(&args.airflow_password_file).with_context(|| {
        format!(
            "AIRFLOW_PASSWORD_FILE {}",
            args.airflow_password_file.display()
        )
    })?;
    if args.token_file.is_none() && !args.local {
        bail!(
            "RETRAIN_TRIGGER_TOKEN_FILE is required: without it anyone who reaches the bridge starts \
             retrainings (set RETRAIN_TRIGGER_LOCAL=true only where nobody else can reach it)"
        );
    }
    if let Some(path) = &args.token_file {
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("RETRAIN_TRIGGER_TOKEN_FILE {}", path.display()))?;
        if token.trim().is_empty() {
            bail!("RETRAIN_TRIGGER_TOKEN_FILE {} is empty", path.display());
        }
    }
    let alerts: Vec<String> = args
        .alerts
        .iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    if alerts.is_empty() {
        bail!("RETRAIN_ALERTS names no alert");
    }
    let config = BridgeConfig {
        airflow: Airflow::new(AirflowConfig {
            url,
            username: args.airflow_username,
            password_file: args.airflow_password_file,
            dag_id: args.dag_id,
        }),
        alerts,
        token_file: args.token_file,
    };
    let addr = SocketAddr::new(args.bind, args.port);
    super::block_on_service(crate::retrain_trigger::serve(
        config,
        addr,
        fraudops_serve::shutdown_signal(),
    ))?
    .with_context(|| format!("serving on {addr}"))
}
