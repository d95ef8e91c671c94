"""Where the migrations and the Supabase CLI come from."""

import hashlib
import json
import os
import platform
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from kit.errors import ConfigError, ToolMissing
from kit.settings import Settings, upward_project

MIGRATION_NAME = re.compile(r"^(?P<version>[0-9]+)_(?P<name>.*)\.sql$")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # kit/

# The change's files, by name: in one step, or in two (expand now, contract once no client uses the UUIDs).
ONE_STEP = "llm_name_keys"
EXPAND = "llm_name_keys_expand"
CONTRACT = "llm_name_keys_contract"
CHANGES = (ONE_STEP, EXPAND, CONTRACT)
DROPS_UUIDS = (ONE_STEP, CONTRACT)  # the files after which a client of the UUID columns fails
# The two steps are templates, not files of the kit's own supabase/migrations (a plain push would apply them
# with the one-step file): `kit init` writes them into a team's repo with new versions; in the kit's own
# folder they take the one-step file's place under these versions, just after its own.
TEMPLATES = PACKAGE_ROOT / "templates" / "migrations"
KIT_VERSIONS = {EXPAND: "20261124120001", CONTRACT: "20261124120002"}


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


def migrations(settings: Settings, applied: list[str] | None = None) -> list[Migration]:
    """The local migration files in version order; refuses a file the Supabase CLI would skip. In the kit's own
    folder, the two steps in place of the one-step file when the history (`applied`) has one, or with --expand."""
    return migrations_in(folder(settings, applied) / "supabase" / "migrations")


def folder(settings: Settings, applied: list[str] | None = None) -> Path:
    """The folder a push is given: the project's, or for the kit's own one in two steps, a staged copy."""
    project = project_dir(settings)
    if project != kit_dir():
        return project
    applied = applied or []
    if not (settings.expand or any(v in applied for v in KIT_VERSIONS.values())):
        return project
    steps = [EXPAND] if settings.expand and KIT_VERSIONS[CONTRACT] not in applied else [EXPAND, CONTRACT]
    return staged(settings, project, steps, applied)


def template(name: str) -> str:
    return (TEMPLATES / f"{name}.sql").read_text(encoding="utf-8")


def staged(settings: Settings, project: Path, steps: list[str], applied: list[str]) -> Path:
    """The kit's folder with `steps` in place of the one-step file (kept where the history has it), written
    once under the cache folder: the Supabase CLI, the lint and the history all read real files."""
    own = migrations_in(project / "supabase" / "migrations")
    files = {f"{m.version}_{m.name}.sql": m.sql for m in own if m.name != ONE_STEP or m.version in applied}
    files.update({f"{KIT_VERSIONS[s]}_{s}.sql": template(s) for s in steps})
    digest = hashlib.sha256("\0".join(f"{n}\0{files[n]}" for n in sorted(files)).encode()).hexdigest()[:16]
    target = settings.cache_dir / "two-step" / digest
    wanted = {f"supabase/migrations/{name}": text for name, text in files.items()}
    for extra in ("supabase/config.toml", ".squawk.toml"):
        if (project / extra).is_file():
            wanted[extra] = (project / extra).read_text(encoding="utf-8")
    for name, text in wanted.items():
        _write_if_changed(target / name, text)
    return target


def _write_if_changed(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so a concurrent reader sees the old text or the new."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


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


def before_change(settings: Settings, change_names: tuple[str, ...] = CHANGES) -> list[Migration]:
    """The files that sort before the change's first file, in one step or two (all of them when there is none)."""
    found = migrations(settings)
    first = next((m for m in found if m.name in change_names), None)
    return [m for m in found if first is None or int(m.version) < int(first.version)]


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


def supabase_binary(settings: Settings) -> str:
    """The program to run for the Supabase CLI: supabase_cli(), or, when that is npm's Node.js wrapper, the
    platform binary the wrapper would start (as it does, SUPABASE_CLI_BINARY_OVERRIDE first, then
    @supabase/cli-<os>-<arch>[-musl]), which saves a Node.js start-up on every run (about 0.4 s)."""
    cli = supabase_cli(settings)
    script = Path(cli).resolve()
    if script.name != "supabase.js" or supabase_cli_version(settings) is None:
        return cli
    override = os.environ.get("SUPABASE_CLI_BINARY_OVERRIDE")
    if override:
        return override
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    system = {"linux": "linux", "darwin": "darwin"}.get(platform.system().lower())
    scope = script.parent.parent.parent / "@supabase"  # from node_modules/supabase/dist/supabase.js
    for suffix in ([f"{system}-{arch}", f"{system}-{arch}-musl"] if arch and system else []):
        binary = scope / f"cli-{suffix}" / "bin" / "supabase"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    return cli


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
