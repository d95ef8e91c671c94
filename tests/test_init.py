"""`kit init` on copies of a team's repo (tests/team_repo): the new file's version, the baseline rule,
reruns, the workflow and .env.example offers, and every bad input, checked on the files byte for byte.
The linked-database case reads a real PostgreSQL's history table."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kit import settings as settings_mod
from kit.init import add as init, extras as init_extras
from tests.helpers import PASSWORD, ROOT, TEAM, TEAM_VERSIONS, query

KIT_MIGRATIONS = ROOT / "supabase" / "migrations"
CHANGE_SQL = (KIT_MIGRATIONS / "20261124120000_llm_name_keys.sql").read_text()
BASELINE_SQL = (KIT_MIGRATIONS / "20240101000000_llm_tables_baseline.sql").read_text()


def tree(folder: Path) -> dict:
    """Every file under folder -> its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def migration_names(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "supabase" / "migrations").iterdir())


def test_adds_only_the_change_after_every_file_and_leaves_every_file_as_it_was(team, run_kit):
    before = tree(team)
    started = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    run = run_kit("init", "--workdir", str(team), "--json")
    assert run.code == 0, run.err
    added = run.json["added"]
    assert len(added) == 1 and added[0].endswith("_llm_name_keys.sql")
    version = Path(added[0]).name.split("_")[0]
    assert int(version) >= int(started) and int(version) > int(TEAM_VERSIONS[-1])
    assert (team / added[0]).read_text() == CHANGE_SQL
    assert run.json["baseline"] == "not added: the tables are created by 20240315093000_llm_tracking.sql"
    assert run.json["creators"] == dict.fromkeys(("llm_providers", "llm_models", "llm_usage"),
                                                 "20240315093000_llm_tracking.sql")
    after = tree(team)
    assert {k: v for k, v in after.items() if k != added[0]} == before


def test_the_version_follows_the_linked_databases_history_and_the_database_is_only_read(team, make_db, run_kit):
    url = make_db("kit_tpl_supabase")
    query(url, "create schema supabase_migrations; create table supabase_migrations.schema_migrations "
               "(version text primary key, statements text[], name text); "
               "insert into supabase_migrations.schema_migrations values "
               "('20991231235959', '{}', 'made_on_another_branch'), ('20231110080000', '{}', 'create_profiles')")
    history = query(url, "select * from supabase_migrations.schema_migrations order by version")
    run = run_kit("init", "--workdir", str(team), "--db-url", url, "--json")
    assert run.code == 0, run.err
    assert run.json["added"] == ["supabase/migrations/21000101000000_llm_name_keys.sql"]
    assert run.json["database_versions"] == 2
    assert query(url, "select * from supabase_migrations.schema_migrations order by version") == history
    text = run_kit("init", "--workdir", str(team), "--db-url", url)
    assert "the change is already there: supabase/migrations/21000101000000_llm_name_keys.sql; nothing added" \
        in text.out


def test_a_rerun_names_the_file_and_adds_nothing(team, run_kit):
    first = run_kit("init", "--workdir", str(team), "--with-workflow", "--with-env-example")
    assert first.code == 0, first.err
    before = tree(team)
    again = run_kit("init", "--workdir", str(team), "--with-workflow", "--with-env-example", "--json")
    assert again.code == 0, again.err
    assert again.json["already"] is True and again.json["added"] == []
    assert again.json["change"] in before and again.json["change"].endswith("_llm_name_keys.sql")
    assert tree(team) == before
    plain = run_kit("init", "--workdir", str(team))
    assert plain.out.startswith(f"the change is already there: {again.json['change']}; nothing added\n")
    assert tree(team) == before


def test_the_baseline_comes_only_when_nothing_creates_the_tables(team):
    (team / "supabase" / "migrations" / "20240315093000_llm_tracking.sql").unlink()
    now = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    s = settings_mod.load({"workdir": str(team)}, environ={}, cwd=team)
    result = init.run(s, now=now)
    assert result.added == ["supabase/migrations/20270102030405_llm_tables_baseline.sql",
                            "supabase/migrations/20270102030406_llm_name_keys.sql"]
    assert result.baseline == "added: nothing in supabase/migrations creates the LLM tables"
    assert (team / result.added[0]).read_text() == BASELINE_SQL
    assert init.run(s, now=now).already is True


