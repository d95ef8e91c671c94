"""The `direct` route: each file and its history row in one transaction over psycopg."""

import psycopg

from kit.errors import ConnectError, KitError, Refused
from kit.migrations import history
from kit.migrations.workdir import Migration
from kit.redact import redact, url_host
from kit.settings import Settings

# SQLSTATEs the name-key migration raises: blockers, lock wait given up, tables missing.
REFUSALS = ("KB001", "KB002", "KB003")


def apply_direct(conn: psycopg.Connection, settings: Settings, pending: list[Migration], output=None) -> None:
    """One transaction per file, its history row inside it, exactly as the CLI writes it."""
    for migration in pending:
        if output:
            output(f"Applying migration {migration.path.name}...")
        try:
            history.apply(conn, migration)
        except psycopg.Error as exc:
            raise migration_error(migration, exc, settings) from None


def migration_error(migration: Migration, exc: psycopg.Error, settings: Settings) -> KitError:
    message = redact(" ".join((exc.diag.message_primary or str(exc) or "").split()), settings.secrets)
    if exc.diag.sqlstate in REFUSALS:
        return Refused(message)
    if isinstance(exc, psycopg.OperationalError) or exc.sqlstate is None:
        return ConnectError(f"the connection to {url_host(settings.db_url)} was lost while applying "
                            f"{migration.path.name}; its transaction rolled back, so nothing of it was applied: "
                            "run kit push again")
    return KitError(f"{migration.path.name} failed and rolled back, nothing of it was applied: {message}")
