"""One check's outcome, as verify, backup verify and the smoke test report it."""

from dataclasses import dataclass


@dataclass
class Check:
    """A named check: a check of state has a level ("info": shown, never failed); a timed one (smoke) its seconds."""

    name: str
    ok: bool
    detail: str
    level: str = "check"
    seconds: float | None = None

    def as_dict(self) -> dict:
        """The JSON object: a timed check reports its seconds, a check of state its level."""
        found = {"name": self.name, "ok": self.ok, "detail": self.detail}
        return {**found, "seconds": self.seconds} if self.seconds is not None else {**found, "level": self.level}
