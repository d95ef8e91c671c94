"""The local default on a real server: Supabase's shape, the non-superuser `postgres`, and folders left as found."""

import os
import shutil
import stat
import tempfile
from pathlib import Path

import psycopg
import pytest

from kit import settings as settings_mod
from kit.local import pgserver, server as local
from tests.helpers import PG_MAJOR, ROOT, query


def _modes(path: Path) -> dict[str, tuple[int, int]]:
    """Mode and owner of `path` and every ancestor."""
    return {str(p): (stat.S_IMODE(p.stat().st_mode), p.stat().st_uid) for p in (path, *path.parents)}


def test_local_default_under_a_private_folder_starts_and_changes_no_folder_it_did_not_create(run_kit, clean_env):
    private = Path(tempfile.mkdtemp(prefix="kit-home-"))  # 0700, like root's home folder or a CI clone's parent
    project = private / "app"
    project.mkdir()
    before = _modes(project)
    clean_env.setenv("KIT_LOCAL_DIR", str(project / "local"))
    clean_env.chdir(project)
    s = settings_mod.load({}, cwd=project)
    try:
        up = run_kit("local", "up", "--json")
        assert up.code == 0, up.err
        assert up.json["url"].startswith("postgresql://postgres@127.0.0.1:")
        assert query(up.json["url"], "select count(*) > 0 from llm_usage") == [(True,)]
        assert _modes(project) == before
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
    finally:
        local.destroy(s)
        shutil.rmtree(private, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_an_apps_local_default_is_its_own_not_the_one_another_folder_built(run_kit, clean_env, team):
    """One KIT_LOCAL_DIR, two folders: the kit's own local default is built from the kit's migrations, your app's
    from your app's, and neither is handed the other's (it would hold a history the other folder lacks)."""
    own = run_kit("local", "up", "--json")
    assert own.code == 0, own.err
    app = run_kit("local", "up", "--workdir", str(team), "--json")
    assert app.code == 0, app.err
    assert app.json["url"] != own.json["url"]
    history = "select version from supabase_migrations.schema_migrations order by 1"
    assert query(own.json["url"], history) == [("20240101000000",)]
    assert query(app.json["url"], history) == [(p.name.split("_")[0],) for p in sorted(
        (team / "supabase" / "migrations").glob("*.sql"))]
    assert run_kit("local", "url", "--workdir", str(team)).out.strip() == app.json["url"]
    assert run_kit("local", "url").out.strip() == own.json["url"]


def test_as_root_the_server_runs_from_a_kit_owned_copy_outside_the_checkout(pg):
    s = settings_mod.load({"pg_major": PG_MAJOR}, environ={}, cwd=ROOT)
    bindir = pgserver.server_bin(s, int(PG_MAJOR))
    assert bindir.is_relative_to(s.cache_dir)
    assert not bindir.is_relative_to(ROOT)
    assert (bindir / "postgres").exists()


def test_the_kit_connects_as_a_postgres_that_is_not_a_superuser_as_on_supabase(db_url, pg):
    rows = query(db_url, """select rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls
                            from pg_roles where rolname = current_user""")
    assert rows == [(False, True, True, True, True)]
    assert query(db_url, "select tableowner from pg_tables where tablename = 'llm_usage'") == [("postgres",)]
    # what Supabase refuses its postgres role is refused here too
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        query(db_url, "alter system set work_mem = '8MB'")


def test_a_supabase_shaped_database_has_extensions_auth_users_and_pg_stat_statements_loaded(db_url, pg):
    assert query(db_url, """select extname, extnamespace::regnamespace::text from pg_extension
                            where extname in ('pgcrypto', 'uuid-ossp', 'pg_stat_statements') order by 1""") == [
        ("pg_stat_statements", "extensions"), ("pgcrypto", "extensions"), ("uuid-ossp", "extensions")]
    assert query(db_url, "select count(*) from extensions.pg_stat_statements where false") == [(0,)]
    assert query(db_url, "select extensions.uuid_generate_v4() is not null, "
                         "length(extensions.digest('x', 'sha256'))") == [(True, 32)]
    assert query(db_url, "select to_regclass('auth.users') is not null") == [(True,)]
    assert query(db_url, "select pubname from pg_publication") == [("supabase_realtime",)]
    assert pg.version == int(PG_MAJOR)


def test_postgres_reads_every_roles_statement_text_as_on_supabase(db_url):
    """Supabase grants pg_monitor (and so pg_read_all_stats) to postgres: the legacy-statement check needs it."""
    assert query(db_url, "select pg_has_role('pg_read_all_stats', 'usage')") == [(True,)]
