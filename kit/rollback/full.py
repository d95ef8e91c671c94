"""`kit rollback --full`: restore a whole backup the way Supabase documents it, in one transaction.

Roles, schema, data (with session_replication_role = replica) and history go through one psql session
with --single-transaction, as Supabase's restore guide runs them: a failure anywhere (a bad statement, a
lost connection) rolls everything back, so the database is either restored or exactly as it was. A
database that already has tables outside Supabase's own schemas is refused: restore into a fresh project
or an empty database.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit import db
from kit.backup import archive as backup_archive, manifest
from kit.backup.take import ROLE_LINE
from kit.errors import BackupError, Refused
from kit.local import pgtools
from kit.redact import mask_url, url_host
from kit.settings import Settings

SQL_DIR = Path(__file__).parents[1] / "sql"
USER_TABLES = ("select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
               "where c.relkind in ('r', 'p', 'v', 'm', 'f') and n.nspname not like 'pg\\_%%' "
               "and n.nspname <> 'information_schema' order by 1, 2")


@dataclass
class Restored:
    """Where a full restore went (the masked URL) and which backup it restored."""

    database: str
    path: str

    def as_dict(self) -> dict[str, Any]:
        return {"database": self.database, "path": self.path}


def restore(settings: Settings, path: Path, *, yes: bool, progress: Callable[[str], Any] | None = None) -> Restored:
    say = progress or (lambda message: None)
    path = Path(path)
    manifest.load(path)
    if not yes and not settings.is_local:
        raise Refused(f"{url_host(settings.db_url)} is not local: a full restore there needs --yes")
    with db.session(settings) as conn:
        tables = [f"{s}.{t}" for s, t in conn.execute(USER_TABLES) if not backup_archive.managed(s)]
        has_auth = conn.execute("select to_regclass('auth.users') is not null").fetchone()[0]
        superuser = conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()[0]
        roles = {r for (r,) in conn.execute("select rolname from pg_roles")}
    if tables:
        shown = ", ".join(tables[:3]) + (f" and {len(tables) - 3} more" if len(tables) > 3 else "")
        raise Refused(f"{url_host(settings.db_url)} already has {len(tables)} table(s) outside Supabase's own "
                      f"schemas ({shown}): a full restore goes into a fresh project or an empty database; "
                      "nothing was changed")
    if not has_auth and not superuser:
        raise Refused(f"{url_host(settings.db_url)} has no Supabase skeleton (no auth.users), and only a superuser "
                      "could add it: restore into a fresh Supabase project or a database made from the skeleton "
                      "(kit local up); nothing was changed")
    sources: list[Path | bytes] = []
    if not has_auth:
        say("Supabase skeleton: API roles, auth schema and grants (the target is not a Supabase project)")
        sources.append(SQL_DIR / "supabase_env.sql")
    say("roles.sql, schema.sql, data.sql (session_replication_role = replica), history.sql: one transaction")
    sources += [_roles(path / "roles.sql", roles), path / "schema.sql", path / "data.sql",
                b"\nSET session_replication_role = origin;\n", path / "history.sql"]
    try:
        pgtools.psql_files(settings, db.database_url(settings), sources, "restoring the backup")
    except BackupError as exc:
        raise BackupError(f"{exc}; it ran in one transaction, so nothing of it was restored: fix the cause and "
                          "run kit rollback --full again") from None
    return Restored(mask_url(settings.db_url), str(path))


def _roles(path: Path, existing: set[str]) -> bytes:
    """roles.sql without the roles the server has already: those are left as they are."""
    kept = [line for line in path.read_text().splitlines()
            if not ((m := ROLE_LINE.match(line)) and m.group(1) in existing)]
    return ("\n".join(kept) + "\n").encode()
