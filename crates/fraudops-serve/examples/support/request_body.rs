//! A `POST /predict` body for a transaction with its batch windows as `history` (what the stream worker
//! sends): shared by the `replay_bodies` example and the drift test, so both send training's vectors.

use fraudops_data::Transaction;
use fraudops_data::writer::format_datetime;
use fraudops_features::FeatureVector;
use serde_json::{Value, json};

/// One request body with the transaction's batch windows as `history`.
pub fn request(tx: &Transaction, row: &FeatureVector) -> Value {
    json!({
        "transaction_id": tx.transaction_id,
        "amount": tx.tx_amount,
        "customer_id": tx.customer_id,
        "terminal_id": tx.terminal_id,
        "tx_datetime": format_datetime(tx.tx_datetime),
        "merchant_category": tx.merchant_category.map(|m| m.as_str()),
        "user_age": tx.user_age,
        "account_balance": tx.account_balance,
        "history": {
            "customer": {
                "nb_tx_1day": row[3] as u32, "avg_amount_1day": row[4],
                "nb_tx_7day": row[5] as u32, "avg_amount_7day": row[6],
                "nb_tx_30day": row[7] as u32, "avg_amount_30day": row[8],
            },
            "terminal": {
                "nb_tx_1day": row[9] as u32, "risk_1day": row[10],
                "nb_tx_7day": row[11] as u32, "risk_7day": row[12],
                "nb_tx_30day": row[13] as u32, "risk_30day": row[14],
            },
        },
    })
}
