"""The registry's tables (SQLAlchemy Core)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

functions = sa.Table(
    "functions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# What the Lambda API's PutFunctionEventInvokeConfig set: it overrides [function.async].
event_invoke_configs = sa.Table(
    "event_invoke_configs",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Each function's own uid in the sandbox, kept across deploys and restarts (until it is removed).
sandbox_uids = sa.Table(
    "sandbox_uids",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("uid", sa.Integer, nullable=False, unique=True),
)
