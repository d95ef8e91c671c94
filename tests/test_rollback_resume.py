"""A rollback killed between its steps: the next deploy refuses by name, the next rollback finishes it.

The kill is real: when the rollback announces a step, its database session is terminated with
pg_terminate_backend from another connection, so the step's next statement meets a dead
connection, as it would after a crash or a network cut.
"""

from pathlib import Path

import psycopg
import pytest

from kit import settings as settings_mod
from kit.errors import KitError
from kit.rollback import in_place as rollback
from tests import snapshot
from tests.helpers import LOOKUPS, ROOT, ROWS, migrate_direct, query

pytestmark = pytest.mark.majors  # scripts/test.sh runs these on every major


def _killer(url: str, at: str):
    def progress(message: str) -> None:
        if message.startswith(at + ":"):
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                             "where datname = current_database() and pid <> pg_backend_pid()")
    return progress


@pytest.mark.parametrize("at", ["B", "C", "D"])
def test_a_rollback_killed_between_steps_is_refused_by_deploy_and_finished_by_the_next_rollback(
        at, db_url, run_kit, tmp_path, clean_env):
    before, lookups, shape = query(db_url, ROWS)[0][0], query(db_url, LOOKUPS), snapshot.schema(db_url)
    backup = run_kit("backup", "--db-url", db_url, "--out", str(tmp_path), "--json")
    path = Path(backup.json["path"])
    migrate_direct(db_url)
    s = settings_mod.load({"db_url": db_url}, environ={}, cwd=ROOT)
    with pytest.raises(KitError):
        rollback.in_place(s, path, progress=_killer(db_url, at))

    status = run_kit("status", "--db-url", db_url, "--json").json
    if at in ("B", "C"):
        assert status["phase"] == "partial"
        clean_env.chdir(tmp_path)
        deploy = run_kit("deploy", "--db-url", db_url, "--json")
        assert deploy.code == 4
        assert deploy.json["failed_step"] == "preflight"
        assert "part-way through a rollback" in deploy.json["error"] and "kit rollback" in deploy.json["error"]
        assert query(db_url, "select count(*) from supabase_migrations.schema_migrations "
                             "where version = '20261124120000'") == [(1,)]
    else:  # killed before validating: the tables are back, a foreign key is still NOT VALID
        assert status["phase"] == "before"
        assert query(db_url, "select count(*) from pg_constraint where not convalidated") != [(0,)]

    again = run_kit("rollback", str(path), "--db-url", db_url, "--json")
    assert again.code == 0, again.err
    assert again.json["phase"] == "before"
    assert query(db_url, ROWS)[0][0] == before  # every row with exactly its recorded links
    assert query(db_url, LOOKUPS) == lookups
    assert snapshot.schema(db_url) == shape
    assert query(db_url, "select count(*) from pg_constraint where not convalidated") == [(0,)]
