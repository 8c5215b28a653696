//! What a client did, read back through MLflow's own REST API with plain HTTP.
//!
//! Why: a test that checked the client's effect through the client itself could not catch a client
//! bug that hides its own effect. These helpers panic with the server's answer on any failure, since
//! they only run inside tests.

use serde_json::Value;

/// `GET <uri>/api/2.0/mlflow/<method>?query` as JSON, asserting 200.
pub async fn get(uri: &str, method: &str, query: &[(&str, &str)]) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{uri}/api/2.0/mlflow/{method}"))
        .query(query)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {method}: {e}"));
    json_200(response, "GET", method).await
}

/// `POST <uri>/api/2.0/mlflow/<method>` with a JSON body, as JSON, asserting 200.
pub async fn post(uri: &str, method: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{uri}/api/2.0/mlflow/{method}"))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {method}: {e}"));
    json_200(response, "POST", method).await
}

async fn json_200(response: reqwest::Response, verb: &str, method: &str) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{verb} {method}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{verb} {method}: {e}: {text}"))
}

/// `key -> value` lookup in MLflow's `[{"key": ..., "value": ...}]` lists (params, metrics, tags).
pub fn kv<'a>(list: &'a Value, key: &str) -> Option<&'a Value> {
    list.as_array()?
        .iter()
        .find(|item| item["key"] == key)
        .map(|item| &item["value"])
}

/// The bytes of `path` under a run's proxied artifact root (`mlflow-artifacts:/...`), downloaded
/// through the server's artifact proxy as any client outside the server's host would.
pub async fn artifact_bytes(uri: &str, artifact_uri: &str, path: &str) -> Vec<u8> {
    let root = artifact_uri
        .strip_prefix("mlflow-artifacts:/")
        .unwrap_or_else(|| panic!("not a proxied artifact root: {artifact_uri}"));
    let response = reqwest::get(format!(
        "{uri}/api/2.0/mlflow-artifacts/artifacts/{root}/{path}"
    ))
    .await
    .unwrap_or_else(|e| panic!("download {path}: {e}"));
    assert_eq!(response.status(), 200, "download {path}");
    response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("download {path}: {e}"))
        .to_vec()
}
