"""Clients that still use the UUID columns, found in pg_stat_statements (kit status, kit deploy's preflight).

Every statement here runs on the real test server, started with
shared_preload_libraries=pg_stat_statements. The "PostgREST" statements are the SQL PostgREST
sends (its QueryBuilder/SqlFragment shapes, v12's json_to_recordset and the older
json_populate_recordset), sent over psycopg as PostgREST does: one transaction, the role set
with set_config('role', ...), the JSON body as the one parameter. No HTTP is involved.
"""

import json
import re
import shlex
import shutil
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Json

from kit import settings as settings_mod
from kit.deploy import steps as deploy_steps
from kit.deploy.runbook import Deploy
from kit.local import pgserver, server as local
from kit.schema import legacy
from kit.statements import mark
from tests.helpers import ROOT, STATES, query, run_file

pytestmark = pytest.mark.majors  # scripts/test.sh runs these on every major

COLS = ["agent_name", "model_id", "model_name", "provider_name"]
# PostgREST v12+ (SqlFragment.fromJsonBodyF): INSERT ... SELECT pgrst_body.* FROM json_to_recordset
POSTGREST_V12_INSERT = (
    'WITH pgrst_source AS (INSERT INTO "public"."llm_usage"({cols}) SELECT {body} FROM (SELECT $1 AS json_data) '
    'pgrst_payload, LATERAL (SELECT {cols} FROM json_to_recordset(pgrst_payload.json_data) AS _({typed}) ) '
    "pgrst_body  RETURNING 1) SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total, "
    "array[]::text[] AS header, '' AS body, nullif(current_setting('response.headers', true), '') AS "
    "response_headers, nullif(current_setting('response.status', true), '') AS response_status "
    "FROM (SELECT * FROM pgrst_source) _postgrest_t")
# Older PostgREST (QueryBuilder.mutateRequestToQuery): json_populate_recordset over the table's row type
POSTGREST_POPULATE_INSERT = (
    "WITH pgrst_source AS (WITH pgrst_payload AS (SELECT $1::json AS json_data), pgrst_body AS ( SELECT CASE WHEN "
    "json_typeof(json_data) = 'array' THEN json_data ELSE json_build_array(json_data) END AS val FROM "
    'pgrst_payload) INSERT INTO "public"."llm_usage"({cols}) SELECT {cols} FROM json_populate_recordset '
    '(null::"public"."llm_usage", (SELECT val FROM pgrst_body)) _ RETURNING "public"."llm_usage".*) '
    "SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total, array[]::text[] AS header, "
    "'' AS body FROM (SELECT * FROM pgrst_source) _postgrest_t")
TYPES = {"agent_name": "text", "model_id": "uuid", "model_name": "character varying",
         "provider_name": "character varying"}


@pytest.fixture(autouse=True)
def postgres_reads_all_stats(pg):
    """`postgres` sees other roles' statements, as on Supabase (its Query Performance report needs it)."""
    query(pg.admin_url, "grant pg_read_all_stats to postgres")
    yield
    query(pg.admin_url, "revoke pg_read_all_stats from postgres")


def postgrest_insert(shape: str, cols: list[str]) -> str:
    quoted = ", ".join(f'"{c}"' for c in cols)
    return shape.format(cols=quoted, body=", ".join(f'"pgrst_body"."{c}"' for c in cols),
                        typed=", ".join(f'"{c}" {TYPES[c]}' for c in cols))


def as_client(url: str, statement: str, params=None, role: str | None = None, times: int = 1) -> None:
    """A client's statement, unmarked, optionally under an API role as PostgREST runs it."""
    cursor = psycopg.RawCursor if "$1" in statement else psycopg.Cursor  # PostgREST's own $n parameters
    with psycopg.connect(url, autocommit=True, cursor_factory=cursor) as conn:
        for _ in range(times):
            with conn.transaction():
                if role:
                    conn.execute("select set_config('role', $1, true)" if "$1" in statement
                                 else "select set_config('role', %s, true)", (role,))
                conn.execute(statement, params)


def payload(**extra) -> Json:
    return Json([{"agent_name": "legacy-bot", "model_name": "gpt-4o", "provider_name": "openai", **extra}])


