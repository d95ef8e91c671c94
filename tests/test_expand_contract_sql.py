"""The two-step files (kit/templates/migrations/llm_name_keys_expand.sql and ..._contract.sql) on a real database.

Each file is run whole, as `supabase db push` runs it (one transaction), or its pg_temp steps are called
alone. What an old client sends and reads is run as SQL statements of its own, after the expand and after
the contract; `kit status` lists the blockers of the step the next push runs. The PostgREST route is in
tests/test_expand_rest.py.
"""

import re

import psycopg
import pytest

from kit.schema import pieces
from kit.statements import split_statements
from tests import snapshot
from tests.helpers import CHANGE_FILE, MATRIX, ROOT, STATES, inserts_while, one, query, run_file

pytestmark = pytest.mark.majors

TEMPLATES = ROOT / "kit" / "templates" / "migrations"
EXPAND = (TEMPLATES / "llm_name_keys_expand.sql").read_text()
CONTRACT = (TEMPLATES / "llm_name_keys_contract.sql").read_text()
ONE_STEP = CHANGE_FILE.read_text()
FILL_FUNCTIONS = ["llm_models_fill_provider()", "llm_usage_fill_names()"]

OLD_WITH_BOTH = ("insert into llm_usage (provider_id, model_id, provider_name, model_name, agent_name) "
                 "select m.provider_id, m.id, p.name, m.name, 'old-both' from llm_models m "
                 "join llm_providers p on p.id = m.provider_id where m.name = 'gpt-4o' returning id")
OLD_IDS_ONLY = ("insert into llm_usage (provider_id, model_id, agent_name) select m.provider_id, m.id, 'old-ids' "
                "from llm_models m where m.name = 'claude-sonnet-4' returning id")
OLD_NULL_ID = ("insert into llm_usage (model_id, provider_name, model_name, agent_name) "
               "values (null, 'openai', 'gpt-4o', 'old-null') returning id")
OLD_READER = "select model_id, model_name, count(*) from llm_usage group by 1, 2"
OLD_REGISTRATION = ("insert into llm_models (provider_id, name) select id, 'old-registered' from llm_providers "
                    "where name = 'openai'")
NEW_WRITER = ("insert into llm_usage (provider_name, model_name, agent_name) values ('openai', 'gpt-4o', 'new') "
              "returning id")
NEW_REGISTRATION = "insert into llm_models (provider_name, name) values ('anthropic', 'new-registered')"


def push(url: str, text: str, options: str = "") -> list[str]:
    """Run a file the way the Supabase CLI does: its statements in one transaction; the notices it raised."""
    seen: list[str] = []
    with psycopg.connect(url, autocommit=True, options=options) as conn:
        conn.add_notice_handler(lambda diag: seen.append(diag.message_primary))
        with conn.transaction():
            for statement in split_statements(text):
                conn.execute(statement.encode(), prepare=False)
    return seen


def db_in(make_db, state: str = "plan") -> str:
    url = make_db()
    if state != "plan":
        path = STATES / f"{state}.sql"
        run_file(url, (path if path.exists() else MATRIX / f"{state}.sql").read_text())
    return url


def code(statement: str) -> str:
    return "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--")).strip()


# --- the files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, driver", [(EXPAND, "llm_expand"), (CONTRACT, "llm_contract")])
def test_each_file_stands_alone_and_shares_its_steps_with_the_one_step_file_word_for_word(text, driver):
    steps = pieces.definitions(text)
    shared = pieces.definitions(ONE_STEP)
    statements = split_statements(text)
    assert code(statements[0]) == "select set_config('statement_timeout', '0', true)"
    assert statements[1:-2] == list(steps.values())
    assert [code(s) for s in statements[-2:]] == [f"select pg_temp.{driver}()", "notify pgrst, 'reload schema'"]
    assert "llm_check" in steps
    for name in set(steps) & set(shared) - {"llm_check"}:
        assert code(steps[name]) == code(shared[name]), name
    called = set(re.findall(r"pg_temp\.(llm_\w+)\s*\(", text))
    assert called == set(steps)  # every step is defined in this file and called in it
    assert re.findall(r"(?<![\w.])llm_(?!usage|models|providers)\w+\s*\(", text) == []
    assert not re.search(r"^\s*(begin|commit)\s*;", text, re.I | re.M)


# --- expand --------------------------------------------------------------------------------------------


