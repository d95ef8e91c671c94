"""Targets, one project per command, and a confirmation before any change to something not local.

The Management API and PostgREST cannot be reached from here: tests/standin_query.py and
tests/standin_postgrest.py answer for them, each backed by a real test database, and record every
request, so each test asserts that nothing reached the project it must not touch. A database that
is "not local" is the real test database reached under another host name (libpq's hostaddr).
"""

import os
import secrets
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest

from kit import settings as settings_mod
from kit.redact import mask_url, redact
from tests.helpers import ROOT, VERSIONS, Terminal, query, remote
from tests.snapshot import data, schema
from tests.standin import Reply, serve
from tests.standin_postgrest import postgrest_route
from tests.standin_query import QUERY_PATH, run_query

PROD, STAGING = "a" * 20, "b" * 20
TOKEN = "kit-test-token-" + "9" * 20
KEY = "service-" + secrets.token_hex(16)  # built at run time: no key-shaped string in the repository


def projects_route(databases: dict[str, str]):
    """The Management API's query endpoint for several projects, each on its own database."""
    def route(request):
        match = QUERY_PATH.match(request.path)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Reply(401, {"message": "Unauthorized"})
        if request.method != "POST" or not match or match["ref"] not in databases:
            return Reply(404, {"message": "Project not found"})
        return run_query(databases[match["ref"]], request.json["query"])

    return route


@pytest.fixture
def prod(make_db, clean_env, tmp_path):
    """The default target: its database behind a stand-in Management API and PostgREST, set through
    the unprefixed variables, as production usually is."""
    clean_env.chdir(tmp_path)
    url = make_db()
    with serve(projects_route({PROD: url})) as api, serve(postgrest_route(url, KEY)) as rest:
        for name, value in {"SUPABASE_API_URL": api.url, "SUPABASE_ACCESS_TOKEN": TOKEN, "SUPABASE_PROJECT_REF": PROD,
                            "SUPABASE_URL": rest.url, "SUPABASE_SERVICE_ROLE_KEY": KEY}.items():
            clean_env.setenv(name, value)
        yield SimpleNamespace(url=url, api=api, rest=rest, before=(schema(url), data(url)))


def untouched(prod) -> bool:
    return not prod.api.requests and not prod.rest.requests and (schema(prod.url), data(prod.url)) == prod.before


# --- A named target reads only its own values ---------------------------------------------------

def test_a_named_target_reads_only_its_own_values(db_url):
    environ = {"SUPABASE_DB_URL": "postgresql://postgres@db.x.invalid/postgres", "SUPABASE_PROJECT_REF": PROD,
               "SUPABASE_URL": "https://x.invalid", "SUPABASE_SERVICE_ROLE_KEY": KEY,
               "SUPABASE_ACCESS_TOKEN": TOKEN, "STAGING_SUPABASE_DB_URL": db_url}
    s = settings_mod.load({"target": "staging"}, environ=environ, cwd=ROOT)
    assert (s.db_url, s.project_ref, s.supabase_url, s.service_role_key) == (db_url, None, None, None)
    assert s.access_token == TOKEN  # one token per account, shared unless STAGING_SUPABASE_ACCESS_TOKEN is set
    assert s.label == "staging" and s.db_url_from == "STAGING_SUPABASE_DB_URL"
    own = settings_mod.load({}, environ={**environ, "KIT_TARGET": "staging", "STAGING_SUPABASE_PROJECT_REF": STAGING,
                                         "STAGING_SUPABASE_ACCESS_TOKEN": "other-token"}, cwd=ROOT)
    assert (own.project_ref, own.access_token) == (STAGING, "other-token")


@pytest.mark.parametrize("argv,message", [
    (["deploy", "--via", "api", "--yes"], "STAGING_SUPABASE_PROJECT_REF is not set: it is the subdomain of your "
                                          "project URL"),
    (["push", "--via", "api", "--yes"], "STAGING_SUPABASE_PROJECT_REF is not set: it is the subdomain of your "
                                        "project URL"),
    (["smoke", "--via", "rest", "--yes"], "the rest route needs STAGING_SUPABASE_URL and "
                                          "STAGING_SUPABASE_SERVICE_ROLE_KEY (or use --via sql)"),
], ids=["deploy-api", "push-api", "smoke-rest"])
def test_a_missing_target_value_is_named_and_the_default_project_is_not_reached(argv, message, prod, make_db,
                                                                                  run_kit, clean_env):
    staging = make_db()
    clean_env.setenv("STAGING_SUPABASE_DB_URL", staging)
    before = (schema(staging), data(staging))
    run = run_kit(*argv, "--target", "staging")
    assert run.code == 2
    assert run.err == f"kit: error: {message}\n"
    assert untouched(prod)
    assert (schema(staging), data(staging)) == before


