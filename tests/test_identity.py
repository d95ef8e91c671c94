"""A backup knows its database: the manifest records its identity, a rollback refuses a backup of
another database before writing anything, backups and reports are filed under names a person can
tell apart, and the rollback command a deploy prints runs as printed.

Everything here runs on the real test server; the databases of one server share a system
identifier and differ by name and oid, which is what the identity check compares there.
"""

import json
import shlex
from pathlib import Path

import pytest

from kit import settings as settings_mod
from tests.helpers import FAILING_LATER, PASSWORD, PASSWORD_USER, ROOT, query, workdir_with
from tests.snapshot import data, schema


def test_the_manifest_records_the_databases_identity_and_no_password(pg, db_url, run_kit, in_tmp):
    name = db_url.rsplit("/", 1)[1]
    run = run_kit("backup", "--db-url", pg.password_url(name), "--json")
    assert run.code == 0, run.err
    folder = Path(run.json["path"])
    ident = json.loads((folder / "manifest.json").read_text())["identity"]
    system, oid = query(db_url, "select (select system_identifier::text from pg_control_system()), "
                                "(select oid::bigint from pg_database where datname = current_database())")[0]
    assert ident == {"system_identifier": system, "database": name, "database_oid": oid, "host": "127.0.0.1",
                     "port": pg.port, "user": PASSWORD_USER, "project_ref": None, "target": None,
                     "url_from": "--db-url", "parameters": {}}
    assert all(PASSWORD not in p.read_text(errors="replace") for p in folder.iterdir())
    assert folder.parent == in_tmp / "backups" / f"127.0.0.1-{pg.port}-{name}"


def test_a_backup_of_another_database_is_refused_and_nothing_is_written(make_db, run_kit, in_tmp, pg):
    a, b = make_db(), make_db()
    backup = run_kit("backup", "--db-url", a, "--json").json["path"]
    assert run_kit("push", "--via", "direct", "--db-url", b, "--yes").code == 0
    before = (schema(b), data(b), query(b, "select version from supabase_migrations.schema_migrations order by 1"))
    run = run_kit("rollback", backup, "--db-url", b, "--yes")
    assert run.code == 4
    (name_a, oid_a), (name_b, oid_b) = [query(u, "select datname, oid::bigint from pg_database where datname = "
                                                 "current_database()")[0] for u in (a, b)]
    system = query(a, "select system_identifier::text from pg_control_system()")[0][0]
    assert run.err == (f"kit: error: {backup} is a backup of database {name_a} (oid {oid_a}) on 127.0.0.1:{pg.port}, "
                       f"cluster {system}, not of this database {name_b} (oid {oid_b}) on 127.0.0.1:{pg.port}, "
                       f"cluster {system}; nothing was written: roll back with a backup of this database, or run "
                       "kit rollback PATH without --db-url to reach the database the backup came from\n")
    assert (schema(b), data(b),
            query(b, "select version from supabase_migrations.schema_migrations order by 1")) == before


def test_a_named_target_files_backups_and_reports_under_its_name(db_url, run_kit, in_tmp, clean_env):
    clean_env.setenv("STAGING_SUPABASE_DB_URL", db_url)
    run = run_kit("deploy", "--target", "staging", "--via", "direct", "--json")
    assert run.code == 0, run.err
    assert Path(run.json["backup"]).parent == in_tmp / "backups" / "staging"
    assert Path(run.json["report"]).name.endswith("-staging.md")


def deploy_env(source: str, url: str, clean_env, folder: Path) -> list[str]:
    """Give the deploy its URL the way `source` says; return the deploy's own flags."""
    if source == "flag":
        return ["--db-url", url]
    if source == "env":
        clean_env.setenv("SUPABASE_DB_URL", url)
    if source == "dotenv":
        (folder / ".env").write_text(f"SUPABASE_DB_URL={url}\n")
    if source == "target":
        clean_env.setenv("STAGING_SUPABASE_DB_URL", url)
        return ["--target", "staging"]
    return []


