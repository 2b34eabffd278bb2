"""Scores a file of card transactions when it lands in the uploads bucket, and writes the scores
beside it in the results bucket: the handler of the upload -> object trigger -> model -> result
pipeline. Written as for AWS Lambda's S3 trigger: plain boto3, the event's records.

A file is JSON lines, one transaction each (the fraud example's fields); its result,
``<key>.out`` in RESULTS_BUCKET, one line per transaction in the same order.
"""

import json
import os
import urllib.parse
from pathlib import Path

import boto3
import joblib

# Once per instance: the model (the fraud example's, copied into the bundle) and the client,
# whose endpoint and keys come from the trigger (AWS_ENDPOINT_URL_S3...).
_bundle = joblib.load(Path(__file__).with_name("model.joblib"))
MODEL, CATEGORIES = _bundle["model"], _bundle["categories"]
THRESHOLD = float(os.environ.get("FRAUD_THRESHOLD", "0.5"))
RESULTS = os.environ.get("RESULTS_BUCKET", "results")
s3 = boto3.client("s3")


def features(txn):
    return [
        float(txn["amount"]),
        CATEGORIES.index(txn.get("merchant_category", "online")),
        int(txn.get("hour", 12)),
        int(bool(txn.get("is_weekend", False))),
        float(txn.get("distance_km", 0.0)),
        int(bool(txn.get("card_present", True))),
    ]


def handler(event, context):
    scored = 0
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        lines = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
        transactions = [json.loads(line) for line in lines if line.strip()]
        scores = MODEL.predict_proba([features(t) for t in transactions])[:, 1]
        out = [
            {
                "transaction_id": t.get("transaction_id"),
                "fraud_score": round(float(score), 4),
                "action": "block" if score >= THRESHOLD else "allow",
            }
            for t, score in zip(transactions, scores, strict=True)
        ]
        body = "".join(json.dumps(row) + "\n" for row in out)
        s3.put_object(Bucket=RESULTS, Key=key + ".out", Body=body.encode())
        scored += len(out)
    return {"scored": scored}
