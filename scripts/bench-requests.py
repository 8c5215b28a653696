#!/usr/bin/env python3
"""The request bodies every API benchmark sends (scripts/bench-serve.sh, scripts/bench-python-baseline.sh),
written once so both servers are measured on the same bytes.

    scripts/bench-requests.py WORKDIR

Writes WORKDIR/single.json (one transaction with precomputed history), WORKDIR/batch.json (100 of them)
and, for wrk, WORKDIR/single.lua and WORKDIR/batch.lua that POST those bodies.
"""
import json
import sys

work = sys.argv[1]
tx = {"transaction_id": "bench-1", "amount": 129.9, "customer_id": 42, "terminal_id": 3107,
      "tx_datetime": "2018-08-15 02:13:00", "merchant_category": "electronics", "user_age": 37,
      "account_balance": 2400.5,
      "history": {"customer": {"nb_tx_1day": 3, "avg_amount_1day": 80.0, "nb_tx_7day": 12, "avg_amount_7day": 60.0,
                               "nb_tx_30day": 40, "avg_amount_30day": 55.0},
                  "terminal": {"nb_tx_1day": 9, "risk_1day": 0.0, "nb_tx_7day": 60, "risk_7day": 0.0,
                               "nb_tx_30day": 250, "risk_30day": 0.004}}}
bodies = {
    "single": tx,
    "batch": {"transactions": [dict(tx, transaction_id=f"bench-{i}") for i in range(100)]},
}
for name, payload in bodies.items():
    text = json.dumps(payload)
    with open(f"{work}/{name}.json", "w") as f:
        f.write(text)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    with open(f"{work}/{name}.lua", "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.body = "{escaped}"\n')
