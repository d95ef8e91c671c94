"""Where the migrations and the Supabase CLI come from."""

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from kit.errors import ConfigError, ToolMissing
from kit.settings import Settings, upward_project

MIGRATION_NAME = re.compile(r"^(?P<version>[0-9]+)_(?P<name>.*)\.sql$")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # kit/


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def project_dir(settings: Settings) -> Path:
    """The folder that holds supabase/: --workdir, else the nearest one upward, else the kit's own."""
    if settings.workdir is not None:
        workdir = settings.workdir.resolve()
        if not (workdir / "supabase").is_dir():
            raise ConfigError(f"--workdir {workdir} has no supabase/ folder; pass the folder that contains supabase/")
        return workdir
    return upward_project(settings.cwd) or kit_dir()


def kit_dir() -> Path:
    """The kit's own folder holding supabase/: the copy bundled in the wheel, else the source checkout."""
    for candidate in (PACKAGE_ROOT / "bundled", PACKAGE_ROOT.parent):
        if (candidate / "supabase" / "migrations").is_dir():
            return candidate
    raise ConfigError("no supabase/migrations folder found here or above, and none is bundled; "
                      "pass --workdir or reinstall the kit")


def migrations(settings: Settings) -> list[Migration]:
    """The local migration files in version order; refuses a file the Supabase CLI would skip."""
    return migrations_in(project_dir(settings) / "supabase" / "migrations")


def migrations_in(folder: Path) -> list[Migration]:
    """The migration files of one folder in version order; refuses a file the Supabase CLI would skip."""
    if not folder.is_dir():
        raise ConfigError(f"the migrations folder {folder} is missing; restore it or pass --workdir")
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() or path.name.startswith("."):
            continue
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise ConfigError(f"{path.name} in {folder} does not match <timestamp>_name.sql; "
                              "rename it (e.g. 20260101000000_add_index.sql) or move it out")
        found.append(Migration(match["version"], match["name"], path))
    versions = [m.version for m in found]
    duplicates = sorted({v for v in versions if versions.count(v) > 1})
    if duplicates:
        raise ConfigError(f"two migration files share version {duplicates[0]} in {folder}; give one a new timestamp")
    return sorted(found, key=lambda m: int(m.version))


def before_change(settings: Settings, change_name: str) -> list[Migration]:
    """The files that sort before the change's file (all of them when the folder has no such file)."""
    found = migrations(settings)
    change = next((m for m in found if m.name == change_name), None)
    return [m for m in found if change is None or int(m.version) < int(change.version)]


def supabase_cli_version(settings: Settings) -> str | None:
    """The pinned npm package's version, read from its package.json (starting the CLI costs a Node.js start-up,
    about a second); None for a CLI installed another way."""
    script = Path(supabase_cli(settings)).resolve()
    package = script.parent.parent / "package.json"
    try:
        found = json.loads(package.read_text()) if script.name == "supabase.js" else {}
    except (OSError, ValueError):
        return None
    return found.get("version") if found.get("name") == "supabase" else None


def supabase_cli(settings: Settings) -> str:
    """The Supabase CLI binary: SUPABASE_CLI, else PATH, else node_modules/.bin of the project."""
    if settings.supabase_cli:
        path = shutil.which(settings.supabase_cli)
        if not path:
            raise ToolMissing(f"SUPABASE_CLI={settings.supabase_cli} is not an executable; fix it or unset it")
        return path
    path = shutil.which("supabase")
    if path:
        return path
    for folder in (project_dir(settings), settings.cwd.resolve(), PACKAGE_ROOT.parent):
        candidate = folder / "node_modules" / ".bin" / "supabase"
        if candidate.exists():
            return str(candidate)
    raise ToolMissing("the Supabase CLI is not installed: run `npm install` in the kit's folder "
                      "(package.json pins it) or set SUPABASE_CLI to its path")