@pytest.mark.parametrize("outcome", ["success", "failure"])
@pytest.mark.parametrize("source", ["flag", "env", "dotenv", "target"])
def test_the_printed_rollback_command_runs_as_printed(source, outcome, make_db, pg, run_kit, in_tmp, clean_env):
    """The deploy's URL carries a password (a user that must give one); the shell's SUPABASE_DB_URL, when
    the deploy did not use it, names another database, which must stay untouched."""
    target = make_db()
    other = make_db()
    url = pg.password_url(target.rsplit("/", 1)[1])
    if source != "env" and source != "dotenv":
        clean_env.setenv("SUPABASE_DB_URL", other)
    flags = deploy_env(source, url, clean_env, in_tmp)
    if outcome == "failure":
        flags += ["--workdir", str(workdir_with(in_tmp, *FAILING_LATER["smoke"][:2]))]
    rows = query(target, "select count(*) from llm_usage")[0][0]
    other_before = (schema(other), data(other))
    run = run_kit("deploy", *flags, "--via", "direct", "--json")
    assert run.code == (0 if outcome == "success" else 5), run.err
    command = run.json["rollback_command"]
    workdir = f" --workdir {(in_tmp / 'project').resolve()}" if outcome == "failure" else ""  # as the deploy had
    if source == "flag":  # the password was in the flag only: the command names PGPASSWORD, not the password
        assert command == f"PGPASSWORD='[YOUR-PASSWORD]' kit rollback {run.json['backup']} --yes{workdir}"
        clean_env.setenv("PGPASSWORD", PASSWORD)  # what the operator fills in; no terminal to ask at
        command = command.split(" ", 1)[1]
    else:
        assert command == f"kit rollback {run.json['backup']} --yes{workdir}"
    back = run_kit(*shlex.split(command)[1:])
    assert back.code == 0, back.err
    assert query(target, "select count(*) from llm_usage") == [(rows,)]
    assert run_kit("status", "--db-url", target, "--json").json["phase"] == "before"
    assert (schema(other), data(other)) == other_before
    assert PASSWORD not in back.out + back.err + run.out + run.err
    report = Path(run.json["report"]).read_text() + Path(run.json["report_json"]).read_text()
    assert PASSWORD not in report and run.json["rollback_command"] in report


def test_without_a_terminal_a_missing_password_is_named(pg, db_url, run_kit, in_tmp):
    url = pg.password_url(db_url.rsplit("/", 1)[1])
    run = run_kit("deploy", "--db-url", url, "--via", "direct", "--json")
    assert run.code == 0, run.err
    argv = shlex.split(run.json["rollback_command"])
    assert argv[:2] == ["PGPASSWORD=[YOUR-PASSWORD]", "kit"]  # run without filling it in: the error names it
    back = run_kit(*argv[2:])
    assert back.code == 3
    assert back.err == (f"kit: error: 127.0.0.1:{pg.port} wants a password and the backup's manifest has none: set "
                        "PGPASSWORD, pass --db-url with the password, or run on a terminal to be asked\n")
    assert run_kit("status", "--db-url", db_url, "--json").json["phase"] == "migrated"


def test_the_success_text_prints_the_rollback_command(db_url, run_kit, in_tmp):
    run = run_kit("deploy", "--db-url", db_url, "--via", "direct")
    assert run.code == 0, run.err
    backup = next((in_tmp / "backups").glob("*/*"))
    assert f"to roll back: kit rollback {backup} --yes" in run.out.splitlines()


