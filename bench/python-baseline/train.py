"""Trains the Python baseline's XGBoost model on a `fraudops simulate` file, with the handbook's pandas features.

    python train.py --data transactions.csv --out model.json

Same 20 features as the Rust trainer (features.py), computed the way the handbook's Python code does
(pandas rolling windows per customer; terminal windows shifted back by the 7-day label delay), and the
same booster size and settings as `fraudops train`'s defaults: 200 trees, depth 5, learning rate 0.05,
row subsample 0.8, L2 1, minimum child weight 1, seed 42 (docs/model-choice.md). Model quality is not what
the benchmark measures; a hold-out ROC AUC is printed only as a sanity check that the model is real.
"""

import argparse
import json
import sys
import time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from xgboost import XGBClassifier

from features import FEATURE_NAMES, MERCHANT_CATEGORIES, TERMINAL_DELAY_DAYS, WINDOWS


def build_features(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["TX_DATETIME"] = pd.to_datetime(df["TX_DATETIME"])
    df["TX_DURING_WEEKEND"] = (df["TX_DATETIME"].dt.day_of_week >= 5).astype(float)
    df["TX_DURING_NIGHT"] = (df["TX_DATETIME"].dt.hour <= 6).astype(float)

    # Customer spending: windows (t - w days, t], the current transaction included.
    df = df.sort_values(["CUSTOMER_ID", "TX_DATETIME", "TRANSACTION_ID"], kind="stable")
    by_customer = df.groupby("CUSTOMER_ID", sort=True)
    for w in WINDOWS:
        rolling = by_customer.rolling(f"{w}D", on="TX_DATETIME")["TX_AMOUNT"]
        nb = rolling.count().to_numpy()
        total = rolling.sum().to_numpy()
        df[f"CUSTOMER_ID_NB_TX_{w}DAY_WINDOW"] = nb
        df[f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"] = np.where(nb > 0, total / np.maximum(nb, 1), 0.0)

    # Terminal risk: windows (t - (delay + w), t - delay], i.e. (delay + w)-day window minus delay window.
    df = df.sort_values(["TERMINAL_ID", "TX_DATETIME", "TRANSACTION_ID"], kind="stable")
    by_terminal = df.groupby("TERMINAL_ID", sort=True)
    delay = by_terminal.rolling(f"{TERMINAL_DELAY_DAYS}D", on="TX_DATETIME")["TX_FRAUD"]
    nb_delay, fraud_delay = delay.count().to_numpy(), delay.sum().to_numpy()
    for w in WINDOWS:
        r = by_terminal.rolling(f"{TERMINAL_DELAY_DAYS + w}D", on="TX_DATETIME")["TX_FRAUD"]
        nb = r.count().to_numpy() - nb_delay
        fraud = r.sum().to_numpy() - fraud_delay
        df[f"TERMINAL_ID_NB_TX_{w}DAY_WINDOW"] = nb
        df[f"TERMINAL_ID_RISK_{w}DAY_WINDOW"] = np.where(nb > 0, fraud / np.maximum(nb, 1), 0.0)

    df = df.sort_values("TRANSACTION_ID")
    cat = df["MERCHANT_CATEGORY"].str.strip().str.lower().map(MERCHANT_CATEGORIES)
    df["MERCHANT_CATEGORY"] = cat.astype(float)  # unknown → NaN, as the Rust row does
    df["USER_AGE"] = df["USER_AGE"].astype(float)
    df["ACCOUNT_BALANCE"] = df["ACCOUNT_BALANCE"].astype(float)
    for w in (7, 30):
        avg = df[f"CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"]
        df[f"AMOUNT_OVER_CUSTOMER_AVG_{w}DAY"] = np.where(avg > 0, df["TX_AMOUNT"] / avg.where(avg > 0, 1.0), 1.0)
    return df


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--burn-in-days", type=int, default=30, help="first days only feed the windows")
    parser.add_argument("--test-days", type=int, default=14)
    args = parser.parse_args()

    started = time.perf_counter()
    raw = pd.read_csv(args.data)
    df = build_features(raw)
    day = df["TX_TIME_DAYS"]
    last = int(day.max())
    train = df[(day >= args.burn_in_days) & (day <= last - args.test_days)]
    test = df[day > last - args.test_days]
    features_s = time.perf_counter() - started

    clf = XGBClassifier(
        n_estimators=200,
        max_depth=5,
        learning_rate=0.05,
        subsample=0.8,
        reg_lambda=1.0,
        min_child_weight=1.0,
        tree_method="hist",
        max_bin=256,
        random_state=42,
        n_jobs=2,
        eval_metric="logloss",
    )
    started = time.perf_counter()
    clf.fit(train[FEATURE_NAMES].to_numpy(dtype=np.float32), train["TX_FRAUD"].to_numpy())
    fit_s = time.perf_counter() - started
    auc = roc_auc_score(test["TX_FRAUD"], clf.predict_proba(test[FEATURE_NAMES].to_numpy(dtype=np.float32))[:, 1])
    clf.save_model(args.out)

    trees = json.loads(clf.get_booster().save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
    nodes = sum(int(t["tree_param"]["num_nodes"]) for t in trees)
    print(
        json.dumps(
            {
                "rows": len(raw),
                "train_rows": len(train),
                "test_rows": len(test),
                "trees": len(trees),
                "nodes": nodes,
                "test_roc_auc": round(float(auc), 4),
                "features_s": round(features_s, 2),
                "fit_s": round(fit_s, 2),
            }
        ),
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
