"""The Python baseline of scripts/bench-python-baseline.sh: the fraud scoring API as it is commonly built
in Python today — FastAPI + pydantic v2 on uvicorn (uvloop + httptools), an XGBoost classifier.

It speaks the same `POST /predict` contract as `fraudops serve` (SPEC §4, crates/fraudops-serve/src/schema.rs):
the same request body, validated with the same ranges, the same 20 features built per request
(crates/fraudops-features/src/definition.rs; without `history` a transaction is scored as the first one of
its card and terminal, as ours does), `predict_proba` on that one row, and the same response fields.

    MODEL_PATH=model.json uvicorn app:app --loop uvloop --http httptools --no-access-log

Environment:
  MODEL_PATH           the XGBoost model (train.py's output); required
  BASELINE_TELEMETRY   `full` (default): what ours does per request — a JSON `prediction_made` log line and
                       Prometheus metrics (http_requests_total, http_request_duration_seconds,
                       http_requests_in_progress, ml_model_*); `off`: neither, the leanest possible service
  REPLICA_ID           in responses and logs (default: host name)
"""

import hashlib
import json
import logging
import os
import socket
import sys
import time
from datetime import datetime, timezone
from typing import Annotated, Optional, Union

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StringConstraints, field_validator
from xgboost import XGBClassifier

from features import FEATURE_NAMES, MERCHANT_CATEGORIES, ratio

MAX_AMOUNT = 1e9
MAX_BALANCE = 1e12
MAX_COUNT = 1_000_000

TELEMETRY = os.environ.get("BASELINE_TELEMETRY", "full") == "full"
REPLICA_ID = os.environ.get("REPLICA_ID") or socket.gethostname()

# ---- the model, loaded once at import (uvicorn imports the app before it listens) --------------------------

MODEL_PATH = os.environ["MODEL_PATH"]
with open(MODEL_PATH, "rb") as f:
    MODEL_VERSION = "xgb-" + hashlib.sha256(f.read()).hexdigest()[:12]
model = XGBClassifier()
model.load_model(MODEL_PATH)
model.set_params(n_jobs=1)
THRESHOLD = 0.5

# ---- schema (schema.rs) ------------------------------------------------------------------------------------

Amount = Annotated[float, Field(ge=0, le=MAX_AMOUNT)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Risk = Annotated[float, Field(ge=0, le=1)]


class CustomerHistory(BaseModel):
    nb_tx_1day: Count
    avg_amount_1day: Amount
    nb_tx_7day: Count
    avg_amount_7day: Amount
    nb_tx_30day: Count
    avg_amount_30day: Amount


class TerminalHistory(BaseModel):
    nb_tx_1day: Count
    risk_1day: Risk
    nb_tx_7day: Count
    risk_7day: Risk
    nb_tx_30day: Count
    risk_30day: Risk


class History(BaseModel):
    customer: Optional[CustomerHistory] = None
    terminal: Optional[TerminalHistory] = None


TransactionId = Union[
    Annotated[int, Field(ge=0)],
    Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=128)],
]


class PredictRequest(BaseModel):
    transaction_id: TransactionId
    amount: Amount
    customer_id: Optional[Annotated[int, Field(ge=0)]] = None
    terminal_id: Optional[Annotated[int, Field(ge=0)]] = None
    tx_datetime: Optional[datetime] = None
    merchant_category: Optional[str] = None
    hour: Optional[Annotated[int, Field(ge=0, le=23)]] = None
    day_of_week: Optional[Annotated[int, Field(ge=0, le=6)]] = None
    user_age: Optional[Annotated[float, Field(ge=0, le=150)]] = None
    account_balance: Optional[Annotated[float, Field(ge=-MAX_BALANCE, le=MAX_BALANCE)]] = None
    history: Optional[History] = None

    @field_validator("transaction_id")
    @classmethod
    def _id_not_blank(cls, v):
        if isinstance(v, str) and not v.strip():
            raise ValueError("must be 1–128 characters")
        return v

    @field_validator("merchant_category")
    @classmethod
    def _known_category(cls, v):
        if v is not None and v.strip().lower() not in MERCHANT_CATEGORIES:
            raise ValueError(f"unknown merchant category {v!r}; expected one of: {', '.join(MERCHANT_CATEGORIES)}")
        return v


class PredictResponse(BaseModel):
    transaction_id: TransactionId
    is_fraud: bool
    fraud_probability: float
    confidence: float
    model_version: str
    prediction_time: str
    processing_time_ms: float
    replica_id: str


# ---- features (definition.rs FeatureRow::write_into, validation.rs) -----------------------------------------


