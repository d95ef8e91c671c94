"""The two steps on every shape of tests/states/matrix/ (uuid, bigint, text, composite and no key, partitioned,
publications, auth.users, hostile names), and each step killed mid-way then finished by running it again.

For each state: backup B0 -> expand -> backup B1 -> rollback with B0 (from the expanded phase) -> expand ->
contract -> rollback with B1 (from the migrated phase, back to expanded). Every usage row (every column with
its original links), every provider and model with its UUID, and the schema are compared with the state each
backup recorded. A state whose file names a blocker of the one-step change gets its fix first (those blockers
stop the contract as they stop the one-step change: tests/test_expand_contract_sql.py).
"""

import json
import re
import threading
import time
from pathlib import Path

import psycopg
import pytest

from kit import settings as settings_mod
from kit.errors import KitError
from kit.migrations import history
from kit.rollback import in_place as rollback
from tests import snapshot
from tests.helpers import LOOKUPS, MATRIX, ROOT, ROWS, query, run_file, take

# The 18 shapes run on PostgreSQL 17 only: what in them depends on the major (the catalog reads, the pg_temp
# steps both files share with the one-step file, the rollback) runs on 15 and 18 in tests/test_states_matrix.py
# and tests/test_expand_contract_sql.py. The killed steps below, which depend on the server's transactions and
# locks, run on every major.

KIT = {"expand": "20261124120001", "contract": "20261124120002"}
STATES = sorted(p.stem for p in MATRIX.glob("*.sql"))
NAMES = ("select coalesce(jsonb_agg(to_jsonb(u) - 'provider_id' - 'model_id' order by to_jsonb(u)::text), '[]') "
         "from public.llm_usage u")


