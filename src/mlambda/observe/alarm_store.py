"""Alarms in the registry: their rules, states and last transitions. Webhook URLs are sealed
with the master key (a Slack URL is a credential) and shown only as their host."""

from __future__ import annotations

import builtins
import dataclasses
import json
import time
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from mlambda.errors import NotFound
from mlambda.observe.alarm_rule import AlarmRule, rule_from_dict, rule_to_dict
from mlambda.registry.tables import alarm_transitions as transitions
from mlambda.registry.tables import alarms as table
from mlambda.security.crypto import Envelope

INSUFFICIENT = "INSUFFICIENT_DATA"
KEEP_TRANSITIONS = 100  # per alarm


@dataclasses.dataclass(frozen=True)
class Alarm:
    rule: AlarmRule
    origin: str  # "api" or "settings"
    state: str
    reason: str
    state_at: float
    created_at: float


def shown_webhook(url: str) -> str:
    """A webhook as the API and logs show it: its scheme and host, never its path or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


class AlarmStore:
    def __init__(self, engine: sa.engine.Engine, envelope: Envelope) -> None:
        self.engine = engine
        self.envelope = envelope

    def list(self) -> list[Alarm]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.name)).all()
        return [self._alarm(row._mapping) for row in rows]

    def get(self, name: str) -> Alarm:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.name == name)).first()
        if row is None:
            raise NotFound(f"no alarm {name!r} (mlambda alarms lists them)")
        return self._alarm(row._mapping)

    def put(self, rule: AlarmRule, origin: str = "api") -> tuple[Alarm, bool]:
        """Create or replace the alarm; (alarm, created). A changed rule starts over from
        INSUFFICIENT_DATA, as a CloudWatch alarm does when it is updated."""
        now = time.time()
        data = {**rule_to_dict(rule), "webhooks": []}
        sealed = self.envelope.seal_value(
            json.dumps(list(rule.webhooks)).encode(), rule.name.encode()
        )
        with self.envelope.lock, self.engine.begin() as conn:
            row = conn.execute(sa.select(table).where(table.c.name == rule.name)).first()
            if row is not None and self._alarm(row._mapping).rule == rule:
                return self._alarm(row._mapping), False
            values = {"function": rule.function, "rule": data, "webhooks_sealed": sealed,
                      "origin": origin, "state": INSUFFICIENT, "reason": "Unchecked: new rule",
                      "state_at": now}  # fmt: skip
            if row is None:
                conn.execute(table.insert().values(name=rule.name, created_at=now, **values))
            else:
                conn.execute(table.update().where(table.c.name == rule.name).values(**values))
        return self.get(rule.name), row is None

    def delete(self, name: str) -> None:
        with self.engine.begin() as conn:
            if conn.execute(table.delete().where(table.c.name == name)).rowcount == 0:
                raise NotFound(f"no alarm {name!r} (mlambda alarms lists them)")
            conn.execute(transitions.delete().where(transitions.c.name == name))

    def settle(self, name: str, old: str, new: str, reason: str, at: float) -> None:
        """Record a state change (and keep the newest KEEP_TRANSITIONS of them)."""
        with self.engine.begin() as conn:
            conn.execute(
                table.update()
                .where(table.c.name == name)
                .values(state=new, reason=reason, state_at=at)
            )
            conn.execute(
                transitions.insert().values(name=name, at=at, old=old, new=new, reason=reason)
            )
            oldest_kept = (
                sa.select(transitions.c.id)
                .where(transitions.c.name == name)
                .order_by(transitions.c.id.desc())
                .offset(KEEP_TRANSITIONS)
                .limit(1)
                .scalar_subquery()
            )
            conn.execute(
                transitions.delete().where(
                    transitions.c.name == name, transitions.c.id <= oldest_kept
                )
            )

    def history(self, name: str, limit: int = 20) -> builtins.list[dict[str, Any]]:
        query = (
            sa.select(transitions)
            .where(transitions.c.name == name)
            .order_by(transitions.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                {"at": row.at, "oldState": row.old, "newState": row.new, "reason": row.reason}
                for row in conn.execute(query)
            ]

    def rewrap(self) -> int:
        """Every sealed webhook list under the current primary master key (a rotation)."""
        with self.envelope.lock, self.engine.begin() as conn:
            rows = conn.execute(sa.select(table.c.name, table.c.webhooks_sealed)).all()
            for row in rows:
                conn.execute(
                    table.update()
                    .where(table.c.name == row.name)
                    .values(webhooks_sealed=self.envelope.rewrap_value(row.webhooks_sealed))
                )
        return len(rows)

    def _alarm(self, row: Any) -> Alarm:
        webhooks = json.loads(
            self.envelope.open_value(row["webhooks_sealed"], row["name"].encode())
        )
        rule = rule_from_dict({**row["rule"], "webhooks": webhooks})
        return Alarm(rule, row["origin"], row["state"], row["reason"], row["state_at"],
                     row["created_at"])  # fmt: skip


def view(alarm: Alarm) -> dict[str, Any]:
    """The alarm as the API shows it (webhooks by host only)."""
    rule = rule_to_dict(alarm.rule)
    rule["webhooks"] = [shown_webhook(url) for url in alarm.rule.webhooks]
    return {
        **rule,
        "origin": alarm.origin,
        "state": alarm.state,
        "stateReason": alarm.reason,
        "stateUpdatedAt": alarm.state_at,
        "createdAt": alarm.created_at,
    }