def listed(run) -> list[dict]:
    assert run.code == 0, run.err
    return run.json["legacy_statements"]


def one(found: list[dict], needle: str) -> dict:
    hits = [s for s in found if needle in s["query"]]
    assert len(hits) == 1, (needle, found)
    return hits[0]


def test_clients_using_the_uuid_columns_are_listed_and_names_only_clients_are_not(db_url, run_kit, pg):
    v12, populate = POSTGREST_V12_INSERT, POSTGREST_POPULATE_INSERT
    # listed: model_id sent as null (supabase-py with a key set to None), PostgREST's two shapes and psycopg
    as_client(db_url, postgrest_insert(v12, COLS), (payload(model_id=None),), role="service_role", times=3)
    as_client(db_url, postgrest_insert(populate, COLS), (payload(model_id=None),), role="service_role")
    as_client(db_url, "insert into llm_usage (provider_name, model_name, agent_name, model_id) "
                      "values (%s, %s, %s, %s)", ("openai", "gpt-4o", "psycopg-bot", None))
    # listed: a dashboard reading model_id, and reads of a lookup table's id
    as_client(db_url, "select model_id, model_name, count(*) from public.llm_usage group by 1, 2")
    as_client(db_url, "select id, name from llm_models order by name")
    as_client(db_url, "select m.name from llm_models m join llm_providers p on p.id = m.provider_id")
    as_client(db_url, "-- name: ProviderByID :one\nselect name from llm_providers where id = $1",
              ("00000000-0000-4000-8000-000000000000",))
    # not listed: names only, llm_usage's own id, a lookup table read without its id
    names = [c for c in COLS if c != "model_id"]
    as_client(db_url, postgrest_insert(v12, names), (payload(),), role="service_role")
    as_client(db_url, postgrest_insert(populate, names), (payload(),), role="service_role")
    as_client(db_url, "insert into llm_usage (provider_name, model_name, agent_name) values (%s, %s, %s) "
                      "returning id", ("openai", "gpt-4o", "names-bot"))
    as_client(db_url, "select id, model_name from llm_usage where id = %s", (1,))
    as_client(db_url, "select u.id, m.context_window from llm_usage u join llm_models m on m.name = u.model_name "
                      "where u.id = %s", (1,))
    as_client(db_url, "select * from llm_models where context_window > 1000")
    as_client(db_url, "select name, display_name from llm_providers")

    found = listed(run_kit("status", "--db-url", db_url, "--json"))
    assert len(found) == 7, found
    rest = one(found, "SELECT \"pgrst_body\".\"agent_name\"")
    assert rest["calls"] == 3 and rest["role"] == "service_role" and '"model_id"' in rest["query"]
    assert one(found, "WITH pgrst_payload AS")["role"] == "service_role"
    assert one(found, "insert into llm_usage (provider_name")["calls"] == 1
    one(found, "select model_id, model_name")
    one(found, "select id, name from llm_models")
    one(found, "p.id = m.provider_id")
    one(found, "select name from llm_providers where id = $1")
    for statement in found:
        assert set(statement) >= {"query", "calls", "role", "mean_ms", "stats_since", "since"}
        assert statement["role"] in ("service_role", "postgres")
        if pg.version >= 17:
            assert statement["stats_since"] and statement["since"] == f"since {statement['stats_since']}"
        else:
            assert statement["stats_since"] is None and statement["since"] == "since the last reset"
    # the query of docs/old-clients.md, run by hand as in the SQL editor (unmarked), finds the same and not itself
    readme_query = legacy.QUERY_FILE.read_text().replace("{schema}", "extensions")
    by_hand = query(db_url, readme_query)
    assert sorted((r[0], r[1], r[4]) for r in by_hand) == sorted((s["role"], s["calls"], s["query"]) for s in found)
    text = run_kit("status", "--db-url", db_url)
    assert "legacy    7 statement(s) still use the UUID columns (counts since" in text.out
    assert "  - 3 calls by service_role, " in text.out
    assert "fix those clients, then `select \"extensions\".pg_stat_statements_reset()`" in text.out


