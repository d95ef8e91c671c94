"""`kit rollback --full`: Supabase's documented restore in one transaction, into a database with the Supabase
skeleton; refused over existing tables; a restore killed halfway leaves the target exactly as it was."""

import threading
import time

import pytest

from kit import settings as settings_mod
from kit.errors import BackupError
from kit.rollback import full as rollback_full
from tests.helpers import ROOT, grow, migrate_direct, query, take
from tests.snapshot import data, schema

pytestmark = pytest.mark.majors  # scripts/test.sh runs these on every major

HISTORY = "select version, name from supabase_migrations.schema_migrations order by 1"


def _target_state(url: str) -> tuple:
    tables = query(url, "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                        "where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') order by 1, 2")
    return tables, schema(url)


def test_full_restore_into_a_database_with_the_supabase_skeleton(db_url, make_db, run_kit, tmp_path):
    grow(db_url, 10_000)
    migrate_direct(db_url)  # so there is history to restore
    path = take(run_kit, db_url, tmp_path)
    target = make_db("kit_tpl_supabase")
    # The target has the project's extensions already, owned by the superuser: the restore (as postgres, not a
    # superuser) must not comment on them again (`must be owner of extension pg_stat_statements`).
    extensions = "select extname from pg_extension where extname <> 'plpgsql' order by 1"
    assert query(target, extensions) == [("pg_stat_statements",), ("pgcrypto",), ("uuid-ossp",)]
    assert "COMMENT ON EXTENSION" not in (path / "schema.sql").read_text()
    run = run_kit("rollback", str(path), "--full", "--db-url", target, "--json")
    assert run.code == 0, run.err
    assert data(target) == data(db_url) and schema(target) == schema(db_url)
    assert query(target, HISTORY) == query(db_url, HISTORY) and len(query(target, HISTORY)) == 2
    assert run_kit("status", "--db-url", target, "--json").json["phase"] == "migrated"
    # Sequences come back too: the next insert gets the next id, not a duplicate.
    query(target, "insert into llm_usage (provider_name, model_name) values ('openai', 'gpt-4o-mini')")
    assert query(target, "select count(*) = count(distinct id) from llm_usage") == [(True,)]


def test_full_restore_over_existing_tables_refuses_and_changes_nothing(db_url, run_kit, tmp_path):
    path = take(run_kit, db_url, tmp_path)
    before = (_target_state(db_url), data(db_url))
    for extra in ((), ("--yes",)):
        run = run_kit("rollback", str(path), "--full", "--db-url", db_url, *extra)
        assert run.code == 4
        assert run.err.endswith(" already has 4 table(s) outside Supabase's own schemas (public.agent_profiles, "
                                "public.llm_models, public.llm_providers and 1 more): a full restore goes into a "
                                "fresh project or an empty database; nothing was changed\n")
    assert (_target_state(db_url), data(db_url)) == before


def test_a_full_restore_killed_halfway_leaves_the_target_as_it_was(db_url, make_db, pg, run_kit, tmp_path):
    grow(db_url, 300_000)
    path = take(run_kit, db_url, tmp_path)
    target = make_db("kit_tpl_supabase")
    before = _target_state(target)
    s = settings_mod.load({"db_url": target}, environ={}, cwd=ROOT)
    outcome = {}

    def restore():
        try:
            outcome["result"] = rollback_full.restore(s, path, yes=True)
        except BackupError as exc:
            outcome["error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown by the assertion below
            outcome["other"] = repr(exc)

    worker = threading.Thread(target=restore)
    worker.start()
    name = target.rsplit("/", 1)[1]
    killed = []
    for _ in range(600):  # the restore's psql session, while it loads llm_usage's rows
        killed = query(pg.admin_url, "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s "
                                     "and application_name = 'psql' and query like 'COPY %%llm_usage%%'", (name,))
        if killed:
            break
        time.sleep(0.005)
    worker.join(timeout=120)
    assert killed, f"the restore never reached the usage rows: {outcome}"
    assert "error" in outcome, outcome
    assert "it ran in one transaction, so nothing of it was restored: fix the cause and run kit rollback --full " \
           "again" in outcome["error"]
    assert outcome["error"].startswith("psql restoring the backup failed: ")
    assert _target_state(target) == before  # not one table, row or function of the backup
    again = run_kit("rollback", str(path), "--full", "--db-url", target, "--json")
    assert again.code == 0, again.err
    assert data(target) == data(db_url)


@pytest.mark.parametrize("missing", ["schema.sql"])
def test_a_full_restore_of_an_altered_backup_is_refused_before_anything_runs(missing, db_url, make_db, run_kit,
                                                                             tmp_path):
    path = take(run_kit, db_url, tmp_path)
    (path / missing).write_text("drop table if exists public.llm_usage;\n")
    target = make_db("kit_tpl_supabase")
    before = _target_state(target)
    run = run_kit("rollback", str(path), "--full", "--db-url", target)
    assert run.code == 7 and f"{missing} in {path} does not match its checksum" in run.err
    assert _target_state(target) == before
