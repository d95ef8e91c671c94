"""Connections to the target database, with one-line errors for what goes wrong."""

import re
import secrets as random_tokens
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql
from psycopg.abc import Params
from psycopg.rows import tuple_row

from kit import project, tls
from kit.errors import ConfigError, ConnectError, PasswordRefused
from kit.redact import redact, url_host
from kit.settings import Settings
from kit.statements import MarkedAsyncCursor, MarkedCursor

APPLICATION_NAME = "supabase-kit"
Query = str | bytes | sql.SQL | sql.Composed  # what Connection.execute takes
# The cluster's system identifier where this role may read it (null where pg_control_system() is revoked, as on
# some managed servers: no error, so it can sit in a transaction or a batch), the database's oid and name.
IDENTITY_SQL = ("select case when has_function_privilege('pg_control_system()', 'execute') then "
                "(select system_identifier::text from pg_control_system()) end, oid::bigint, datname "
                "from pg_database where datname = current_database()", None)
SUPABASE_TRANSACTION_PORT = 6543  # on *.pooler.supabase.com; any other pooler is recognised by behaviour


def check_url(url: str) -> None:
    """Refuse a malformed database URL before anything connects."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ConfigError(f"the database URL is malformed ({exc}); expected "
                          "postgresql://USER:PASSWORD@HOST:5432/postgres") from None
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"the database URL must start with postgresql://, not {parts.scheme or 'nothing'}://; "
                          "copy it from the dashboard's Connect panel")


def database_url(settings: Settings, url: str | None = None) -> str:
    """`url`, else the settings' database; a ConfigError saying how to name one when there is none."""
    url = url or settings.db_url
    if not url:
        raise ConfigError("no database configured: pass --db-url, set SUPABASE_DB_URL, or run `kit local up`")
    return url


def one_row(conn: psycopg.Connection, query: Query, params: Params | None = None) -> tuple[Any, ...]:
    """The one row `query` returns (an aggregate, a function call, SHOW, a row read by its key)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise psycopg.ProgrammingError("the query returned no row")
    return row


def one(conn: psycopg.Connection, query: Query, params: Params | None = None) -> Any:
    """The first value of the one row `query` returns."""
    return one_row(conn, query, params)[0]


def refuse_transaction_pooler(settings: Settings, url: str | None = None, conn: psycopg.Connection | None = None,
                              second: Future | None = None) -> None:
    """Refuse a transaction-mode pooler, recognised by what it does rather than by its port.

    Behind one, a session setting does not stay with the session: the server connection goes back
    to the pool after each statement and the next client may get it. So: set a value in our
    session (`conn`, else a connection of its own), let a second session begin a transaction, and see
    whether that one got our server connection (it sees our value or our backend pid) or whether our
    next statement runs elsewhere. Three round trips, and the second session's connection: `second` when the
    caller started opening it already (beside(), while it opened `conn`), else opened here.
    """
    url = database_url(settings, url)
    refuse_pooler_port(settings, url)
    token = random_tokens.token_hex(8)
    probe = "select pg_backend_pid(), current_setting('kit.session_probe', true)"
    with (nullcontext(second) if second is not None else beside(settings, url)) as opening, \
            (nullcontext(conn) if conn is not None else session(settings, url)) as ours:  # both connect at once
        first = one(ours, "select pg_backend_pid(), set_config('kit.session_probe', %s, false)",
                    (token,))  # while the second session connects
        other = opening.result()
        try:
            pid, seen = batch(other, [("begin", None), (probe, None), ("commit", None)])[1][0]
        except (BatchFailed, psycopg.Error):  # a statement-mode pooler refuses the transaction block itself
            pid, seen = first, token
        again, kept = ours.execute(probe).fetchone() or (None, None)
    if pid == first or seen == token or again != first or kept != token:
        raise _pooler_refusal(url)


def refuse_pooler_port(settings: Settings, url: str | None = None) -> None:
    """Refuse, without connecting, Supabase's pooler host on the port it documents for its transaction pooler."""
    url = database_url(settings, url)
    if project.is_supabase_host(url) and urlsplit(url).port == SUPABASE_TRANSACTION_PORT:
        raise _pooler_refusal(url)


@contextmanager
def beside(settings: Settings, url: str | None = None):
    """A second connection opened in a thread while the caller opens its own; yields its future, and closes the
    connection afterwards (its failure is the caller's to see, or moot)."""
    with ThreadPoolExecutor(1) as pool, _closing(pool.submit(connect, settings, url)) as opening:
        yield opening


