"""mlambda: a self-hosted serverless platform for machine-learning inference."""

__version__ = "0.1.0"
