"""`kit deploy` on a real PostgreSQL: the whole runbook, and a forced failure at every step.

Each failure is made the way it happens in production (a blocker in the data, an unwritable
backup folder, a migration that errors, a schema that fails a check, a grant that stops the
smoke inserts); only Ctrl-C is simulated, by raising KeyboardInterrupt inside the step.
"""

import json
import shlex
from pathlib import Path

import psycopg
import pytest

from kit.deploy import runbook as deploy
from tests.helpers import FAILING_LATER, PG_MAJOR, VERSIONS, query, workdir_with
from tests.snapshot import data, schema

STEP_NAMES = ["preflight", "backup", "push", "verify", "smoke", "report"]


def report_of(run) -> dict:
    path = Path(run.json["report_json"])
    assert path.exists() and Path(run.json["report"]).exists()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    return json.loads(path.read_text())


def statuses(report: dict) -> dict:
    return {s["name"]: s["status"] for s in report["steps"]}


def test_a_full_deploy_reaches_the_target_and_writes_the_report(db_url, run_kit, in_tmp):
    before = query(db_url, "select count(*) from llm_usage")
    run = run_kit("deploy", "--db-url", db_url, "--json")
    assert run.code == 0, run.err
    report = report_of(run)
    assert report["ok"] is True and report["phase"] == "migrated" and report["applied"] == VERSIONS
    assert statuses(report) == {name: "ok" for name in STEP_NAMES}
    assert Path(report["backup"]).is_dir() and report["backup"].startswith(str(in_tmp / "backups"))
    assert set(report["versions"]) >= {"python", "kit", "server", "supabase_cli", "pg_dump"}
    assert run_kit("verify", "--db-url", db_url).code == 0
    assert query(db_url, "select count(*) from llm_usage") == before


def test_preflight_failure_changes_nothing_and_needs_no_rollback(state_db, run_kit, in_tmp):
    url = state_db("blocker_duplicate_model")
    before = (schema(url), data(url))
    run = run_kit("deploy", "--db-url", url, "--json")
    assert run.code == 4
    report = report_of(run)
    assert report["failed_step"] == "preflight" and report["phase"] == "before"
    assert report["error"].startswith("1 blocker(s) stop the migration, nothing was changed: model name ")
    assert report["rollback_command"] is None and report["backup"] is None
    assert statuses(report)["backup"] == "skipped"
    assert (schema(url), data(url)) == before


def test_backup_failure_changes_nothing(db_url, run_kit, in_tmp, clean_env):
    (in_tmp / "not-a-folder").write_text("")
    clean_env.setenv("KIT_BACKUP_DIR", str(in_tmp / "not-a-folder"))
    before = (schema(db_url), data(db_url))
    run = run_kit("deploy", "--db-url", db_url, "--json")
    assert run.code in (2, 7), run.err
    report = report_of(run)
    assert report["failed_step"] == "backup" and report["phase"] == "before"
    assert report["rollback_command"] is None
    assert (schema(db_url), data(db_url)) == before


def _rollback_and_check(run_kit, command: str, url: str, rows: int) -> None:
    argv = shlex.split(command)
    assert argv[:2] == ["kit", "rollback"] and "--yes" in argv
    back = run_kit(*argv[1:])
    assert back.code == 0, back.err
    assert run_kit("status", "--db-url", url, "--json").json["phase"] == "before"
    assert query(url, "select count(*) from llm_usage") == [(rows,)]


@pytest.mark.parametrize("step", list(FAILING_LATER))
def test_a_failure_after_the_push_reports_the_phase_and_a_rollback_that_works(step, db_url, run_kit, in_tmp):
    name, sql, code = FAILING_LATER[step]
    folder = workdir_with(in_tmp, name, sql)
    rows = query(db_url, "select count(*) from llm_usage")[0][0]
    run = run_kit("deploy", "--db-url", db_url, "--workdir", str(folder), "--json", "--via", "direct")
    assert run.code == code, run.err
    report = report_of(run)
    assert report["failed_step"] == step
    assert report["phase"] == "migrated"
    # the manifest names the database; --workdir as the deploy had it (its migrations, its .env)
    assert report["rollback_command"] == f"kit rollback {report['backup']} --yes --workdir {folder.resolve()}"
    after = statuses(report)
    assert [after[s] for s in STEP_NAMES[STEP_NAMES.index(step) + 1:-1]] == \
        ["skipped"] * (len(STEP_NAMES) - STEP_NAMES.index(step) - 2)
    _rollback_and_check(run_kit, report["rollback_command"], db_url, rows)


