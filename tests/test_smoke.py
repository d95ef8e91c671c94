"""`kit smoke --via sql` on a real PostgreSQL, before and after the migration."""

import pytest

from kit import settings as settings_mod, smoke
from kit.errors import ConfigError
from tests.helpers import ROOT, migrate_direct, query

CHECKS = ["llm_usage's shape read and a row built from it", "registered models are readable", "insert a usage row for each of 9 registered model(s)",
          "insert a usage row for a model that is not registered", "rows read back with every field intact",
          "20 concurrent inserts", "legacy payload with model_id (reported, not failed)", "every smoke row deleted"]


def usage_rows(url: str) -> int:
    return query(url, "select count(*) from llm_usage")[0][0]


def test_after_the_migration_every_check_passes_and_no_row_is_left(db_url, run_kit):
    migrate_direct(db_url)
    before = usage_rows(db_url)
    run = run_kit("smoke", "--via", "sql", "--db-url", db_url, "--json")
    assert run.code == 0, run.out
    assert run.json["ok"] is True
    assert [c["name"] for c in run.json["checks"]] == CHECKS
    assert all(c["ok"] for c in run.json["checks"])
    assert run.json["warnings"][0].startswith('42703 (undefined column): column "model_id" of relation "llm_usage" '
                                              "does not exist: clients that still send model_id will break")
    assert run.json["latency"]["inserts"] == 20 and run.json["latency"]["p95_ms"] >= run.json["latency"]["median_ms"]
    assert usage_rows(db_url) == before


def test_before_the_migration_the_names_work_and_model_id_is_still_accepted(db_url, run_kit):
    before = usage_rows(db_url)
    run = run_kit("smoke", "--via", "sql", "--db-url", db_url, "--json")
    assert run.code == 0, run.out
    legacy = next(c for c in run.json["checks"] if c["name"].startswith("legacy"))
    assert legacy["detail"] == "accepted (the model_id column still exists)"
    assert run.json["warnings"] == []
    assert usage_rows(db_url) == before


def test_inserts_run_as_service_role_so_a_missing_grant_fails_and_nothing_is_left(db_url, run_kit):
    migrate_direct(db_url)
    query(db_url, "revoke insert on public.llm_usage from service_role")
    before = usage_rows(db_url)
    run = run_kit("smoke", "--via", "sql", "--db-url", db_url, "--json")
    assert run.code == 5
    failed = [c for c in run.json["checks"] if not c["ok"]]
    assert failed[0]["name"] == "insert a usage row for each of 9 registered model(s)"
    assert failed[0]["detail"] == "42501: permission denied for table llm_usage"
    assert usage_rows(db_url) == before


def test_a_check_failing_halfway_leaves_no_row_behind(db_url, run_kit):
    """A trigger refuses the third smoke insert: rows one and two must still be deleted."""
    migrate_direct(db_url)
    query(db_url, """
        create sequence smoke_calls;
        create function refuse_third() returns trigger language plpgsql as $$
        begin
          if new.agent_name = 'kit-smoke' and nextval('smoke_calls') = 3 then
            raise exception 'third insert refused' using errcode = 'P0001';
          end if;
          return new;
        end $$;
        create trigger refuse_third before insert on llm_usage for each row execute function refuse_third();
        grant usage on sequence smoke_calls to service_role""")
    before = usage_rows(db_url)
    run = run_kit("smoke", "--via", "sql", "--db-url", db_url)
    assert run.code == 5
    assert "P0001: third insert refused" in run.out
    assert run.out.splitlines()[-1] != "" and "every smoke row deleted" in run.out
    assert usage_rows(db_url) == before
    assert query(db_url, "select count(*) from llm_usage where agent_name = 'kit-smoke'") == [(0,)]


def test_an_empty_model_registry_is_a_failed_check(db_url, run_kit):
    migrate_direct(db_url)
    query(db_url, "truncate llm_models cascade")
    run = run_kit("smoke", "--via", "sql", "--db-url", db_url, "--json")
    assert run.code == 5
    assert run.json["checks"][1] == {**run.json["checks"][1], "ok": False,
                                     "detail": "llm_models is empty: load supabase/seed.sql (or register a model) first"}


def test_supabase_url_without_a_key_is_one_line(run_kit, clean_env):
    clean_env.setenv("SUPABASE_URL", "https://abcdefghijklmnopqrst.supabase.co")
    run = run_kit("smoke")
    assert run.code == 2
    assert run.err == ("kit: error: SUPABASE_URL is set but SUPABASE_SERVICE_ROLE_KEY is not: add the service_role "
                       "key (Dashboard > Project Settings > API), or unset SUPABASE_URL to smoke-test over SQL\n")


def test_the_default_route_is_rest_only_with_url_and_key(clean_env):
    plain = settings_mod.load({}, environ={}, cwd=ROOT)
    assert smoke.default_route(plain) == "sql"
    both = settings_mod.load({}, environ={"SUPABASE_URL": "http://x", "SUPABASE_SERVICE_ROLE_KEY": "k"}, cwd=ROOT)
    assert smoke.default_route(both) == "rest"
    with pytest.raises(ConfigError):
        smoke.default_route(settings_mod.load({}, environ={"SUPABASE_URL": "http://x"}, cwd=ROOT))


