"""Keys, scopes, rate limits, the audit log and encryption at rest."""
