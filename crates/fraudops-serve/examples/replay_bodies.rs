//! Request bodies for `scripts/test-retrain-loop.sh`'s traffic: the transactions of a simulated file from
//! a given time on, one `POST /predict` body per line (JSONL), each with its batch windows as `history`
//! (what the stream worker sends), so the served feature vectors are training's and no feature store is
//! needed. The same conversion as the drift test (`tests/api/drift.rs`): `support/request_body.rs`.
//!
//! `cargo run -p fraudops-serve --example replay_bodies -- FILE.csv.gz "2026-11-26 00:00:00" OUT.jsonl`

use std::io::{BufWriter, Write};
use std::path::Path;

use fraudops_data::reader::read_transactions;
use fraudops_data::writer::parse_datetime;
use fraudops_features::batch;

#[path = "support/request_body.rs"]
mod request_body;
use request_body::request;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, from, out] = args.as_slice() else {
        return Err("usage: replay_bodies FILE FROM(\"YYYY-MM-DD HH:MM:SS\") OUT.jsonl".into());
    };
    let from = parse_datetime(from).ok_or_else(|| format!("bad time {from:?}"))?;
    let txs = read_transactions(Path::new(data))?.transactions;
    let features = batch::compute(&txs);
    let mut writer = BufWriter::new(std::fs::File::create(out)?);
    let mut written = 0usize;
    for (i, tx) in txs.iter().enumerate() {
        if tx.tx_datetime >= from {
            serde_json::to_writer(&mut writer, &request(tx, features.row(i)))?;
            writer.write_all(b"\n")?;
            written += 1;
        }
    }
    writer.flush()?;
    eprintln!(
        "replay_bodies: {written} of {} transactions -> {out}",
        txs.len()
    );
    Ok(())
}
