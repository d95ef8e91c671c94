"""The name-key migration on real before-states, pushed as users push it.

Each state is tests/states/<name>.sql applied to the plan's current state (5,000 usage rows,
a third of them with UUIDs). The reach/refuse tests push through the real Supabase CLI:
`supabase db push --remote=<url> --include-all --yes`.
"""

import subprocess
import time

import psycopg
import pytest

from kit import settings as settings_mod
from kit.migrations import history, workdir
from tests import snapshot
from tests.helpers import BLOCKERS, ROOT, inserts_while, query, report_holding_llm_usage

CHANGE = "20261124120000"
BASELINE = "20240101000000"


def cli_push(cli: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run([cli, "db", "push", f"--remote={url}", "--include-all", "--yes", "--workdir", str(ROOT)],
                          capture_output=True, text=True, timeout=300)


def migrations():
    return workdir.migrations(settings_mod.load({}, environ={}, cwd=ROOT))


def change_migration():
    return next(m for m in migrations() if m.version == CHANGE)


def apply_change(url: str, options: str = "") -> None:
    with psycopg.connect(url, autocommit=True, options=options) as conn:
        history.apply(conn, change_migration())


def verify_all_pass(run_kit, url: str) -> None:
    run = run_kit("verify", "--db-url", url, "--json")
    failed = [c for c in run.json["checks"] if not c["ok"]]
    assert (run.code, failed) == (0, [])


@pytest.mark.parametrize("state", ["plan", "half_migrated", "half_migrated_models", "nondefault_names",
                                   "nullable_names"])
def test_cli_push_reaches_the_target_and_keeps_every_row(state, state_db, supabase_cli, run_kit):
    url = state_db(state)
    before = snapshot.data(url)
    pushed = cli_push(supabase_cli, url)
    assert pushed.returncode == 0, pushed.stderr
    verify_all_pass(run_kit, url)
    after = snapshot.data(url)
    assert {t: after[t][0] for t in after} == {t: before[t][0] for t in before}
    assert query(url, "select version from supabase_migrations.schema_migrations order by 1") == [
        (BASELINE,), (CHANGE,)]


def test_cli_push_builds_a_fresh_preview_branch_from_migrations_alone(make_db, supabase_cli, run_kit):
    url = make_db("kit_tpl_supabase")
    pushed = cli_push(supabase_cli, url)
    assert pushed.returncode == 0, pushed.stderr
    verify_all_pass(run_kit, url)
    policies = query(url, "select policyname from pg_policies where tablename = 'llm_usage' order by 1")
    assert policies == [("llm_usage_read_own",), ("llm_usage_service_role_all",)]


def test_cli_push_on_a_migrated_database_changes_nothing(db_url, supabase_cli, run_kit):
    apply_change(db_url)
    schema, data = snapshot.schema(db_url), snapshot.data(db_url)
    pushed = cli_push(supabase_cli, db_url)
    assert pushed.returncode == 0, pushed.stderr
    assert (snapshot.schema(db_url), snapshot.data(db_url)) == (schema, data)
    verify_all_pass(run_kit, db_url)


@pytest.mark.parametrize("state", sorted(BLOCKERS))
def test_cli_push_refuses_each_blocker_and_changes_nothing(state, state_db, supabase_cli, run_kit):
    url = state_db(state)
    schema, data = snapshot.schema(url), snapshot.data(url)
    pushed = cli_push(supabase_cli, url)
    assert pushed.returncode != 0
    output = pushed.stdout + pushed.stderr
    assert "refusing to migrate, nothing was changed. 1 blocker(s): " + BLOCKERS[state] in output
    assert (snapshot.schema(url), snapshot.data(url)) == (schema, data)
    assert (CHANGE,) not in query(url, "select version from supabase_migrations.schema_migrations")
    assert run_kit("status", "--db-url", url, "--json").json["blockers"] == [BLOCKERS[state]]


def test_every_blocker_is_named_in_one_error(state_db, run_kit):
    url = state_db("blocker_all")
    schema, data = snapshot.schema(url), snapshot.data(url)
    with pytest.raises(psycopg.Error) as raised:
        apply_change(url)
    assert raised.value.diag.sqlstate == "KB001"
    assert sorted(raised.value.diag.message_detail.split("\n")) == sorted(BLOCKERS.values())
    assert f"{len(BLOCKERS)} blocker(s)" in raised.value.diag.message_primary
    assert (snapshot.schema(url), snapshot.data(url)) == (schema, data)
    assert sorted(run_kit("status", "--db-url", url, "--json").json["blockers"]) == sorted(BLOCKERS.values())


def test_rows_with_only_a_uuid_get_their_names_back(state_db):
    url = state_db("nullable_names")
    expected = query(url, """
        select u.id, coalesce(u.provider_name, p.name, mp.name), coalesce(u.model_name, m.name)
        from llm_usage u left join llm_models m on m.id = u.model_id
        left join llm_providers p on p.id = u.provider_id left join llm_providers mp on mp.id = m.provider_id
        order by u.id""")
    nulls = query(url, "select count(*) filter (where model_name is null), count(*) filter "
                       "(where provider_name is null) from llm_usage")[0]
    assert nulls[0] > 500 and nulls[1] > 500
    apply_change(url)
    assert query(url, "select id, provider_name, model_name from llm_usage order by id") == expected
    assert all(p and m for _, p, m in expected)


def test_a_second_run_is_a_no_op(db_url):
    apply_change(db_url)
    schema, data = snapshot.schema(db_url), snapshot.data(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        for statement in history.split_statements(change_migration().sql):
            conn.execute(statement.encode(), prepare=False)
    assert "llm name keys: already migrated, nothing to do" in notices
    assert (snapshot.schema(db_url), snapshot.data(db_url)) == (schema, data)


def test_provider_can_be_renamed_and_deleted_through_the_name_key(db_url):
    apply_change(db_url)
    query(db_url, "update llm_providers set name = 'open-ai' where name = 'openai'")
    assert query(db_url, "select count(*) from llm_models where provider_name = 'open-ai'") == [(3,)]
    query(db_url, "delete from llm_providers where name = 'groq'")
    assert query(db_url, "select count(*) from llm_models where provider_name = 'groq'") == [(0,)]
    query(db_url, "insert into llm_usage (provider_name, model_name) values ('nobody', 'unregistered-model')")


def test_constraint_names_are_read_from_the_catalog(state_db):
    url = state_db("nondefault_names")
    apply_change(url)
    names = query(url, "select conname from pg_constraint where conrelid in "
                       "('llm_usage'::regclass, 'llm_models'::regclass, 'llm_providers'::regclass) and contype = 'f'")
    assert names == [("llm_models_provider_name_fkey",)]


def test_file_has_no_transaction_control_or_top_level_lock():
    for migration in migrations():
        for statement in history.split_statements(migration.sql):
            code = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))
            first = code.split(None, 1)[0].lower()
            assert first not in ("begin", "commit", "rollback", "lock", "start", "end"), statement[:80]


