"""Faults mid-flight on a real PostgreSQL: a killed connection, a restarted server, two deploys at once."""

import threading
import time

import pytest

from kit import push, settings as settings_mod
from kit.errors import ConnectError, KitError
from tests.helpers import ROOT, VERSIONS, history_rows, migrate_direct, query, workdir_with

SLOW = ("create table public.fault_marker (n int);\ninsert into public.fault_marker values (1);\n"
        "select pg_sleep(30);\n")


def _kill_when_sleeping(url: str) -> list[int]:
    """Terminate the backend that runs pg_sleep (the push's, or a trigger's in a rollback) once it gets there."""
    for _ in range(400):
        pids = [r[0] for r in query(url, "select pid from pg_stat_activity where datname = current_database() "
                                         "and wait_event = 'PgSleep' and pid <> pg_backend_pid() and state = 'active'")]
        if pids:
            query(url, "select pg_terminate_backend(pid) from unnest(%s::int[]) as pid", (pids,))
            return pids
        time.sleep(0.05)
    raise AssertionError("nothing reached its slow statement")


@pytest.mark.parametrize("via", ["direct", "cli"])
def test_connection_killed_during_push_applies_nothing_of_the_file_and_a_rerun_succeeds(via, db_url, tmp_path,
                                                                                        clean_env):
    folder = workdir_with(tmp_path, "20261201000000_slow.sql", SLOW)
    s = settings_mod.load({"db_url": db_url, "workdir": str(folder)}, environ={}, cwd=ROOT)
    outcome = {}

    def run_push():
        try:
            outcome["result"] = push.run(s, via, lint_files=False)
        except KitError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run_push)
    worker.start()
    _kill_when_sleeping(db_url)
    worker.join(timeout=120)
    error = outcome.get("error")
    assert error is not None, outcome
    assert isinstance(error, ConnectError)
    assert str(error).startswith("the connection to 127.0.0.1:")
    assert str(error).endswith("was lost while applying 20261201000000_slow.sql; its transaction rolled back, "
                               "so nothing of it was applied: run kit push again")
    # The files before the killed one are applied with their rows; nothing of the killed one is.
    assert [r[0] for r in history_rows(db_url)] == VERSIONS
    assert query(db_url, "select to_regclass('public.fault_marker')") == [(None,)]
    fast = workdir_with(tmp_path / "again", "20261201000000_slow.sql",
                        SLOW.replace("select pg_sleep(30);\n", ""))
    again = push.run(settings_mod.load({"db_url": db_url, "workdir": str(fast)}, environ={}, cwd=ROOT), via,
                     lint_files=False)
    assert again.applied == ["20261201000000"]
    assert query(db_url, "select count(*) from public.fault_marker") == [(1,)]


def test_connection_killed_during_backup_marks_it_incomplete_and_rollback_refuses_it(db_url, run_kit, tmp_path):
    import psycopg

    from kit.backup import take as backup_mod

    s = settings_mod.load({"db_url": db_url, "backup_dir": str(tmp_path)}, environ={}, cwd=ROOT)
    outcome = {}
    with psycopg.connect(db_url) as holder:
        holder.execute("lock table llm_usage in access exclusive mode")

        def run_backup():
            try:
                outcome["backup"] = backup_mod.take(s)
            except KitError as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=run_backup)
        worker.start()
        for _ in range(200):
            waiting = query(db_url, "select pid from pg_stat_activity where wait_event_type = 'Lock' "
                                    "and pid <> pg_backend_pid()")
            if waiting:
                break
            time.sleep(0.05)
        assert waiting, "the backup never waited for the lock"
        query(db_url, "select pg_terminate_backend(%s)", (waiting[0][0],))
        worker.join(timeout=60)
        holder.rollback()
    error = outcome.get("error")
    assert error is not None and error.exit_code == 3, outcome  # a lost connection, as everywhere
    # the server's last words, or, over TLS (the test server offers it), often only libpq's: the socket closed
    port = db_url.rsplit(":", 1)[1].split("/")[0]
    assert str(error).startswith((f"the connection to 127.0.0.1:{port} was lost while reading the database for the "
                                  "backup (terminating connection due to administrator command); ",
                                  f"the connection to 127.0.0.1:{port} was lost while reading the database for the "
                                  "backup (consuming input failed: SSL connection has been closed unexpectedly); ")), \
        str(error)
    folder = next(next(tmp_path.iterdir()).iterdir())  # backups/<host-port-database>/<time>
    assert str(error).endswith(f"{folder} is marked incomplete: take the backup again")
    assert (folder / "INCOMPLETE").exists()
    migrate_direct(db_url)
    run = run_kit("rollback", str(folder), "--db-url", db_url)
    assert run.code == 7
    assert run.err == (f"kit: error: {folder} is an incomplete backup (it was interrupted); it is never used for a "
                       "rollback: take a new backup\n")


