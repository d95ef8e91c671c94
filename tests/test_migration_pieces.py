"""The name-key migration's steps, each called alone on a real database in a known state.

The file defines each step as a pg_temp function (kit/schema/pieces.py finds them). A test loads those
definitions into one session on a database made from tests/states/*.sql or tests/states/matrix/*.sql,
calls one step and asserts what it returned and what it changed (the lock steps are in
tests/test_migration_locks.py).
"""

import re

import psycopg
import pytest

from kit import settings as settings_mod
from kit.schema import pieces, status
from tests.helpers import BLOCKERS, CHANGE_FILE, MATRIX, OLDER_COPY, ROOT, one, query, run_file, workdir_with_change

pytestmark = pytest.mark.majors  # scripts/test.sh runs these on every major

TEXT = CHANGE_FILE.read_text()
USAGE_FKS = "select conname from pg_constraint where contype = 'f' and conrelid = 'llm_usage'::regclass order by 1"
BEFORE = {"has_p_id": True, "has_m_id": True, "has_m_pid": True, "has_m_pname": False, "has_u_pid": True,
          "has_u_mid": True, "u_pname_nullable": False, "u_mname_nullable": False, "p_keyed": False,
          "m_keyed": False, "m_fk_ok": False, "u_fks": 2}
STATES_READ = {
    "plan": BEFORE,
    "nullable_names": {**BEFORE, "u_pname_nullable": True, "u_mname_nullable": True},
    "half_migrated": {**BEFORE, "has_m_pname": True, "has_u_pid": False, "has_u_mid": False, "u_fks": 0},
    "half_migrated_models": {**BEFORE, "has_m_pname": True, "has_m_pid": False, "has_u_pid": False,
                             "has_u_mid": False, "u_fks": 0},
}
MIGRATED = {**{k: False for k in BEFORE}, "has_m_pname": True, "p_keyed": True, "m_keyed": True, "m_fk_ok": True,
            "u_fks": 0}


def notices(conn: psycopg.Connection) -> list[str]:
    seen: list[str] = []
    conn.add_notice_handler(lambda diag: seen.append(diag.message_primary))
    return seen


def code_of(statement: str) -> str:
    return "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--")).strip()


# --- the file ------------------------------------------------------------------------------------------


def test_the_file_is_its_steps_then_a_driver_and_calls_every_step_schema_qualified():
    from kit.statements import split_statements

    statements = split_statements(TEXT)
    steps = pieces.definitions(TEXT)
    assert code_of(statements[0]) == "select set_config('statement_timeout', '0', true)"
    assert statements[1:-2] == list(steps.values())
    assert [code_of(s) for s in statements[-2:]] == ["select pg_temp.llm_migrate()", "notify pgrst, 'reload schema'"]
    assert {"llm_state", "llm_blockers", "llm_suggestions", "llm_check", "llm_backfill_usage_names",
            "llm_lock_holders", "llm_lock_tables", "llm_drop_usage_uuid_fks", "llm_drop_usage_uuid_columns",
            "llm_key_by_name", "llm_migrate"} <= set(steps)
    called = set(re.findall(r"pg_temp\.(llm_\w+)\s*\(", TEXT))
    assert called == set(steps)  # every step is called somewhere, and nothing undefined is
    unqualified = re.findall(r"(?<![\w.])llm_(?!usage|models|providers)\w+\s*\(", TEXT)
    assert unqualified == []  # pg_temp is never searched for functions
    assert pieces.definitions(OLDER_COPY.read_text()) == {}


def test_read_only_may_follow_statements_in_a_transaction_and_read_write_may_not(migration_steps):
    """What kit status relies on, on this PostgreSQL major: define the steps, then turn READ ONLY."""
    conn = migration_steps("nullable_names")
    with conn.transaction(force_rollback=True):
        pieces.load(conn, TEXT)
        conn.execute("set transaction read only")
        assert one(conn, "select current_setting('transaction_read_only')") == "on"
        assert one(conn, pieces.CHECK_SQL) == STATES_READ["nullable_names"]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("select pg_temp.llm_backfill_usage_names(pg_temp.llm_state())")
    conn.execute("begin read only")
    conn.execute("select 1")
    with pytest.raises(psycopg.Error) as refused:
        conn.execute("set transaction read write")
    conn.execute("rollback")
    assert refused.value.diag.message_primary == "transaction read-write mode must be set before any query"