@pytest.mark.parametrize("given, advice", [
    ({"db_url": "postgresql://postgres@db.example:5432/postgres"},
     "run kit rollback PATH without --db-url to reach the database the backup came from"),
    ({}, "pass --db-url or --target for the database the backup came from (this one is SUPABASE_DB_URL)"),
    ({"local": True}, "set KIT_LOCAL_DIR to the folder of the local default the backup came from"),
])
def test_a_backup_of_another_database_names_the_way_to_reach_that_one(given, advice):
    """The refusal's next step follows from how this database was named (the probe found --db-url advised
    for a local default reached without it)."""
    from kit.backup import identity
    from kit.settings import LOCAL_DEFAULT

    s = settings_mod.load({"db_url": given.get("db_url")}, cwd=ROOT,
                          environ={"SUPABASE_DB_URL": "postgresql://postgres@db.example:5432/postgres"})
    if given.get("local"):
        s = s.with_db_url("postgresql://postgres@127.0.0.1:54000/postgres", LOCAL_DEFAULT)
    assert identity._other_way(s) == advice


def test_pgpassword_reaches_the_client_programs(pg, db_url, run_kit, in_tmp, clean_env):
    """A URL without its password and PGPASSWORD in the environment: pg_dump, pg_dumpall, psql and the Supabase
    CLI get it as the kit's own connections do (libpq reads it), and none is asked for a password."""
    url = pg.password_url(db_url.rsplit("/", 1)[1]).replace(f":{PASSWORD}@", "@")
    clean_env.setenv("PGPASSWORD", PASSWORD)
    backup = run_kit("backup", "--db-url", url, "--json")
    assert backup.code == 0, backup.err
    deploy = run_kit("deploy", "--via", "cli", "--db-url", url, "--yes", "--json")
    assert deploy.code == 0, deploy.err
    assert deploy.json["rollback_command"] == f"kit rollback {deploy.json['backup']} --yes"
    empty = pg.password_url(make_empty(pg)).replace(f":{PASSWORD}@", "@")
    full = run_kit("rollback", backup.json["path"], "--full", "--db-url", empty, "--yes")
    assert full.code == 0, full.err


def make_empty(pg) -> str:
    """A database with a Supabase project's skeleton and nothing else; its name (dropped with the session's server)."""
    from tests.helpers import new_database

    return new_database(pg.admin_url, "kit_tpl_supabase")


def test_the_printed_rollback_names_the_workdir_and_the_plaintext_flag_the_deploy_needed(tmp_path):
    from kit.deploy import runbook

    app = tmp_path / "app"
    given = settings_mod.load({"workdir": str(app), "db_url": "postgresql://postgres@db.example.invalid/postgres"
                                                              "?sslmode=disable", "allow_plaintext": True},
                              environ={}, cwd=tmp_path)
    assert runbook.rollback_command(given, "/b/1") == f"kit rollback /b/1 --yes --workdir {app} --allow-plaintext"
    plain = settings_mod.load({"db_url": "postgresql://postgres@db.example.invalid/postgres"}, environ={}, cwd=tmp_path)
    assert runbook.rollback_command(plain, "/b/1") == "kit rollback /b/1 --yes"


def test_the_printed_rollback_runs_the_kit_the_way_this_shell_started_it(tmp_path, monkeypatch):
    """The README installs into .venv and runs .venv/bin/kit: without `kit` on PATH, a printed `kit rollback`
    would be `command not found`, so the command names the script the deploy was started by."""
    from kit.deploy import runbook

    script = tmp_path / ".venv" / "bin" / "kit"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    plain = settings_mod.load({"db_url": "postgresql://postgres@db.example.invalid/postgres"}, environ={}, cwd=tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("sys.argv", [".venv/bin/kit", "deploy"])
    assert runbook.rollback_command(plain, "/b/1") == ".venv/bin/kit rollback /b/1 --yes"
    monkeypatch.setenv("PATH", str(script.parent))  # the same script is on PATH: plain `kit`
    monkeypatch.chdir(tmp_path)
    assert runbook.rollback_command(plain, "/b/1") == "kit rollback /b/1 --yes"
    monkeypatch.setattr("sys.argv", ["/opt/python/bin/python3"])  # python -m kit: not the kit's script, `kit`
    assert runbook.rollback_command(plain, "/b/1") == "kit rollback /b/1 --yes"
