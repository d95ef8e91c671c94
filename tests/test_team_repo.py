"""The kit used inside a team's own Supabase repo (tests/team_repo), end to end on a real PostgreSQL
with the real, pinned Supabase CLI:

(a) a preview branch: an empty database pushed with `supabase db push` from the team's folder after
    `kit init` ends migrated, seed included;
(b) production: a database holding the team's history and rows passes `kit deploy --workdir TEAM`
    while usage rows keep arriving, and `supabase migration list` shows every version applied;
(c) the kit's own folder against that production database refuses with advice that keeps its history.
"""

import subprocess
from pathlib import Path

import psycopg

from kit.migrations import history
from tests.helpers import ROOT, SQL_DIR, TEAM_VERSIONS, cli_list, query
from tests.snapshot import data, schema
from tests.writers import TeamWriter


def cli_push(cli: str, url: str, folder: Path, *extra: str) -> None:
    result = subprocess.run([cli, "db", "push", f"--remote={url}", "--yes", "--workdir", str(folder), *extra],
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr


def init_change(run_kit, folder: Path, *extra: str) -> str:
    run = run_kit("init", "--workdir", str(folder), "--json", *extra)
    assert run.code == 0, run.err
    assert run.json["baseline"] == "not added: the tables are created by 20240315093000_llm_tracking.sql"
    assert len(run.json["added"]) == 1
    return Path(run.json["added"][0]).name.split("_")[0]


def test_a_preview_branch_built_from_the_team_repo_ends_migrated(team, make_db, run_kit, supabase_cli):
    """What the Supabase GitHub integration does for a pull request: migrations, then seed.sql."""
    change = init_change(run_kit, team)
    url = make_db("kit_tpl_supabase")
    cli_push(supabase_cli, url, team, "--include-seed")
    versions = TEAM_VERSIONS + [change]
    assert cli_list(supabase_cli, url, team) == {v: v for v in versions}
    status = run_kit("status", "--workdir", str(team), "--db-url", url, "--json")
    assert status.code == 0, status.err
    assert (status.json["phase"], status.json["pending"], status.json["applied"]) == ("migrated", [], versions)
    assert status.json["unknown_remote"] == [] and status.json["blockers"] == []
    assert run_kit("verify", "--workdir", str(team), "--db-url", url).code == 0
    assert query(url, "select handle from profiles order by 1") == [("alice",), ("bob",)]
    assert query(url, "select count(*) from projects") == [(2,)]
    assert query(url, "select name from llm_providers order by 1") == [("anthropic",), ("openai",)]


def production(make_db, supabase_cli, team: Path) -> str:
    """The team's production: its history pushed by the CLI a while ago, then a year of rows."""
    url = make_db("kit_tpl_supabase")
    cli_push(supabase_cli, url, team)
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in history.split_statements((SQL_DIR / "local_data.sql").read_text()):
            conn.execute(statement.encode(), prepare=False)
        conn.execute("insert into profiles (handle) values ('carol')")
    return url


def test_production_deploys_from_the_team_repo_and_the_kit_folder_refuses_safely(team, make_db, run_kit, clean_env,
                                                                                  supabase_cli, tmp_path):
    url = production(make_db, supabase_cli, team)
    clean_env.chdir(tmp_path)  # backups and reports go here; with no supabase/ here or above, the kit's own folder
    change = init_change(run_kit, team, "--db-url", url)
    assert int(change) > int(TEAM_VERSIONS[-1])

    # (c) the kit's own folder: refused before anything changes, the missing versions named,
    # the safe ways on given, reverting never suggested.
    before = (schema(url), data(url))
    for argv in (["push", "--yes"], ["deploy", "--yes"]):
        run = run_kit(*argv, "--db-url", url)
        assert run.code == 4, run.err
        text = run.err if argv[0] == "push" else run.out
        assert (f"the database's migration history has 3 version(s) that {ROOT}/supabase/migrations lacks: "
                f"{', '.join(TEAM_VERSIONS)}; nothing was changed: run the kit from the repo that has them (cd "
                "there, or pass --workdir ../your-app; `kit init --workdir ../your-app` adds the change there), "
                "or copy them here with `npx supabase migration fetch`; do not mark versions that are in the "
                "database as reverted") in text
        assert "repair" not in run.out + run.err
    status = run_kit("status", "--db-url", url, "--json")
    assert status.json["unknown_remote"] == TEAM_VERSIONS and status.json["phase"] == "before"
    assert (schema(url), data(url)) == before

    # From the team's folder: the team's versions are the history, the change is the one pending file.
    status = run_kit("status", "--workdir", str(team), "--db-url", url, "--json")
    assert (status.json["applied"], status.json["pending"], status.json["unknown_remote"]) == \
        (TEAM_VERSIONS, [change], [])
    assert status.json["phase"] == "before" and status.json["blockers"] == []
    clean_env.chdir(team / "supabase" / "migrations")  # run from inside the team's repo: found upward
    inside = run_kit("status", "--db-url", url, "--json")
    assert {k: inside.json[k] for k in ("applied", "pending", "unknown_remote", "phase")} == \
        {k: status.json[k] for k in ("applied", "pending", "unknown_remote", "phase")}
    clean_env.chdir(tmp_path)

    # (b) deploy from the team's folder while usage rows keep arriving.
    rows_before = query(url, "select count(*) from llm_usage")[0][0]
    writer = TeamWriter(url)
    writer.start()
    try:
        # the year of rows was written by an older client that sent the UUIDs: preflight names it, and
        # this team has fixed that client
        deploy = run_kit("deploy", "--workdir", str(team), "--db-url", url, "--yes", "--allow-legacy-statements",
                         "--json")
    finally:
        writer.stop.set()
        writer.join(30)
    assert deploy.code == 0, deploy.out + deploy.err
    assert deploy.json["applied"] == [change] and deploy.json["phase"] == "migrated"
    assert any("provider_id" in s["query"] for s in deploy.json["legacy_statements"])
    assert writer.errors == [] and writer.inserted > 0
    assert query(url, "select count(*) from llm_usage where agent_name = 'team-writer'") == [(writer.inserted,)]
    assert query(url, "select count(*) from llm_usage")[0][0] == rows_before + writer.inserted
    assert query(url, "select count(*) from profiles") == [(1,)]
    assert cli_list(supabase_cli, url, team) == {v: v for v in TEAM_VERSIONS + [change]}


def test_the_local_default_is_built_from_the_team_history_and_deploys(team, run_kit, clean_env, tmp_path):
    """With nothing configured, the local default gets the team's migrations before the change, then data."""
    change = init_change(run_kit, team)
    clean_env.chdir(tmp_path)
    try:
        status = run_kit("status", "--workdir", str(team), "--json")
        assert status.code == 0, status.err
        assert (status.json["phase"], status.json["applied"], status.json["pending"], status.json["unknown_remote"]) \
            == ("before", TEAM_VERSIONS, [change], [])
        deploy = run_kit("deploy", "--workdir", str(team), "--json")
        assert deploy.code == 0, deploy.out + deploy.err
        assert deploy.json["applied"] == [change] and deploy.json["phase"] == "migrated"
    finally:
        run_kit("local", "down")
