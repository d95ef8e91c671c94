"""Bad input gets one line on stderr, a documented exit code, and leaves the database as it was."""

import shutil
import time

from tests import snapshot
from tests.helpers import PASSWORD, ROOT, free_port, silent_port


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_malformed_url(run_kit):
    run = run_kit("status", "--db-url", "postgresql://u:p@host:notaport/db")
    assert run.code == 2
    assert one_line(run.err) == ("kit: error: the database URL is malformed (Port could not be cast to integer "
                                 "value as 'notaport'); expected postgresql://USER:PASSWORD@HOST:5432/postgres")


def test_url_with_the_wrong_scheme(run_kit):
    run = run_kit("verify", "--db-url", "mysql://root:pw@localhost/db", "--json")
    assert run.code == 2
    assert run.json == {"ok": False, "exit_code": 2, "error": "the database URL must start with postgresql://, "
                        "not mysql://; copy it from the dashboard's Connect panel"}


def test_value_that_is_not_a_url_in_dotenv(run_kit, tmp_path, clean_env):
    (tmp_path / ".env").write_text("SUPABASE_DB_URL=db.example.supabase.co\n")
    clean_env.chdir(tmp_path)
    run = run_kit("status")
    assert run.code == 2
    assert one_line(run.err) == ("kit: error: SUPABASE_DB_URL is not a URL ('db.example.supabase.co'); expected e.g. "
                                 "postgresql://postgres:PASSWORD@db.PROJECT.supabase.co:5432/postgres")


def test_invalid_timeout_in_env(run_kit, clean_env):
    clean_env.setenv("KIT_CONNECT_TIMEOUT", "soon")
    run = run_kit("status", "--db-url", "postgresql://postgres@127.0.0.1:1/postgres")
    assert (run.code, one_line(run.err)) == (
        2, "kit: error: KIT_CONNECT_TIMEOUT must be a whole number of seconds above 0, not 'soon'")


def test_wrong_password_is_named_and_not_printed(run_kit, pg, db_url):
    url = pg.password_url(db_url.rsplit("/", 1)[1], password="not-the-password-" + PASSWORD[:4])
    run = run_kit("status", "--db-url", url)
    assert run.code == 3
    assert one_line(run.err) == (f"kit: error: wrong password or user for 127.0.0.1:{pg.port}: check the password "
                                 "in --db-url (dashboard > Connect)")
    assert "not-the-password" not in run.err + run.out


def test_right_password_works_and_is_never_printed(run_kit, pg, db_url):
    url = pg.password_url(db_url.rsplit("/", 1)[1])
    run = run_kit("status", "--db-url", url)
    assert run.code == 0, run.err
    assert "database  postgresql://kit_secret_user:****@127.0.0.1" in run.out
    assert PASSWORD not in run.out + run.err


def test_closed_port_is_refused_in_one_line(run_kit):
    port = free_port()
    run = run_kit("status", "--db-url", f"postgresql://postgres@127.0.0.1:{port}/postgres")
    assert (run.code, one_line(run.err)) == (
        3, f"kit: error: 127.0.0.1:{port} refused the connection: is the database running and the port right?")


def test_a_host_that_never_answers_times_out_within_the_bound(run_kit, clean_env):
    """A listening socket that never speaks PostgreSQL stands in for an unreachable host."""
    clean_env.setenv("KIT_CONNECT_TIMEOUT", "2")
    with silent_port() as port:
        start = time.monotonic()
        run = run_kit("status", "--db-url", f"postgresql://postgres:pw@127.0.0.1:{port}/postgres")
        elapsed = time.monotonic() - start
    assert (run.code, one_line(run.err)) == (
        3, f"kit: error: no answer from 127.0.0.1:{port} within the connect timeout: check the host, port and "
           "network (KIT_CONNECT_TIMEOUT)")
    assert elapsed < 10


def test_host_name_that_does_not_resolve(run_kit):
    run = run_kit("status", "--db-url", "postgresql://postgres:pw@db.nonexistent-project.invalid:5432/postgres")
    assert (run.code, one_line(run.err)) == (
        3, "kit: error: cannot resolve the host name of db.nonexistent-project.invalid:5432: check the host in "
           "--db-url")


def test_unknown_target(run_kit):
    run = run_kit("status", "--target", "staging")
    assert (run.code, one_line(run.err)) == (
        2, "kit: error: unknown target 'staging': set STAGING_SUPABASE_DB_URL in .env or the environment "
           f"(.env looked for in: {ROOT / '.env'}; see .env.example)")


def test_migrations_folder_missing(run_kit, tmp_path, db_url):
    (tmp_path / "supabase").mkdir()
    before = snapshot.schema(db_url)
    run = run_kit("status", "--db-url", db_url, "--workdir", str(tmp_path))
    assert (run.code, one_line(run.err)) == (
        2, f"kit: error: the migrations folder {tmp_path}/supabase/migrations is missing; restore it or pass --workdir")
    assert snapshot.schema(db_url) == before


def test_migration_file_with_a_bad_name(run_kit, tmp_path, db_url):
    shutil.copytree(ROOT / "supabase", tmp_path / "supabase")
    (tmp_path / "supabase" / "migrations" / "add_index.sql").write_text("select 1;")
    run = run_kit("verify", "--db-url", db_url, "--workdir", str(tmp_path))
    assert (run.code, one_line(run.err)) == (
        2, f"kit: error: add_index.sql in {tmp_path}/supabase/migrations does not match <timestamp>_name.sql; "
           "rename it (e.g. 20260101000000_add_index.sql) or move it out")


def test_workdir_without_supabase_folder(run_kit, tmp_path):
    run = run_kit("status", "--workdir", str(tmp_path))
    assert (run.code, one_line(run.err)) == (
        2, f"kit: error: --workdir {tmp_path} has no supabase/ folder; pass the folder that contains supabase/")


def test_a_missing_env_value_is_named(run_kit, tmp_path, clean_env, db_url):
    """.env sets the project ref but not the token the api route needs: one line naming the variable."""
    (tmp_path / ".env").write_text("SUPABASE_PROJECT_REF=abcdefghijklmnopqrst\nSUPABASE_ACCESS_TOKEN=\n")
    clean_env.chdir(tmp_path)
    before = snapshot.schema(db_url)
    run = run_kit("push", "--via", "api", "--yes")
    assert (run.code, one_line(run.err)) == (
        2, "kit: error: SUPABASE_ACCESS_TOKEN is not set: create a personal access token (Dashboard > Account > "
           "Access Tokens) and put it in .env")
    assert snapshot.schema(db_url) == before


def test_a_local_server_that_cannot_start_names_its_fatal_line_and_log(run_kit, tmp_path, clean_env):
    from kit import settings as settings_mod
    from kit.local import server as local

    s = settings_mod.load({"local_dir": str(tmp_path / "pg")}, environ={}, cwd=tmp_path)
    server = local.up(s, prepare_db=False)
    local.down(s)
    folder = local.cluster_dir(s)
    with open(server.data_dir / "postgresql.auto.conf", "a") as conf:
        conf.write("shared_buffers = 'plenty'\n")
    clean_env.setenv("KIT_LOCAL_DIR", str(tmp_path / "pg"))
    run = run_kit("status")
    assert (run.code, one_line(run.err)) == (
        3, "kit: error: the local PostgreSQL did not start: configuration file "
           f"\"{folder}/data/postgresql.auto.conf\" contains errors; its log is {folder}/server.log")
    local.destroy(s)