SHAPES = [  # (statement, params, listed?)
    # PostgREST GET /llm_usage?select=*,llm_models(name): the embedding joins on the foreign key
    ('SELECT "public"."llm_usage".*, row_to_json("llm_usage_llm_models_1".*) AS "llm_models" FROM "public"."llm_usage" '
     'LEFT JOIN LATERAL ( SELECT "llm_models_1"."name" FROM "public"."llm_models" AS "llm_models_1" WHERE '
     '"llm_models_1"."id" = "public"."llm_usage"."model_id" ) AS "llm_usage_llm_models_1" ON TRUE LIMIT 5', None, True),
    # PostgREST GET /llm_models?select=id,name
    ('SELECT "public"."llm_models"."id", "public"."llm_models"."name" FROM "public"."llm_models"', None, True),
    ("update llm_usage set model_id = null where id = %s", (-1,), True),
    ("delete from llm_models where id = %s", ("00000000-0000-4000-8000-000000000000",), True),
    ("select p.name from llm_providers as p where p.id = %s", ("00000000-0000-4000-8000-000000000000",), True),
    ("select count(*) from llm_usage where model_id is null", None, True),
    ('SELECT "public"."llm_usage"."id", "public"."llm_usage"."model_name" FROM "public"."llm_usage" LIMIT 5', None, False),
    ("select count(*) from llm_models", None, False),
    ("select a.id from auth.users a join llm_usage u on u.user_id = a.id", None, False),
    ("select u.id from llm_usage u where u.model_name in (select name from llm_models)", None, False),
    ("select m.name from llm_models m where m.name = %s", ("gpt-4o",), False),
    ("insert into llm_providers (name) values (%s) on conflict (name) do nothing", ("openai",), False),
    ("select id from auth.users", None, False),
]


def test_statement_shapes_listed_or_not(db_url, run_kit):
    for statement, params, _ in SHAPES:
        as_client(db_url, statement, params)
    found = {s["query"] for s in listed(run_kit("status", "--db-url", db_url, "--json"))}
    listed_shapes = [statement for statement, _, expected in SHAPES if expected]
    assert len(found) == len(listed_shapes), found
    assert {constants_out(q) for q in found} == {constants_out(statement) for statement in listed_shapes}


def constants_out(statement: str) -> str:
    """The stored text has $n where the statement had a constant or a parameter; the listed text is shortened."""
    return re.sub(r"\$\d+|%s|\bnull\b|\b\d+\b", "?", statement)[:200]


def test_concurrent_writers_are_counted_exactly(db_url, run_kit):
    statement = postgrest_insert(POSTGREST_V12_INSERT, COLS)
    threads = [threading.Thread(target=as_client, args=(db_url, statement, (payload(model_id=None),)),
                                kwargs={"role": "service_role", "times": 25}) for _ in range(4)]
    for t in threads:
        t.start()
    during = [listed(run_kit("status", "--db-url", db_url, "--json")) for _ in range(2)]
    for t in threads:
        t.join()
    assert all(len(found) <= 1 for found in during)
    found = listed(run_kit("status", "--db-url", db_url, "--json"))
    assert [(s["calls"], s["role"]) for s in found] == [(100, "service_role")]
    assert query(db_url, "select count(*) from llm_usage where agent_name = 'legacy-bot'") == [(100,)]


def test_the_kits_own_backup_and_status_statements_are_in_pg_stat_statements_but_not_listed(
        db_url, run_kit, tmp_path, pg):
    assert run_kit("backup", "--db-url", db_url, "--out", str(tmp_path / "b"), "--json").code == 0
    assert run_kit("status", "--db-url", db_url, "--json").code == 0
    seen = [q for (q,) in query(pg.admin(db_url.rsplit("/", 1)[1]),
                                "select query from extensions.pg_stat_statements where dbid = "
                                "(select oid from pg_database where datname = current_database()) "
                                "and query ~* 'model_id'")]
    dump = [q for q in seen if q.replace('"', "").lower().startswith("copy public.llm_usage (id, provider_id, ")
            and q.rstrip(";").lower().endswith("to stdout")]
    assert dump, seen  # pg_dump's own statements, unmarked (two texts on PostgreSQL 15, one entry on 16+)
    # the kit's own reads (marked) may be there too, depending on the table's shape and the major
    assert listed(run_kit("status", "--db-url", db_url, "--json")) == []


