"""Where triggers are kept: the registry's ``triggers`` table, the source URL sealed under the
master key (it may hold a broker's password), the rest as the API shows it.

A function's ``[[triggers]]`` are kept in step with each deploy (``sync``): one whose type and
source are unchanged keeps its id and, unless its settings changed, the enabled state the API
gave it. Triggers made through the API are the API's to change and outlive deploys. Removing a
function removes its triggers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from mlambda.errors import NotFound
from mlambda.events.triggers.config import FIELDS, TriggerSpec
from mlambda.events.triggers.sources import Source, parse_source, redact
from mlambda.registry.tables import objects_seen
from mlambda.registry.tables import trigger_checkpoints as checkpoints
from mlambda.registry.tables import triggers as table
from mlambda.security.crypto import Envelope

CONFIG, API = "config", "api"
# A schedule's checkpoint is its last fire, fixed-width so that text order is time order; a
# claimed fire not yet queued carries this mark.
PENDING = "/pending"


def _fire(at: float) -> str:
    return f"{at:017.3f}"


@dataclasses.dataclass(frozen=True)
class Trigger:
    id: str
    function: str
    origin: str
    spec: TriggerSpec  # its source is the whole URL: never shown (``to_dict`` redacts it)
    enabled: bool
    created_at: float
    updated_at: float

    @property
    def source(self) -> Source:
        return parse_source(self.spec.source, self.spec.type, f"trigger {self.id}")

    def to_dict(self) -> dict[str, Any]:
        every = _shown(self.spec)
        settings = {k: every[k] for k in ("type", *FIELDS[self.spec.type]) if k in every}
        settings["enabled"] = self.enabled
        if "batch_size" in settings:
            settings["batch_size"] = self.spec.size
        if self.spec.type == "queue":
            settings["max_receive_count"] = self.spec.receive_limit
        return {
            "id": self.id,
            "function": self.function,
            "origin": self.origin,
            **settings,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


def _shown(spec: TriggerSpec) -> dict[str, Any]:
    secret = "***" if spec.secret_access_key else ""
    hidden = msgspec.structs.replace(spec, source=redact(spec.source), secret_access_key=secret)
    return msgspec.to_builtins(hidden)


def _forget(conn: sa.Connection, id: str) -> None:
    conn.execute(table.delete().where(table.c.id == id))
    conn.execute(checkpoints.delete().where(checkpoints.c.trigger == id))
    conn.execute(objects_seen.delete().where(objects_seen.c.trigger == id))


def _sealed(spec: TriggerSpec) -> bytes:
    """What is sealed: the source URL, with an object trigger's secret key beside it."""
    if not spec.secret_access_key:
        return spec.source.encode()
    return msgspec.json.encode({"source": spec.source, "secret_access_key": spec.secret_access_key})


def _opened(plain: bytes) -> dict[str, str]:
    # A URL never starts with "{": a JSON object is a source with a secret beside it.
    if plain.startswith(b"{"):
        return msgspec.json.decode(plain, type=dict[str, str])
    return {"source": plain.decode()}