def test_expand_keys_by_name_and_keeps_the_uuid_columns_nullable_without_keys(make_db):
    url = db_in(make_db)
    lookups = query(url, "select name, id from llm_providers union all select name, id from llm_models order by 1")
    seen = push(url, EXPAND)
    assert seen[-1] == "llm name keys: expanded"
    assert query(url, "select conrelid::regclass::text, pg_get_constraintdef(oid) from pg_constraint "
                      "where contype in ('p', 'f') and conrelid::regclass::text like 'llm_%' order by 1, 2") == [
        ("llm_models", "FOREIGN KEY (provider_name) REFERENCES llm_providers(name) ON UPDATE CASCADE ON DELETE CASCADE"),
        ("llm_models", "PRIMARY KEY (name)"),
        ("llm_providers", "PRIMARY KEY (name)"),
        ("llm_usage", "PRIMARY KEY (id)")]
    assert query(url, "select attrelid::regclass::text || '.' || attname, attnotnull, "
                      "pg_get_expr(d.adbin, d.adrelid) from pg_attribute a left join pg_attrdef d "
                      "on d.adrelid = a.attrelid and d.adnum = a.attnum where attname in ('id', 'provider_id', "
                      "'model_id', 'provider_name') and attrelid in ('llm_providers'::regclass, "
                      "'llm_models'::regclass, 'llm_usage'::regclass) and attname <> 'id' or "
                      "(attname = 'id' and attrelid in ('llm_providers'::regclass, 'llm_models'::regclass)) "
                      "order by 1") == [
        ("llm_models.id", False, "gen_random_uuid()"), ("llm_models.provider_id", False, None),
        ("llm_models.provider_name", True, None), ("llm_providers.id", False, "gen_random_uuid()"),
        ("llm_usage.model_id", False, None), ("llm_usage.provider_id", False, None),
        ("llm_usage.provider_name", True, None)]
    assert query(url, "select name, id from llm_providers union all select name, id from llm_models "
                      "order by 1") == lookups
    assert query(url, "select count(*) from llm_models m join llm_providers p on p.id = m.provider_id "
                      "where m.provider_name is distinct from p.name") == [(0,)]
    assert query(url, "select obj_description(oid, 'pg_proc') from pg_proc where proname = 'llm_usage_fill_names'") \
        == [("supabase-kit: expand step, dropped by the contract",)]


def test_after_the_expand_every_old_statement_works_and_ids_only_rows_get_their_names(make_db):
    url = db_in(make_db, "nullable_names")
    push(url, EXPAND)
    with psycopg.connect(url, autocommit=True) as conn:
        both = one(conn, OLD_WITH_BOTH)
        ids_only = one(conn, OLD_IDS_ONLY)
        null_id = one(conn, OLD_NULL_ID)
        assert conn.execute(OLD_READER).fetchall()
        conn.execute(OLD_REGISTRATION)
        new = one(conn, NEW_WRITER)
        conn.execute(NEW_REGISTRATION)
        assert conn.execute("select id from llm_models where name = 'gpt-4o'").fetchone()[0] is not None
    assert query(url, "select id, provider_name, model_name, provider_id is not null, model_id is not null "
                      "from llm_usage where id = any(%s) order by id", ([both, ids_only, null_id, new],)) == [
        (both, "openai", "gpt-4o", True, True), (ids_only, "anthropic", "claude-sonnet-4", True, True),
        (null_id, "openai", "gpt-4o", False, False), (new, "openai", "gpt-4o", False, False)]
    assert query(url, "select name, provider_name, id is not null from llm_models where name like '%registered' "
                      "order by 1") == [("new-registered", "anthropic", True), ("old-registered", "openai", True)]
    # every row the older clients wrote without names has them now (the back-fill)
    assert query(url, "select count(*) from llm_usage where model_name is null or provider_name is null") == [(0,)]


def test_expand_is_a_no_op_run_again_and_on_a_migrated_database(make_db):
    url = db_in(make_db)
    push(url, EXPAND)
    schema, data = snapshot.schema(url), snapshot.data(url)
    assert push(url, EXPAND) == ["llm name keys: already expanded, nothing to do"]
    assert (snapshot.schema(url), snapshot.data(url)) == (schema, data)
    migrated = db_in(make_db)
    push(migrated, ONE_STEP)
    schema = snapshot.schema(migrated)
    assert push(migrated, EXPAND) == ["llm name keys: the UUID columns are gone already, nothing to expand"]
    assert snapshot.schema(migrated) == schema


@pytest.mark.parametrize("state, blocker", [
    ("blocker_duplicate_model", "model name 'gpt-4o' is used by 2 models (providers: groq, openai); rename or merge "
                                "them so each name is unique"),
    ("blocker_foreign_key", "foreign key llm_budgets_model_id_fkey on llm_budgets depends on a UUID column; change "
                            "or drop it first"),
    ("half_migrated", "only 3 of the 5 UUID columns are left: the LLM tables are part-way through the one-step "
                      "change or a rollback; finish that first"),
])
def test_expand_refuses_with_its_blockers_and_changes_nothing(state, blocker, make_db):
    url = db_in(make_db, state)
    schema, data = snapshot.schema(url), snapshot.data(url)
    with pytest.raises(psycopg.Error) as raised:
        push(url, EXPAND)
    assert raised.value.diag.sqlstate == "KB001"
    assert raised.value.diag.message_detail == blocker
    assert (snapshot.schema(url), snapshot.data(url)) == (schema, data)


@pytest.mark.parametrize("state", ["blocker_view", "blocker_policy", "blocker_trigger", "blocker_function"])
def test_objects_that_use_a_uuid_column_do_not_stop_the_expand_but_stop_the_contract(state, make_db):
    url = db_in(make_db, state)
    push(url, EXPAND)
    with pytest.raises(psycopg.Error) as raised:
        push(url, CONTRACT)
    assert raised.value.diag.sqlstate == "KB001"
    assert "depends on a UUID column" in raised.value.diag.message_detail
    assert "fill" not in raised.value.diag.message_detail