def test_ends_by_telling_postgrest_to_reload(db_url):
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen pgrst")
        apply_change(db_url)
        received = [(n.channel, n.payload) for n in listener.notifies(timeout=2, stop_after=1)]
    assert received == [("pgrst", "reload schema")]


def test_no_llm_usage_rows_are_read_when_names_are_already_not_null(db_url):
    scans = ("select coalesce(seq_scan, 0) + coalesce(idx_scan, 0) from pg_stat_user_tables "
             "where relname = 'llm_usage'")
    query(db_url, "select pg_stat_force_next_flush()")
    before = query(db_url, scans)
    apply_change(db_url)
    time.sleep(0.6)  # the statistics collector flushes at most every 0.5 s
    assert query(db_url, scans) == before


def _insert_during_migration(url: str, migration_options: str) -> list[str]:
    """Hold llm_usage in a 3 s report transaction, start the migration, then try five inserts
    with a 1 s statement_timeout; return how each insert ended."""
    outcomes, waiting = inserts_while(url, lambda: apply_change(url, migration_options))
    return outcomes + (["migration was waiting"] if waiting else [])


@pytest.mark.majors
def test_inserts_are_not_queued_behind_a_long_report_query(db_url):
    """While a report transaction holds llm_usage, the migration retries its 100 ms lock attempts
    and inserts keep going through."""
    assert _insert_during_migration(db_url, "") == ["inserted"] * 5 + ["migration was waiting"]
    assert query(db_url, "select count(*) from llm_usage") == [(5005,)]
    assert query(db_url, "select count(*) from information_schema.columns where table_name = 'llm_usage' "
                         "and column_name = 'model_id'") == [(0,)]


@pytest.mark.majors
def test_a_long_lock_timeout_would_queue_the_inserts(db_url):
    """The control for the test above: one 10 s lock attempt, as a bare ALTER makes, times the inserts out."""
    outcomes = _insert_during_migration(db_url, "-c kit.lock_timeout_ms=10000")
    # Inserts made while the 3 s report query still runs time out; later ones pass once it ends.
    assert outcomes[:2] == ["timed out"] * 2


@pytest.mark.majors
def test_gives_up_on_the_lock_with_a_clear_error_and_no_change(db_url):
    with report_holding_llm_usage(db_url):
        schema = snapshot.schema(db_url)
        with pytest.raises(psycopg.Error) as raised:
            apply_change(db_url, options="-c kit.lock_wait_s=1")
    assert raised.value.diag.sqlstate == "KB002"
    assert raised.value.diag.message_primary.startswith("llm name keys: could not lock the LLM tables in 1 s (")
    assert "held by pid " in raised.value.diag.message_primary
    assert snapshot.schema(db_url) == schema
    # The history table was created in the same transaction, so it is gone too.
    assert query(db_url, "select to_regclass('supabase_migrations.schema_migrations')") == [(None,)]
