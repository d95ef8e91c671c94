"""`kit backup`: the split `supabase db dump` documents, plus a pg_restore archive and a manifest.

The folder holds MARKER until the manifest is written, last: an interrupted backup (Ctrl-C, a
killed connection, a full disk) keeps its marker and is never offered for rollback.
"""

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from kit import db, identity, manifest, pgtools
from kit.errors import BackupError, ConfigError, KitError
from kit.settings import Settings

MARKER = "INCOMPLETE"
# Schemas Supabase manages; `supabase db dump` leaves them out too.
MANAGED_SCHEMAS = ("information_schema", "pg_*", "_analytics", "_realtime", "_supavisor", "auth", "extensions",
                   "pgbouncer", "realtime", "storage", "supabase_functions", "supabase_migrations", "cron", "dbdev",
                   "graphql", "graphql_public", "net", "pgmq", "pgsodium", "pgsodium_masks", "pgtle", "repack",
                   "tiger", "tiger_data", "timescaledb_*", "_timescaledb_*", "topology", "vault")
RESERVED_ROLES = re.compile(r"^(postgres|anon|authenticated|service_role|authenticator|dashboard_user|pgbouncer|"
                            r"supabase_\w*|pgsodium_\w*|pg_\w*|cli_login_\w*)$")


@dataclass
class Backup:
    path: Path
    manifest: dict


def take(settings: Settings, out_dir: Path | None = None, progress=None) -> Backup:
    """Every file and the manifest's counts from one snapshot, so rows written meanwhile are in none of them."""
    say = progress or (lambda message: None)
    folder = _new_folder(settings, out_dir)
    started = _now()
    clock = time.perf_counter()
    with db.session(settings) as conn:
        try:
            server = db.server_version(conn)
            client = pgtools.require_client_for(settings, server)
            conn.execute("begin isolation level repeatable read")
            snapshot = conn.execute("select pg_export_snapshot()").fetchone()[0]
            facts = manifest.collect(conn, folder)
            ident = identity.read(conn, settings)
            has_history = conn.execute("select to_regnamespace('supabase_migrations') is not null").fetchone()[0]
        except psycopg.Error as exc:
            raise BackupError(f"reading the database for the manifest failed ({_first(exc)}); {folder} is marked "
                              "incomplete: take the backup again") from None
        _write_files(settings, folder, snapshot, has_history, say)
    data = manifest.build(folder, settings, facts, server=server, client=client, started=started,
                          finished=_now(), seconds=time.perf_counter() - clock)
    data["identity"] = ident
    data["platform"] = _platform(settings)
    manifest.save(folder, data)
    (folder / MARKER).unlink()
    say(f"backup complete: {folder}")
    return Backup(folder, data)


def _write_files(settings: Settings, folder: Path, snapshot: str, has_history: bool, say) -> None:
    """The dumps, each in the exported snapshot (held open by the caller's transaction)."""
    exclude = [f"--exclude-schema={s}" for s in MANAGED_SCHEMAS]
    same = f"--snapshot={snapshot}"
    steps = [
        ("roles.sql", lambda p: _roles(settings, p)),
        ("schema.sql", lambda p: _dump(settings, p, [same, "--schema-only", "--quote-all-identifiers", *exclude])),
        ("data.sql", lambda p: _dump(settings, p, [same, "--data-only", "--quote-all-identifiers", *exclude],
                                     header="SET session_replication_role = replica;\n\n")),
        ("history.sql", lambda p: _dump(settings, p, [same, "--schema=supabase_migrations", "--quote-all-identifiers"])
         if has_history else p.write_text("-- this database had no supabase_migrations schema\n")),
        ("database.dump", lambda p: _dump(settings, p, [same, "--format=custom"])),
    ]
    for name, write in steps:
        say(f"dumping {name}")
        write(_private(folder / name))


def _new_folder(settings: Settings, out_dir: Path | None) -> Path:
    base = Path(out_dir) if out_dir else settings.backup_dir
    base = base if base.is_absolute() else settings.cwd / base
    folder = base / _safe(settings.label) / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    try:
        folder.mkdir(parents=True, mode=0o700)
        folder.chmod(0o700)
        (folder / MARKER).write_text("this backup did not finish; it is never used for a rollback\n")
    except OSError as exc:
        raise ConfigError(f"cannot write a backup under {base}: {exc.strerror}; pass --out DIR or set "
                          "KIT_BACKUP_DIR to a writable folder") from None
    return folder


def _private(path: Path) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    return path


def _dump(settings: Settings, path: Path, args: list[str], header: str = "") -> None:
    with _open(path) as handle:
        handle.write(header.encode())
        handle.flush()
        pgtools.run(settings, "pg_dump", args, stdout=handle, what=f"writing {path.name}")


def _roles(settings: Settings, path: Path) -> None:
    result = pgtools.run(settings, "pg_dumpall", ["--roles-only", "--no-role-passwords"], what="writing roles.sql")
    kept = [line for line in result.stdout.decode().splitlines() if not _reserved(line)]
    with _open(path) as handle:
        handle.write(("\n".join(kept) + "\n").encode())


def _reserved(line: str) -> bool:
    """CREATE/ALTER/COMMENT of a reserved role, or a membership granted to one."""
    match = re.match(r'^(CREATE|ALTER|COMMENT ON) ROLE "?([^" ;]+)"?', line)
    if match:
        return bool(RESERVED_ROLES.match(match.group(2)))
    match = re.match(r'^GRANT "?[^" ]+"? TO "?([^" ;]+)"?', line)
    return bool(match and RESERVED_ROLES.match(match.group(1)))


def _open(path: Path):
    try:
        return open(path, "wb")
    except OSError as exc:
        raise BackupError(f"cannot write {path}: {exc.strerror}") from None


def _platform(settings: Settings) -> dict | None:
    if not (settings.access_token and settings.project_ref):
        return None
    from kit.management import ManagementAPI

    try:
        api = ManagementAPI.from_settings(settings)
        return api.get(f"/v1/projects/{settings.project_ref}/database/backups")
    except KitError as exc:
        return {"error": str(exc)}


def _safe(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return safe if safe.strip(".") else "target"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")




def _first(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    text = (diag.message_primary if diag is not None and diag.message_primary else str(exc)) or exc.__class__.__name__
    return text.strip().splitlines()[0]


def latest_with_maps(settings: Settings) -> Path | None:
    """The newest complete backup of this target that holds UUID maps (taken before the migration), or None."""
    base = settings.backup_dir if settings.backup_dir.is_absolute() else settings.cwd / settings.backup_dir
    folder = base / _safe(settings.label)
    for candidate in sorted(folder.glob(f"*/{manifest.NAME}"), key=lambda p: p.parent.name, reverse=True):
        if (candidate.parent / MARKER).exists():
            continue
        try:
            if json.loads(candidate.read_text()).get("maps"):
                return candidate.parent
        except (OSError, ValueError):
            continue
    return None
