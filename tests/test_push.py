"""`kit push` through all three routes on a real PostgreSQL, checked against the real Supabase CLI.

The `api` route talks to tests/standin_query.py, a local HTTP server that implements the
Management API's query endpoint on the test database, because the real API cannot be reached here.
"""

import re
import subprocess
import threading

import pytest

from kit import push, settings as settings_mod
from kit.errors import Refused
from kit.migrations.plan import PUSH_LOCK_KEY
from tests.helpers import API_REF, API_TOKEN, ROOT, VERSIONS, cli_list, history_rows, query, silent_port, workdir_with
from tests.snapshot import data, schema
from tests.standin import serve
from tests.standin_query import query_route

REF, TOKEN = API_REF, API_TOKEN


def push_args(via: str, url: str) -> list[str]:
    return ["push", "--via", via, "--yes", "--json"] + ([] if via == "api" else ["--db-url", url])


@pytest.mark.parametrize("via", ["cli", "direct", "api"])
def test_push_applies_then_applies_nothing_and_the_cli_agrees(via, request, db_url, run_kit, supabase_cli):
    if via == "api":
        request.getfixturevalue("api_env")
    first = run_kit(*push_args(via, db_url))
    assert first.code == 0, first.err
    assert first.json["applied"] == VERSIONS and first.json["pending"] == VERSIONS
    assert cli_list(supabase_cli, db_url) == {v: v for v in VERSIONS}
    assert [r[0] for r in history_rows(db_url)] == VERSIONS
    assert run_kit("verify", "--db-url", db_url).code == 0
    second = run_kit(*push_args(via, db_url))
    assert second.code == 0, second.err
    assert second.json["applied"] == [] and second.json["pending"] == []


@pytest.mark.parametrize("via", ["direct", "api"])
def test_history_rows_are_written_exactly_as_the_cli_writes_them(via, request, make_db, db_url, run_kit,
                                                                 supabase_cli):
    if via == "api":
        request.getfixturevalue("api_env")
    by_cli = make_db()
    subprocess.run([supabase_cli, "db", "push", f"--remote={by_cli}", "--yes", "--workdir", str(ROOT)],
                   check=True, capture_output=True, timeout=180)
    assert run_kit(*push_args(via, db_url)).code == 0
    assert history_rows(db_url) == history_rows(by_cli)


@pytest.mark.parametrize("via", ["cli", "direct"])
def test_dry_run_lists_and_changes_nothing(via, db_url, run_kit):
    before = (schema(db_url), data(db_url))
    run = run_kit("push", "--via", via, "--db-url", db_url, "--dry-run", "--json")
    assert run.code == 0, run.err
    assert run.json["dry_run"] is True and run.json["pending"] == VERSIONS and run.json["applied"] == []
    assert (schema(db_url), data(db_url)) == before
    assert query(db_url, "select to_regclass('supabase_migrations.schema_migrations')") == [(None,)]


def test_dry_run_through_the_api_changes_nothing(api_env, db_url, run_kit):
    before = (schema(db_url), data(db_url))
    run = run_kit("push", "--via", "api", "--dry-run", "--json")
    assert run.code == 0, run.err
    assert run.json["pending"] == VERSIONS
    assert (schema(db_url), data(db_url)) == before
    assert {r.path for r in api_env.requests} == {f"/v1/projects/{REF}/database/query"}


@pytest.mark.parametrize("via", ["cli", "direct", "api"])
def test_unknown_remote_version_is_refused_with_advice_that_keeps_the_history(via, request, db_url, run_kit):
    if via == "api":
        request.getfixturevalue("api_env")
    query(db_url, "create schema supabase_migrations; create table supabase_migrations.schema_migrations "
                  "(version text primary key, statements text[], name text); "
                  "insert into supabase_migrations.schema_migrations values ('20250505000000', '{}', 'elsewhere')")
    before = schema(db_url)
    run = run_kit(*push_args(via, db_url))
    assert run.code == 4
    assert run.err == ("kit: error: the database's migration history has 1 version(s) that "
                       f"{ROOT}/supabase/migrations lacks: 20250505000000; nothing was changed: run the kit from "
                       "the repo that has them (cd there, or pass --workdir ../your-app; `kit init --workdir "
                       "../your-app` adds the change there), or copy them here with `npx supabase migration "
                       "fetch`; do not mark versions that are in the database as reverted\n")
    assert "repair" not in run.err
    assert schema(db_url) == before


