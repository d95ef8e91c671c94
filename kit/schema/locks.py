"""The LLM tables' lock on the kit's Python side: taken politely with retries, and who is in its way.

The migration file has the same two pieces in SQL (pg_temp.llm_lock_tables and pg_temp.llm_lock_holders);
tests/test_migration_locks.py checks that both give the same holders and the same attempts.
"""

import time
from collections.abc import Callable
from typing import TypeVar

import psycopg

from kit import db

T = TypeVar("T")

LOCK_SQL = "lock table public.llm_usage, public.llm_models, public.llm_providers in access exclusive mode"
LOCK_MS = 100
ACCESS_SHARE, ACCESS_EXCLUSIVE = "AccessShareLock", "AccessExclusiveLock"

# Whoever holds a lock that conflicts with `wanted` (only ACCESS EXCLUSIVE conflicts with ACCESS SHARE;
# everything conflicts with ACCESS EXCLUSIVE), and whoever is queued for ACCESS EXCLUSIVE, since every
# later request queues behind that one.
HOLDERS_SQL = """
select distinct a.pid, coalesce(nullif(a.application_name, ''), 'no name'), a.state
from pg_locks l join pg_stat_activity a on a.pid = l.pid
where a.pid <> pg_backend_pid()
  and (l.mode = 'AccessExclusiveLock' or (l.granted and %(wanted)s = 'AccessExclusiveLock'))
  and l.relation in (select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
                     where n.nspname = 'public' and c.relname in ('llm_usage', 'llm_models', 'llm_providers'))
order by 1"""


class LockWaitOver(Exception):
    """The tables stayed locked for the whole wait: after `attempts` tries, `holders` had them."""

    def __init__(self, attempts: int, holders: str | None):
        super().__init__(f"{attempts} attempts; held by {holders}")
        self.attempts, self.holders = attempts, holders


def holders(conn: psycopg.Connection, wanted: str = ACCESS_EXCLUSIVE) -> str | None:
    """`pid N (application, state)` for each session in the way of `wanted` on an LLM table, else None."""
    rows = conn.execute(HOLDERS_SQL, {"wanted": wanted}).fetchall()
    return ", ".join(f"pid {p} ({n}, {s})" for p, n, s in rows) or None


def lock_tables(conn: psycopg.Connection, wait_s: float, lock_ms: int = LOCK_MS) -> int:
    """Begin a transaction that holds ACCESS EXCLUSIVE on the three tables; the count of retries.

    Each attempt gives up after lock_ms and rolls its transaction back, so that no one queues behind
    this session for longer; the next one comes 50 ms later than the last (at most 1 s). After
    wait_s, LockWaitOver names the holders. `conn` must be in autocommit mode and idle.
    """
    def attempt() -> int:
        conn.execute("begin")
        try:
            conn.execute("select set_config('lock_timeout', %s, true)", (f"{lock_ms}ms",))
            conn.execute(LOCK_SQL)
        except psycopg.errors.LockNotAvailable:
            conn.execute("rollback")
            raise
        return 0

    return _politely(conn, wait_s, attempt)[1]


def locked_batch(conn: psycopg.Connection, wait_s: float, statements: list, lock_ms: int = LOCK_MS) -> list[list]:
    """`statements` in one transaction that first takes the three tables' lock as lock_tables does, all sent in
    one flight (kit.db.batch): the lock is held while the server runs them, not for round trips, however far it
    is. Their results; a statement's failure is the caller's BatchFailed (the transaction rolled back)."""
    head = [("begin", None), ("select set_config('lock_timeout', %s, true)", (f"{lock_ms}ms",)), (LOCK_SQL, None)]

    def attempt() -> list[list]:
        try:
            return db.batch(conn, [*head, *statements, ("commit", None)])[len(head):-1]
        except db.BatchFailed as failed:
            if failed.index == len(head) - 1 and isinstance(failed.error, psycopg.errors.LockNotAvailable):
                raise failed.error from None
            raise

    return _politely(conn, wait_s, attempt)[0]


def _politely(conn: psycopg.Connection, wait_s: float, attempt: Callable[[], T]) -> tuple[T, int]:
    """attempt() until it stops raising LockNotAvailable, 50 ms more between tries each time (at most 1 s); its
    result and the count of retries. After wait_s, LockWaitOver names the holders."""
    deadline, retries = time.monotonic() + wait_s, 0
    while True:
        try:
            return attempt(), retries
        except psycopg.errors.LockNotAvailable:
            retries += 1
            if time.monotonic() > deadline:
                raise LockWaitOver(retries, holders(conn)) from None
            time.sleep(min(0.05 * retries, 1.0))
