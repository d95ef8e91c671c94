"""Which database a backup is of: recorded in its manifest, checked before a rollback writes anything.

The identity is the cluster's system identifier (pg_control_system(), set once by initdb), the
database's name and oid, and where the kit reached it (host, port, user, the URL's other parameters and the
TLS settings it connected with; never the password), plus the variable the URL came from, so that
`kit rollback PATH` finds the database again, as securely as the backup reached it.
"""

from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import psycopg

from kit import db, project, tls
from kit.backup.contents import Identity, Manifest
from kit.errors import Refused
from kit.settings import LOCAL_DEFAULT, Settings, variable


def read(conn: psycopg.Connection, settings: Settings) -> Identity:
    """This connection's database identity, for the manifest: one round trip."""
    return from_row(db.one_row(conn, db.IDENTITY_SQL[0]), settings)


def from_row(row: tuple[Any, ...], settings: Settings) -> Identity:
    """The identity from db.IDENTITY_SQL's row (the system identifier is null where it cannot be read: the other
    fields still tell databases apart) and where the settings reached it."""
    system, oid, name = row
    parts = urlsplit(settings.db_url or "")
    return Identity(system, name, oid, parts.hostname or "localhost", parts.port or 5432,
                    unquote(parts.username or "") or None, project.db_ref(settings.db_url),
                    settings.target if settings.named else None, settings.db_url_from,
                    {**_public(parts.query), **tls.params(settings, settings.db_url or "")})


def _public(query: str) -> dict[str, str]:
    """A URL's parameters (sslmode, hostaddr, options...) but a password one."""
    return {k: v for k, v in parse_qsl(query) if k != "password"}


def describe(ident: Identity) -> str:
    system = ident.system_identifier or "unknown"
    return f"database {ident.database} (oid {ident.database_oid}) on {ident.host}:{ident.port}, cluster {system}"


def require_same(conn: psycopg.Connection, settings: Settings, data: Manifest, path: Path | str) -> None:
    """Refuse (exit 4) a backup of another database, before anything is written."""
    recorded = data.identity
    if not recorded:
        return _require_same_place(settings, data, path)
    here = read(conn, settings)
    if not same_database(recorded, here):
        raise Refused(f"{path} is a backup of {describe(recorded)}, not of this {describe(here)}; nothing was "
                      f"written: roll back with a backup of this database, or {_other_way(settings)}")


def same_database(recorded: Identity | None, here: Identity) -> bool:
    """Whether a backup's recorded identity is of the database `here` names: name and oid, and the cluster's system
    identifier, else the project, else host, port and name."""
    if recorded is None:
        return False
    same = recorded.database == here.database and recorded.database_oid == here.database_oid
    if recorded.system_identifier and here.system_identifier:
        return same and str(recorded.system_identifier) == str(here.system_identifier)
    if recorded.project_ref and here.project_ref:
        return same and recorded.project_ref == here.project_ref
    return same and _place(recorded) == _place(here)


def _other_way(settings: Settings) -> str:
    """How to reach the database the backup came from, given how this one was named."""
    if settings.db_url_from == LOCAL_DEFAULT:
        return "set KIT_LOCAL_DIR to the folder of the local default the backup came from"
    if settings.db_url_from == "--db-url":
        return "run kit rollback PATH without --db-url to reach the database the backup came from"
    return f"pass --db-url or --target for the database the backup came from (this one is {settings.db_url_from})"


def _require_same_place(settings: Settings, data: Manifest, path: Path | str) -> None:
    """A manifest from before identities were recorded: its masked URL's host, port and database."""
    old = urlsplit(data.database or "")
    new = urlsplit(settings.db_url or "")
    if (old.hostname, old.port, old.path) != (new.hostname, new.port, new.path):
        raise Refused(f"{path} is a backup of {old.hostname}:{old.port}{old.path}, not of {new.hostname}:"
                      f"{new.port}{new.path}; nothing was written: pass the --db-url of the database it came from")


def _place(ident: Identity) -> tuple[str | None, int | None, str | None]:
    return ident.host, ident.port, ident.database


def database_of(settings: Settings, data: Manifest) -> Settings:
    """Settings that reach the database a backup is of, its password from where the backup found it.

    The local default is found again (its port changes between starts). Otherwise the URL is built
    from the manifest; the password comes from the variable recorded there when that variable still
    names the same host, port, database and user, else from libpq (PGPASSWORD, ~/.pgpass), else the
    CLI asks.
    """
    recorded = data.identity
    if not recorded:
        return settings
    target = recorded.target or settings.target
    if recorded.url_from == LOCAL_DEFAULT:
        return replace(settings, db_url=None, db_url_from=None, db_url_file=None, target=target)
    for url in (variable(recorded.url_from or "", cwd=settings.cwd, workdir=settings.workdir), settings.db_url):
        if url and same_place(url, recorded):
            return replace(settings, db_url=url, db_url_from=recorded.url_from, db_url_file=None, target=target)
    netloc = quote(recorded.user or "", safe="") + "@" + _host(recorded.host or "localhost") + f":{recorded.port}"
    url = urlunsplit(("postgresql", netloc.lstrip("@"), "/" + quote(recorded.database or "", safe=""),
                      urlencode(recorded.parameters or {}, safe="/:"), ""))
    return replace(settings, db_url=url, db_url_from="the backup's manifest", db_url_file=None, target=target)


def same_place(url: str, recorded: Identity) -> bool:
    try:
        parts = urlsplit(url)
        here = (parts.hostname, parts.port or 5432, unquote(parts.path.lstrip("/")) or None,
                unquote(parts.username or "") or None)
    except ValueError:
        return False
    return here == (recorded.host, recorded.port, recorded.database, recorded.user)


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = quote(unquote(parts.username or ""), safe="")
    netloc = f"{user}:{quote(password, safe='')}@{_host(parts.hostname or 'localhost')}" + (
        f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
