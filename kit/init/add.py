"""`kit init`: add the name-key change to a team's own supabase/migrations, never editing a file.

The team's repo is the history its production database and preview branches are built from, so the
change goes there as a new file with a version later than everything the folder and the linked
database know. The kit's baseline comes along only when nothing in the folder creates the tables:
copied into a repo whose own migration creates them, a fresh preview branch would create them twice.
"""

import os
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kit import db
from kit.errors import ConfigError
from kit.init import extras as init_extras
from kit.migrations import history, workdir
from kit.migrations.workdir import Migration
from kit.settings import Settings

CHANGE = workdir.ONE_STEP
BASELINE = "llm_tables_baseline"
TABLES = ("llm_providers", "llm_models", "llm_usage")
STAMP = "%Y%m%d%H%M%S"
CREATES_TABLE = re.compile(
    r"\bcreate\s+(?:(?:global\s+|local\s+)?(?:temp|temporary|unlogged)\s+)?table\s+(?:if\s+not\s+exists\s+)?"
    r"(?:\"?public\"?\s*\.\s*)?\"?(llm_providers|llm_models|llm_usage)\"?(?![\w$])", re.IGNORECASE)
LINE_COMMENT = re.compile(r"--[^\n]*")
BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


@dataclass
class InitResult:
    folder: Path
    change: str                    # the change's file, relative to folder (new or already there)
    already: bool                  # the change was there already; nothing was added
    step: str = CHANGE             # which file: the one-step change, or the expand or contract step
    added: list[str] = field(default_factory=list)
    baseline: str = ""             # why the baseline was or was not added
    creators: dict = field(default_factory=dict)  # table -> the team's file that creates it
    database_versions: int | None = None         # how many history versions the linked database has
    extras: init_extras.Extras = field(default_factory=init_extras.Extras)
    next_commands: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"ok": True, "folder": str(self.folder), "change": self.change, "already": self.already,
                "step": self.step,
                "added": self.added, "baseline": self.baseline, "creators": self.creators,
                "database_versions": self.database_versions, **self.extras.as_dict(),
                "next": self.next_commands}


def run(settings: Settings, *, baseline: bool | None = None, workflow: bool = False,
        env_example: bool = False, now: datetime | None = None) -> InitResult:
    """Add the change to the folder's supabase/migrations (and the baseline when it needs one): in one step; with
    settings.expand the expand step; in a folder that has the expand step, the contract step."""
    folder = target_folder(settings)
    migrations_dir = folder / "supabase" / "migrations"
    existing = workdir.migrations_in(migrations_dir) if migrations_dir.is_dir() else []
    kit = {m.name: m for m in workdir.migrations_in(workdir.kit_dir() / "supabase" / "migrations")}
    kit.update({n: Migration("", n, workdir.TEMPLATES / f"{n}.sql") for n in (workdir.EXPAND, workdir.CONTRACT)})
    extras = init_extras.plan(folder, workflow=workflow, env_example=env_example)
    result = InitResult(folder, "", False, creators=tables_created(existing, kit.values()), extras=extras)
    result.step = choose_step(existing, settings.expand, folder)
    present = (same_content(existing, kit[CHANGE]) if result.step == CHANGE
               else next((m for m in existing if m.name == result.step), None))
    if present is not None:
        result.change, result.already = rel(present.path, folder), True
        result.baseline = "unchanged: the change is there already"
    else:
        if result.step == workdir.CONTRACT:
            baseline = False  # decided with the expand step, which comes before it
        files = files_to_add(settings, result, existing, kit, baseline, now)
        require_writable(migrations_dir)
        for path, text in files:
            write_new(path, text)
            result.added.append(rel(path, folder))
        result.change = result.added[-1]
    result.added += init_extras.write(folder, extras)
    result.next_commands = next_commands(settings, folder, result.step)
    return result


def choose_step(existing: list[Migration], expand: bool, folder: Path) -> str:
    """The file to add: the expand step (--expand), the contract where the folder has the expand step, else the
    one-step change. --expand in a folder that has the one-step change is refused: the two steps replace it."""
    names = {m.name: m for m in existing}
    if expand and CHANGE in names and workdir.EXPAND not in names:
        raise ConfigError(f"--expand: {rel(names[CHANGE].path, folder)} is the one-step change, which the two steps "
                          "replace: remove it where no database has applied it yet (kit status lists it as pending), "
                          "then run kit init --expand again; where it is applied there is nothing left to expand")
    if expand:
        return workdir.EXPAND
    return workdir.CONTRACT if workdir.EXPAND in names else CHANGE


def target_folder(settings: Settings) -> Path:
    folder = (settings.workdir or settings.cwd).resolve()
    if not (folder / "supabase").is_dir():
        raise ConfigError(f"{folder} has no supabase/ folder: run `npx supabase init` there first, or pass "
                          "--workdir the folder of your app that contains supabase/")
    return folder