def test_the_access_token_is_named_by_the_variable_it_was_read_from(prod, make_db, run_kit, clean_env):
    """The 401 of the stand-in Management API names the variable the token came from: a named target reads
    STAGING_SUPABASE_ACCESS_TOKEN, else the shared SUPABASE_ACCESS_TOKEN; with neither set, both are named."""
    clean_env.setenv("STAGING_SUPABASE_DB_URL", make_db())
    clean_env.setenv("STAGING_SUPABASE_PROJECT_REF", STAGING)
    clean_env.setenv("SUPABASE_ACCESS_TOKEN", "kit-test-token-wrong")
    where = f"POST /v1/projects/{STAGING}/database/query: 401"
    shared = run_kit("push", "--via", "api", "--yes", "--json", "--target", "staging")
    clean_env.setenv("STAGING_SUPABASE_ACCESS_TOKEN", "kit-test-token-also-wrong")
    own = run_kit("push", "--via", "api", "--yes", "--json", "--target", "staging")
    clean_env.delenv("STAGING_SUPABASE_ACCESS_TOKEN")
    clean_env.delenv("SUPABASE_ACCESS_TOKEN")
    neither = run_kit("push", "--via", "api", "--yes", "--json", "--target", "staging")
    assert [(r.code, r.err) for r in (shared, own, neither)] == [
        (2, f"kit: error: the Management API refused the access token ({where}); check SUPABASE_ACCESS_TOKEN\n"),
        (2, f"kit: error: the Management API refused the access token ({where}); check STAGING_SUPABASE_ACCESS_TOKEN\n"),
        (2, "kit: error: STAGING_SUPABASE_ACCESS_TOKEN or SUPABASE_ACCESS_TOKEN is not set: create a personal access "
            "token (Dashboard > Account > Access Tokens) and put it in .env\n")]
    assert {r.path for r in prod.api.requests} == {f"/v1/projects/{STAGING}/database/query"}
    assert not prod.rest.requests and (schema(prod.url), data(prod.url)) == prod.before


def test_smoke_of_a_named_target_without_its_rest_url_stays_on_its_database(prod, make_db, run_kit, clean_env):
    staging = make_db()
    clean_env.setenv("STAGING_SUPABASE_DB_URL", staging)
    run = run_kit("smoke", "--target", "staging", "--json")
    assert run.code == 0, run.err
    assert run.json["via"] == "sql"
    assert untouched(prod)


def test_a_named_target_with_its_own_project_gets_the_push_and_the_default_gets_nothing(prod, make_db, run_kit,
                                                                                        clean_env):
    staging = make_db()
    with serve(projects_route({STAGING: staging, PROD: prod.url})) as api:
        clean_env.setenv("SUPABASE_API_URL", api.url)
        clean_env.setenv("STAGING_SUPABASE_DB_URL", staging)
        clean_env.setenv("STAGING_SUPABASE_PROJECT_REF", STAGING)
        run = run_kit("push", "--target", "staging", "--via", "api", "--yes", "--json")
    assert run.code == 0, run.err
    assert run.json["applied"] == VERSIONS
    assert {r.path for r in api.requests} == {f"/v1/projects/{STAGING}/database/query"}
    assert untouched(prod)


# --- One project per command ---------------------------------------------------------------------

POOLER_URL = f"postgresql://postgres.{STAGING}:pw@aws-0-eu-west-1.pooler.supabase.com:5432/postgres"
DIRECT_URL = f"postgresql://postgres:pw@db.{STAGING}.supabase.co:5432/postgres"


@pytest.mark.parametrize("argv", [["push", "--via", "api", "--yes"], ["deploy", "--via", "api", "--yes"],
                                  ["backup"], ["branch", "list"]], ids=lambda a: " ".join(a[:2]))
@pytest.mark.parametrize("url", [POOLER_URL, DIRECT_URL], ids=["pooler", "direct"])
def test_a_database_of_another_project_than_the_ref_is_refused_before_anything(argv, url, prod, run_kit, clean_env):
    clean_env.setenv("SUPABASE_DB_URL", url)
    run = run_kit(*argv)
    assert run.code == 2
    assert run.err == (f"kit: error: the database URL (SUPABASE_DB_URL) is project {STAGING} but SUPABASE_PROJECT_REF "
                       f"is project {PROD}: one command works on one project; make them name the same project "
                       "(see docs/targets.md)\n")
    assert untouched(prod)
    assert not os.path.exists("backups") and not os.path.exists("reports")


