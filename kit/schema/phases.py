"""The LLM tables' phase: one enum that kit status, deploy and rollback share, and a reading of it with its note."""

from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    """Where the name-key migration stands; a StrEnum, so it prints and compares as its value ("before")."""

    ABSENT = "absent"
    BEFORE = "before"
    PARTIAL = "partial"
    EXPANDED = "expanded"  # the first of two steps: keyed by name, the UUID columns kept for old clients
    MIGRATED = "migrated"
    UNKNOWN = "unknown"


# The phases in which the change migration still has work to do (what its blockers are read for).
UNFINISHED = frozenset({Phase.BEFORE, Phase.PARTIAL, Phase.EXPANDED})
# The phases in which a push changed the tables, so a rollback has something to undo.
CHANGED = frozenset({Phase.MIGRATED, Phase.PARTIAL, Phase.EXPANDED})


@dataclass(frozen=True)
class PhaseReading:
    """A phase read from the database, and why it is `unknown` when it is: who holds the tables' lock
    (`holders`), or another reason (`note`)."""

    phase: Phase
    holders: str | None = None
    note: str | None = None

    def __str__(self) -> str:
        """As kit deploy reports it: `unknown (the LLM tables are locked by pid 7 (psql, active))`."""
        if self.holders:
            return f"{self.phase} (the LLM tables are locked by {self.holders})"
        return f"{self.phase} ({self.note})" if self.note else str(self.phase)