# --- the state -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", sorted(STATES_READ))
def test_the_state_is_read_from_the_catalog(state, migration_steps):
    conn = migration_steps(state)
    found = one(conn, "select pg_temp.llm_state()")
    assert found == STATES_READ[state]
    assert one(conn, "select pg_temp.llm_migrated(pg_temp.llm_state())") is False


def test_the_driver_migrates_then_the_state_says_so_and_check_has_nothing_to_do(migration_steps):
    conn = migration_steps("plan")
    seen = notices(conn)
    conn.execute("select pg_temp.llm_migrate()")
    assert seen == ["llm name keys: locked the LLM tables after 0 retries", "llm name keys: migrated"]
    assert one(conn, "select pg_temp.llm_state()") == MIGRATED
    assert one(conn, "select pg_temp.llm_migrated(pg_temp.llm_state())") is True
    assert one(conn, pieces.CHECK_SQL) is None
    assert seen[-1] == "llm name keys: already migrated, nothing to do"


@pytest.mark.parametrize("state, expression", [
    ("plan", "(select p.name from public.llm_providers p where p.id = m.provider_id)"),
    ("half_migrated",
     "coalesce(m.provider_name, (select p.name from public.llm_providers p where p.id = m.provider_id))"),
    ("half_migrated_models", "m.provider_name"),
])
def test_a_models_provider_comes_from_the_columns_left(state, expression, migration_steps):
    conn = migration_steps(state)
    assert one(conn, "select pg_temp.llm_model_provider(pg_temp.llm_state())") == expression


def test_a_missing_table_is_kb003_from_the_state_and_from_the_whole_file(migration_steps, make_db):
    conn = migration_steps("plan", template="kit_tpl_supabase")
    message = ("llm name keys: public.llm_providers, llm_models and llm_usage must all exist; push the baseline "
               "migration first")
    with pytest.raises(psycopg.Error) as raised:
        conn.execute("select pg_temp.llm_state()")
    assert (raised.value.diag.sqlstate, raised.value.diag.message_primary) == ("KB003", message)
    url = make_db("kit_tpl_supabase")
    with psycopg.connect(url, autocommit=True) as fresh, pytest.raises(psycopg.Error) as raised, \
            fresh.transaction():
        for statement in pieces.definitions(TEXT).values():
            fresh.execute(statement.encode(), prepare=False)
        fresh.execute("select pg_temp.llm_migrate()")
    assert (raised.value.diag.sqlstate, raised.value.diag.message_primary) == ("KB003", message)


# --- blockers and suggestions --------------------------------------------------------------------------

MODEL_BLOCKERS = ("blocker_duplicate_model", "blocker_model_no_provider")
USAGE_BLOCKERS = ("blocker_usage_without_name",)


@pytest.mark.parametrize("state", sorted(BLOCKERS))
def test_each_blocker_is_named_by_its_own_step(state, migration_steps):
    conn = migration_steps(state)
    expected = {"model": [], "usage": [], "dependent": []}
    kind = "model" if state in MODEL_BLOCKERS else "usage" if state in USAGE_BLOCKERS else "dependent"
    expected[kind] = [BLOCKERS[state]]
    assert {
        "model": one(conn, "select pg_temp.llm_model_blockers(pg_temp.llm_state())"),
        "usage": one(conn, "select pg_temp.llm_usage_blockers(pg_temp.llm_state())"),
        "dependent": one(conn, "select pg_temp.llm_dependent_blockers()"),
    } == expected
    assert one(conn, "select pg_temp.llm_blockers(pg_temp.llm_state())") == [BLOCKERS[state]]


def test_check_refuses_once_with_every_blocker_in_report_order(migration_steps):
    conn = migration_steps("blocker_all")
    dependents = sorted(v for k, v in BLOCKERS.items() if k not in MODEL_BLOCKERS + USAGE_BLOCKERS)
    expected = [BLOCKERS[k] for k in MODEL_BLOCKERS + USAGE_BLOCKERS] + dependents
    assert one(conn, "select pg_temp.llm_blockers(pg_temp.llm_state())") == expected
    with pytest.raises(psycopg.Error) as raised:
        conn.execute(pieces.CHECK_SQL)
    diag = raised.value.diag
    assert diag.sqlstate == "KB001"
    assert diag.message_primary == ("llm name keys: refusing to migrate, nothing was changed. 8 blocker(s): "
                                    + "; ".join(expected))
    assert diag.message_detail == "\n".join(expected)
    assert diag.message_hint == ("Fix each blocker, then push again. `kit status` lists them without changing "
                                 "anything.")


