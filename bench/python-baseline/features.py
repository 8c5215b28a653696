"""The 20 model features of crates/fraudops-features/src/definition.rs, in the same order, in Python.

Shared by train.py (a whole file, pandas, the handbook's rolling-window code) and app.py (one request).
"""

FEATURE_NAMES = [
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    "CUSTOMER_ID_NB_TX_1DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW",
    "CUSTOMER_ID_NB_TX_7DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW",
    "CUSTOMER_ID_NB_TX_30DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
    "TERMINAL_ID_NB_TX_1DAY_WINDOW",
    "TERMINAL_ID_RISK_1DAY_WINDOW",
    "TERMINAL_ID_NB_TX_7DAY_WINDOW",
    "TERMINAL_ID_RISK_7DAY_WINDOW",
    "TERMINAL_ID_NB_TX_30DAY_WINDOW",
    "TERMINAL_ID_RISK_30DAY_WINDOW",
    "MERCHANT_CATEGORY",
    "USER_AGE",
    "ACCOUNT_BALANCE",
    "AMOUNT_OVER_CUSTOMER_AVG_7DAY",
    "AMOUNT_OVER_CUSTOMER_AVG_30DAY",
]

# MerchantCategory::code() in crates/fraudops-data/src/category.rs
MERCHANT_CATEGORIES = {
    name: code
    for code, name in enumerate(
        [
            "grocery",
            "restaurant",
            "gas_station",
            "online_retail",
            "electronics",
            "travel",
            "entertainment",
            "health",
            "clothing",
            "utilities",
        ]
    )
}

WINDOWS = (1, 7, 30)
TERMINAL_DELAY_DAYS = 7


def ratio(amount: float, average: float) -> float:
    """amount / average, or 1 when there is no average (definition.rs `ratio`)."""
    return amount / average if average > 0 else 1.0
