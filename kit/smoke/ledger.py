"""The smoke test's ledger of runs cut off before their cleanup, so the next run deletes their rows."""

import json

from kit.settings import Settings


class Ledger:
    """Runs whose rows may still be in the database (the run was cut off), kept in the report folder:
    one line per run, its id, then the marker column and value or keys of the rows it wrote."""

    def __init__(self, settings: Settings):
        self.path = settings.cwd / settings.report_dir / "smoke-unfinished-runs.jsonl"  # beside the deploy reports

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def add(self, run_id: str, marker, keys=()) -> None:
        self._write([e for e in self.entries() if e["run"] != run_id]
                    + [{"run": run_id, "marker": marker, "keys": [list(k) for k in keys]}])

    def remove(self, run_id: str) -> None:
        self._write([e for e in self.entries() if e["run"] != run_id])

    def _write(self, entries: list[dict]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("".join(json.dumps(e, default=str) + "\n" for e in entries))
        except OSError:
            pass  # the ledger only helps the next run; the smoke test itself does not depend on it