def test_the_files_own_steps_are_not_blockers_in_this_session_or_another(migration_steps):
    conn = migration_steps("plan")
    assert query(conn.info.dsn, "select count(*) from pg_proc where proname = 'llm_backfill_usage_names'") == [(1,)]
    with psycopg.connect(conn.info.dsn, autocommit=True) as other:
        pieces.load(other, TEXT)
        assert one(other, "select pg_temp.llm_dependent_blockers()") == []
    assert one(conn, "select pg_temp.llm_dependent_blockers()") == []


def test_suggestions_name_each_uuid_index_without_a_name_match(migration_steps):
    conn = migration_steps("index_leading_model_id")
    suggestion = ("dropping model_id drops index llm_usage_model_id_agent_idx; build its name match outside the "
                  "migration: create index concurrently on public.llm_usage (model_name, agent_name)")
    assert [r[0] for r in conn.execute("select pg_temp.llm_suggestions()")] == [suggestion]
    seen = notices(conn)
    assert one(conn, pieces.CHECK_SQL) == BEFORE
    assert seen == ["llm name keys: suggestion: " + suggestion]


def test_a_partitioned_usage_table_gets_the_partition_advice(migration_steps):
    conn = migration_steps("usage_partitioned")
    conn.execute("create index llm_usage_model_id_idx on llm_usage (model_id)")
    assert [r[0] for r in conn.execute("select pg_temp.llm_suggestions()")] == [
        "dropping model_id drops index llm_usage_model_id_idx; build its name match outside the migration: create "
        "index concurrently on public.llm_usage (model_name) (llm_usage is partitioned: create it on only the "
        "parent, then concurrently on each partition, and attach)"]


# --- back-fill -----------------------------------------------------------------------------------------


def test_the_back_fill_fills_every_name_a_uuid_finds_and_counts_the_rows(migration_steps):
    conn = migration_steps("nullable_names")
    expected = conn.execute("""
        select u.id, coalesce(u.provider_name, p.name, mp.name), coalesce(u.model_name, m.name)
        from llm_usage u left join llm_models m on m.id = u.model_id
        left join llm_providers p on p.id = u.provider_id left join llm_providers mp on mp.id = m.provider_id
        order by u.id""").fetchall()
    nulls = one(conn, "select count(*) filter (where model_name is null) + count(*) filter "
                      "(where provider_name is null) from llm_usage")
    assert nulls > 1000
    assert one(conn, "select pg_temp.llm_backfill_usage_names(pg_temp.llm_state())") == nulls
    assert conn.execute("select id, provider_name, model_name from llm_usage order by id").fetchall() == expected
    assert one(conn, "select pg_temp.llm_backfill_usage_names(pg_temp.llm_state())") == 0


def test_the_back_fill_does_nothing_when_the_names_are_not_null(migration_steps):
    conn = migration_steps("plan")
    assert one(conn, "select pg_temp.llm_backfill_usage_names(pg_temp.llm_state())") == 0


# --- each table's change -------------------------------------------------------------------------------


def columns(conn: psycopg.Connection, table: str) -> dict[str, bool]:
    """Column name -> NOT NULL."""
    return dict(conn.execute("select attname::text, attnotnull from pg_attribute where attrelid = %s::regclass "
                             "and attnum > 0 and not attisdropped", (table,)).fetchall())


def test_usage_loses_its_uuid_foreign_keys_and_then_its_uuid_columns_as_separate_steps(migration_steps):
    conn = migration_steps("fk_auth_users")
    conn.execute("alter table llm_usage add constraint usage_provider_by_name foreign key (provider_name) "
                 "references llm_providers (name)")
    assert one(conn, "select pg_temp.llm_drop_usage_uuid_fks()") == 2
    assert [r[0] for r in conn.execute(USAGE_FKS)] == ["llm_usage_user_id_fkey", "usage_provider_by_name"]
    kept = columns(conn, "llm_usage")
    assert (kept["provider_id"], kept["model_id"]) == (False, False)  # an expand step's shape: there, nullable
    assert one(conn, "select pg_temp.llm_drop_usage_uuid_fks()") == 0
    conn.execute("select pg_temp.llm_drop_usage_uuid_columns()")
    assert not {"provider_id", "model_id"} & set(columns(conn, "llm_usage"))
    assert [r[0] for r in conn.execute(USAGE_FKS)] == ["llm_usage_user_id_fkey", "usage_provider_by_name"]


