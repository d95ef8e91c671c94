"""Which backup a rollback can use: one taken before the migration, holding the UUID maps."""

from pathlib import Path

from kit import manifest
from kit.backup import MARKER
from kit.errors import KitError


def has_maps(folder: Path) -> bool:
    """A complete backup whose manifest holds the UUID maps (taken before the migration)."""
    if (folder / MARKER).exists() or not (folder / manifest.NAME).is_file():
        return False
    try:
        return bool(manifest.load(folder).get("maps"))
    except (KitError, OSError, ValueError):
        return False


def before_migration(taken: Path) -> Path | None:
    """`taken` itself when it holds the maps, else the newest backup beside it (the same database's
    folder under the backup directory, named by UTC time) that does, or None."""
    if has_maps(taken):
        return taken
    older = sorted((p for p in taken.parent.iterdir() if p.is_dir() and p.name < taken.name), reverse=True)
    return next((p for p in older if has_maps(p)), None)