def test_rollback_on_failure_runs_the_rollback_itself(db_url, run_kit, in_tmp):
    name, sql, _ = FAILING_LATER["smoke"]
    folder = workdir_with(in_tmp, name, sql)
    run = run_kit("deploy", "--db-url", db_url, "--workdir", str(folder), "--json", "--via", "direct",
                  "--rollback-on-failure")
    assert run.code == 5
    report = report_of(run)
    assert report["rolled_back"] is True and report["phase"] == "before"


def test_a_second_deploy_at_once_is_refused(db_url, run_kit, in_tmp):
    with psycopg.connect(db_url, autocommit=True) as other:
        other.execute("select pg_advisory_lock(%s)", (deploy.DEPLOY_LOCK_KEY,))
        run = run_kit("deploy", "--db-url", db_url)
    assert run.code == 4
    assert run.err == ("kit: error: another kit deploy is running against this database; wait for it to finish, "
                       "then run kit deploy again\n")
    assert query(db_url, "select to_regclass('supabase_migrations.schema_migrations')") == [(None,)]


@pytest.mark.parametrize("step", ["preflight", "backup", "push", "verify", "smoke"])
def test_ctrl_c_at_each_step_stops_with_130_and_a_report(step, db_url, run_kit, in_tmp, monkeypatch):
    from kit.deploy import steps as deploy_steps

    real = deploy_steps.functions

    def interrupted(*args, **kwargs):
        steps = real(*args, **kwargs)
        inner = steps[step]

        def press_ctrl_c(d):
            if step in ("verify", "smoke"):
                inner(d)
            raise KeyboardInterrupt

        return {**steps, step: press_ctrl_c}

    monkeypatch.setattr(deploy_steps, "functions", interrupted)
    run = run_kit("deploy", "--db-url", db_url, "--json", "--via", "direct")
    assert run.code == 130
    report = report_of(run)
    assert report["failed_step"] == step and statuses(report)[step] == "interrupted"
    assert report["error"] == "interrupted by the operator (Ctrl-C)"
    expected_phase = "before" if step in ("preflight", "backup", "push") else "migrated"
    assert report["phase"] == expected_phase
    assert (report["rollback_command"] is not None) == (expected_phase == "migrated")