@pytest.mark.parametrize("via", ["cli", "direct", "api"])
def test_a_squawk_finding_blocks_the_push_unless_no_lint(via, request, db_url, run_kit, tmp_path):
    if via == "api":
        request.getfixturevalue("api_env")
    folder = workdir_with(tmp_path, "20261201000000_agent_index.sql",
                          "create index llm_usage_agent_idx on public.llm_usage (agent_name);\n")
    before = schema(db_url)
    run = run_kit(*push_args(via, db_url), "--workdir", str(folder))
    assert run.code == 4
    assert run.err.startswith("kit: error: squawk found 3 problem(s), first: 20261201000000_agent_index.sql:1: "
                              "require-concurrent-index-creation: ")
    assert run.err.endswith("fix the file, annotate a deliberate exception with `-- squawk-ignore RULE` and its "
                            "reason, or push with --no-lint\n")
    assert schema(db_url) == before
    forced = run_kit(*push_args(via, db_url), "--workdir", str(folder), "--no-lint")
    assert forced.code == 0, forced.err
    assert forced.json["applied"] == VERSIONS + ["20261201000000"]


BROKEN = "create table public.half_done (n int);\nselect 1 / 0;\n"


@pytest.mark.parametrize("via", ["cli", "direct", "api"])
def test_a_failing_file_exits_8_naming_it_and_nothing_of_it_is_applied(via, request, db_url, run_kit, tmp_path):
    """A SQL error in a pending file, on each route; the api route's through the stand-in (the real Management
    API cannot be reached from here), which answers a failed query with its SQLSTATE in the message text."""
    if via == "api":
        request.getfixturevalue("api_env")
    folder = workdir_with(tmp_path, "20261201000000_broken.sql", BROKEN)
    run = run_kit(*push_args(via, db_url), "--workdir", str(folder), "--no-lint")
    assert (run.code, run.err) == (8, "kit: error: 20261201000000_broken.sql failed and rolled back, nothing of it "
                                      "was applied: division by zero (SQLSTATE 22012); fix the file, then push again\n")
    assert [r[0] for r in history_rows(db_url)] == VERSIONS
    assert query(db_url, "select to_regclass('public.half_done')") == [(None,)]


def test_the_repo_migrations_lint_clean(db_url, run_kit):
    run = run_kit("push", "--db-url", db_url, "--dry-run", "--json")
    assert run.json["linted"] is True and run.json["findings"] == []


SLOW = "select pg_sleep(3);\ncreate table public.push_count (n int);\ninsert into public.push_count values (1);\n"


@pytest.mark.parametrize("first,second", [("cli", "direct"), ("direct", "cli"), ("direct", "direct")])
def test_two_pushes_at_once_one_applies_the_other_refuses(first, second, db_url, tmp_path, clean_env):
    folder = workdir_with(tmp_path, "20261201000000_slow.sql", SLOW)
    s = settings_mod.load({"db_url": db_url, "workdir": str(folder)}, environ={}, cwd=ROOT)
    outcome = {}

    def push_first():
        outcome["first"] = push.run(s, first, lint_files=False)

    worker = threading.Thread(target=push_first)
    worker.start()
    _wait_for_lock(db_url)
    with pytest.raises(Refused, match=r"^another push is running against this database \(pid \d+\); nothing was "
                                      r"applied: wait for it to finish, then push again$"):
        push.run(s, second, lint_files=False, lock_wait_s=0.5)
    worker.join()
    assert outcome["first"].applied == VERSIONS + ["20261201000000"]
    assert query(db_url, "select count(*) from public.push_count") == [(1,)]
    assert [r[0] for r in history_rows(db_url)] == VERSIONS + ["20261201000000"]


def test_two_api_pushes_at_once_one_applies_the_other_refuses(api_env, db_url, tmp_path, clean_env):
    folder = workdir_with(tmp_path, "20261201000000_slow.sql", SLOW)
    s = settings_mod.load({"workdir": str(folder)}, cwd=ROOT)
    results = {}

    def push_api(name):
        try:
            results[name] = push.run(s, "api", lint_files=False, lock_wait_s=0.5)
        except Refused as exc:
            results[name] = exc

    workers = [threading.Thread(target=push_api, args=(n,)) for n in ("a", "b")]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    refused = [r for r in results.values() if isinstance(r, Refused)]
    assert len(refused) == 1, results
    assert "another push" in str(refused[0]) and "nothing of it was applied" in str(refused[0])
    assert query(db_url, "select count(*) from public.push_count") == [(1,)]
    assert [r[0] for r in history_rows(db_url)] == VERSIONS + ["20261201000000"]


def _wait_for_lock(url: str) -> None:
    import time

    for _ in range(300):
        if query(url, "select count(*) from pg_locks where locktype = 'advisory' and granted "
                      "and (classid::bigint << 32 | objid::bigint) = %s", (PUSH_LOCK_KEY,))[0][0]:
            return
        time.sleep(0.05)
    raise AssertionError("the first push never took the push lock")


