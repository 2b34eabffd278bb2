"""Train the iris example's model and save it with skops as iris.skops (no pickle involved).

    python examples/iris/train.py

A logistic regression on scikit-learn's bundled iris dataset: 4 measurements in, one of three
species out (0 setosa, 1 versicolor, 2 virginica).
"""

from pathlib import Path

import skops.io
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def main() -> None:
    features, species = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, species)
    target = Path(__file__).with_name("iris.skops")
    skops.io.dump(model, target)
    print(f"wrote {target} (training accuracy {model.score(features, species):.3f})")


if __name__ == "__main__":
    main()
