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

# Published versions: frozen copies of $LATEST's config and bundle digest, numbered 1, 2, ...
versions = sa.Table(
    "versions",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("description", sa.String(256), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# The last version number handed out per function: a deleted version's number is not reused.
version_counters = sa.Table(
    "version_counters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("last", sa.Integer, nullable=False),
)

# Aliases: a name -> a version, with an optional weighted second version and earlier routings.
aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("alias", sa.String(128), primary_key=True),
    sa.Column("routing", sa.JSON, nullable=False),
    sa.Column("history", sa.JSON, nullable=False),
    sa.Column("description", sa.String(256), nullable=False),
    sa.Column("revision_id", sa.String(36), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Reserved concurrency (PutFunctionConcurrency): at most this many calls at once, kept apart.
reserved_concurrency = sa.Table(
    "reserved_concurrency",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("reserved", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Provisioned concurrency (PutProvisionedConcurrencyConfig): instances kept started for a
# version or an alias.
provisioned_concurrency = sa.Table(
    "provisioned_concurrency",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("qualifier", sa.String(128), primary_key=True),
    sa.Column("requested", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Triggers (events/triggers/): a queue or stream that feeds a function. ``origin`` is "config"
# for one of the function's [[triggers]] (kept in step with each deploy) or "api" for one made
# through the API; ``spec`` holds the source with its password redacted, ``source_sealed`` the
# whole URL, encrypted under the master key.
triggers = sa.Table(
    "triggers",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("function", sa.String(64), nullable=False, index=True),
    sa.Column("origin", sa.String(8), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("source_sealed", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# A stream trigger's checkpoint: every record up to ``position`` (the broker's sequence) is done.
trigger_checkpoints = sa.Table(
    "trigger_checkpoints",
    metadata,
    sa.Column("trigger", sa.String(36), primary_key=True),
    sa.Column("position", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# What an object trigger that watches has seen: one row per object (key) as last listed, with
# the ETag that names its content and the stamp (size, modification time) that says whether a
# file must be read again to know it. A restart compares a listing with these rows.
objects_seen = sa.Table(
    "objects_seen",
    metadata,
    sa.Column("trigger", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("etag", sa.String(80), nullable=False),
    sa.Column("stamp", sa.String(80), nullable=False),
)

# Batch jobs (events/jobs.py): a job's settings and state, and one row per item to invoke (an
# object, or a mini-batch of lines), with a mini-batch's result lines until the job assembles
# its file's output.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
)
job_items = sa.Table(
    "job_items",
    metadata,
    sa.Column("job", sa.String(36), primary_key=True),
    sa.Column("item", sa.String(1100), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("key", sa.String(1100), nullable=False),
    sa.Column("relative", sa.String(1100), nullable=False),
    sa.Column("first", sa.Integer, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("result", sa.LargeBinary),
    sa.Column("error", sa.Text),
    sa.Index("job_items_state", "job", "state"),
)

# What each function version used per day (UTC), for `mlambda cost`: invocations, errors,
# billed milliseconds times memory in MB (exact integers: GB-seconds are derived), the CPU
# milliseconds instances measured, and the rows predicted.
usage = sa.Table(
    "usage",
    metadata,
    sa.Column("function", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(32), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("invocations", sa.BigInteger, nullable=False),
    sa.Column("errors", sa.BigInteger, nullable=False),
    sa.Column("billed_ms", sa.BigInteger, nullable=False),
    sa.Column("mb_ms", sa.BigInteger, nullable=False),
    sa.Column("cpu_ms", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("predictions", sa.BigInteger, nullable=False, server_default="0"),
)

# The platform's queues made by name (SQS's CreateQueue): such a queue exists while empty. A
# queue that holds messages exists too, made or not (a destination's first send makes it).
platform_queues = sa.Table(
    "platform_queues",
    metadata,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
)


# Alarms (observe/alarms.py): each rule as JSON (its webhook URLs sealed apart: a Slack URL is
# a secret), where it came from ("api" or "settings"), and its state with the reason and time.
alarms = sa.Table(
    "alarms",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("function", sa.String(64), nullable=False),
    sa.Column("rule", sa.JSON, nullable=False),
    sa.Column("webhooks_sealed", sa.Text, nullable=False),
    sa.Column("origin", sa.String(8), nullable=False),
    sa.Column("state", sa.String(17), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("state_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Each alarm's last state changes, newest kept (observe/alarm_store.py trims them).
alarm_transitions = sa.Table(
    "alarm_transitions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("old", sa.String(17), nullable=False),
    sa.Column("new", sa.String(17), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)


def add_missing_columns(engine: sa.engine.Engine) -> None:
    """Columns a newer release added to a table an older one made: added in place (each has a
    server default), so a data dir carries over without a migration step."""
    inspector = sa.inspect(engine)
    names = set(inspector.get_table_names())
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if table.name not in names:
                continue
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.server_default is not None:
                    kind = column.type.compile(dialect=engine.dialect)
                    default = column.server_default.arg  # type: ignore[attr-defined]
                    conn.execute(
                        sa.text(
                            f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind} '
                            f"NOT NULL DEFAULT {default}"
                        )
                    )