def test_connection_killed_during_a_rollback_exits_3_and_a_rerun_finishes(db_url, run_kit, tmp_path):
    from kit.backup import take as backup_mod

    s = settings_mod.load({"db_url": db_url, "backup_dir": str(tmp_path)}, environ={}, cwd=ROOT)
    folder = backup_mod.take(s).path
    rows = query(db_url, "select count(*) from llm_usage")[0][0]
    migrate_direct(db_url)
    query(db_url, """create function public.slow_link() returns trigger language plpgsql as $$
        begin perform pg_sleep(30); return new; end $$;
        create trigger slow_link before update on public.llm_usage for each row execute function public.slow_link()""")
    killer = threading.Thread(target=_kill_when_sleeping, args=(db_url,))  # in step B, which links the usage rows
    killer.start()
    run = run_kit("rollback", str(folder), "--db-url", db_url)
    killer.join()
    *steps, error = run.err.splitlines()
    assert steps[-1] == "... B: linking usage rows (inserts keep flowing)"
    assert (run.code, error) == (3, "kit: error: the connection was lost during the rollback (terminating connection "
                                    "due to administrator command); the step it was in was undone and the finished "
                                    "ones are kept: run kit rollback again to finish")
    query(db_url, "drop trigger slow_link on public.llm_usage")
    again = run_kit("rollback", str(folder), "--db-url", db_url)
    assert again.code == 0, again.err
    assert run_kit("status", "--db-url", db_url, "--json").json["phase"] == "before"
    assert query(db_url, "select count(*) from llm_usage") == [(rows,)]


def test_server_restart_during_smoke_is_a_clear_failure_and_a_rerun_leaves_no_rows(tmp_path, clean_env):
    from kit import smoke
    from kit.local import server as local

    clean_env.chdir(tmp_path)
    s = settings_mod.load({"local_dir": str(tmp_path / "pg")}, environ={}, cwd=tmp_path)
    server = local.up(s)
    try:
        s = s.with_db_url(server.url)
        push.run(s, "direct", lint_files=False)
        rows = query(server.url, "select count(*) from llm_usage")[0][0]
        query(server.url, """create function slow_smoke() returns trigger language plpgsql as $$
            begin perform pg_sleep(0.3); return new; end $$;
            create trigger slow_smoke before insert on llm_usage for each row
            when (new.agent_name = 'kit-smoke') execute function slow_smoke()""")
        outcome = {}
        worker = threading.Thread(target=lambda: outcome.update(result=smoke.run(s, "sql")))
        worker.start()
        time.sleep(1.0)
        local.restart_cluster(s, local.cluster_dir(s))
        worker.join(timeout=120)
        failed = [c for c in outcome["result"].checks if not c.ok]
        assert outcome["result"].ok is False
        assert failed[0].detail.startswith("the database connection failed: ")
        query(server.url, "drop trigger slow_smoke on llm_usage")
        assert query(server.url, "select count(*) from llm_usage where agent_name = 'kit-smoke'")[0][0] > 0
        again = smoke.run(s, "sql")
        assert again.ok, [c for c in again.checks if not c.ok]
        assert again.checks[0].name == "rows of unfinished earlier runs deleted"
        assert query(server.url, "select count(*) from llm_usage") == [(rows,)]
    finally:
        local.destroy(s)
