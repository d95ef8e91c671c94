"""Faults mid-flight on a real PostgreSQL: a killed connection, a restarted server, two deploys at once."""

import threading
import time

import pytest

from kit import push, settings as settings_mod
from kit.errors import ConnectError, KitError
from tests.conftest import ROOT, query
from tests.snapshot import schema
from tests.test_push import VERSIONS, history_rows, workdir_with

SLOW = ("create table public.fault_marker (n int);\ninsert into public.fault_marker values (1);\n"
        "select pg_sleep(30);\n")


def _kill_when_sleeping(url: str) -> list[int]:
    """Terminate the backend that runs pg_sleep (the push's) once it gets there."""
    for _ in range(400):
        pids = [r[0] for r in query(url, "select pid from pg_stat_activity where query like '%pg_sleep(30)%' "
                                         "and pid <> pg_backend_pid() and state = 'active'")]
        if pids:
            query(url, "select pg_terminate_backend(pid) from unnest(%s::int[]) as pid", (pids,))
            return pids
        time.sleep(0.05)
    raise AssertionError("the push never reached its slow statement")


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