def test_with_no_configuration_in_an_empty_folder_and_an_empty_home_it_deploys_the_local_default(tmp_path):
    """What a newcomer's first `kit deploy` meets: no .env, no variables, nothing in HOME."""
    import os
    import subprocess
    import sys

    folder, home = tmp_path / "empty", tmp_path / "home"
    folder.mkdir()
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    env["KIT_PG_MAJOR"] = PG_MAJOR
    try:
        done = subprocess.run([sys.executable, "-m", "kit", "deploy", "--yes", "--json"], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "Warning" not in done.stderr
        out = json.loads(done.stdout)
        assert Path(out["report"]).parent == folder / "reports" and Path(out["report"]).exists()
        assert out["phase"] == "migrated" and out["applied"] == [VERSIONS[1]]
        assert out["database"].startswith("postgresql://postgres@127.0.0.1:")
        assert query(out["database"], "select count(*) > 0 from llm_models") == [(True,)]
    finally:
        from kit import settings as settings_mod
        from kit.local import server as local

        local.destroy(settings_mod.load({}, environ=env, cwd=folder))


def test_a_lint_finding_stops_deploy_in_preflight_before_the_backup_unless_no_lint(db_url, run_kit, in_tmp):
    """A team's plain `create view` migration: squawk's finding stops the deploy before the backup is
    taken, pointing to deploy's own --no-lint, which then deploys it."""
    folder = workdir_with(in_tmp, "20261201000000_usage_view.sql",
                          "create view public.usage_by_agent as select agent_name, count(*) from public.llm_usage "
                          "group by agent_name;\n")
    before = (schema(db_url), data(db_url))
    run = run_kit("deploy", "--db-url", db_url, "--json", "--workdir", str(folder))
    assert run.code == 4, run.err
    report = report_of(run)
    assert report["failed_step"] == "preflight" and report["backup"] is None
    assert statuses(report)["backup"] == "skipped"
    assert report["error"].startswith("squawk found ") and "20261201000000_usage_view.sql:1: " in report["error"]
    assert report["error"].endswith("reason, or deploy with --no-lint")
    assert not (in_tmp / "backups").exists()
    assert (schema(db_url), data(db_url)) == before
    forced = run_kit("deploy", "--db-url", db_url, "--json", "--workdir", str(folder), "--no-lint")
    assert forced.code == 0, forced.err
    assert report_of(forced)["applied"] == VERSIONS + ["20261201000000"]


def test_a_migrated_database_is_never_pointed_to_another_databases_backup(make_db, run_kit, in_tmp, clean_env):
    """One label folder can hold backups of several databases (every local default is filed under `local`): a
    deploy of a migrated database names no backup of another one as its rollback, even the newest with maps."""
    other, migrated = make_db(), make_db()
    assert run_kit("deploy", "--db-url", migrated, "--json").code == 0  # filed under its own label
    clean_env.setenv("SHARED_SUPABASE_DB_URL", other)
    first = report_of(run_kit("deploy", "--target", "shared", "--yes", "--json"))
    assert first["ok"] and first["rollback_backup"] == first["backup"]  # backups/shared/...: UUID maps of `other`
    clean_env.setenv("SHARED_SUPABASE_DB_URL", migrated)
    run = run_kit("deploy", "--target", "shared", "--yes", "--json")
    assert run.code == 0, run.err
    second = report_of(run)
    assert Path(second["backup"]).parent == Path(first["backup"]).parent
    assert second["rollback_command"] is None and second["rollback_backup"] is None
    assert second["rollback_note"] == (f"the LLM tables were migrated before this deploy and "
                                       f"{Path(first['backup']).parent} holds no backup of this database from before "
                                       "the migration, so kit rollback cannot undo it from here")


def test_deploying_a_migrated_database_points_to_the_backup_from_before_the_migration(db_url, run_kit, in_tmp):
    """The second deploy's own backup holds no UUID maps: its rollback command names the first deploy's
    backup, and that command rolls the database back."""
    first = report_of(run_kit("deploy", "--db-url", db_url, "--json"))
    assert first["ok"] and first["rollback_command"] == f"kit rollback {first['backup']} --yes"
    run = run_kit("deploy", "--db-url", db_url, "--json")
    assert run.code == 0, run.err
    second = report_of(run)
    assert second["backup"] != first["backup"] and Path(second["backup"]).parent == Path(first["backup"]).parent
    assert second["rollback_backup"] == first["backup"]
    assert second["rollback_command"] == f"kit rollback {first['backup']} --yes"
    back = run_kit(*shlex.split(second["rollback_command"])[1:])
    assert back.code == 0, back.err
    assert query(db_url, "select count(*) from information_schema.columns where table_schema = 'public' "
                         "and table_name = 'llm_usage' and column_name = 'model_id'") == [(1,)]


def test_deploying_a_migrated_database_without_an_earlier_backup_says_none_applies(db_url, run_kit, in_tmp):
    assert run_kit("push", "--via", "direct", "--db-url", db_url, "--yes").code == 0
    run = run_kit("deploy", "--db-url", db_url)
    assert run.code == 0, run.err
    folder = next((in_tmp / "backups").iterdir())
    assert "to roll back" not in run.out and "--yes" not in run.out
    assert (f"no rollback command: the LLM tables were migrated before this deploy and {folder} holds no backup "
            "of this database from before the migration, so kit rollback cannot undo it from here\n") in run.out


def test_deploy_through_the_cli_shows_the_lock_error_the_database_raised(db_url, run_kit, in_tmp, clean_env):
    """A reader keeps llm_usage busy past kit.lock_wait_s: deploy's default (cli) route names the real error."""
    import re

    clean_env.setenv("PGOPTIONS", "-c kit.lock_wait_s=1")
    with psycopg.connect(db_url) as holder:
        holder.execute("select count(*) from public.llm_usage")
        pid = holder.info.backend_pid
        run = run_kit("deploy", "--db-url", db_url, "--via", "cli")
        holder.rollback()
    assert run.code == 4
    assert re.search(r"\nFAILED at push: llm name keys: could not lock the LLM tables in 1 s \(\d+ attempts\); held "
                     rf"by pid {pid} \(no name, idle in transaction\)\n", run.out), run.out
