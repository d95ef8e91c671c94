"""`kit status` changes nothing and waits for nobody: only ACCESS SHARE on the LLM tables, never a wait.

It lists the blockers by defining the change migration's steps in a transaction it rolls back, then
turning it READ ONLY and calling only pg_temp.llm_check() (an older copy of the file, one DO block, runs
whole and stops before its back-fill and its ACCESS EXCLUSIVE lock). Every session here is a real
client of the test server; a thread polls pg_locks while status runs.
"""

import threading
import time

import psycopg
import pytest

from kit.db import APPLICATION_NAME
from tests.helpers import OLDER_COPY, query, workdir_with_change

pytestmark = pytest.mark.majors  # scripts/test.sh runs these on every major

TABLES = "('public.llm_usage'::regclass, 'public.llm_models'::regclass, 'public.llm_providers'::regclass)"
GIVE_UP_S = 20  # the holder lets go after this, so a status that waits for it ends (and the test fails)


class LockWatch:
    """Polls pg_locks on the LLM tables of `url`'s database until stopped: (pid, app, mode, granted) rows."""

    def __init__(self, pg, url: str):
        self.admin_url, self.seen, self.polls = pg.admin(url.rsplit("/", 1)[1]), set(), 0
        self.stop, self.error = threading.Event(), None
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        try:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                while not self.stop.is_set():
                    self.seen |= set(conn.execute(
                        "select l.pid, a.application_name, l.mode, l.granted from pg_locks l join pg_stat_activity a "
                        f"on a.pid = l.pid where l.relation in {TABLES} and l.pid <> pg_backend_pid()").fetchall())
                    self.polls += 1
                    time.sleep(0.002)
        except Exception as exc:  # noqa: BLE001 - reported by __exit__
            self.error = exc

    def __enter__(self):
        self.thread.start()
        while not self.polls and self.error is None:
            time.sleep(0.001)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        assert self.error is None, self.error
        assert self.polls > 1

    def of_kit(self) -> set:
        return {(mode, granted) for _, app, mode, granted in self.seen if app == APPLICATION_NAME}


class Holder:
    """A session holding `mode` on `tables` in an open transaction; it lets go after GIVE_UP_S at most."""

    def __init__(self, url: str, statement: str):
        self.conn = psycopg.connect(url, autocommit=True, application_name="holder")
        self.conn.execute("begin")
        self.conn.execute(statement)
        self.pid = self.conn.info.backend_pid
        self.released = threading.Event()
        self.timer = threading.Timer(GIVE_UP_S, self.release)
        self.timer.start()

    def release(self) -> None:
        if not self.released.is_set():
            self.released.set()
            self.conn.execute("rollback")

    def close(self) -> None:
        self.timer.cancel()
        self.release()
        self.conn.close()


