"""The smoke test's ledger of runs cut off before their cleanup: the next run on their database deletes their rows."""

import json
from dataclasses import dataclass
from typing import Any

from kit.files import open_private
from kit.settings import Settings


@dataclass
class Entry:
    """A run cut off before its cleanup: its id, and the marker (column, kind, run id) or the keys of its rows."""

    run: str
    marker: list[str] | None
    keys: list[list[Any]]


class Ledger:
    """Runs whose rows may still be in a database (the run was cut off), kept in the report folder: one line
    per run, with the database it wrote to (`where`, from the driver), its id, then the marker column and
    value or keys of the rows it wrote. A run only ever sweeps the entries of its own database: the folder
    may serve staging and production alike, and a key of one is some other row in the other."""

    def __init__(self, settings: Settings, where: str):
        self.path = settings.cwd / settings.report_dir / "smoke-unfinished-runs.jsonl"  # beside the deploy reports
        self.where = where

    def entries(self) -> list[Entry]:
        """This database's entries. Lines without a database (from kits before it was recorded) are left
        alone: nothing proves which database their keys belong to."""
        return [Entry(e.get("run", ""), e.get("marker"), e.get("keys") or []) for e in self._all()
                if e.get("where") == self.where]

    def add(self, run_id: str, marker: Any, keys: Any = ()) -> None:
        self._write([e for e in self._all() if e.get("run") != run_id]
                    + [{"run": run_id, "where": self.where, "marker": marker, "keys": [list(k) for k in keys]}])

    def remove(self, run_id: str) -> None:
        self._write([e for e in self._all() if e.get("run") != run_id])

    def _all(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def _write(self, entries: list[dict[str, Any]]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open_private(self.path) as handle:
                handle.write("".join(json.dumps(e, default=str) + "\n" for e in entries))
        except OSError:
            pass  # the ledger only helps the next run; the smoke test itself does not depend on it