@pytest.mark.parametrize("flag, names", [
    (True, ["20270102030405_llm_tables_baseline.sql", "20270102030406_llm_name_keys.sql"]),
    (False, ["20270102030405_llm_name_keys.sql"]),
])
def test_with_and_no_baseline_override_the_rule(team, tmp_path, flag, names):
    bare = tmp_path / "bare"
    (bare / "supabase" / "migrations").mkdir(parents=True)
    now = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    for folder, expected in ((team, names), (bare, names)):
        s = settings_mod.load({"workdir": str(folder)}, environ={}, cwd=folder)
        init.run(s, baseline=flag, now=now)
        new = [n for n in migration_names(folder) if n not in
               ("20231110080000_create_profiles.sql", "20240315093000_llm_tracking.sql", "20250201120000_projects.sql")]
        assert new == expected


def test_creating_statements_are_found_however_they_are_written():
    found = init.CREATES_TABLE.findall(
        'CREATE TABLE IF NOT EXISTS "public"."llm_providers" (x int);\ncreate unlogged table public.llm_models();'
        "\ncreate table llm_usage_archive (x int); create table llm_usage(\n")
    assert found == ["llm_providers", "llm_models", "llm_usage"]


def test_commented_out_creates_do_not_count(team):
    path = team / "supabase" / "migrations" / "20240315093000_llm_tracking.sql"
    path.write_text("-- CREATE TABLE llm_providers (id uuid);\n/* create table llm_models (); */\nselect 1;\n")
    s = settings_mod.load({"workdir": str(team)}, environ={}, cwd=team)
    assert init.run(s).baseline == "added: nothing in supabase/migrations creates the LLM tables"


def test_workflow_and_env_example_are_offered_then_written_on_request(team, run_kit):
    (team / ".env.example").write_text("# the app\nSUPABASE_URL=http://localhost:54321\n# SUPABASE_DB_URL=\n")
    offered = run_kit("init", "--workdir", str(team), "--json")
    assert offered.json["workflow"] == "offered: pass --with-workflow to write .github/workflows/llm-preview-smoke.yml"
    assert "SUPABASE_URL" not in offered.json["env_missing"] and "SUPABASE_DB_URL" not in offered.json["env_missing"]
    assert {"SUPABASE_SERVICE_ROLE_KEY", "STAGING_SUPABASE_DB_URL", "KIT_TARGET"} <= set(offered.json["env_missing"])
    assert not (team / ".github").exists()
    assert (team / ".env.example").read_text().endswith("# SUPABASE_DB_URL=\n")
    shutil.rmtree(team / "supabase" / "migrations")  # a repo whose migrations folder is still to come
    (team / "supabase" / "migrations").mkdir()
    written = run_kit("init", "--workdir", str(team), "--with-workflow", "--with-env-example", "--json")
    assert written.code == 0, written.err
    assert (team / ".github/workflows/llm-preview-smoke.yml").read_text() == \
        init_extras.WORKFLOW_TEMPLATE.read_text()
    env = (team / ".env.example").read_text()
    assert env.startswith("# the app\nSUPABASE_URL=http://localhost:54321\n# SUPABASE_DB_URL=\n\n"
                          "# --- supabase-kit (added by kit init) ---\n")
    names = [line.lstrip("# ").split("=")[0] for line in env.splitlines() if "=" in line]
    assert names.count("SUPABASE_URL") == 1 and names.count("SUPABASE_DB_URL") == 1
    assert "# SUPABASE_SERVICE_ROLE_KEY=\n" in env
    assert "KIT_LOCAL_DIR" not in env and "KIT_BRANCH_URL" not in env


def test_it_prints_the_next_two_commands(team, run_kit):
    run = run_kit("init", "--workdir", str(team), "--target", "staging", "--db-url", "postgresql://x@127.0.0.1:1/x")
    assert run.code == 3  # the configured database is read first; nothing was written
    assert migration_names(team) == sorted(p.name for p in (TEAM / "supabase" / "migrations").iterdir())
    run = run_kit("init", "--workdir", str(team))
    assert run.out.endswith(f"review the file, commit it, then either:\n  npx supabase db push --workdir {team} "
                            f"--remote\n  kit deploy --workdir {team}\n")


def test_a_seed_that_writes_the_uuid_columns_is_warned_about(team, run_kit):
    (team / "supabase" / "seed.sql").write_text(
        "-- provider_id in a comment is fine\ninsert into llm_models (provider_id, name) "
        "select id, 'gpt-4o' from llm_providers where name = 'openai';\n")
    run = run_kit("init", "--workdir", str(team))
    assert "warning: supabase/seed.sql mentions provider_id: preview branches run it after the change, where " \
           "those columns are gone; write provider_name and model_name instead\n" in run.out