class TriggerStore:
    def __init__(self, engine: sa.engine.Engine, envelope: Envelope) -> None:
        self.engine = engine
        self.envelope = envelope

    def list(self, function: str | None = None) -> list[Trigger]:
        query = sa.select(table).order_by(table.c.function, table.c.created_at, table.c.id)
        if function is not None:
            query = query.where(table.c.function == function)
        with self.engine.connect() as conn:
            return [self._trigger(row._mapping) for row in conn.execute(query)]

    def get(self, id: str) -> Trigger:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == id)).first()
        if row is None:
            raise NotFound(f"no trigger {id!r} (mlambda triggers FUNCTION lists a function's)")
        return self._trigger(row._mapping)

    def create(self, function: str, spec: TriggerSpec, origin: str = API) -> Trigger:
        now = time.time()
        trigger = Trigger(str(uuid.uuid4()), function, origin, spec, spec.enabled, now, now)
        with self.envelope.lock, self.engine.begin() as conn:
            conn.execute(table.insert().values(**self._row(trigger)))
        return trigger

    def set_enabled(self, id: str, enabled: bool) -> Trigger:
        trigger = dataclasses.replace(self.get(id), enabled=enabled, updated_at=time.time())
        with self.engine.begin() as conn:
            conn.execute(
                table.update()
                .where(table.c.id == id)
                .values(enabled=enabled, updated_at=trigger.updated_at)
            )
        return trigger

    def delete(self, id: str) -> Trigger:
        trigger = self.get(id)
        with self.engine.begin() as conn:
            _forget(conn, id)
        return trigger

    def sync(self, function: str, specs: Sequence[TriggerSpec]) -> bool:
        """Make the function's config triggers ``specs`` (a deploy's [[triggers]]); whether
        any was added, changed or removed."""
        now = time.time()
        current = {t.spec.identity: t for t in self.list(function) if t.origin == CONFIG}
        changed = False
        with self.envelope.lock, self.engine.begin() as conn:
            for spec in specs:
                found = current.pop(spec.identity, None)
                if found is None:
                    fresh = Trigger(
                        str(uuid.uuid4()), function, CONFIG, spec, spec.enabled, now, now
                    )
                    conn.execute(table.insert().values(**self._row(fresh)))
                    changed = True
                elif found.spec != spec:
                    conn.execute(
                        table.update()
                        .where(table.c.id == found.id)
                        .values(
                            spec=_shown(spec),
                            source_sealed=self.envelope.seal_value(
                                _sealed(spec), found.id.encode()
                            ),
                            enabled=spec.enabled,
                            updated_at=now,
                        )
                    )
                    changed = True
            for gone in current.values():
                _forget(conn, gone.id)
                changed = True
        return changed

    def checkpoint(self, id: str) -> str | None:
        """Where a stream trigger goes on from (None: it has not started)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(checkpoints.c.position).where(checkpoints.c.trigger == id)
            ).scalar()
        return None if found is None else str(found)

    def save_checkpoint(self, id: str, position: str) -> None:
        values = {"position": position, "updated_at": time.time()}
        with self.engine.begin() as conn:
            done = conn.execute(
                checkpoints.update().where(checkpoints.c.trigger == id).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(checkpoints.insert().values(trigger=id, **values))

    # -- a schedule's fires: claimed in the registry, so that gateways sharing it fire once ----

    def baseline(self, id: str, now: float) -> float:
        """The schedule's last fire (pending or done); ``now`` when it has none yet."""
        with self.engine.begin() as conn:
            found = conn.execute(
                sa.select(checkpoints.c.position).where(checkpoints.c.trigger == id)
            ).scalar()
            if found is None:
                with contextlib.suppress(sa.exc.IntegrityError), conn.begin_nested():
                    conn.execute(
                        checkpoints.insert().values(trigger=id, position=_fire(now), updated_at=now)
                    )
                return now
        return float(str(found).removesuffix(PENDING))

    def pending_fire(self, id: str) -> float | None:
        """A fire claimed and not known to be queued (its gateway stopped in between)."""
        position = self.checkpoint(id)
        if position is None or not position.endswith(PENDING):
            return None
        return float(position.removesuffix(PENDING))

    def claim_fire(self, id: str, at: float) -> bool:
        """Whether this gateway fires ``at``: the first to move the checkpoint past it does."""
        with self.engine.begin() as conn:
            done = conn.execute(
                checkpoints.update()
                .where(checkpoints.c.trigger == id, checkpoints.c.position < _fire(at))
                .values(position=_fire(at) + PENDING, updated_at=time.time())
            )
        return done.rowcount == 1

    def fired(self, id: str, at: float) -> None:
        """The claimed fire ``at`` is in the asynchronous queue."""
        with self.engine.begin() as conn:
            conn.execute(
                checkpoints.update()
                .where(checkpoints.c.trigger == id, checkpoints.c.position == _fire(at) + PENDING)
                .values(position=_fire(at), updated_at=time.time())
            )

    def rewrap(self) -> int:
        """Every sealed source under the current primary master key (a rotation)."""
        count = 0
        with self.envelope.lock, self.engine.begin() as conn:
            for row in conn.execute(sa.select(table.c.id, table.c.source_sealed)).all():
                conn.execute(
                    table.update()
                    .where(table.c.id == row.id)
                    .values(source_sealed=self.envelope.rewrap_value(row.source_sealed))
                )
                count += 1
        return count

    def _row(self, trigger: Trigger) -> dict[str, Any]:
        return {
            "id": trigger.id,
            "function": trigger.function,
            "origin": trigger.origin,
            "spec": _shown(trigger.spec),
            "source_sealed": self.envelope.seal_value(_sealed(trigger.spec), trigger.id.encode()),
            "enabled": trigger.enabled,
            "created_at": trigger.created_at,
            "updated_at": trigger.updated_at,
        }

    def _trigger(self, row: Any) -> Trigger:
        secrets = _opened(self.envelope.open_value(row["source_sealed"], row["id"].encode()))
        spec = msgspec.convert({**row["spec"], **secrets}, TriggerSpec)
        return Trigger(
            row["id"],
            row["function"],
            row["origin"],
            spec,
            row["enabled"],
            row["created_at"],
            row["updated_at"],
        )
