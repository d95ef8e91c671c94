"""The lock on the LLM tables, in SQL (the migration's pg_temp.llm_lock_tables and llm_lock_holders) and in
Python (kit/schema/locks.py, which kit rollback and kit status use): the same attempts, back-off and holders.

Other sessions of the real test server hold the locks; the SQL steps are loaded from the migration file
into the test's session (the migration_steps fixture).
"""

import contextlib
import re
import threading
import time
from contextlib import contextmanager

import psycopg
import pytest

from kit.schema import locks
from tests.helpers import one

pytestmark = pytest.mark.majors  # scripts/test.sh runs these on every major

LOCK_MS = 100
HINT_KB002 = "Nothing was changed. Push again when those sessions end, or end them."


@contextmanager
def holding(url: str, statement: str, app: str = "holder", release_after: float | None = None):
    """Another session holding a lock in an open transaction; its pid. Released on exit or after release_after."""
    conn = psycopg.connect(url, autocommit=True, application_name=app)
    conn.execute("begin")
    conn.execute(statement)
    lock = threading.Lock()

    def release() -> None:
        with lock:
            if not conn.closed:
                conn.execute("rollback")
                conn.close()

    timer = threading.Timer(release_after, release) if release_after else None
    if timer:
        timer.start()
    try:
        yield conn.info.backend_pid
    finally:
        if timer:
            timer.cancel()
        release()


def sql_gives_up(conn: psycopg.Connection, wait_s: int) -> tuple[int, str, float]:
    """pg_temp.llm_lock_tables until it gives up: its attempts, holders and seconds."""
    start = time.monotonic()
    with pytest.raises(psycopg.Error) as raised, conn.transaction():
        conn.execute("select pg_temp.llm_lock_tables(%s, %s)", (LOCK_MS, wait_s))
    seconds = time.monotonic() - start
    diag = raised.value.diag
    assert (diag.sqlstate, diag.message_hint) == ("KB002", HINT_KB002)
    found = re.fullmatch(rf"llm name keys: could not lock the LLM tables in {wait_s} s \((\d+) attempts\); "
                         r"held by (.*)", diag.message_primary)
    assert found, diag.message_primary
    return int(found[1]), found[2], seconds


def python_gives_up(conn: psycopg.Connection, wait_s: float) -> tuple[int, str, float]:
    start = time.monotonic()
    with pytest.raises(locks.LockWaitOver) as raised:
        locks.lock_tables(conn, wait_s, LOCK_MS)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    return raised.value.attempts, raised.value.holders, time.monotonic() - start


def expected_attempts(wait_s: float) -> int:
    """Attempt k fails after k lock timeouts and k - 1 back-offs (50 ms more each); the first past wait_s gives up."""
    k = 1
    while LOCK_MS / 1000 * k + sum(0.05 * i for i in range(1, k)) <= wait_s:
        k += 1
    return k


def test_the_lock_is_taken_at_once_when_the_tables_are_free(migration_steps):
    conn = migration_steps("plan")
    with conn.transaction(force_rollback=True):
        assert one(conn, "select pg_temp.llm_lock_tables(100, 1)") == 0
        assert one(conn, "select current_setting('lock_timeout')") == "100ms"
        held = conn.execute("select relation::regclass::text from pg_locks where pid = pg_backend_pid() and "
                            "mode = 'AccessExclusiveLock' and granted and locktype = 'relation' order by 1").fetchall()
    assert held == [("llm_models",), ("llm_providers",), ("llm_usage",)]