def test_usage_names_become_not_null_only_once_every_row_has_one(migration_steps):
    conn = migration_steps("nullable_names")
    with pytest.raises(psycopg.errors.NotNullViolation):
        conn.execute("select pg_temp.llm_usage_names_not_null()")
    conn.execute("select pg_temp.llm_backfill_usage_names(pg_temp.llm_state())")
    conn.execute("select pg_temp.llm_usage_names_not_null()")
    names = columns(conn, "llm_usage")
    assert (names["provider_name"], names["model_name"]) == (True, True)
    assert one(conn, "select pg_temp.llm_set_not_null('public.llm_usage', 'model_name')") is False


def test_models_get_their_provider_by_name_step_by_step(migration_steps):
    conn = migration_steps("plan")
    models = one(conn, "select count(*) from llm_models")
    assert one(conn, "select pg_temp.llm_add_models_provider_name()") == models
    assert one(conn, "select count(*) from llm_models m join llm_providers p on p.id = m.provider_id "
                     "and p.name = m.provider_name") == models
    assert one(conn, "select pg_temp.llm_add_models_provider_name()") == 0
    assert one(conn, "select pg_temp.llm_drop_models_uuid_fks()") == 1
    assert one(conn, "select pg_temp.llm_drop_column('public.llm_models', 'provider_id')") is True
    assert one(conn, "select pg_temp.llm_drop_column('public.llm_models', 'provider_id')") is False
    assert one(conn, "select pg_temp.llm_set_not_null('public.llm_models', 'provider_name')") is True
    assert columns(conn, "llm_models")["provider_name"] is True


def test_a_lookup_table_is_keyed_by_name_keeping_its_id_then_loses_the_id(migration_steps):
    """The steps an expand change would take (names become keys, ids stay) and a contract change would finish."""
    conn = migration_steps("plan")
    conn.execute("select pg_temp.llm_drop_usage_uuid_fks(), pg_temp.llm_drop_models_uuid_fks()")
    assert one(conn, "select pg_temp.llm_key_by_name('public.llm_providers')") is True
    assert one(conn, "select pg_temp.llm_key_by_name('public.llm_providers')") is False
    assert [r[0] for r in conn.execute("select indexdef from pg_indexes where tablename = 'llm_providers'")] == [
        "CREATE UNIQUE INDEX llm_providers_pkey ON public.llm_providers USING btree (name)"]
    assert "id" in columns(conn, "llm_providers")
    assert one(conn, "select pg_temp.llm_key_by_name('public.llm_models')") is True
    conn.execute("select pg_temp.llm_add_models_provider_name()")
    assert one(conn, "select pg_temp.llm_models_provider_fk()") is True
    assert one(conn, "select pg_temp.llm_models_provider_fk()") is False
    state = one(conn, "select pg_temp.llm_state()")
    assert state == {**BEFORE, "has_m_pname": True, "p_keyed": True, "m_keyed": True, "m_fk_ok": True, "u_fks": 0}
    conn.execute("select pg_temp.llm_drop_usage_uuid_columns(), pg_temp.llm_drop_column('public.llm_models', "
                 "'provider_id'), pg_temp.llm_drop_column('public.llm_models', 'id'), "
                 "pg_temp.llm_drop_column('public.llm_providers', 'id'), "
                 "pg_temp.llm_set_not_null('public.llm_models', 'provider_name')")
    assert one(conn, "select pg_temp.llm_state()") == MIGRATED


def test_a_plain_unique_name_index_becomes_the_key_as_it_is(migration_steps):
    conn = migration_steps("providers_unique_index")
    conn.execute("select pg_temp.llm_drop_usage_uuid_fks(), pg_temp.llm_drop_models_uuid_fks()")
    seen = notices(conn)
    assert one(conn, "select pg_temp.llm_key_by_name('public.llm_providers')") is True
    assert seen == ["llm name keys: llm_providers keyed by name with its unique index llm_providers_name_uidx"]
    assert one(conn, "select conindid::regclass::text from pg_constraint where contype = 'p' "
                     "and conrelid = 'llm_providers'::regclass") == "llm_providers_name_uidx"


