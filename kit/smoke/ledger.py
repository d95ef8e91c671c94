"""The smoke test's ledger of runs cut off before their cleanup, so the next run on the same database deletes their rows."""

import json

from kit.files import open_private
from kit.settings import Settings


class Ledger:
    """Runs whose rows may still be in a database (the run was cut off), kept in the report folder: one line
    per run, with the database it wrote to (`where`, from the driver), its id, then the marker column and
    value or keys of the rows it wrote. A run only ever sweeps the entries of its own database: the folder
    may serve staging and production alike, and a key of one is some other row in the other."""

    def __init__(self, settings: Settings, where: str):
        self.path = settings.cwd / settings.report_dir / "smoke-unfinished-runs.jsonl"  # beside the deploy reports
        self.where = where

    def entries(self) -> list[dict]:
        """This database's entries. Lines without a database (from kits before it was recorded) are left
        alone: nothing proves which database their keys belong to."""
        return [e for e in self._all() if e.get("where") == self.where]

    def add(self, run_id: str, marker, keys=()) -> None:
        self._write([e for e in self._all() if e.get("run") != run_id]
                    + [{"run": run_id, "where": self.where, "marker": marker, "keys": [list(k) for k in keys]}])

    def remove(self, run_id: str) -> None:
        self._write([e for e in self._all() if e.get("run") != run_id])

    def _all(self) -> list[dict]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def _write(self, entries: list[dict]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open_private(self.path) as handle:
                handle.write("".join(json.dumps(e, default=str) + "\n" for e in entries))
        except OSError:
            pass  # the ledger only helps the next run; the smoke test itself does not depend on it