class Writers:
    """Threads inserting usage rows one by one until stopped; their pids and slowest insert."""

    def __init__(self, url: str, count: int = 2):
        self.url, self.stop, self.pids, self.slowest, self.rows = url, threading.Event(), set(), 0.0, 0
        self.threads = [threading.Thread(target=self._write, daemon=True) for _ in range(count)]

    def _write(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            self.pids.add(conn.info.backend_pid)
            while not self.stop.is_set():
                start = time.perf_counter()
                conn.execute("insert into llm_usage (provider_name, model_name, agent_name) "
                             "values ('openai', 'gpt-4o', 'status-lock-writer')")
                self.slowest = max(self.slowest, time.perf_counter() - start)
                self.rows += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        while len(self.pids) < len(self.threads) or self.rows < 10:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def timed_status(run_kit, url: str):
    start = time.perf_counter()
    run = run_kit("status", "--db-url", url, "--json")
    return run, time.perf_counter() - start


def test_status_with_a_long_reader_open_takes_only_access_share_and_blocks_no_writer(db_url, run_kit, pg):
    """The probe's case: a 10 s report holds ACCESS SHARE on llm_usage while usage rows keep arriving."""
    url = db_url
    holder = Holder(url, "select count(*) from llm_usage")
    try:
        with Writers(url) as writers, LockWatch(pg, url) as watch:
            run, seconds = timed_status(run_kit, url)
            still_held = not holder.released.is_set()
            written = writers.rows
    finally:
        holder.close()
    print(f"status took {seconds:.3f}s with the reader open; slowest insert {writers.slowest * 1000:.1f} ms, "
          f"{written} inserts; {watch.polls} polls of pg_locks saw the kit take {sorted(watch.of_kit())}")
    assert run.code == 0, run.err
    assert (run.json["phase"], run.json["blockers"]) == ("before", [])
    assert still_held  # status returned while the reader still held its lock: it waited for nothing
    assert watch.of_kit() <= {("AccessShareLock", True)}, watch.seen
    assert not [row for row in watch.seen if row[0] in writers.pids and not row[3]], watch.seen


@pytest.mark.parametrize("state", ["plan", "nullable_names", "blocker"])
def test_status_under_an_exclusive_lock_asks_for_nothing_stronger_than_access_share(state, db_url, state_db,
                                                                                   run_kit, pg):
    """EXCLUSIVE conflicts with every mode but ACCESS SHARE: any stronger request by status would queue here
    (the migration's ACCESS EXCLUSIVE; with nullable names, its back-fill's ROW EXCLUSIVE)."""
    url = db_url if state == "plan" else state_db("nullable_names")
    if state == "blocker":  # the migration then stops at its blocker list, before any write
        query(url, "insert into llm_models (provider_id, name) select id, 'gpt-4o' from llm_providers "
                   "where name = 'groq'")
    holder = Holder(url, "lock table llm_usage, llm_models, llm_providers in exclusive mode")
    try:
        with LockWatch(pg, url) as watch:
            run, seconds = timed_status(run_kit, url)
            still_held = not holder.released.is_set()
    finally:
        holder.close()
    print(f"status took {seconds:.3f}s under an EXCLUSIVE lock ({state}); {watch.polls} polls of pg_locks saw "
          f"the kit take {sorted(watch.of_kit())}")
    assert run.code == 0, run.err
    assert run.json["phase"] == "before"
    if state == "blocker":
        assert len(run.json["blockers"]) == 1
        assert run.json["blockers"][0].startswith("model name 'gpt-4o' is used by 2 models")
    else:
        assert run.json["blockers"] == [] and run.json["blockers_note"] is None
    assert still_held
    assert not [row for row in watch.seen if row[2] == "AccessExclusiveLock"], watch.seen
    assert watch.of_kit() <= {("AccessShareLock", True)}, watch.seen


def test_status_with_an_older_copy_of_the_migration_also_asks_for_nothing_stronger_than_access_share(
        db_url, run_kit, pg, tmp_path):
    """A team's repo that holds the file as it was before its steps became functions (one DO block)."""
    folder = workdir_with_change(tmp_path, OLDER_COPY.read_text())
    query(db_url, "insert into llm_models (provider_id, name) select id, 'gpt-4o' from llm_providers where name = 'groq'")
    holder = Holder(db_url, "lock table llm_usage, llm_models, llm_providers in exclusive mode")
    try:
        with LockWatch(pg, db_url) as watch:
            run = run_kit("status", "--db-url", db_url, "--workdir", str(folder), "--json")
            still_held = not holder.released.is_set()
    finally:
        holder.close()
    assert run.code == 0, run.err
    assert run.json["phase"] == "before" and len(run.json["blockers"]) == 1
    assert run.json["blockers"][0].startswith("model name 'gpt-4o' is used by 2 models")
    assert still_held
    assert watch.of_kit() <= {("AccessShareLock", True)}, watch.seen


@pytest.mark.parametrize("table", ["llm_models", "llm_usage"])
def test_status_under_an_access_exclusive_lock_returns_at_once_saying_the_blockers_were_not_checked(
        table, db_url, run_kit, pg):
    """Another session mid-migration (ACCESS EXCLUSIVE): status does not queue behind it."""
    holder = Holder(db_url, f"lock table {table} in access exclusive mode")
    try:
        run, seconds = timed_status(run_kit, db_url)
        still_held = not holder.released.is_set()
        text = run_kit("status", "--db-url", db_url)
    finally:
        holder.close()
    print(f"status took {seconds:.3f}s under ACCESS EXCLUSIVE on {table}; phase {run.json['phase']}")
    assert run.code == 0, run.err
    assert still_held
    # pg_get_expr locks a table to print its column defaults, so the phase itself is unknown
    assert run.json["phase"] == "unknown" and run.json["blockers"] == []
    note = (f"not checked: the LLM tables are locked by pid {holder.pid} (holder, idle in transaction); "
            "run kit status again when it ends")
    assert run.json["blockers_note"] == note
    assert text.code == 0 and f"blockers  {note}" in text.out.splitlines()


def test_deploy_under_an_access_exclusive_lock_refuses_at_preflight_without_waiting(db_url, run_kit, tmp_path,
                                                                                    clean_env):
    clean_env.chdir(tmp_path)
    holder = Holder(db_url, "lock table llm_models in access exclusive mode")
    try:
        run = run_kit("deploy", "--db-url", db_url, "--via", "direct", "--json")
        still_held = not holder.released.is_set()
    finally:
        holder.close()
    assert run.code == 4, run.out + run.err
    assert still_held
    assert run.json["failed_step"] == "preflight" and run.json["backup"] is None
    assert run.json["phase"] == f"unknown (the LLM tables are locked by pid {holder.pid} (holder, idle in transaction))"
    assert run.json["error"] == (f"the LLM tables are locked by pid {holder.pid} (holder, idle in transaction), so "
                                 "the preflight could not check them; nothing was changed: deploy again when that "
                                 "session ends")
    assert run_kit("status", "--db-url", db_url, "--json").json["pending"] == ["20240101000000", "20261124120000"]
