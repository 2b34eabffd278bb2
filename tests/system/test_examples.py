"""The shipped examples work as documented (test_docs runs the README's tutorial itself)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hello_example_greets(server):
    server.deploy(ROOT / "examples" / "hello")
    result = json.loads(server.client.invoke("hello", b'{"name": "Ada"}'))
    assert result["message"] == "Hello, Ada!"


def test_fraud_example_trains_deploys_and_scores(server, tmp_path):
    fraud = shutil.copytree(
        ROOT / "examples" / "fraud", tmp_path / "fraud", ignore=shutil.ignore_patterns("*.joblib")
    )
    subprocess.run([sys.executable, str(fraud / "train.py")], check=True, capture_output=True)
    server.deploy(fraud)
    risky = {
        "transaction_id": "t-1",
        "amount": 4200,
        "merchant_category": "electronics",
        "hour": 3,
        "distance_km": 300,
        "card_present": False,
    }
    safe = {"transaction_id": "t-2", "amount": 12, "merchant_category": "grocery", "hour": 14}
    blocked = json.loads(server.client.invoke("fraud", json.dumps(risky).encode()))
    allowed = json.loads(server.client.invoke("fraud", json.dumps(safe).encode()))
    assert set(blocked) == {"transaction_id", "fraud_score", "action", "timestamp"}
    assert blocked["transaction_id"] == "t-1" and blocked["action"] == "block"
    assert allowed["action"] == "allow" and allowed["fraud_score"] < blocked["fraud_score"]
    bad = json.loads(server.client.invoke("fraud", b'{"merchant_category": "casino"}'))
    assert bad["statusCode"] == 400


def test_iris_example_serves_the_model_file_as_the_readme_shows(server, tmp_path):
    iris = shutil.copytree(
        ROOT / "examples" / "iris", tmp_path / "iris", ignore=shutil.ignore_patterns("*.skops")
    )
    subprocess.run([sys.executable, str(iris / "train.py")], check=True, capture_output=True)
    server.deploy(iris)
    both = {"inputs": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
    assert json.loads(server.client.invoke("iris", json.dumps(both).encode())) == {
        "outputs": [0, 2]
    }
    response = server.http(
        "POST", "/v1/functions/iris/invoke?proba=1", json={"inputs": [[5.1, 3.5, 1.4, 0.2]]}
    )
    (proba,) = response.json()["outputs"]
    assert proba[0] > 0.9 and abs(sum(proba) - 1) < 1e-9
    bad = server.http("POST", "/v1/functions/iris/invoke", json={"inputs": [[5.1, 3.5]]})
    assert bad.status_code == 400
    assert bad.json()["errorMessage"] == "input 'input': expected shape [-1, 4], got [1, 2]"


def test_the_pipeline_example_scores_every_uploaded_file(tmp_path):
    fraud = ROOT / "examples" / "fraud"
    if not (fraud / "model.joblib").exists():
        subprocess.run([sys.executable, str(fraud / "train.py")], check=True, capture_output=True)
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pipeline" / "run.py"), "--files", "12",
         "--rows", "50", "--timeout", "60"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "files scored:        12 of 12" in run.stdout
    assert "transactions scored: 600" in run.stdout
