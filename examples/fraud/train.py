"""Train the fraud example's model on synthetic transactions and save it as model.joblib.

    python examples/fraud/train.py

Features: amount, merchant category, hour of day, weekend flag, distance from home, and whether
the card was present. Fraud is likelier for large amounts at night, far from home, card absent.
"""

from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier

FEATURES = ["amount", "merchant_category", "hour", "is_weekend", "distance_km", "card_present"]
CATEGORIES = ["grocery", "fuel", "electronics", "travel", "restaurant", "online", "jewelry"]


def synthetic_transactions(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(mean=3.5, sigma=1.2, size=n)
    category = rng.integers(0, len(CATEGORIES), size=n)
    hour = rng.integers(0, 24, size=n)
    weekend = rng.integers(0, 2, size=n)
    distance = rng.exponential(scale=15.0, size=n)
    card_present = rng.integers(0, 2, size=n)
    risk = (
        -4.0
        + 0.004 * amount
        + 1.2 * ((hour < 6) | (hour > 22))
        + 0.02 * distance
        + 1.5 * (card_present == 0)
        + 0.8 * np.isin(category, [2, 5, 6])
        + 0.3 * weekend
    )
    label = rng.random(n) < 1 / (1 + np.exp(-risk))
    features = np.column_stack([amount, category, hour, weekend, distance, card_present])
    return features, label.astype(int)


def main() -> None:
    features, labels = synthetic_transactions(20_000)
    model = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0, n_jobs=1)
    model.fit(features, labels)
    model.feature_names = FEATURES
    target = Path(__file__).with_name("model.joblib")
    joblib.dump({"model": model, "features": FEATURES, "categories": CATEGORIES}, target)
    print(f"trained on {len(labels)} transactions ({labels.mean():.1%} fraud) -> {target}")


if __name__ == "__main__":
    main()