def files_to_add(settings: Settings, result: InitResult, existing: list[Migration], kit: dict,
                 baseline: bool | None, now: datetime | None) -> list[tuple[Path, str]]:
    """The new files and their text, after refusing every name clash; nothing is written yet."""
    migrations_dir = result.folder / "supabase" / "migrations"
    have_baseline = same_content(existing, kit[BASELINE])
    add_baseline = (baseline if baseline is not None else not result.creators) and have_baseline is None
    result.baseline = baseline_reason(baseline, result.creators, have_baseline, result.folder)
    if result.step == workdir.CONTRACT:
        result.baseline = "not added: the expand step came first"
    for name in (result.step, BASELINE) if add_baseline else (result.step,):
        clash = next((m for m in existing if m.name == name and m.sql != kit[name].sql), None)
        if clash is not None:
            raise ConfigError(f"{rel(clash.path, result.folder)} has the kit's file name but other content: "
                              "rename or remove it (or keep it and pass --no-baseline if it is a baseline), "
                              "then run kit init again")
    known = [m.version for m in existing]
    db_versions = linked_versions(settings)
    if db_versions is not None:
        result.database_versions = len(db_versions)
        known += db_versions
    version = new_version(known, now)
    files = []
    if add_baseline:
        files.append((migrations_dir / f"{version}_{BASELINE}.sql", kit[BASELINE].sql))
        version = bump(version)
    files.append((migrations_dir / f"{version}_{result.step}.sql", kit[result.step].sql))
    return files


def baseline_reason(baseline: bool | None, creators: dict, have: Migration | None, folder: Path) -> str:
    if have is not None:
        return f"there already: {rel(have.path, folder)}"
    if baseline is True:
        return "added (--with-baseline)"
    if baseline is False:
        return "not added (--no-baseline)"
    if creators:
        return "not added: the tables are created by " + ", ".join(sorted(set(creators.values())))
    return "added: nothing in supabase/migrations creates the LLM tables"


def tables_created(existing: list[Migration], kit_files: Iterable[Migration]) -> dict[str, str]:
    """Table -> the first of the team's files (not the kit's) whose SQL creates it."""
    kit_sql = {m.sql for m in kit_files}
    found: dict[str, str] = {}
    for migration in existing:
        if migration.sql in kit_sql:
            continue
        text = LINE_COMMENT.sub("", BLOCK_COMMENT.sub("", migration.sql))
        for match in CREATES_TABLE.finditer(text):
            found.setdefault(match[1].lower(), migration.path.name)
    return found


def same_content(existing: list[Migration], kit_file: Migration) -> Migration | None:
    return next((m for m in existing if m.sql == kit_file.sql), None)


def linked_versions(settings: Settings) -> list[str] | None:
    """The configured database's history versions (read only), or None when no database is configured."""
    if not settings.db_url:
        return None
    with db.session(settings) as conn:
        return history.applied_versions(conn)


def new_version(known: list[str], now: datetime | None = None) -> str:
    """Now as a timestamp, or one second after the newest known version when that is later."""
    stamp = (now or datetime.now(UTC)).strftime(STAMP)
    newest = max(known, key=int, default=None)
    if newest is None or int(stamp) > int(newest):
        return stamp
    return bump(newest)


def bump(version: str) -> str:
    try:
        return (datetime.strptime(version, STAMP) + timedelta(seconds=1)).strftime(STAMP)
    except ValueError:
        return str(int(version) + 1)


def require_writable(folder: Path) -> None:
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {folder}: {exc.strerror}; make it writable, then run kit init again") \
            from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{folder} is not writable: make it writable (or run as its owner), then run kit init again")


def write_new(path: Path, text: str) -> None:
    """Create the file; never replace one (mode x)."""
    try:
        with open(path, "x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        raise ConfigError(f"{path} appeared meanwhile; nothing was overwritten: run kit init again") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}; make the folder writable, then run kit init again") \
            from None


def next_commands(settings: Settings, folder: Path, step: str = CHANGE) -> list[str]:
    """Both ways to push, each to the database init read: the Supabase CLI without --remote would push to
    the local Docker stack (127.0.0.1:54322), so it always gets it (alone: the linked project)."""
    quoted = shlex.quote(str(folder))
    target = f" --target {shlex.quote(settings.target)}" if settings.named else ""
    deploy = f"kit deploy --workdir {quoted}{target}" + (" --expand" if step == workdir.EXPAND else "")
    if not settings.db_url:  # no database configured: the project `npx supabase link` chose
        return [f"npx supabase db push --workdir {quoted} --remote", deploy]
    if settings.db_url_from == "--db-url":  # the URL holds the password: never print it
        return [f'npx supabase db push --workdir {quoted} --remote="$DB_URL"  # DB_URL: the URL given to --db-url',
                f'{deploy} --db-url "$DB_URL"']
    if settings.db_url_file:  # the shell does not know a variable that only .env holds; `. .env` misreads `&`
        return [f"kit push --workdir {quoted}{target}  # the pinned npx supabase db push, with "
                f"{settings.db_url_from} from {settings.db_url_file}", deploy]
    return [f'npx supabase db push --workdir {quoted} --remote="${settings.db_url_from}"', deploy]


def rel(path: Path, folder: Path) -> str:
    return str(path.relative_to(folder))
