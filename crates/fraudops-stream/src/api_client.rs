//! The HTTP client both the attack (`--http`) and the stream worker (`--api-url`) use to call the API, so
//! the two agree on how a base URL becomes the `/predict` endpoint and on keep-alive and Nagle settings.

use std::time::Duration;

use crate::error::StreamError;

/// A keep-alive client holding up to `pool` idle connections, and the `/predict` URL of `base_url`
/// (which may already end in `/predict`). With `api_key` every request carries it as
/// `Authorization: Bearer` (an API with API_KEYS_FILE requires one), marked sensitive so it is never
/// printed in a debug dump.
pub fn predict_client(
    base_url: &str,
    api_key: Option<&str>,
    pool: usize,
    timeout: Duration,
) -> Result<(reqwest::Client, String), StreamError> {
    let base = base_url.trim_end_matches('/');
    let url = if base.ends_with("/predict") {
        base.to_owned()
    } else {
        format!("{base}/predict")
    };
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = api_key.filter(|k| !k.is_empty()) {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| StreamError::Config("API_KEY holds characters a header cannot".into()))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(timeout)
        .pool_max_idle_per_host(pool)
        .tcp_nodelay(true)
        .build()?;
    Ok((client, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_become_the_predict_endpoint() {
        for base in [
            "http://api:8000",
            "http://api:8000/",
            "http://api:8000/predict",
        ] {
            let (_, url) = predict_client(base, None, 1, Duration::from_secs(1)).expect("client");
            assert_eq!(url, "http://api:8000/predict", "from {base}");
        }
    }
}