def feature_row(tx: PredictRequest) -> np.ndarray:
    nan = float("nan")
    amount = tx.amount
    if tx.tx_datetime is not None:
        weekend = 1.0 if tx.tx_datetime.weekday() >= 5 else 0.0
        night = 1.0 if tx.tx_datetime.hour <= 6 else 0.0
    else:
        weekend = nan if tx.day_of_week is None else (1.0 if tx.day_of_week >= 5 else 0.0)
        night = nan if tx.hour is None else (1.0 if tx.hour <= 6 else 0.0)
    history = tx.history
    c = history.customer if history is not None else None
    t = history.terminal if history is not None else None
    if c is not None:
        customer = [c.nb_tx_1day, c.avg_amount_1day, c.nb_tx_7day, c.avg_amount_7day, c.nb_tx_30day, c.avg_amount_30day]
    else:  # the first transaction of the card: only this one in every window
        customer = [1, amount, 1, amount, 1, amount]
    if t is not None:
        terminal = [t.nb_tx_1day, t.risk_1day, t.nb_tx_7day, t.risk_7day, t.nb_tx_30day, t.risk_30day]
    else:
        terminal = [0, 0.0, 0, 0.0, 0, 0.0]
    category = nan if tx.merchant_category is None else float(MERCHANT_CATEGORIES[tx.merchant_category.strip().lower()])
    row = [
        amount,
        weekend,
        night,
        *customer,
        *terminal,
        category,
        nan if tx.user_age is None else tx.user_age,
        nan if tx.account_balance is None else tx.account_balance,
        ratio(amount, customer[3]),
        ratio(amount, customer[5]),
    ]
    return np.array([row], dtype=np.float32)


assert len(FEATURE_NAMES) == 20

# ---- telemetry (what ours records per request: telemetry.rs, routes.rs `score`) -----------------------------

log = logging.getLogger("fraudops.baseline")
if TELEMETRY:
    from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

    LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
    PROB = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
    PREDICTIONS = Counter("ml_model_predictions_total", "Predictions made.", ["model_version", "result"])
    PREDICTION_DURATION = Histogram("ml_model_prediction_duration_seconds", "Scoring time.", buckets=LATENCY)
    FRAUD_PROBABILITY = Histogram("ml_model_fraud_probability", "Predicted probabilities.", buckets=PROB)
    CONFIDENCE = Histogram("ml_model_confidence_score", "Confidence.", buckets=PROB)
    ACTIVE = Gauge("ml_model_active_requests", "Prediction requests being scored now.")
    HTTP_REQUESTS = Counter("http_requests", "HTTP requests.", ["method", "endpoint", "status"])
    HTTP_DURATION = Histogram("http_request_duration_seconds", "HTTP latency.", ["method", "endpoint"], buckets=LATENCY)
    HTTP_IN_PROGRESS = Gauge("http_requests_in_progress", "HTTP requests in progress.")

    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            fields = {
                "timestamp": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                "level": record.levelname,
                "target": record.name,
            }
            fields.update(getattr(record, "fields", {}))
            return json.dumps(fields)

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False

    class MetricsMiddleware:
        """Pure ASGI middleware (not BaseHTTPMiddleware, which costs far more per request)."""

        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] != "http":
                return await self.app(scope, receive, send)
            started = time.perf_counter()
            status = [500]

            async def send_wrapper(message):
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            HTTP_IN_PROGRESS.inc()
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                HTTP_IN_PROGRESS.dec()
                method, path = scope["method"], scope["path"]
                HTTP_REQUESTS.labels(method, path, str(status[0])).inc()
                HTTP_DURATION.labels(method, path).observe(time.perf_counter() - started)


# ---- the app ------------------------------------------------------------------------------------------------

app = FastAPI(title="fraud scoring API (Python baseline)")
if TELEMETRY:
    app.add_middleware(MetricsMiddleware)


@app.exception_handler(RequestValidationError)
async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """{"error", "field"} like ours, instead of FastAPI's default {"detail": [...]}."""
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    status = 400 if first.get("type") == "json_invalid" else 422
    return JSONResponse({"error": first.get("msg", "invalid request"), "field": ".".join(loc) or None}, status_code=status)


@app.post("/predict", response_model=PredictResponse)
async def predict(tx: PredictRequest) -> PredictResponse:
    # `async def`: scoring one row takes well under a millisecond, so running it on the event loop is
    # faster than FastAPI's thread pool (what a plain `def` endpoint would use).
    started = time.perf_counter()
    features = feature_row(tx)
    p = float(model.predict_proba(features)[0, 1])
    is_fraud = p >= THRESHOLD
    confidence = p if is_fraud else 1.0 - p
    processing_time_ms = (time.perf_counter() - started) * 1e3
    if TELEMETRY:
        PREDICTION_DURATION.observe(processing_time_ms / 1e3)
        FRAUD_PROBABILITY.observe(p)
        CONFIDENCE.observe(confidence)
        PREDICTIONS.labels(MODEL_VERSION, "fraud" if is_fraud else "legit").inc()
        log.info(
            "prediction_made",
            extra={
                "fields": {
                    "event": "prediction_made",
                    "transaction_id": str(tx.transaction_id),
                    "fraud_probability": p,
                    "processing_time_ms": processing_time_ms,
                    "model_version": MODEL_VERSION,
                    "replica_id": REPLICA_ID,
                }
            },
        )
    return PredictResponse(
        transaction_id=tx.transaction_id,
        is_fraud=is_fraud,
        fraud_probability=p,
        confidence=confidence,
        model_version=MODEL_VERSION,
        prediction_time=datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        processing_time_ms=processing_time_ms,
        replica_id=REPLICA_ID,
    )


@app.get("/health")
async def health() -> dict:
    return {"status": "ok", "model_version": MODEL_VERSION}


@app.get("/ready")
async def ready() -> dict:
    # The model is loaded before uvicorn listens, so ready = alive here.
    return {"status": "ok", "model_version": MODEL_VERSION}


@app.get("/")
async def info() -> dict:
    return {"service": "fraud-baseline-python", "model_version": MODEL_VERSION, "replica_id": REPLICA_ID}


if TELEMETRY:

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