def test_ddl_and_the_migration_itself_are_not_listed_even_with_track_all(db_url, run_kit, pg):
    """The migration is run as the Supabase CLI runs it (unmarked), in a session tracking nested statements."""
    from kit.migrations import history, workdir

    migration = workdir.migrations(settings_mod.load({}, environ={}, cwd=ROOT))[-1]
    with psycopg.connect(pg.admin(db_url.rsplit("/", 1)[1]), autocommit=True) as conn:
        conn.execute("set pg_stat_statements.track = 'all'")
        conn.execute("comment on column public.llm_usage.model_id is 'old link'")
        conn.execute("create index llm_usage_model_id_idx on public.llm_usage (model_id)")
        conn.execute("drop index public.llm_usage_model_id_idx")
        conn.execute("select name from public.llm_models where provider_id is null")  # a client's, before
        with conn.transaction():
            for statement in history.split_statements(migration.sql):
                conn.execute(statement.encode(), prepare=False)
        nested = conn.execute("select count(*) from extensions.pg_stat_statements where not toplevel and dbid = "
                              "(select oid from pg_database where datname = current_database()) "
                              "and query ~ '(model|provider)_id'").fetchone()[0]
    assert nested > 0  # the migration's own statements naming the UUID columns are there
    found = listed(run_kit("status", "--db-url", db_url, "--json"))
    assert [s["query"] for s in found] == ["select name from public.llm_models where provider_id is null"]


def test_deploy_preflight_refuses_while_any_are_listed_and_the_report_lists_them(db_url, run_kit, tmp_path,
                                                                                clean_env):
    clean_env.chdir(tmp_path)
    as_client(db_url, postgrest_insert(POSTGREST_V12_INSERT, COLS), (payload(model_id=None),), role="service_role")
    run = run_kit("deploy", "--db-url", db_url, "--via", "direct", "--json")
    assert run.code == 4, run.err
    report = json.loads(Path(run.json["report_json"]).read_text())
    assert report["failed_step"] == "preflight" and report["phase"] == "before"
    assert report["error"].startswith("1 statement(s) in pg_stat_statements still use the UUID columns, and their "
                                      "clients will fail once the migration drops them: [1 calls by service_role] "
                                      'WITH pgrst_source AS (INSERT INTO "public"."llm_usage"("agent_name", "model_id"')
    assert report["error"].endswith("Either fix those clients (stop sending provider_id and model_id, which works "
                                    "before and after the migration), then reset the counts with "
                                    "`select \"extensions\".pg_stat_statements_reset()`; or change in two steps: "
                                    "`kit deploy --expand` now (those clients keep working), `kit deploy` once they "
                                    "are gone; or pass --allow-legacy-statements")
    assert [s["role"] for s in report["legacy_statements"]] == ["service_role"]
    assert "## Statements that still use the UUID columns" in Path(run.json["report"]).read_text()
    assert query(db_url, "select count(*) from information_schema.columns where column_name = 'model_id'") == [(1,)]

    run = run_kit("deploy", "--db-url", db_url, "--via", "direct", "--allow-legacy-statements", "--json")
    assert run.code == 0, run.err
    report = json.loads(Path(run.json["report_json"]).read_text())
    assert report["phase"] == "migrated" and len(report["legacy_statements"]) == 1
    after = run_kit("status", "--db-url", db_url)
    assert "  these ran before the migration; those clients now fail. Once fixed: " \
           "`select \"extensions\".pg_stat_statements_reset()`" in after.out


def test_after_fixing_the_client_and_resetting_the_counts_deploy_goes_ahead(db_url, run_kit, tmp_path, clean_env, pg):
    clean_env.chdir(tmp_path)
    as_client(db_url, "insert into llm_usage (provider_name, model_name, model_id) values (%s, %s, %s)",
              ("openai", "gpt-4o", None))
    assert run_kit("deploy", "--db-url", db_url, "--via", "direct", "--json").code == 4
    query(db_url, "select extensions.pg_stat_statements_reset()")
    as_client(db_url, "insert into llm_usage (provider_name, model_name) values (%s, %s)", ("openai", "gpt-4o"))
    run = run_kit("deploy", "--db-url", db_url, "--via", "direct", "--json")
    assert run.code == 0, run.err
    assert run.json["legacy_statements"] == [] and run.json["phase"] == "migrated"