def test_no_supabase_folder_is_one_line_and_exit_2(tmp_path, run_kit):
    run = run_kit("init", "--workdir", str(tmp_path))
    assert run.code == 2 and run.out == ""
    assert run.err == (f"kit: error: {tmp_path} has no supabase/ folder: run `npx supabase init` there first, or "
                       "pass --workdir the folder of your app that contains supabase/\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("clash", ["migration", "workflow"])
def test_a_name_clash_is_one_line_exit_2_and_writes_nothing(team, run_kit, clash):
    if clash == "migration":
        path = team / "supabase" / "migrations" / "20250301000000_llm_name_keys.sql"
        path.write_text("alter table llm_usage drop column model_id;\n")
        expected = ("kit: error: supabase/migrations/20250301000000_llm_name_keys.sql has the kit's file name but "
                    "other content: rename or remove it (or keep it and pass --no-baseline if it is a baseline), "
                    "then run kit init again\n")
    else:
        path = team / ".github" / "workflows" / "llm-preview-smoke.yml"
        path.parent.mkdir(parents=True)
        path.write_text("name: ours\n")
        expected = ("kit: error: .github/workflows/llm-preview-smoke.yml exists with other content: rename it, "
                    "or run kit init without --with-workflow\n")
    before = tree(team)
    run = run_kit("init", "--workdir", str(team), "--with-workflow")
    assert (run.code, run.err) == (2, expected)
    assert tree(team) == before


def test_an_unwritable_folder_is_one_line_exit_2():
    """The migrations folder is read-only: a read-only bind mount as root (who may write anywhere else,
    and whose checkout may lie under a 0700 folder another user cannot read), mode 0555 otherwise."""
    with tempfile.TemporaryDirectory(dir="/tmp") as base:
        folder = Path(base) / "your-app"
        shutil.copytree(TEAM, folder)
        migrations = folder / "supabase" / "migrations"
        before = tree(folder)
        if os.geteuid() == 0:
            subprocess.run(["mount", "--bind", str(migrations), str(migrations)], check=True)
            subprocess.run(["mount", "-o", "remount,bind,ro", str(migrations)], check=True)
        else:
            migrations.chmod(0o555)
        try:
            result = subprocess.run([sys.executable, "-m", "kit", "init", "--workdir", str(folder)],
                                    capture_output=True, text=True, cwd=base, timeout=120,
                                    env={"PATH": os.environ["PATH"], "HOME": base, "PYTHONPATH": str(ROOT)})
        finally:
            if os.geteuid() == 0:
                subprocess.run(["umount", str(migrations)], check=True)
            else:
                migrations.chmod(0o755)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (f"kit: error: {migrations} is not writable: make it writable "
                                 "(or run as its owner), then run kit init again\n")
        assert tree(folder) == before


def test_a_baseline_of_their_own_clashes_only_when_the_kits_would_be_added(team, run_kit):
    """The team's own *_llm_tables_baseline.sql that creates the tables is theirs: no clash, no baseline."""
    own = team / "supabase" / "migrations" / "20240315093000_llm_tracking.sql"
    own.rename(own.with_name("20240315093000_llm_tables_baseline.sql"))
    run = run_kit("init", "--workdir", str(team), "--json")
    assert run.code == 0, run.err
    assert run.json["baseline"] == "not added: the tables are created by 20240315093000_llm_tables_baseline.sql"
    forced = run_kit("init", "--workdir", str(team), "--with-baseline")
    assert forced.code == 0 and "the change is already there" in forced.out


def test_the_database_password_is_in_no_output_or_file(team, make_db, pg, run_kit, clean_env):
    url = make_db("kit_tpl_supabase")
    clean_env.setenv("SUPABASE_DB_URL", pg.password_url(url.rsplit("/", 1)[1]))
    for argv in (["--json"], [], ["--with-env-example", "--with-workflow"]):
        run = run_kit("init", "--workdir", str(team), *argv)
        assert run.code == 0, run.err
        assert PASSWORD not in run.out + run.err
        if argv == ["--json"]:
            assert run.json["database_versions"] == 0  # the database was read, through the password URL
    for added in (team / "supabase" / "migrations").glob("*_llm_name_keys.sql"):
        added.unlink()  # so the next run reads the database again
    clean_env.setenv("SUPABASE_DB_URL", pg.password_url(url.rsplit("/", 1)[1], "wrong-" + PASSWORD))
    wrong = run_kit("init", "--workdir", str(team))
    assert wrong.code == 3 and PASSWORD not in wrong.out + wrong.err
    assert all(PASSWORD not in p.read_text(errors="replace") for p in team.rglob("*") if p.is_file())