def test_foreign_keys_on_a_replaced_unique_constraint_are_put_back_unchanged(migration_steps):
    conn = migration_steps("external_name_reference")
    conn.execute("select pg_temp.llm_drop_usage_uuid_fks(), pg_temp.llm_drop_models_uuid_fks()")
    quotas = "select conname, pg_get_constraintdef(oid) from pg_constraint where conrelid = 'provider_quotas'::regclass"
    before = conn.execute(quotas).fetchall()
    assert one(conn, "select pg_temp.llm_key_by_name('public.llm_providers')") is True
    assert conn.execute(quotas).fetchall() == before
    assert one(conn, "select count(*) from pg_constraint where conrelid = 'llm_providers'::regclass "
                     "and contype = 'u'") == 0


def test_a_models_foreign_key_without_the_cascades_is_replaced(migration_steps):
    conn = migration_steps("half_migrated_models")
    assert one(conn, "select pg_temp.llm_models_fk_ok()") is False
    assert one(conn, "select pg_temp.llm_models_provider_fk()") is True
    assert conn.execute("select pg_get_constraintdef(oid) from pg_constraint where contype = 'f' "
                        "and conrelid = 'llm_models'::regclass").fetchall() == [
        ("FOREIGN KEY (provider_name) REFERENCES llm_providers(name) ON UPDATE CASCADE ON DELETE CASCADE",)]


# --- kit status --------------------------------------------------------------------------------------


def status_settings(url: str, folder=None) -> settings_mod.Settings:
    return settings_mod.load({"db_url": url, **({"workdir": str(folder)} if folder else {})}, environ={}, cwd=ROOT)


def test_status_defines_the_steps_only_inside_a_transaction_it_rolls_back(state_db):
    url = state_db("blocker_duplicate_model")
    with psycopg.connect(url, autocommit=True) as conn:
        assert status.blockers(conn, status_settings(url)) == [BLOCKERS["blocker_duplicate_model"]]
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert one(conn, "select count(*) from pg_proc where pronamespace = pg_my_temp_schema()") == 0
        assert one(conn, "select count(*) from pg_locks where pid = pg_backend_pid() and locktype = 'relation' "
                         "and relation <> 'pg_locks'::regclass") == 0


def test_status_runs_the_check_read_only_so_a_check_that_writes_changes_nothing(db_url, tmp_path):
    """A file whose llm_check writes: the write is refused, so the notice after it never comes."""
    writes = """create or replace function pg_temp.llm_check() returns jsonb
language plpgsql as $fn$
begin
  raise notice 'llm name keys: suggestion: before the write';
  update public.llm_providers set display_name = 'changed';
  raise notice 'llm name keys: suggestion: after the write';
  return null;
end
$fn$;"""
    start = TEXT.index("create or replace function pg_temp.llm_check()")
    end = TEXT.index("$fn$;", start) + len("$fn$;")
    folder = workdir_with_change(tmp_path, TEXT[:start] + writes + TEXT[end:])
    before = query(db_url, "select name, display_name from llm_providers order by 1")
    notes: list[str] = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert status.blockers(conn, status_settings(db_url, folder), notes) == []
    assert notes == ["before the write"]
    assert query(db_url, "select name, display_name from llm_providers order by 1") == before


def test_status_reads_the_blockers_and_suggestions_of_an_older_copy_of_the_file(state_db, run_kit, tmp_path):
    folder = workdir_with_change(tmp_path, OLDER_COPY.read_text())
    url = state_db("blocker_all")
    run = run_kit("status", "--db-url", url, "--workdir", str(folder), "--json")
    assert run.code == 0, run.err
    assert sorted(run.json["blockers"]) == sorted(BLOCKERS.values())
    url = state_db("plan")
    run_file(url, (MATRIX / "index_leading_model_id.sql").read_text())
    run = run_kit("status", "--db-url", url, "--workdir", str(folder), "--json")
    assert (run.json["blockers"], run.json["suggestions"]) == ([], [
        "dropping model_id drops index llm_usage_model_id_agent_idx; build its name match outside the migration: "
        "create index concurrently on public.llm_usage (model_name, agent_name)"])
