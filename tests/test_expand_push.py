"""The two steps pushed for real: by the pinned Supabase CLI from a team's repo (production whose history has
the team's later migrations; a fresh preview branch, both steps in one push or in two), linted by squawk,
and from the kit's own folder (the steps staged in place of the one-step file) by every route, each writing
the history rows `supabase db push` writes. The api route talks to tests/standin_query.py, a local stand-in
for the Management API's query endpoint (which cannot be reached from here), backed by the real database."""

import subprocess
from pathlib import Path

import psycopg
import pytest

from kit import settings as settings_mod
from kit.migrations import history, lint, workdir
from tests.helpers import ROOT, SQL_DIR, TEAM_VERSIONS, cli_list, history_rows, query

KIT = {"expand": "20261124120001", "contract": "20261124120002"}
LATER = "create table public.llm_budgets (provider_name varchar(255) primary key, monthly_usd numeric);\n"


def cli_push(cli: str, url: str, folder: Path, *extra: str) -> str:
    result = subprocess.run([cli, "db", "push", f"--remote={url}", "--yes", "--workdir", str(folder), *extra],
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def init(run_kit, team: Path, *extra: str) -> str:
    run = run_kit("init", "--workdir", str(team), "--json", *extra)
    assert run.code == 0, run.err
    assert len(run.json["added"]) == 1, run.json
    return Path(run.json["added"][0]).name.split("_")[0]


def phase(run_kit, team: Path, url: str) -> tuple:
    status = run_kit("status", "--workdir", str(team), "--db-url", url, "--json")
    assert status.code == 0, status.err
    return status.json["phase"], status.json["pending"], status.json["unknown_remote"]


def test_both_template_files_lint_clean():
    files = [workdir.Migration(KIT[step], f"llm_name_keys_{step}", workdir.TEMPLATES / f"llm_name_keys_{step}.sql")
             for step in KIT]
    assert lint.run(files, ROOT) == []


def test_a_preview_branch_takes_both_steps_in_one_push(team, make_db, run_kit, supabase_cli):
    expand, contract = init(run_kit, team, "--expand"), init(run_kit, team)
    assert int(TEAM_VERSIONS[-1]) < int(expand) < int(contract)
    url = make_db("kit_tpl_supabase")
    cli_push(supabase_cli, url, team, "--include-seed")
    assert cli_list(supabase_cli, url, team) == {v: v for v in TEAM_VERSIONS + [expand, contract]}
    assert phase(run_kit, team, url) == ("migrated", [], [])
    assert run_kit("verify", "--workdir", str(team), "--db-url", url).code == 0
    assert query(url, "select name from llm_providers order by 1") == [("anthropic",), ("openai",)]


def test_a_preview_branch_takes_the_expand_then_the_contract_in_a_later_push(team, make_db, run_kit, supabase_cli):
    expand = init(run_kit, team, "--expand")
    url = make_db("kit_tpl_supabase")
    cli_push(supabase_cli, url, team, "--include-seed")
    assert phase(run_kit, team, url) == ("expanded", [], [])
    verify = run_kit("verify", "--workdir", str(team), "--db-url", url, "--json")
    assert verify.code == 0 and "UUID columns kept for old clients, nullable" in [c["name"] for c in verify.json["checks"]]
    contract = init(run_kit, team)
    assert phase(run_kit, team, url) == ("expanded", [contract], [])
    cli_push(supabase_cli, url, team)
    assert cli_list(supabase_cli, url, team) == {v: v for v in TEAM_VERSIONS + [expand, contract]}
    assert phase(run_kit, team, url) == ("migrated", [], [])
    assert run_kit("verify", "--workdir", str(team), "--db-url", url).code == 0


def test_production_takes_the_expand_then_later_team_migrations_then_the_contract(team, make_db, run_kit,
                                                                                 supabase_cli):
    url = make_db("kit_tpl_supabase")
    cli_push(supabase_cli, url, team)
    with psycopg.connect(url, autocommit=True) as conn:  # a year of rows, a third of them with UUIDs
        for statement in history.split_statements((SQL_DIR / "local_data.sql").read_text()):
            conn.execute(statement.encode(), prepare=False)
    expand = init(run_kit, team, "--expand", "--db-url", url)
    out = cli_push(supabase_cli, url, team)
    assert f"Applying migration {expand}_llm_name_keys_expand.sql" in out
    assert phase(run_kit, team, url) == ("expanded", [], [])
    later = "20990101000000"  # the team goes on shipping while old agents drain
    (team / "supabase" / "migrations" / f"{later}_llm_budgets.sql").write_text(LATER)
    cli_push(supabase_cli, url, team)
    contract = init(run_kit, team, "--db-url", url)
    assert int(contract) > int(later)
    cli_push(supabase_cli, url, team)
    assert cli_list(supabase_cli, url, team) == {v: v for v in TEAM_VERSIONS + [expand, later, contract]}
    assert phase(run_kit, team, url) == ("migrated", [], [])
    assert run_kit("verify", "--workdir", str(team), "--db-url", url).code == 0


@pytest.mark.parametrize("via", ["cli", "direct", "api"])
def test_every_route_records_both_steps_as_the_cli_does(via, request, make_db, db_url, run_kit, supabase_cli):
    """From the kit's own folder: --expand stages the expand file in place of the one-step file; the next push
    (the history has the expand step) stages the contract after it."""
    if via == "api":
        request.getfixturevalue("api_env")
    target = [] if via == "api" else ["--db-url", db_url]
    first = run_kit("push", "--expand", "--via", via, "--yes", "--json", *target)
    assert first.code == 0, first.err
    assert first.json["applied"] == ["20240101000000", KIT["expand"]]
    second = run_kit("push", "--via", via, "--yes", "--json", *target)
    assert second.code == 0, second.err
    assert second.json["applied"] == [KIT["contract"]]
    assert run_kit("push", "--via", via, "--yes", "--json", *target).json["applied"] == []
    staged = workdir.folder(settings_mod.load({"db_url": db_url}, environ={}, cwd=ROOT),
                            ["20240101000000", KIT["expand"]])
    by_cli = make_db()
    staged_expand = workdir.folder(settings_mod.load({"db_url": by_cli, "expand": True}, environ={}, cwd=ROOT))
    cli_push(supabase_cli, by_cli, staged_expand)
    cli_push(supabase_cli, by_cli, staged)
    assert history_rows(db_url) == history_rows(by_cli)
    assert cli_list(supabase_cli, db_url, staged) == {v: v for v in ["20240101000000", *KIT.values()]}
    assert run_kit("verify", "--db-url", db_url).code == 0


def test_deploy_on_an_expanded_database_whose_repo_lacks_the_contract_says_how_to_add_it(
        team, make_db, run_kit, supabase_cli, in_tmp):
    expand = init(run_kit, team, "--expand")
    url = make_db("kit_tpl_supabase")
    cli_push(supabase_cli, url, team)
    with psycopg.connect(url, autocommit=True) as conn:  # providers and models for the smoke step
        for statement in history.split_statements((SQL_DIR / "local_data.sql").read_text()):
            conn.execute(statement.encode(), prepare=False)
    deploy = run_kit("deploy", "--workdir", str(team), "--db-url", url, "--yes", "--json")
    assert deploy.code == 2
    assert deploy.json["error"] == (f"the LLM tables are expanded and {team}/supabase/migrations has no "
                                    "*_llm_name_keys_contract.sql: once kit status lists no client of the UUID "
                                    f"columns, add it with `kit init --workdir {team}`, commit it, then deploy")
    again = run_kit("deploy", "--expand", "--workdir", str(team), "--db-url", url, "--yes", "--json")
    assert again.code == 0, again.json["error"]
    assert (again.json["phase"], again.json["applied"]) == ("expanded", [])
    assert cli_list(supabase_cli, url, team)[expand] == expand


def test_kit_init_adds_each_step_once_and_refuses_the_expand_beside_the_one_step_change(team, run_kit):
    first = run_kit("init", "--workdir", str(team), "--expand")
    assert first.code == 0, first.err
    again = run_kit("init", "--workdir", str(team), "--expand", "--json")
    assert (again.json["already"], again.json["step"]) == (True, "llm_name_keys_expand")
    assert "kit deploy --workdir" in first.out and "--expand" in first.out
    contract = run_kit("init", "--workdir", str(team), "--json")
    assert contract.json["step"] == "llm_name_keys_contract" and contract.json["added"][0].endswith(
        "_llm_name_keys_contract.sql")
    text = run_kit("init", "--workdir", str(team))
    assert text.out.startswith(f"the contract step is already there: {contract.json['added'][0]}; nothing added")
    names = sorted(p.name for p in (team / "supabase" / "migrations").iterdir())
    assert [n.split("_", 1)[1] for n in names[-2:]] == ["llm_name_keys_expand.sql", "llm_name_keys_contract.sql"]
    assert (team / "supabase" / "migrations" / names[-2]).read_text() == (
        workdir.TEMPLATES / "llm_name_keys_expand.sql").read_text()

    for path in (team / "supabase" / "migrations").glob("*_llm_name_keys_*.sql"):
        path.unlink()
    one_step = run_kit("init", "--workdir", str(team), "--json")
    assert one_step.json["step"] == "llm_name_keys"
    before = sorted(p.name for p in (team / "supabase" / "migrations").iterdir())
    refused = run_kit("init", "--workdir", str(team), "--expand")
    assert refused.code == 2
    assert refused.err.startswith(f"kit: error: --expand: {one_step.json['added'][0]} is the one-step change, which "
                                  "the two steps replace: remove it where no database has applied it yet")
    assert sorted(p.name for p in (team / "supabase" / "migrations").iterdir()) == before
