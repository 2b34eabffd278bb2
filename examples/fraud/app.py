"""A fraud scorer shaped like a typical AWS Lambda function: the model loads once per instance.

Event: {"transaction_id": "t-1", "amount": 420.5, "merchant_category": "electronics",
        "hour": 3, "is_weekend": false, "distance_km": 80, "card_present": false}
Also accepts an API Gateway event whose "body" holds that JSON.
"""

import json
import logging
import os
import time
from pathlib import Path

import joblib

logger = logging.getLogger()
logger.setLevel(logging.INFO)

# Module-level init: runs once when an instance starts, not on every invocation.
_bundle = joblib.load(Path(__file__).with_name("model.joblib"))
MODEL = _bundle["model"]
CATEGORIES = _bundle["categories"]
THRESHOLD = float(os.environ.get("FRAUD_THRESHOLD", "0.5"))


def features(txn):
    category = txn.get("merchant_category", "online")
    if category not in CATEGORIES:
        raise ValueError(f"unknown merchant_category {category!r}; one of {CATEGORIES}")
    return [
        float(txn["amount"]),
        CATEGORIES.index(category),
        int(txn.get("hour", 12)),
        int(bool(txn.get("is_weekend", False))),
        float(txn.get("distance_km", 0.0)),
        int(bool(txn.get("card_present", True))),
    ]


def lambda_handler(event, context):
    if isinstance(event, dict) and isinstance(event.get("body"), str):
        event = json.loads(event["body"])
    try:
        row = features(event)
    except (KeyError, TypeError, ValueError) as exc:
        return {"statusCode": 400, "body": json.dumps({"error": f"bad transaction: {exc}"})}
    score = float(MODEL.predict_proba([row])[0][1])
    action = "block" if score >= THRESHOLD else "allow"
    logger.info("transaction %s scored %.3f -> %s", event.get("transaction_id"), score, action)
    return {
        "transaction_id": event.get("transaction_id"),
        "fraud_score": round(score, 4),
        "action": action,
        "timestamp": int(time.time()),
    }
