"""`kit backup list` and `kit backup prune`: the backups under a folder, per database, newest first."""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from kit.errors import ConfigError
from kit.files import safe_name
from kit.local import pgtools
from kit.settings import Settings

MARKER = "INCOMPLETE"  # in a backup folder until its manifest is written, last
MANIFEST = "manifest.json"


@dataclass
class Stored:
    path: Path
    target: str
    database: str
    taken_at: str
    complete: bool
    bytes: int
    key: str = ""  # which database, for prune: the cluster and the database's oid where recorded, else `database`

    def as_dict(self) -> dict:
        return {"path": str(self.path), "target": self.target, "database": self.database, "taken_at": self.taken_at,
                "complete": self.complete, "bytes": self.bytes}


def base_dir(settings: Settings, out_dir: Path | str | None = None) -> Path:
    """Where backups go: --out DIR, else KIT_BACKUP_DIR (default backups), a relative one under the current folder."""
    base = Path(out_dir) if out_dir else settings.backup_dir
    return base if base.is_absolute() else settings.cwd / base


def target_dir(settings: Settings, out_dir: Path | str | None = None) -> Path:
    """The target's own folder under base_dir, where its backups are filed by time: base/<target>/."""
    return base_dir(settings, out_dir) / safe_name(settings.label)


def find(base: Path) -> list[Stored]:
    """Every backup folder under base (base/<target>/<UTC time>/), newest first within each database."""
    if not base.is_dir():
        return []
    found = []
    for folder in sorted(base.glob("*/*/")):
        if not folder.is_dir() or not ((folder / MANIFEST).exists() or (folder / MARKER).exists()):
            continue
        meta = _read(folder / MANIFEST) or _read(folder / MARKER)
        complete = bool(meta.get("complete")) and not (folder / MARKER).exists()
        database = meta.get("database") or f"(target {folder.parent.name})"
        found.append(Stored(folder, folder.parent.name, database, meta.get("started") or folder.name, complete,
                            pgtools.size(folder), _key(meta, database)))
    found.sort(key=lambda s: (s.database, s.path.name), reverse=True)
    return found


def prune(base: Path, keep: int) -> tuple[list[Stored], list[Stored]]:
    """Delete all but the newest `keep` backups of each database; the newest complete one always stays.

    Returns (kept, deleted).
    """
    if keep < 1:
        raise ConfigError(f"--keep {keep} would delete every backup: keep at least 1" if keep == 0 else
                          f"--keep {keep} is not a number of backups to keep: pass 1 or more")
    kept, deleted = [], []
    by_database: dict[str, list[Stored]] = {}
    for stored in find(base):
        by_database.setdefault(stored.key, []).append(stored)
    for backups in by_database.values():
        backups.sort(key=lambda b: b.path.name, reverse=True)  # newest first
        newest_complete = next((b for b in backups if b.complete), None)
        for index, stored in enumerate(backups):
            if index < keep or stored is newest_complete:
                kept.append(stored)
            else:
                deleted.append(stored)
    for stored in deleted:
        shutil.rmtree(stored.path)
    return kept, deleted


def _key(meta: dict, database: str) -> str:
    """One database's backups share this key: a local default's port changes at every start, so its URL does not
    tell them apart, but its cluster's system identifier and the database's oid do."""
    ident = meta.get("identity")
    ident = ident if isinstance(ident, dict) else {}
    system, oid = ident.get("system_identifier"), ident.get("database_oid")
    return f"cluster {system}, oid {oid}" if system and oid is not None else database


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
