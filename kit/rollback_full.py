"""`kit rollback --full`: restore a whole backup the way Supabase documents it, into an empty database."""

from pathlib import Path

from kit import db, manifest, pgtools
from kit.errors import Refused
from kit.redact import mask_url, url_host
from kit.settings import Settings

SQL_DIR = Path(__file__).parent / "sql"
USER_TABLES = ("select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'r' "
               "and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') and n.nspname not like 'pg\\_%'")


def restore(settings: Settings, path: Path, *, yes: bool, progress=None) -> dict:
    say = progress or (lambda message: None)
    manifest.load(path)
    with db.session(settings) as conn:
        tables = conn.execute(USER_TABLES).fetchone()[0]
        has_auth = conn.execute("select to_regnamespace('auth') is not null").fetchone()[0]
    if not yes and not settings.is_local:
        raise Refused(f"{url_host(settings.db_url)} is not local: a full restore there needs --yes")
    if tables and not yes:
        raise Refused(f"{url_host(settings.db_url)} already has {tables} table(s): a full restore needs an empty "
                      "database (or --yes to restore over it)")
    say("roles.sql")
    pgtools.run(settings, "psql", ["--no-psqlrc", "--quiet", "--file", str(path / "roles.sql")], what="roles.sql")
    if not has_auth:
        say("Supabase roles, auth schema and grants (the target is not a Supabase project)")
        pgtools.psql_file(settings, settings.db_url, SQL_DIR / "supabase_env.sql")
    for name in ("schema.sql", "data.sql", "history.sql"):
        say(name)
        pgtools.psql_file(settings, settings.db_url, path / name)
    return {"database": mask_url(settings.db_url), "path": str(path)}
