"""Each function's asynchronous config: what the Lambda API set (kept in the registry, cached
here), else its mlambda.toml's ``[function.async]``."""

from __future__ import annotations

import time
from collections.abc import Callable

from mlambda.events.config import AsyncSpec
from mlambda.registry import FunctionRecord, Registry


class AsyncConfigs:
    def __init__(self, registry: Registry, current: Callable[[str], FunctionRecord]) -> None:
        self.registry = registry
        # The function's record (FunctionNotFound when there is none).
        self.current = current
        self._set = registry.event_invoke_configs()

    def entry(self, name: str) -> tuple[AsyncSpec, float] | None:
        """(the function's async config, when it was set), or None when it has none."""
        if name in self._set:
            return self._set[name]
        record = self.current(name)
        return (record.spec.async_, record.updated_at) if record.spec.async_ else None

    def config(self, name: str) -> AsyncSpec | None:
        entry = self.entry(name)
        return entry[0] if entry is not None else None

    def put(self, name: str, config: AsyncSpec) -> None:
        now = time.time()
        self.registry.put_event_invoke_config(name, config, now)
        self._set[name] = (config, now)

    def delete(self, name: str) -> bool:
        self._set.pop(name, None)
        return self.registry.delete_event_invoke_config(name)

    def forget(self, name: str) -> None:
        """The function was removed (the registry dropped its row with it)."""
        self._set.pop(name, None)
