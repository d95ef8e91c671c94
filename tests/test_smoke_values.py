"""Smoke values on a team's own llm_usage shape, and the --set checks deploy makes in preflight.

The shape is not the baseline's: a uuid primary key, no metadata column, NOT NULL `kind` (an enum),
`usage_date` (date) and `region` (int4range, no default: only --set fills it), and nullable
text[], interval, time and inet columns. Everything runs on a real PostgreSQL; the rest route talks
to tests/standin_postgrest.py, a local stand-in for PostgREST backed by the same database.
"""

import pytest

from tests.helpers import KEY, MATRIX, migrate_direct, query, rest_env, run_file
from tests.snapshot import data, schema
from tests.standin import serve
from tests.standin_postgrest import postgrest_route

TEAM_SHAPE = """
create type usage_kind as enum ('chat', 'embedding');
alter table llm_usage drop column metadata,
  add column kind usage_kind, add column usage_date date, add column region int4range,
  add column tags text[], add column span interval, add column at_time time, add column ip inet;
update llm_usage set kind = 'chat', usage_date = created_at::date, region = '[1,2)';
alter table llm_usage alter column kind set not null, alter column usage_date set not null,
  alter column region set not null;
"""
SETS = ["--set", "region=[1,5)", "--set", "tags={a,b}", "--set", "span=1 hour", "--set", "at_time=10:00",
        "--set", "ip=10.1.2.3/32"]


@pytest.fixture
def team_db(make_db):
    url = make_db()
    run_file(url, (MATRIX / "usage_id_uuid.sql").read_text())
    run_file(url, TEAM_SHAPE)
    return url


def smoke_rows(url: str) -> int:
    return query(url, "select count(*) from llm_usage where agent_name like 'kit-smoke%%'")[0][0]


def test_sql_smoke_fills_a_date_and_reads_set_values_back_as_postgresql_stores_them(team_db, run_kit):
    migrate_direct(team_db)
    run = run_kit("smoke", "--via", "sql", "--db-url", team_db, "--json", *SETS)
    assert run.code == 0, run.out
    back = next(c for c in run.json["checks"] if c["name"] == "rows read back with every field intact")
    assert back["ok"] and back["detail"] == "10 row(s) intact, created_at as expected"
    assert smoke_rows(team_db) == 0


def test_rest_smoke_fills_a_date_and_reads_set_values_back_as_postgresql_stores_them(team_db, run_kit,
                                                                                     clean_env):
    migrate_direct(team_db)
    with serve(postgrest_route(team_db, KEY)) as api:
        rest_env(clean_env, api.url)
        run = run_kit("smoke", "--via", "rest", "--yes", "--json", *SETS)
    assert run.code == 0, run.out
    back = next(c for c in run.json["checks"] if c["name"] == "rows read back with every field intact")
    assert back["ok"] and back["detail"] == "10 row(s) intact, created_at as expected"
    assert smoke_rows(team_db) == 0


@pytest.mark.parametrize("via", ["sql", "rest"])
def test_a_value_stored_differently_is_still_named(via, team_db, run_kit, clean_env):
    """The comparison can fail: a trigger that rewrites tags and span makes the read-back name them."""
    migrate_direct(team_db)
    run_file(team_db, "create function bump() returns trigger language plpgsql as $$ begin "
                      "new.tags := array['other']; new.span := new.span * 2; return new; end $$;\n"
                      "create trigger bump before insert on llm_usage for each row execute function bump();\n")
    if via == "rest":
        with serve(postgrest_route(team_db, KEY)) as api:
            rest_env(clean_env, api.url)
            run = run_kit("smoke", "--via", "rest", "--yes", "--json", *SETS)
    else:
        run = run_kit("smoke", "--via", "sql", "--db-url", team_db, "--json", *SETS)
    assert run.code == 5
    back = next(c for c in run.json["checks"] if c["name"] == "rows read back with every field intact")
    assert back["detail"].endswith("came back with different tags, span")


def test_smoke_with_a_set_for_no_column_exits_2_naming_it(team_db, run_kit):
    run = run_kit("smoke", "--via", "sql", "--db-url", team_db, *SETS, "--set", "nosuch=1")
    assert run.code == 2
    assert run.err.splitlines()[-1] == ("kit: error: --set nosuch=...: llm_usage has no column nosuch; fix or drop "
                                        "that --set")
    assert smoke_rows(team_db) == 0


@pytest.mark.parametrize("flags,message", [
    (["--set", "regoin=[1,5)"], "--set regoin=...: llm_usage has no column regoin; fix or drop that --set"),
    ([], "llm_usage.region (int4range) is NOT NULL without a default and the smoke test cannot fill that type: "
         "pass --set region=VALUE"),
    (["--set", "region=[1,5)", "--set", "model_id=x"],
     "--set model_id=...: llm_usage has no column model_id after the migration; fix or drop that --set"),
])
def test_deploy_refuses_smoke_inputs_in_preflight_before_the_backup(flags, message, team_db, run_kit, clean_env,
                                                                    tmp_path):
    """Judged on llm_usage as the migration leaves it: model_id exists now but not after the push."""
    clean_env.chdir(tmp_path)
    before = (schema(team_db), data(team_db))
    run = run_kit("deploy", "--db-url", team_db, "--json", *flags)
    assert run.code == 2, run.out
    assert run.json["failed_step"] == "preflight" and run.json["error"] == message
    assert run.json["backup"] is None and not (tmp_path / "backups").exists()
    assert (schema(team_db), data(team_db)) == before
    text = run_kit("deploy", "--db-url", team_db, *flags)
    assert text.code == 2 and f"FAILED at preflight: {message}\n" in text.out
