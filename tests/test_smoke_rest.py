"""The smoke test's supabase-py paths (sync and async) against a stand-in PostgREST.

PostgREST cannot run here, so tests/standin_postgrest.py answers as it does, backed by the real
test database. These tests pin the request shape supabase-py sends (path, apikey, Authorization
and Prefer headers, JSON body) and every error shape the smoke test must handle.
"""

import asyncio
import secrets

import pytest

from kit import smoke
from kit.errors import ConfigError
from kit.smoke import CheckError
from kit.smoke.rest import RestDriver
from tests.helpers import KEY, migrate_direct, query, rest_env
from tests.standin import Reply, serve
from tests.standin_postgrest import postgrest_route


@pytest.fixture
def api(db_url):
    migrate_direct(db_url)
    with serve(postgrest_route(db_url, KEY)) as standin:
        yield standin


def test_rest_smoke_passes_and_leaves_nothing(api, db_url, run_kit, clean_env):
    rest_env(clean_env, api.url)
    before = query(db_url, "select count(*) from llm_usage")
    run = run_kit("smoke", "--json")
    assert run.code == 0, run.out
    assert run.json["via"] == "rest" and all(c["ok"] for c in run.json["checks"])
    assert run.json["warnings"][0].startswith("PGRST204: Could not find the 'model_id' column of 'llm_usage' in the "
                                              "schema cache: clients that still send model_id will break")
    assert query(db_url, "select count(*) from llm_usage") == before
    assert KEY not in run.out + run.err


def test_sync_insert_request_shape(api, db_url):
    driver = RestDriver(api.url, KEY)
    row = smoke.row("shape1", "gpt-4o-mini", "openai", 0)
    back = driver.insert(row)
    request = api.requests[-1]
    assert (request.method, request.path, request.query) == ("POST", "/rest/v1/llm_usage", [])
    assert request.headers["apikey"] == KEY and request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["prefer"] == "return=representation"
    assert request.headers["content-type"] == "application/json"
    assert request.json == row
    assert back["model_name"] == "gpt-4o-mini" and back["created_at"]
    driver.delete_keys([(back["id"],)])  # found by its primary key, read from /rest/v1/'s description
    delete = api.requests[-1]
    assert (delete.method, delete.path, delete.query) == ("DELETE", "/rest/v1/llm_usage", [("id", f"eq.{back['id']}")])
    assert query(db_url, "select count(*) from llm_usage where metadata->>'smoke_run' = 'shape1'") == [(0,)]


def test_async_insert_request_shape(api, db_url):
    driver = RestDriver(api.url, KEY)
    rows = [smoke.row("shape2", "claude-sonnet-4", "anthropic", i) for i in range(3)]
    latencies, returned = asyncio.run(driver.insert_many(rows))
    assert sorted(r["metadata"]["n"] for r in returned) == [0, 1, 2]
    assert len(latencies) == 3
    posts = [r for r in api.requests if r.method == "POST"]
    assert len(posts) == 3
    for request in posts:
        assert request.path == "/rest/v1/llm_usage" and request.query == []
        assert request.headers["apikey"] == KEY and request.headers["authorization"] == f"Bearer {KEY}"
        assert request.headers["prefer"] == "return=representation"
    assert sorted(r.json["metadata"]["n"] for r in posts) == [0, 1, 2]
    assert query(db_url, "select count(*) from llm_usage where metadata->>'smoke_run' = 'shape2'") == [(3,)]
    driver.delete_marker("metadata", "json", "shape2")
    assert api.requests[-1].query == [("metadata->>smoke_run", "eq.shape2")]
    assert query(db_url, "select count(*) from llm_usage where metadata->>'smoke_run' = 'shape2'") == [(0,)]


def test_a_not_null_violation_is_a_failed_check_with_its_code(api, db_url):
    driver = RestDriver(api.url, KEY)
    with pytest.raises(CheckError, match=r'^23502: null value in column "model_name" of relation "llm_usage" '
                                         r'violates not-null constraint$'):
        driver.insert({**smoke.row("nn", "x", "openai", 0), "model_name": None})


def test_pgrst204_is_reported_as_a_warning_not_a_failure(api):
    driver = RestDriver(api.url, KEY)
    refusal, written = driver.legacy_insert({**smoke.row("legacy", "gpt-4o-mini", "openai", 0), "model_id": None})
    assert written is None and refusal == "PGRST204: Could not find the 'model_id' column of 'llm_usage' in the schema cache"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_wrong_key_is_one_line_exit_2_without_the_key(mode, api, run_kit, clean_env):
    wrong = "wrong-" + secrets.token_hex(8)
    if mode == "sync":
        rest_env(clean_env, api.url, wrong)
        run = run_kit("smoke", "--json")
        assert run.code == 2
        assert run.err == (f"kit: error: the API at {api.url} refused SUPABASE_SERVICE_ROLE_KEY (401: Invalid API "
                           "key); copy the service_role key from Dashboard > Project Settings > API\n")
        assert wrong not in run.err + run.out
    else:
        driver = RestDriver(api.url, wrong)
        with pytest.raises(ConfigError, match="refused SUPABASE_SERVICE_ROLE_KEY"):
            asyncio.run(driver.insert_many([smoke.row("k", "gpt-4o-mini", "openai", 0)]))


def test_the_async_path_reports_a_not_null_violation(api):
    driver = RestDriver(api.url, KEY)
    with pytest.raises(CheckError, match=r"^23502: "):
        asyncio.run(driver.insert_many([{**smoke.row("nn2", "x", "openai", 0), "provider_name": None}]))


def test_an_unreachable_api_is_one_line_exit_3(run_kit, clean_env):
    rest_env(clean_env, "http://127.0.0.1:9")
    run = run_kit("smoke", "--json")
    assert run.code == 3
    assert run.err == "kit: error: cannot reach the API at http://127.0.0.1:9: ConnectError; check SUPABASE_URL\n"


def test_a_changed_request_shape_would_fail_these_tests(db_url):
    """The stand-in refuses a request without the apikey header, as the real gateway does."""
    migrate_direct(db_url)
    with serve(lambda r: Reply(401, {"message": "Invalid API key"}) if "apikey" not in r.headers
               else postgrest_route(db_url, KEY)(r)) as standin:
        import httpx

        answer = httpx.post(standin.url + "/rest/v1/llm_usage", json={}, headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 401