@contextmanager
def _closing(opening: Future):
    """The future of a connection; closed afterwards once made (its failure is the caller's to see, or moot)."""
    try:
        yield opening
    finally:
        if opening.exception() is None:
            opening.result().close()


def _pooler_refusal(url: str) -> ConfigError:
    return ConfigError(f"{url_host(url)} is the transaction-mode pooler, where session settings and advisory locks "
                       "do not hold; use the direct connection or the session pooler (port 5432)")


def connect(settings: Settings, url: str | None = None, *, autocommit: bool = True) -> psycopg.Connection:
    """Open a connection to `url` (default: the settings' database)."""
    url = database_url(settings, url)
    check_url(url)
    given, url = url, tls.url_for(settings, url)
    try:
        # Every statement carries the kit's mark, so that kit status never lists the kit's own statements.
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=settings.connect_timeout,
                               application_name=APPLICATION_NAME, cursor_factory=MarkedCursor)
    except psycopg.OperationalError as exc:
        source = settings.db_url_source if given == settings.db_url else "the database URL"
        raise connect_error(url, str(exc), settings.secrets, source) from None
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"the database URL is malformed ({redact(_last_line(str(exc)), settings.secrets)}); "
                          "expected postgresql://USER:PASSWORD@HOST:5432/postgres") from None


async def connect_async(settings: Settings) -> psycopg.AsyncConnection:
    """An autocommit async connection to the settings' database, as connect() opens one (TLS, name, marks)."""
    url = database_url(settings)
    check_url(url)
    try:
        return await psycopg.AsyncConnection.connect(
            tls.url_for(settings, url), autocommit=True, connect_timeout=settings.connect_timeout,
            application_name=APPLICATION_NAME, cursor_factory=MarkedAsyncCursor)
    except psycopg.OperationalError as exc:
        raise connect_error(url, str(exc), settings.secrets, settings.db_url_source) from None


@contextmanager
def session(settings: Settings, url: str | None = None, *, autocommit: bool = True):
    conn = connect(settings, url, autocommit=autocommit)
    try:
        yield conn
    finally:
        conn.close()


# Refusals at start-up that come with a SQLSTATE: the Supabase CLI prints it, while libpq hands psycopg only the
# text of a failed connection (its SQLSTATE is None there, whatever the server sent).
CONNECT_SQLSTATES = {"28P01": "password", "3D000": "no database"}


def connect_error(url: str, message: str, secrets: tuple[str, ...] = (), source: str = "the database URL",
                  sqlstate: str | None = None) -> ConnectError:
    """One line naming what failed and where to fix it: `source` says where the URL came from
    (`--db-url`, `SUPABASE_DB_URL`, `STAGING_SUPABASE_DB_URL in /app/.env`)."""
    host = url_host(url)
    reason = CONNECT_SQLSTATES.get(sqlstate or "") or libpq_connect_failure(message)
    if reason == "password":
        return PasswordRefused(f"wrong password or user for {host}: check the password in {source} "
                               "(dashboard > Connect)")
    name = unquote(urlsplit(url).path.lstrip("/")) or urlsplit(url).username or "postgres"
    advice = {
        "no database": f"database {redact(name, secrets)!r} does not exist on {host}: fix the database name at the "
                       f"end of {source} (on Supabase it is postgres)",
        "tls unverified": f"the TLS certificate of {host} did not verify ({_last_line(message).split(': ')[-1]}): "
                          f"check sslrootcert (PGSSLROOTCERT) and the host name in {source}; nothing was sent",
        "no tls": f"{host} does not offer TLS: the kit will not send the database in cleartext; pass "
                  "--allow-plaintext with sslmode=prefer only if this network is yours",
        "no such host": f"cannot resolve the host name of {host}: check the host in {source}",
        "timeout": f"no answer from {host} within the connect timeout: check the host, port and network "
                   "(KIT_CONNECT_TIMEOUT)",
        "unreachable": unreachable(url, host),
        "refused": f"{host} refused the connection: is the database running and the port right?",
    }
    return ConnectError(advice.get(reason or "") or f"cannot connect to {host}: {redact(_last_line(message), secrets)}")