def test_a_rest_url_of_another_project_is_refused_by_deploy(prod, db_url, run_kit, clean_env):
    clean_env.setenv("STAGING_SUPABASE_DB_URL", DIRECT_URL)
    clean_env.setenv("STAGING_SUPABASE_URL", f"https://{PROD}.supabase.co")
    clean_env.setenv("STAGING_SUPABASE_SERVICE_ROLE_KEY", KEY)
    run = run_kit("deploy", "--target", "staging", "--yes")
    assert run.code == 2
    assert run.err == (f"kit: error: the database URL (STAGING_SUPABASE_DB_URL) is project {STAGING} but "
                       f"STAGING_SUPABASE_URL is project {PROD}: one command works on one project; make them name "
                       "the same project (see docs/targets.md)\n")
    assert untouched(prod)


def test_the_plan_line_says_when_the_host_is_not_a_supabase_host(prod, run_kit):
    url = "postgresql://postgres:pw@db.example.invalid/postgres"
    run = run_kit("push", "--via", "api", "--dry-run", "--db-url", url)
    assert run.code == 0, run.err
    assert run.err.splitlines()[0] == (f"plan: target db.example.invalid-5432-postgres, database "
                                       f"db.example.invalid:5432, project {PROD}; db.example.invalid:5432 is not a "
                                       "Supabase host, so its project is not checked")
    assert {r.path for r in prod.api.requests} == {f"/v1/projects/{PROD}/database/query"}


# --- Every change to something not local asks first ----------------------------------------------

def where(url: str) -> str:
    port, name = url.split(":")[-1].split("?")[0].split("/")
    return f"target db.example.invalid-{port}-{name} (host db.example.invalid:{port}, project not known)"


@pytest.mark.parametrize("argv,action", [
    (["push", "--via", "direct"], "push migrations to"),
    (["push", "--via", "cli"], "push migrations to"),
    (["deploy", "--via", "direct"], "deploy the LLM name-key migration to"),
    (["smoke", "--via", "sql"], "insert and delete smoke-test rows in"),
], ids=["push-direct", "push-cli", "deploy", "smoke-sql"])
@pytest.mark.parametrize("form", ["host in the URL", "host in the query"])
def test_no_terminal_and_no_yes_refuses_before_the_first_write(argv, action, form, db_url, run_kit, clean_env,
                                                               tmp_path):
    """libpq also takes the host and port as query parameters: such a URL is just as remote."""
    clean_env.chdir(tmp_path)
    url = remote(db_url)
    given = url
    if form == "host in the query":
        port, name = url.split("@", 1)[1].split("?")[0].removeprefix("db.example.invalid:").split("/")
        given = f"postgresql://postgres@/{name}?host=db.example.invalid&port={port}&hostaddr=127.0.0.1"
    before = (schema(db_url), data(db_url))
    run = run_kit(*argv, "--db-url", given)
    assert run.code == 4
    assert run.err == f"kit: error: {action} {where(url)} needs confirmation: pass --yes\n"
    assert (schema(db_url), data(db_url)) == before
    assert not (tmp_path / "backups").exists() and not (tmp_path / "reports").exists()


def test_rollback_of_a_database_not_local_needs_yes(db_url, run_kit, clean_env, tmp_path):
    clean_env.chdir(tmp_path)
    backup = run_kit("backup", "--db-url", db_url, "--json").json["path"]
    assert run_kit("push", "--via", "direct", "--db-url", db_url, "--yes").code == 0
    before = (schema(db_url), data(db_url))
    url = remote(db_url)
    run = run_kit("rollback", backup, "--db-url", url)
    assert run.code == 4
    assert run.err == (f"kit: error: roll back the LLM name-key migration on {where(url)} needs confirmation: "
                       "pass --yes\n")
    assert (schema(db_url), data(db_url)) == before


@pytest.mark.parametrize("argv,action", [
    (["push", "--via", "api"], "push migrations to"),
    (["branch", "create", "pr-1"], "create preview branch 'pr-1' of"),
], ids=["push-api", "branch-create"])
def test_a_project_change_through_the_api_always_asks(argv, action, prod, run_kit):
    run = run_kit(*argv)
    assert run.code == 4
    host = prod.api.url.removeprefix("http://")
    assert run.err.splitlines()[-1] == (f"kit: error: {action} target default (host {host}, project {PROD}) needs "
                                        "confirmation: pass --yes")
    assert untouched(prod)