# --- contract ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["plan", "nullable_names", "providers_unique_index", "usage_partitioned",
                                   "hostile_identifiers"])
def test_expand_then_contract_ends_in_the_schema_of_the_one_step_change(state, make_db):
    one_step, two_steps = db_in(make_db, state), db_in(make_db, state)
    push(one_step, ONE_STEP)
    push(two_steps, EXPAND)
    seen = push(two_steps, CONTRACT)
    assert seen[-2:] == ["llm name keys: dropped 2 fill function(s) of the expand", "llm name keys: contracted"]
    assert snapshot.schema(two_steps) == snapshot.schema(one_step)
    assert snapshot.data(two_steps) == snapshot.data(one_step)
    assert query(two_steps, "select count(*) from pg_proc where proname like 'llm%fill%'") == [(0,)]
    assert query(two_steps, "select count(*) from pg_trigger where tgname like 'llm%fill%'") == [(0,)]
    assert push(two_steps, CONTRACT) == ["llm name keys: already migrated, nothing to do"]
    assert push(two_steps, EXPAND) == ["llm name keys: the UUID columns are gone already, nothing to expand"]


def test_the_contract_on_a_database_never_expanded_is_the_one_step_change(make_db):
    one_step, contract = db_in(make_db), db_in(make_db)
    push(one_step, ONE_STEP)
    push(contract, CONTRACT)
    assert snapshot.schema(contract) == snapshot.schema(one_step)


def test_the_contract_check_does_not_count_the_fill_functions_and_the_one_step_check_does(make_db):
    url = db_in(make_db)
    push(url, EXPAND)
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction(force_rollback=True):
            pieces.load(conn, CONTRACT)
            assert one(conn, "select pg_temp.llm_fill_functions()::text[]") == FILL_FUNCTIONS
            assert one(conn, "select pg_temp.llm_check() is not null") is True
        with conn.transaction(force_rollback=True):
            pieces.load(conn, ONE_STEP)
            with pytest.raises(psycopg.Error) as raised:
                conn.execute(pieces.CHECK_SQL)
    assert raised.value.diag.message_detail.split("\n") == [
        f"function {f} depends on a UUID column; change or drop it first" for f in FILL_FUNCTIONS]


def test_after_the_contract_old_statements_fail_as_after_the_one_step_change(make_db):
    url = db_in(make_db)
    push(url, EXPAND)
    push(url, CONTRACT)
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in (OLD_WITH_BOTH, OLD_IDS_ONLY, OLD_NULL_ID, OLD_READER, OLD_REGISTRATION):
            with pytest.raises(psycopg.errors.UndefinedColumn):
                conn.execute(statement)
        assert one(conn, NEW_WRITER)
        conn.execute(NEW_REGISTRATION)


# --- lock politeness ----------------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["expand", "contract"])
@pytest.mark.parametrize("lock_ms, expected", [(100, ["inserted"] * 5), (10_000, ["timed out"] * 2)])
def test_inserts_are_not_queued_behind_a_report_while_a_step_waits_for_its_lock(step, lock_ms, expected, make_db):
    """A 3 s report holds llm_usage; the step's 100 ms lock attempts let five inserts (1 s statement_timeout)
    through; the control, one 10 s attempt as a bare ALTER makes, times the first ones out."""
    url = db_in(make_db)
    if step == "contract":
        push(url, EXPAND)
    outcomes, waiting = inserts_while(url, lambda: push(url, EXPAND if step == "expand" else CONTRACT,
                                                      f"-c kit.lock_timeout_ms={lock_ms}"))
    assert outcomes[:len(expected)] == expected
    if lock_ms == 100:
        assert waiting
    done = query(url, "select count(*) from pg_trigger where tgname = 'llm_usage_fill_names'")
    assert done == ([(1,)] if step == "expand" else [(0,)])


# --- kit status: the blockers of the step a push would run ---------------------------------------------


def test_status_lists_the_blockers_of_the_step_the_next_push_runs(state_db, run_kit):
    url = state_db("blocker_view")
    view = "view usage_by_model_id depends on a UUID column; change or drop it first"
    one_step = run_kit("status", "--db-url", url, "--json").json
    assert (one_step["phase"], one_step["blockers"], one_step["pending"]) == ("before", [view], ["20240101000000", "20261124120000"])
    expand = run_kit("status", "--expand", "--db-url", url, "--json").json
    assert (expand["blockers"], expand["pending"]) == ([], ["20240101000000", "20261124120001"])
    assert run_kit("push", "--expand", "--via", "direct", "--no-lint", "--db-url", url).code == 0
    contract = run_kit("status", "--db-url", url, "--json").json
    assert (contract["phase"], contract["blockers"], contract["pending"]) == ("expanded", [view], ["20261124120002"])
    refused = run_kit("push", "--via", "direct", "--no-lint", "--db-url", url)
    assert refused.code == 4 and view in refused.err
