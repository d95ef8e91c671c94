"""`kit branch` against a stand-in Management API and a stand-in PostgREST per branch.

The Management API cannot be reached and PostgREST cannot run here, so tests/standin_branches.py
answers as both do, on one local port. Every branch it creates is a real, empty test database:
its action run applies supabase/migrations and supabase/seed.sql for real, one step per poll.
"""

import secrets

import pytest

from tests.helpers import query
from tests.standin import serve
from tests.standin_branches import STEPS, BranchesAPI

PARENT = "parentref0000000000"
TOKEN = "token-" + secrets.token_hex(16)  # built at run time: no token-shaped string in the repository
KEY = "service-" + secrets.token_hex(16)


@pytest.fixture
def api(make_db, clean_env):
    def start(fail_at=None):
        route = BranchesAPI(PARENT, TOKEN, KEY, lambda: make_db("kit_tpl_supabase"), fail_at)
        standin = serve(route)
        server = standin.__enter__()
        started.append(standin)
        clean_env.setenv("SUPABASE_ACCESS_TOKEN", TOKEN)
        clean_env.setenv("SUPABASE_PROJECT_REF", PARENT)
        clean_env.setenv("SUPABASE_API_URL", server.url)
        clean_env.setenv("KIT_BRANCH_URL", server.url + "/{ref}")
        return route, server

    started = []
    yield start
    for standin in started:
        standin.__exit__(None, None, None)


def test_create_waits_for_migrations_and_seed_and_the_branch_has_the_target_schema(api, run_kit):
    route, server = api()
    run = run_kit("branch", "create", "pr-42", "--yes", "--git-branch", "feature/name-keys", "--poll-s", "0", "--json")
    assert run.code == 0, run.err
    assert run.json["done"] is True and run.json["failed_step"] is None
    assert [s["name"] for s in run.json["steps"]] == list(STEPS)
    assert {s["status"] for s in run.json["steps"]} == {"EXITED"}
    post = next(r for r in server.requests if r.method == "POST")
    assert (post.path, post.json) == (f"/v1/projects/{PARENT}/branches",
                                      {"branch_name": "pr-42", "git_branch": "feature/name-keys"})
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    branch = next(iter(route.branches.values()))
    assert run.json["branch"]["ref"] == branch.ref
    check = query(branch.db_url, "select (select count(*) from llm_models), (select count(*) from llm_providers), "
                                 "(select string_agg(column_name, ',' order by column_name) from "
                                 "information_schema.columns where table_name = 'llm_models' and "
                                 "column_name in ('id', 'provider_id', 'provider_name'))")
    assert check == [(3, 3, "provider_name")]
    assert TOKEN not in run.out + run.err
    by_git_branch = run_kit("branch", "status", "feature/name-keys", "--json")
    assert (by_git_branch.code, by_git_branch.json["branch"]["name"]) == (0, "pr-42")


def test_create_names_the_failing_step_and_exits_5(api, run_kit):
    api(fail_at="seed")
    run = run_kit("branch", "create", "pr-7", "--yes", "--poll-s", "0")
    assert run.code == 5
    progress, last = run.err.splitlines()[:-1], run.err.splitlines()[-1] + "\n"
    assert progress[0] == "... branch pr-7: CREATING_PROJECT"
    assert progress[-1].endswith("migrate exited, seed dead, deploy created")
    assert last == ("kit: error: preview branch 'pr-7': step 'seed' failed (MIGRATIONS_FAILED): seed: ERROR: "
                       'relation "public.llm_modelz" does not exist (SQLSTATE 42P01) in seed; fix the migration or '
                       "seed, push again, then kit branch status pr-7\n")
    status = run_kit("branch", "status", "pr-7", "--json")
    assert status.code == 5
    assert status.json["failed_step"] == "seed"
    assert {s["name"]: s["status"] for s in status.json["steps"]}["migrate"] == "EXITED"


def test_branch_smoke_runs_end_to_end_through_supabase_py(api, run_kit):
    route, server = api()
    assert run_kit("branch", "create", "pr-42", "--yes", "--poll-s", "0").code == 0
    branch = next(iter(route.branches.values()))
    before = query(branch.db_url, "select count(*) from llm_usage")
    run = run_kit("branch", "smoke", "pr-42", "--poll-s", "0", "--json")
    assert run.code == 0, run.out
    assert run.json["branch"] == "pr-42" and run.json["via"] == "rest"
    assert run.json["supabase_url"] == f"{server.url}/{branch.ref}"
    assert all(c["ok"] for c in run.json["checks"]) and len(run.json["checks"]) >= 6
    assert run.json["warnings"][0].startswith("PGRST204: Could not find the 'model_id' column")
    inserts = [r for r in server.requests if r.method == "POST" and r.path == "/rest/v1/llm_usage"]
    assert inserts and all(r.headers["apikey"] == KEY for r in inserts)
    keys = next(r for r in server.requests if r.path.endswith("/api-keys"))
    assert keys.path == f"/v1/projects/{branch.ref}/api-keys" and ("reveal", "true") in keys.query
    assert query(branch.db_url, "select count(*) from llm_usage") == before
    assert KEY not in run.out + run.err and TOKEN not in run.out + run.err


def test_list_status_and_delete(api, run_kit):
    route, server = api()
    assert run_kit("branch", "list").out == "no preview branches\n"
    assert run_kit("branch", "create", "pr-1", "--yes", "--poll-s", "0").code == 0
    listed = run_kit("branch", "list", "--json")
    assert [(b["name"], b["status"]) for b in listed.json["branches"]] == [("pr-1", "FUNCTIONS_DEPLOYED")]
    status = run_kit("branch", "status", "pr-1")
    assert status.code == 0 and status.out.endswith("ready: migrations and seed have run\n")
    refused = run_kit("branch", "delete", "pr-1")
    host = server.url.removeprefix("http://")
    assert refused.code == 4
    assert refused.err == (f"kit: error: delete preview branch 'pr-1' ({route.branches[next(iter(route.branches))].ref}) "
                           f"of target default (host {host}, project {PARENT}) needs confirmation: pass --yes\n")
    assert len(route.branches) == 1
    deleted = run_kit("branch", "delete", "pr-1", "--yes", "--json")
    assert deleted.code == 0 and deleted.json["deleted"] == "pr-1"
    assert route.branches == {} and route.deleted == ["pr-1"]


def test_refusals(api, run_kit, clean_env):
    api()
    assert run_kit("branch", "create", "pr-1", "--yes", "--poll-s", "0").code == 0
    again = run_kit("branch", "create", "pr-1", "--yes")
    assert (again.code, again.err) == (4, "kit: error: a preview branch 'pr-1' already exists: run kit branch smoke "
                                          "pr-1, or kit branch delete pr-1 first\n")
    unknown = run_kit("branch", "smoke", "pr-9")
    assert (unknown.code, unknown.err) == (2, f"kit: error: no preview branch 'pr-9' in project {PARENT} (branches: "
                                              "pr-1); see kit branch list\n")
    nameless = run_kit("branch", "status")
    assert (nameless.code, nameless.err) == (2, "kit: error: kit branch status needs the branch's name: see kit "
                                                "branch list\n")
    clean_env.setenv("SUPABASE_ACCESS_TOKEN", "wrong-" + secrets.token_hex(8))
    wrong = run_kit("branch", "list")
    assert (wrong.code, wrong.err) == (2, f"kit: error: the Management API refused the access token (GET "
                                          f"/v1/projects/{PARENT}/branches: 401); check SUPABASE_ACCESS_TOKEN\n")
