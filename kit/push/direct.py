"""The `direct` route: each file and its history row in one transaction over psycopg."""

import psycopg

from kit import db
from kit.errors import KitError, Refused
from kit.migrations import history, plan
from kit.migrations.workdir import Migration
from kit.redact import redact, url_host
from kit.settings import Settings


def apply_direct(conn: psycopg.Connection, settings: Settings, pending: list[Migration], output=None) -> None:
    """One transaction per file, its history row inside it, exactly as the CLI writes it."""
    for migration in pending:
        if output:
            output(f"Applying migration {migration.path.name}...")
        try:
            history.apply(conn, migration)
        except psycopg.Error as exc:
            raise migration_error(conn, migration, exc, settings) from None


def migration_error(conn: psycopg.Connection, migration: Migration, exc: psycopg.Error,
                    settings: Settings) -> KitError:
    if db.connection_lost(conn):
        return plan.connection_lost(url_host(settings.db_url), migration.path.name)
    message = redact(" ".join((exc.diag.message_primary or str(exc) or "").split()), settings.secrets)
    if exc.sqlstate in plan.REFUSALS:
        return Refused(message)
    return plan.file_failed(migration.path.name, message, exc.sqlstate)