@pytest.mark.parametrize("via", ["cli", "direct"])
def test_a_blocker_is_refused_with_its_name_and_nothing_changes(via, state_db, run_kit):
    url = state_db("blocker_duplicate_model")
    before = (schema(url), data(url))
    run = run_kit(*push_args(via, url))
    assert run.code == 4
    assert run.err.startswith("kit: error: llm name keys: refusing to migrate, nothing was changed. 1 blocker(s): "
                              "model name ")
    assert (schema(url), data(url)) == before


def test_a_blocker_through_the_api_is_refused_and_nothing_changes(clean_env, state_db, run_kit):
    url = state_db("blocker_duplicate_model")
    before = (schema(url), data(url))
    with serve(query_route(url, REF, TOKEN)) as api:
        clean_env.setenv("SUPABASE_API_URL", api.url)
        clean_env.setenv("SUPABASE_ACCESS_TOKEN", TOKEN)
        clean_env.setenv("SUPABASE_PROJECT_REF", REF)
        run = run_kit("push", "--via", "api", "--yes")
    assert run.code == 4
    plan, error = run.err.splitlines()
    assert plan == f"plan: target default, project {REF}"
    assert error.startswith("kit: error: llm name keys: refusing to migrate, nothing was changed. 1 blocker(s): ")
    assert error.endswith("; 20261124120000_llm_name_keys.sql rolled back, nothing of it was applied")
    assert (schema(url), data(url)) == before


def test_a_wrong_access_token_is_one_line(api_env, run_kit, clean_env):
    clean_env.setenv("SUPABASE_ACCESS_TOKEN", "kit-test-token-wrong")
    run = run_kit("push", "--via", "api", "--yes")
    assert run.code == 2
    assert run.err.split("\n", 1)[1] == ("kit: error: the Management API refused the access token (POST /v1/projects/"
                       f"{REF}/database/query: 401); check SUPABASE_ACCESS_TOKEN\n")


def test_a_remote_database_needs_yes(run_kit):
    run = run_kit("push", "--db-url", "postgresql://postgres:pw@db.example.invalid:5432/postgres")
    assert run.code == 4
    assert run.err == ("kit: error: push migrations to target db.example.invalid-5432-postgres (host "
                       "db.example.invalid:5432, project not known) needs confirmation: pass --yes\n")


def test_connection_problems_are_one_line_each(pg, db_url, run_kit, clean_env):
    name = db_url.rsplit("/", 1)[1]
    wrong = run_kit("push", "--db-url", pg.password_url(name, "not-the-password"))
    assert wrong.code == 3
    assert wrong.err == (f"kit: error: wrong password or user for 127.0.0.1:{pg.port}: check the password in "
                         "--db-url (dashboard > Connect)\n")
    with silent_port() as port:
        clean_env.setenv("KIT_CONNECT_TIMEOUT", "1")
        hung = run_kit("push", "--db-url", f"postgresql://postgres@127.0.0.1:{port}/postgres")
    assert hung.code == 3
    assert hung.err == (f"kit: error: no answer from 127.0.0.1:{port} within the connect timeout: check the host, "
                        "port and network (KIT_CONNECT_TIMEOUT)\n")


@pytest.mark.parametrize("via", ["cli", "direct", "api"])
def test_a_push_while_another_holds_the_lock_exits_4(via, request, db_url, run_kit):
    import psycopg

    if via == "api":
        request.getfixturevalue("api_env")
    with psycopg.connect(db_url, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(%s)", (PUSH_LOCK_KEY,))
        pid = holder.info.backend_pid
        run = run_kit(*push_args(via, db_url))
    assert run.code == 4
    if via == "api":
        assert run.err == ("kit: error: kit push: another push is running against this database; "
                           "20240101000000_llm_tables_baseline.sql rolled back, nothing of it was applied\n")
    else:
        assert run.err == (f"kit: error: another push is running against this database (pid {pid}); nothing was "
                           "applied: wait for it to finish, then push again\n")
    assert query(db_url, "select to_regclass('supabase_migrations.schema_migrations')") == [(None,)]


def test_the_cli_route_reports_the_lock_error_the_database_raised(db_url, run_kit, clean_env):
    """A reader holds llm_usage; the CLI echoes the whole migration (every `raise` text in it) after the
    error, and the kit must show the one the database raised, with its numbers and the holder's pid."""
    import psycopg

    clean_env.setenv("PGOPTIONS", "-c kit.lock_wait_s=1")
    with psycopg.connect(db_url) as holder:
        holder.execute("select count(*) from public.llm_usage")  # its transaction stays open
        pid = holder.info.backend_pid
        run = run_kit(*push_args("cli", db_url))
        holder.rollback()
    assert run.code == 4, run.err
    assert re.fullmatch(r"kit: error: llm name keys: could not lock the LLM tables in 1 s \(\d+ attempts\); held by "
                        rf"pid {pid} \(no name, idle in transaction\)\n", run.err), run.err
    assert [r[0] for r in history_rows(db_url)] == VERSIONS[:1]
