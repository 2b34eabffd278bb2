"""Which zygotes and templates to evict when together they use more than the budget (pure)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Resident:
    """A runtime zygote or template held in memory."""

    key: int
    pss_kib: int
    last_used: float
    # False while anything depends on it: instances starting or running from it, templates
    # forked from it. Evicting it would kill those (they die with their parent).
    evictable: bool


def choose_evictions(residents: list[Resident], budget_kib: int) -> list[int]:
    """Least recently used first, until the total PSS fits the budget (or nothing is left)."""
    total = sum(r.pss_kib for r in residents)
    chosen = []
    for resident in sorted((r for r in residents if r.evictable), key=lambda r: r.last_used):
        if total <= budget_kib:
            break
        chosen.append(resident.key)
        total -= resident.pss_kib
    return chosen