def test_the_standalone_script_runs_the_smoke_test_and_exits_with_its_code(db_url, clean_env):
    import json
    import subprocess
    import sys

    migrate_direct(db_url)
    before = query(db_url, "select count(*) from llm_usage")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "smoke_test.py"), "--db-url", db_url, "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["via"] == "sql"
    assert query(db_url, "select count(*) from llm_usage") == before
    query(db_url, "revoke insert on llm_usage from service_role")
    failed = subprocess.run([sys.executable, str(ROOT / "scripts" / "smoke_test.py"), "--db-url", db_url],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 5, failed.stderr
    assert "error ignored" not in failed.stderr
    assert "FAIL    insert a usage row for each of 9 registered model(s)" in failed.stdout


def test_the_legacy_warning_is_only_for_model_id(db_url, settings_for):
    """An undefined column other than model_id is a failed request, not the legacy-payload warning."""
    from kit.smoke.sql import SqlDriver

    migrate_direct(db_url)
    driver = SqlDriver(settings_for(db_url))
    try:
        refusal, written = driver.legacy_insert({**smoke.row("lg", "gpt-4o", "openai", 0), "model_id": None})
        assert written is None and refusal.startswith('42703 (undefined column): column "model_id"')
        with pytest.raises(smoke.CheckError, match=r'^42703: column "tenant_id" of relation "llm_usage" does not exist'):
            driver.legacy_insert({**smoke.row("lg", "gpt-4o", "openai", 0), "tenant_id": 1})
    finally:
        driver.close()
    assert query(db_url, "select count(*) from llm_usage where metadata->>'smoke_run' = 'lg'") == [(0,)]


def test_an_unfinished_run_is_swept_only_on_its_own_database(make_db, run_kit, in_tmp, tmp_path):
    """One folder serves two databases (staging, production): a run cut off on the first leaves its keys in
    the ledger, and those keys are real rows in the second. A smoke test of the second must not touch them;
    the next one of the first deletes its rows. A ledger line from before databases were recorded is left."""
    from kit.smoke.ledger import Ledger
    from kit.smoke.sql import SqlDriver

    staging, production = make_db(), make_db()
    for url, agent in ((staging, "kit-smoke"), (production, "real-agent")):
        migrate_direct(url)
        query(url, "insert into llm_usage (id, provider_name, model_name, agent_name) overriding system value "
                   "select g, 'openai', 'gpt-4o', %s from generate_series(900001, 900010) g", (agent,))
    settings = settings_mod.load({"db_url": staging}, environ={}, cwd=tmp_path)
    driver = SqlDriver(settings)
    ledger = Ledger(settings, driver.where())
    driver.close()
    ledger.add("cutoff123456", None, [(i,) for i in range(900001, 900011)])
    with open(ledger.path, "a") as handle:
        handle.write('{"run": "older0000000", "marker": null, "keys": [[900001]]}\n')

    run = run_kit("smoke", "--via", "sql", "--db-url", production, "--json")
    assert run.code == 0, run.out
    assert query(production, "select count(*) from llm_usage where agent_name = 'real-agent'") == [(10,)]
    assert "rows of unfinished earlier runs deleted" not in [c["name"] for c in run.json["checks"]]

    run = run_kit("smoke", "--via", "sql", "--db-url", staging, "--json")
    assert run.code == 0, run.out
    assert run.json["checks"][0] == {"name": "rows of unfinished earlier runs deleted", "ok": True,
                                     "detail": "cutoff123456", "seconds": 0.0}
    assert query(staging, "select count(*) from llm_usage where id between 900001 and 900010") == [(0,)]
    assert ledger.path.read_text() == '{"run": "older0000000", "marker": null, "keys": [[900001]]}\n'
    assert oct(ledger.path.stat().st_mode & 0o777) == "0o600"


def test_deleting_more_keys_than_a_statement_takes_parameters(db_url):
    """70,000 rows of a composite-free bigint key: the deletes go in batches under PostgreSQL's 65,535."""
    from kit.smoke.sql import SqlDriver

    migrate_direct(db_url)
    query(db_url, "insert into llm_usage (id, provider_name, model_name, agent_name) overriding system value "
                  "select g, 'openai', 'gpt-4o', 'kit-smoke' from generate_series(1000001, 1070000) g")
    driver = SqlDriver(settings_mod.load({"db_url": db_url}, environ={}, cwd=ROOT))
    try:
        driver.shape()
        driver.delete_keys([(i,) for i in range(1000001, 1070001)])
    finally:
        driver.close()
    assert query(db_url, "select count(*) from llm_usage where id > 1000000") == [(0,)]


@pytest.mark.parametrize("argv", [["smoke", "--via", "sql"], ["branch", "smoke", "pr-1"]])
@pytest.mark.parametrize("n", ["0", "1001"])
def test_concurrency_out_of_range_is_one_line_before_anything_is_sent(argv, n, run_kit):
    run = run_kit(*argv, "--concurrency", n)
    assert (run.code, run.err) == (2, f"kit: error: --concurrency {n} is not a number of concurrent inserts: "
                                      "pass 1 to 1000\n")