def test_smoke_over_rest_to_a_project_asks(prod, run_kit, clean_env):
    clean_env.setenv("SUPABASE_URL", f"https://{PROD}.supabase.co")
    run = run_kit("smoke")
    assert run.code == 4
    assert run.err == (f"kit: error: insert and delete smoke-test rows in target local (host {PROD}.supabase.co, "
                       f"project {PROD}) needs confirmation: pass --yes\n")


def test_the_prompt_shows_target_host_and_ref_and_only_the_host_or_ref_goes_on(db_url, run_kit, clean_env,
                                                                              monkeypatch):
    url = remote(db_url)
    clean_env.setenv("STAGING_SUPABASE_DB_URL", url)
    clean_env.setenv("STAGING_SUPABASE_PROJECT_REF", STAGING)
    prompts, answers = [], ["db.example.invalid:5432-no", "db.example.invalid"]
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or answers.pop(0))
    port = url.split(":")[-1].split("/")[0]
    refused = run_kit("push", "--target", "staging", "--via", "direct")
    shown = f"target staging (host db.example.invalid:{port}, project {STAGING})"
    assert prompts == [f"push migrations to {shown}? Type the host name or the project ref to go on: "]
    assert refused.code == 4 and refused.err == f"kit: error: not confirmed: nothing was done to {shown}\n"
    assert query(db_url, "select to_regclass('supabase_migrations.schema_migrations')") == [(None,)]
    confirmed = run_kit("push", "--target", "staging", "--via", "direct", "--json")
    assert confirmed.code == 0, confirmed.err
    assert confirmed.json["applied"] == VERSIONS


def test_with_yes_a_database_not_local_is_changed(db_url, run_kit):
    run = run_kit("push", "--via", "direct", "--db-url", remote(db_url), "--yes", "--json")
    assert run.code == 0, run.err
    assert run.json["applied"] == VERSIONS


# --- Masking parses the URL --------------------------------------------------------------------

def test_masking_touches_the_password_field_only():
    url = "postgresql://postgres:postgres@127.0.0.1:5432/postgres"
    assert mask_url(url) == "postgresql://postgres:****@127.0.0.1:5432/postgres"
    assert redact(f"cannot reach {url} now", ("postgres",)) == \
        "cannot reach postgresql://postgres:****@127.0.0.1:5432/postgres now"
    assert mask_url("postgresql://ql:ql@db.example.com/ql") == "postgresql://ql:****@db.example.com/ql"
    assert mask_url("postgresql://u:p%40ss@h:6543/d?sslmode=require") == "postgresql://u:****@h:6543/d?sslmode=require"
    assert mask_url("postgresql://postgres@h/postgres") == "postgresql://postgres@h/postgres"
    assert redact("password=postgres user=postgres", ("postgres",)) == "password=**** user=****"


def test_status_shows_the_url_with_only_its_password_masked(pg, run_kit):
    url = f"postgresql://postgres:postgres@127.0.0.1:{pg.port}/postgres"
    run = run_kit("status", "--db-url", url)
    assert run.code == 0, run.err
    assert run.out.splitlines()[0] == f"database  postgresql://postgres:****@127.0.0.1:{pg.port}/postgres"


# --- IPv4-only networks --------------------------------------------------------------------------

def test_an_ipv6_only_direct_host_on_a_network_without_ipv6_names_the_session_pooler():
    """Run in a network namespace of its own with only the loopback up: no IPv6 route, so libpq's
    connect fails with "Network is unreachable", as on an IPv4-only network for db.<ref>.supabase.co
    (with no IPv6 address at all it is "Cannot assign requested address": the first case below)."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode:
        pytest.skip("unshare -n is not permitted here")
    url = f"postgresql://postgres:pw@db.{PROD}.supabase.co:5432/postgres?hostaddr=2001:db8::1"
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    kit = f"{sys.executable} -m kit status --db-url '{url}'"
    for setup in ("", "ip link set lo up && "):
        done = subprocess.run(["unshare", "-n", "sh", "-c", setup + kit], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 3, done.stderr
        assert done.stderr == (f"kit: error: cannot reach db.{PROD}.supabase.co:5432: the network is unreachable, the "
                               "direct host has only an IPv6 address and this network has no IPv6: use the session "
                               f"pooler, postgresql://postgres.{PROD}:PASSWORD@aws-0-REGION.pooler.supabase.com:5432/"
                               "postgres (dashboard > Connect > Session pooler)\n")