def versions(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return history.applied_versions(conn)


def unlinked(rows: list[dict]) -> list[str]:
    return sorted(json.dumps({k: v for k, v in r.items() if k not in ("provider_id", "model_id")}, sort_keys=True)
                  for r in rows)


def picture(url: str) -> tuple:
    """Every usage row with its links, the lookups with their UUIDs, and the schema."""
    return query(url, ROWS)[0][0], query(url, LOOKUPS), snapshot.schema(url)


def push(run_kit, url: str, *extra: str) -> dict:
    run = run_kit("push", "--via", "direct", "--no-lint", "--db-url", url, "--json", *extra)
    assert run.code == 0, run.err
    return run.json


def roll_back(run_kit, url: str, backup: Path, phase: str) -> dict:
    run = run_kit("rollback", str(backup), "--db-url", url, "--json")
    assert run.code == 0, run.err
    assert run.json["phase"] == phase
    return run.json


@pytest.mark.parametrize("state", STATES)
def test_expand_contract_and_rollback_from_either_phase_keep_every_row_and_link(state, make_db, run_kit, tmp_path):
    url = make_db()
    text = (MATRIX / f"{state}.sql").read_text()
    run_file(url, text)
    fix = re.search(r"^-- fix: (.*)$", text, re.M)
    if fix:
        query(url, fix[1])
    before = picture(url)
    b0 = take(run_kit, url, tmp_path / "b0")
    assert push(run_kit, url, "--expand")["applied"][-1:] == ["20261124120001"]
    assert run_kit("status", "--db-url", url, "--json").json["phase"] == "expanded"
    expanded = picture(url)
    assert expanded[:2] == before[:2]  # the expand changes no row and no UUID
    b1 = take(run_kit, url, tmp_path / "b1")

    back = roll_back(run_kit, url, b0, "before")
    if state == "usage_no_key":  # without a key every row is linked through its names, as in the one-step cycle
        assert picture(url)[1:] == before[1:] and back["unprovable_rows"] > 0
        assert unlinked(query(url, ROWS)[0][0]) == unlinked(before[0])
    else:
        assert picture(url) == before
    assert versions(url) == ["20240101000000"]

    push(run_kit, url, "--expand")
    names = query(url, NAMES)
    assert push(run_kit, url)["applied"] == ["20261124120002"]
    assert run_kit("verify", "--db-url", url).code == 0
    assert query(url, NAMES) == names
    rolled = roll_back(run_kit, url, b1, "expanded")
    assert rolled["history_removed"] == "20261124120002"
    after = picture(url)
    if state == "usage_no_key":  # without a key, rows are linked through their names (counted as unprovable)
        assert after[1:] == expanded[1:] and query(url, NAMES) == names
    else:
        assert after == expanded
    assert run_kit("verify", "--db-url", url).code == 0


def _hold(url: str, started: threading.Event, done: threading.Event) -> None:
    """A long report: ACCESS SHARE on llm_usage until told to stop, so a step waits in its lock retries."""
    with psycopg.connect(url) as conn:
        conn.execute("select count(*) from llm_usage")
        started.set()
        done.wait(30)
        conn.rollback()


@pytest.mark.majors
@pytest.mark.parametrize("step", ["expand", "contract"])
def test_a_step_killed_mid_way_changes_nothing_and_is_finished_by_running_it_again(step, db_url, run_kit):
    if step == "contract":
        push(run_kit, db_url, "--expand")
    schema, data = snapshot.schema(db_url), snapshot.data(db_url)
    started, done = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(db_url, started, done), daemon=True)
    holder.start()
    started.wait(10)
    outcome: dict = {}
    extra = ["--expand"] if step == "expand" else []
    pusher = threading.Thread(target=lambda: outcome.update(run=run_kit(
        "push", "--via", "direct", "--no-lint", "--db-url", db_url, "--json", *extra)), daemon=True)
    pusher.start()
    pid = None
    for _ in range(200):  # wait until the file is in its lock retries, past its back-fill
        found = query(db_url, "select pid from pg_stat_activity where query ~ 'pg_temp\\.llm_(expand|contract)\\(' "
                              "and state = 'active' and pid <> pg_backend_pid()")
        if found:
            pid = found[0][0]
            break
        time.sleep(0.05)
    assert pid is not None
    time.sleep(0.3)
    query(db_url, "select pg_terminate_backend(%s)", (pid,))
    pusher.join(30)
    done.set()
    holder.join(30)
    assert outcome["run"].code == 3, outcome["run"].err  # the connection was lost: nothing of the file applied
    assert (snapshot.schema(db_url), snapshot.data(db_url)) == (schema, data)
    assert versions(db_url)[-1:] != [KIT[step]]  # the file and its history row went together
    again = push(run_kit, db_url, *extra)
    assert again["applied"][-1:] == [KIT[step]]
    phase = run_kit("status", "--db-url", db_url, "--json").json["phase"]
    assert phase == ("expanded" if step == "expand" else "migrated")


def _killer(url: str, at: str):
    def progress(message: str) -> None:
        if message.startswith(at + ":"):
            query(url, "select pg_terminate_backend(pid) from pg_stat_activity "
                       "where datname = current_database() and pid <> pg_backend_pid()")
    return progress


@pytest.mark.majors
@pytest.mark.parametrize("target, at", [("before", "B"), ("before", "C"), ("expanded", "B"), ("expanded", "C"),
                                        ("expanded", "D")])
def test_a_rollback_from_either_phase_killed_between_steps_is_finished_by_running_it_again(
        target, at, db_url, run_kit, tmp_path):
    """to before: from the expanded phase with the backup taken before the expand; to expanded: from the migrated
    phase with the backup taken while expanded."""
    if target == "expanded":
        push(run_kit, db_url, "--expand")
    wanted = picture(db_url)
    backup = take(run_kit, db_url, tmp_path)
    if target == "before":
        push(run_kit, db_url, "--expand")
    else:
        push(run_kit, db_url)
    s = settings_mod.load({"db_url": db_url}, environ={}, cwd=ROOT)
    with pytest.raises(KitError):
        rollback.in_place(s, backup, progress=_killer(db_url, at))
    roll_back(run_kit, db_url, backup, target)
    assert picture(db_url) == wanted
    assert query(db_url, "select count(*) from pg_constraint where not convalidated") == [(0,)]