def test_without_the_extension_status_and_preflight_say_so_in_one_line(db_url, run_kit, pg, settings_for):
    query(pg.admin(db_url.rsplit("/", 1)[1]), "drop extension pg_stat_statements")
    run = run_kit("status", "--db-url", db_url)
    assert run.code == 0
    line = [x for x in run.out.splitlines() if x.startswith("legacy")]
    assert line == ["legacy    pg_stat_statements is not installed, so clients still using the UUID columns "
                    "cannot be listed; to enable it: create extension pg_stat_statements with schema extensions "
                    "(Dashboard > Database > Extensions; it must also be in shared_preload_libraries, as on every "
                    "Supabase project)"]
    assert run_kit("status", "--db-url", db_url, "--json").json["legacy_statements"] == []
    d = Deploy(settings_for(db_url))
    detail = deploy_steps.preflight(d)
    assert detail.legacy_statements.startswith("pg_stat_statements is not installed")
    assert d.legacy_note.startswith("pg_stat_statements is not installed")


@pytest.fixture
def unloaded_server(pg):
    """A throwaway server of the test's major, started without shared_preload_libraries."""
    s = settings_mod.load({}, environ={}, cwd=ROOT)
    folder = pgserver.owned_dir(s.cache_dir / "scratch" / uuid.uuid4().hex[:12])
    bindir, data = pgserver.server_bin(s, pg.version), folder / "data"
    try:
        local._initdb(bindir, data)
        port = local._free_port()
        local._run_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"),
                                   "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k ''", "-w", "start"])
        yield f"postgresql://{local.ADMIN}@127.0.0.1:{port}/postgres"
        local._run_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_installed_but_not_loaded_is_said_in_one_line(unloaded_server, run_kit):
    query(unloaded_server, "create schema extensions; create extension pg_stat_statements with schema extensions")
    run = run_kit("status", "--db-url", unloaded_server, "--json")
    assert run.code == 0, run.err
    assert run.json["legacy_statements"] == []
    assert run.json["legacy_statements_note"] == (
        "pg_stat_statements is installed but not loaded, so clients still using the UUID columns cannot be listed; "
        "add pg_stat_statements to shared_preload_libraries and restart PostgreSQL (Supabase loads it by default)")


def test_a_role_without_pg_read_all_stats_is_told_what_it_cannot_see(db_url, pg):
    role = "kit_viewer_" + db_url.rsplit("_", 1)[1]
    admin = pg.admin(db_url.rsplit("/", 1)[1])
    query(pg.admin_url, f"create role {role} login")
    try:
        with psycopg.connect(db_url, user=role, autocommit=True) as conn:
            denied = legacy.read(conn)
        assert not denied.available and denied.note.startswith(
            f"{role} cannot read extensions.pg_stat_statements (permission denied for schema extensions)")
        query(admin, f"grant usage on schema extensions to {role}")
        as_client(db_url, postgrest_insert(POSTGREST_V12_INSERT, COLS), (payload(model_id=None),), role="service_role")
        with psycopg.connect(db_url, user=role, autocommit=True) as conn:
            found = legacy.read(conn)
        assert found.available and found.statements == []
        assert found.note.startswith("the text of ") and found.note.endswith(
            f"run `grant pg_read_all_stats to {role};` to see them")
    finally:
        query(admin, f"drop owned by {role}")
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            conn.execute(f"drop role if exists {role}")


@pytest.mark.parametrize("text, marked", [
    ("select 1", "select /* supabase-kit */ 1"),
    ("  -- why\n/* note */ insert into t values (1)", "  -- why\n/* note */ insert /* supabase-kit */ into t values (1)"),
    ("do $$ begin perform 1; end $$", "do /* supabase-kit */ $$ begin perform 1; end $$"),
    ("select 1 -- x\n; select 'a;b'", "select /* supabase-kit */ 1 -- x\n;\nselect /* supabase-kit */ 'a;b'"),
    ("(select 1)", "/* supabase-kit */ (select 1)"),
    (b"select 2", b"select /* supabase-kit */ 2"),
])
def test_mark_puts_the_mark_after_each_statements_first_word(text, marked):
    """PostgreSQL 18 keeps no leading comment in pg_stat_statements, so the mark goes after the first word."""
    assert mark(text) == marked
    assert mark(marked) == marked