def test_sql_and_python_give_up_after_the_wait_alike_naming_the_holder(migration_steps):
    """A report query holds ACCESS SHARE on llm_usage for the whole wait: the SQL step, then the Python one."""
    conn = migration_steps("plan")
    wait_s = 2
    with holding(conn.info.dsn, "select count(*) from llm_usage", app="report") as pid:
        sql_attempts, sql_holders, sql_seconds = sql_gives_up(conn, wait_s)
        py_attempts, py_holders, py_seconds = python_gives_up(conn, wait_s)
    print(f"gave up after {sql_attempts} attempts in {sql_seconds:.2f} s (SQL), {py_attempts} in {py_seconds:.2f} s "
          f"(Python); expected {expected_attempts(wait_s)}")
    assert sql_holders == py_holders == f"pid {pid} (report, idle in transaction)"
    assert abs(sql_attempts - py_attempts) <= 1
    assert abs(sql_attempts - expected_attempts(wait_s)) <= 1
    assert wait_s <= sql_seconds < wait_s + 1.5 and wait_s <= py_seconds < wait_s + 1.5


def test_sql_and_python_take_the_lock_alike_once_the_holder_lets_go(migration_steps):
    conn = migration_steps("plan")
    release_after = 0.6
    with holding(conn.info.dsn, "select count(*) from llm_usage", release_after=release_after), \
            conn.transaction(force_rollback=True):
        sql_retries = one(conn, "select pg_temp.llm_lock_tables(100, 10)")
    with holding(conn.info.dsn, "select count(*) from llm_usage", release_after=release_after):
        py_retries = locks.lock_tables(conn, 10, LOCK_MS)
        conn.execute("rollback")
    print(f"locked after {sql_retries} retries (SQL), {py_retries} (Python)")
    assert sql_retries >= 2 and py_retries >= 2
    assert abs(sql_retries - py_retries) <= 1


@contextmanager
def queued(url: str, app: str, statement: str):
    """Another session whose `statement` (in a transaction) waits for a lock until the block ends and cancels it."""
    conn = psycopg.connect(url, application_name=app)
    pid = conn.info.backend_pid

    def wait() -> None:
        with contextlib.suppress(psycopg.errors.QueryCanceled):
            conn.execute(statement)

    thread = threading.Thread(target=wait)
    thread.start()
    try:
        with psycopg.connect(url, autocommit=True) as watch:
            for _ in range(500):
                if one(watch, "select count(*) from pg_locks where pid = %s and not granted", (pid,)):
                    break
                time.sleep(0.01)
            else:
                raise AssertionError(f"{app} never queued")
        yield pid
    finally:
        with psycopg.connect(url, autocommit=True) as watch:
            watch.execute("select pg_cancel_backend(%s)", (pid,))
        thread.join(10)
        conn.close()


def test_the_holders_are_the_same_text_in_sql_and_in_python(migration_steps):
    conn = migration_steps("plan")
    url = conn.info.dsn

    def both(wanted: str) -> tuple:
        return one(conn, "select pg_temp.llm_lock_holders(%s)", (wanted,)), locks.holders(conn, wanted)

    assert both(locks.ACCESS_EXCLUSIVE) == both(locks.ACCESS_SHARE) == (None, None)
    with holding(url, "select count(*) from llm_usage", app="report") as reader:
        line = f"pid {reader} (report, idle in transaction)"
        assert both(locks.ACCESS_EXCLUSIVE) == (line, line)
        assert both(locks.ACCESS_SHARE) == (None, None)  # a reader is in no reader's way
    with holding(url, "lock table llm_models in access exclusive mode") as holder, \
            queued(url, "reader", "select count(*) from llm_models") as reader, \
            queued(url, "migrator", "lock table llm_models in access exclusive mode") as migrator:
        # the holder, and the ACCESS EXCLUSIVE request queued behind it: every later request waits for both;
        # a queued reader holds back no one
        line = ", ".join(f"pid {p} ({what})" for p, what in sorted(
            [(holder, "holder, idle in transaction"), (migrator, "migrator, active")]))
        assert reader not in (holder, migrator)
        assert both(locks.ACCESS_SHARE) == (line, line)
        assert both(locks.ACCESS_EXCLUSIVE) == (line, line)
