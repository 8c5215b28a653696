"""Where the Python baseline's time goes: the per-request steps of app.py timed alone, in-process.

    MODEL_PATH=model.json python micro.py BODY.json   → one JSON line, microseconds per call
"""

import json
import sys
import time

import app


def per_call_us(f, n=2000) -> float:
    for _ in range(200):
        f()
    started = time.perf_counter()
    for _ in range(n):
        f()
    return round((time.perf_counter() - started) / n * 1e6, 1)


body = open(sys.argv[1], "rb").read()
tx = app.PredictRequest.model_validate_json(body)
row = app.feature_row(tx)
booster = app.model.get_booster()
print(
    json.dumps(
        {
            "validate_json_us": per_call_us(lambda: app.PredictRequest.model_validate_json(body)),
            "feature_row_us": per_call_us(lambda: app.feature_row(tx)),
            "predict_proba_us": per_call_us(lambda: app.model.predict_proba(row)),
            "booster_inplace_predict_us": per_call_us(lambda: booster.inplace_predict(row)),
        }
    )
)
