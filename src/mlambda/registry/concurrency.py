"""Concurrency settings kept in the registry: reserved concurrency per function, provisioned
concurrency per version or alias (what PutFunctionConcurrency and
PutProvisionedConcurrencyConfig set, and `mlambda concurrency`)."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from mlambda.registry import tables

R, P = tables.reserved_concurrency, tables.provisioned_concurrency


@dataclasses.dataclass(frozen=True)
class Provisioned:
    function: str
    qualifier: str  # a version number or an alias
    requested: int
    updated_at: float


class ConcurrencySettings:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def reserved(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {row.name: row.reserved for row in conn.execute(sa.select(R))}

    def set_reserved(self, name: str, reserved: int | None, now: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(R.delete().where(R.c.name == name))
            if reserved is not None:
                conn.execute(R.insert().values(name=name, reserved=reserved, updated_at=now))

    def provisioned(self, name: str | None = None) -> list[Provisioned]:
        query = sa.select(P).order_by(P.c.name, P.c.qualifier)
        if name is not None:
            query = query.where(P.c.name == name)
        with self.engine.connect() as conn:
            return [
                Provisioned(row.name, row.qualifier, row.requested, row.updated_at)
                for row in conn.execute(query)
            ]

    def set_provisioned(
        self, name: str, qualifier: str, requested: int | None, now: float
    ) -> Provisioned | None:
        with self.engine.begin() as conn:
            conn.execute(P.delete().where(P.c.name == name, P.c.qualifier == qualifier))
            if requested is None:
                return None
            conn.execute(
                P.insert().values(
                    name=name, qualifier=qualifier, requested=requested, updated_at=now
                )
            )
        return Provisioned(name, qualifier, requested, now)

    @staticmethod
    def delete_all(conn: sa.Connection, name: str) -> None:
        conn.execute(R.delete().where(R.c.name == name))
        conn.execute(P.delete().where(P.c.name == name))