def libpq_connect_failure(message: str) -> str | None:
    """What a failed connection was, read from libpq's message: a reason connect_error knows, or None.

    libpq gives no SQLSTATE for its client-side failures (refused, host name not resolved, timeout, TLS not
    verified or not offered), and hands psycopg only the text of a server's refusal at start-up (wrong
    password, no such database), so the text is all there is; this is the one place that reads it.
    """
    text = message.lower()
    if re.search(r'database "(.*)" does not exist', message):
        return "no database"
    if "certificate verify failed" in text or "does not match host name" in text:
        return "tls unverified"
    if "server does not support ssl" in text:
        return "no tls"
    if "password authentication failed" in text or "no password supplied" in text:
        return "password"
    if any(hint in text for hint in ("could not translate host name", "name or service not known",
                                     "temporary failure in name resolution")):
        return "no such host"
    if "timeout expired" in text or "timed out" in text:
        return "timeout"
    if "network is unreachable" in text or "cannot assign requested address" in text:
        return "unreachable"
    if "connection refused" in text:
        return "refused"
    return None


def unreachable(url: str, host: str) -> str:
    """The direct host is IPv6-only: on an IPv4-only network the session pooler is the way in.

    With no IPv6 route connect() fails with ENETUNREACH; with no IPv6 address at all, EADDRNOTAVAIL.
    """
    ref = project.db_ref(url)
    if ref and host.startswith("db."):
        return (f"cannot reach {host}: the network is unreachable, the direct host has only an IPv6 address and "
                f"this network has no IPv6: use the session pooler, postgresql://postgres.{ref}:PASSWORD@"
                "aws-0-REGION.pooler.supabase.com:5432/postgres (dashboard > Connect > Session pooler)")
    return f"cannot reach {host}: the network is unreachable; check the host and this machine's network"


def connection_lost(conn: psycopg.Connection) -> bool:
    """Whether conn's server connection is gone (the backend was terminated, the server restarted, the network
    dropped): psycopg marks the connection broken then, whatever the error's text."""
    return conn.broken or conn.closed


def error_line(exc: Exception) -> str:
    """The first line of a psycopg error's primary message (else of the error's text, else its class name)."""
    diag = getattr(exc, "diag", None)
    text = (diag.message_primary if diag is not None and diag.message_primary else str(exc)) or exc.__class__.__name__
    return (text.strip().splitlines() or [exc.__class__.__name__])[0]


def _last_line(text: str) -> str:
    """libpq's connection message ends with the reason; the lines before name the addresses it tried."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def encryption(conn: psycopg.Connection) -> str:
    """`encrypted (TLS)` or `not encrypted`, from libpq itself: no round trip."""
    return "encrypted (TLS)" if conn.pgconn.ssl_in_use else "not encrypted"


def server_version(conn: psycopg.Connection) -> str:
    """`17.6` and the like: what the server reported as the connection opened, so no round trip."""
    return conn.info.parameter_status("server_version") or one(conn, "show server_version")


class BatchFailed(Exception):
    """A statement of a batch failed; the ones after it did not run. Not a KitError: the caller says what
    the failure means."""

    def __init__(self, index: int, error: psycopg.Error, results: list[list]):
        super().__init__(str(error))
        self.index, self.error, self.results = index, error, results  # results: of the statements before it


def batch(conn: psycopg.Connection, statements: list, row_factory=tuple_row) -> list[list]:
    """Send `statements` ((query, params) pairs, or (query, params, row_factory)) in one flight, in psycopg's
    pipeline mode, and return each one's rows ([] for a statement without): one round trip for all of them,
    however far the server is.

    They run in order, as if sent one by one: on an autocommit connection each is its own transaction, unless
    the list holds `begin` ... `commit`. When one fails, the ones after it do not run; a transaction it leaves
    open is rolled back (one more round trip) and BatchFailed names it, with the results of those before it.
    """
    cursors, error = [], None
    try:
        with conn.pipeline():
            for query, params, *own in statements:  # (query, params[, row_factory of its own])
                cursors.append(conn.cursor(row_factory=own[0] if own else row_factory))
                try:
                    cursors[-1].execute(query, params)
                except psycopg.Error as exc:  # an earlier statement's error, read while sending: stop sending
                    error = exc
                    break
    except psycopg.Error as exc:  # raised as the pipeline ends
        error = error or exc
    if error is None:
        return [_rows(cur) for cur in cursors]
    if conn.closed or conn.broken or error.sqlstate is None:  # the connection is gone: nothing to name
        raise error
    failed = next((i for i, cur in enumerate(cursors) if cur.statusmessage is None), len(cursors) - 1)
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
        conn.execute("rollback")
    raise BatchFailed(failed, error, [_rows(cur) for cur in cursors[:failed]])


def _rows(cursor) -> list:
    return cursor.fetchall() if cursor.description else []