def test_the_old_clients_page_shows_the_query_the_kit_runs():
    page = (ROOT / "docs" / "old-clients.md").read_text()
    assert legacy.QUERY_FILE.read_text().replace("{schema}", "extensions") in page


@pytest.mark.parametrize("shape", ["local_default", "matrix/usage_id_uuid"])
def test_deploy_rollback_deploy_again_lists_none_of_the_kits_own_statements(shape, make_db, run_kit, tmp_path,
                                                                            clean_env, pg):
    """The rollback puts the UUID columns back at the end of each table, so the second deploy's pg_dump
    lists the columns in another order than the first's; neither is a client's statement."""
    clean_env.chdir(tmp_path)
    url = make_db()
    if shape != "local_default":
        run_file(url, (STATES / f"{shape}.sql").read_text())
    first = run_kit("deploy", "--db-url", url, "--json")
    assert first.code == 0, first.out + first.err
    assert first.json["legacy_statements"] == [] and first.json["phase"] == "migrated"
    assert listed(run_kit("status", "--db-url", url, "--json")) == []  # the first dump's COPYs name dropped columns
    back = run_kit(*shlex.split(first.json["rollback_command"])[1:], "--json")
    assert back.code == 0, back.out + back.err
    assert listed(run_kit("status", "--db-url", url, "--json")) == []
    second = run_kit("deploy", "--db-url", url, "--json")
    assert second.code == 0, second.out + second.err
    assert second.json["legacy_statements"] == [] and second.json["phase"] == "migrated"
    assert listed(run_kit("status", "--db-url", url, "--json")) == []
    dumped = [q.replace('"', "").lower() for (q,) in query(
        pg.admin(url.rsplit("/", 1)[1]), "select query from extensions.pg_stat_statements where dbid = "
        "(select oid from pg_database where datname = current_database()) and query ~* '^copy .*llm_providers'")]
    # both orders are there: the first deploy's dump (id first) and the second's (id last, as the rollback added it)
    assert any(q.startswith("copy public.llm_providers (id, name") for q in dumped), dumped
    assert any(re.match(r"copy public\.llm_providers \(name, .*, id\) to stdout", q) for q in dumped), dumped


def test_a_clients_copy_of_some_columns_is_listed_and_a_whole_table_copy_in_any_order_is_not(db_url, run_kit):
    with psycopg.connect(db_url, autocommit=True) as conn:
        with conn.cursor().copy("copy llm_usage (provider_name, model_name, model_id) from stdin") as copy:
            copy.write_row(("openai", "gpt-4o", None))
        with conn.cursor().copy("copy public.llm_models (id, name) to stdout") as copy:
            list(copy)
        # every column but one: a client's read, not a dump
        with conn.cursor().copy("copy public.llm_providers (id, name, display_name) to stdout") as copy:
            list(copy)
        # every column, shuffled: a whole-table dump, as pg_dump writes one after a rollback re-added id last
        with conn.cursor().copy('copy "public"."llm_providers" ("name", "created_at", "base_url", "display_name", '
                                '"id") to stdout') as copy:
            list(copy)
    found = sorted(s["query"] for s in listed(run_kit("status", "--db-url", db_url, "--json")))
    assert found == ["copy llm_usage (provider_name, model_name, model_id) from stdin",
                     "copy public.llm_models (id, name) to stdout",
                     "copy public.llm_providers (id, name, display_name) to stdout"]


def test_the_refusal_is_printed_once_per_deploy(db_url, run_kit, tmp_path, clean_env):
    clean_env.chdir(tmp_path)
    as_client(db_url, "insert into llm_usage (provider_name, model_name, model_id) values (%s, %s, %s)",
              ("openai", "gpt-4o", None))
    run = run_kit("deploy", "--db-url", db_url, "--via", "direct")
    assert run.code == 4, run.out + run.err
    both = run.out + run.err
    assert both.count("still use the UUID columns, and their clients will fail") == 1, both
    assert "FAILED at preflight: 1 statement(s) in pg_stat_statements still use the UUID columns" in run.out
    assert "[preflight] failed in " in run.err
