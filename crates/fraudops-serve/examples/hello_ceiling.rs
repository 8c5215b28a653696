//! The throughput ceiling for `scripts/bench-serve.sh`: a minimal hyper server that reads each request's
//! body and answers with a fixed small JSON one, on the same tokio runtime set-up as `fraudops serve`.
//! Whatever `serve` loses against it is our own cost (routing, parsing, validation, scoring, metrics, logging).
//!
//! `cargo run --release -p fraudops-serve --example hello_ceiling -- 127.0.0.1:8090`

use std::convert::Infallible;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;

const BODY: &[u8] = br#"{"transaction_id":"tx-1","is_fraud":false,"fraud_probability":0.01}"#;

/// Reads the request body (the benchmark sends `/predict`'s) and answers with a fixed one.
async fn hello(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _ = request.into_body().collect().await;
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("hello_ceiling listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}
