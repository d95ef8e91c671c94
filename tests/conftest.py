"""A real PostgreSQL for the whole session, and a fresh database per test made from templates.

The server is npm's PostgreSQL with contrib of the major KIT_TEST_PG_MAJOR names (15, 17 or 18;
default 17), set up as a Supabase project: it offers TLS (a certificate the session makes) and accepts
plain connections too, as a project does unless "Enforce SSL" is on; the superuser is supabase_admin (`pg.admin_url`), and the
databases that tests hand to the kit are reached as `postgres`, which is not a superuser there.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from kit import settings as settings_mod
from kit.local import server as local
from kit.schema import pieces
from tests.helpers import (
    API_REF,
    API_TOKEN,
    CHANGE_FILE,
    MATRIX,
    PASSWORD,
    PASSWORD_USER,
    PG_MAJOR,
    ROOT,
    STATES,
    TEAM,
    make_templates,
    new_database,
    run_file,
)
from tests.standin import serve
from tests.standin_query import query_route
from tests.tls import Certificates, offer_tls

ENV_VARS = ("SUPABASE_DB_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_ACCESS_TOKEN",
            "SUPABASE_PROJECT_REF", "SUPABASE_API_URL", "SUPABASE_CLI", "KIT_TARGET", "KIT_PG_BIN",
            "KIT_BACKUP_DIR", "KIT_REPORT_DIR", "KIT_PG_MAJOR", "KIT_CACHE_DIR", "PGOPTIONS",
            "PGPASSWORD", "PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY")


def _require_password_for(data_dir: Path, user: str) -> None:
    hba = data_dir / "pg_hba.conf"
    hba.write_text(f"host all {user} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())


@dataclass
class Server:
    admin_url: str
    port: int
    version: int
    certs: Certificates  # the server offers TLS with a certificate signed by certs.ca

    def url(self, database: str) -> str:
        """`database` as the kit sees it on Supabase: user postgres, not a superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, database: str) -> str:
        """`database` as the superuser supabase_admin, for set-up the kit is refused."""
        return self.admin_url.rsplit("/", 1)[0] + "/" + database

    def password_url(self, database: str, password: str = PASSWORD) -> str:
        return f"postgresql://{PASSWORD_USER}:{password}@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="session")
def pg(tmp_path_factory) -> Server:
    folder = tmp_path_factory.mktemp("pg")
    s = settings_mod.load({"local_dir": str(folder), "pg_major": PG_MAJOR}, environ={}, cwd=ROOT)
    server = local.up(s, prepare_db=False)
    _require_password_for(server.data_dir, PASSWORD_USER)
    certs = offer_tls(server.data_dir, folder / "certs", only=False)  # as a Supabase project: TLS offered, not enforced
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        version = conn.info.server_version // 10000
        conn.execute(f"create role {PASSWORD_USER} login superuser password '{PASSWORD}'")
        # Every test's database has its own entries: with the default 5,000 the whole suite fills the table,
        # and a test's own statement, run once, is among the first evicted before the test reads it back.
        conn.execute("alter system set pg_stat_statements.max = 100000")
    local.restart_cluster(s, local.cluster_dir(s))  # pg_stat_statements.max is read at start only
    srv = Server(server.admin_url, server.port, version, certs)
    make_templates(srv.admin, srv.url)
    yield srv
    local.destroy(s)


@pytest.fixture
def make_db(pg):
    """make_db(template='kit_tpl_before') -> URL (as postgres) of a new database, dropped after the test."""
    made = []

    def make(template: str = "kit_tpl_before") -> str:
        made.append(new_database(pg.admin_url, template))
        return pg.url(made[-1])

    yield make
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def db_url(make_db) -> str:
    """A database in the plan's current state, with the local default's data."""
    return make_db()


@pytest.fixture
def state_db(make_db):
    """state_db('name') -> URL of a database in the plan's current state changed by tests/states/name.sql."""

    def make(name: str) -> str:
        url = make_db("kit_tpl_before")
        run_file(url, (STATES / f"{name}.sql").read_text())
        return url

    return make


@pytest.fixture
def migration_steps(make_db):
    """migration_steps('state') -> an autocommit session on a new database in that state (tests/states or
    tests/states/matrix), with the name-key migration's pg_temp functions defined in it."""
    opened = []

    def connect(state: str = "plan", template: str = "kit_tpl_before") -> psycopg.Connection:
        url = make_db(template)
        if state != "plan":
            path = STATES / f"{state}.sql"
            run_file(url, (path if path.exists() else MATRIX / f"{state}.sql").read_text())
        conn = psycopg.connect(url, autocommit=True)
        opened.append(conn)
        pieces.load(conn, CHANGE_FILE.read_text())
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No kit or Supabase variables from the developer's shell; a private local-default folder."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KIT_LOCAL_DIR", str(tmp_path / "local-default"))
    monkeypatch.setenv("KIT_PG_MAJOR", PG_MAJOR)
    monkeypatch.chdir(ROOT)
    yield monkeypatch
    local.destroy(settings_mod.load({"local_dir": str(tmp_path / "local-default"), "pg_major": PG_MAJOR},
                                    environ={}, cwd=ROOT))


@pytest.fixture
def in_tmp(clean_env, tmp_path):
    """clean_env, run in tmp_path: backups and reports go there."""
    clean_env.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def team(tmp_path) -> Path:
    """A copy of tests/team_repo, a team's app with its own migration history, as your-app."""
    folder = tmp_path / "your-app"
    shutil.copytree(TEAM, folder)
    return folder


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict:
        return json.loads(self.out)


@pytest.fixture
def run_kit(clean_env, capsys):
    """run_kit('status', '--db-url', url) -> Run(code, out, err), the CLI run in this process."""
    from kit.cli import main

    def run(*argv: str) -> Run:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse errors
            code = exc.code
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def settings_for(clean_env):
    def make(url: str, **flags) -> settings_mod.Settings:
        return settings_mod.load({"db_url": url, **flags}, environ={}, cwd=ROOT)

    return make


@pytest.fixture(scope="session")
def supabase_cli() -> str:
    path = ROOT / "node_modules" / ".bin" / "supabase"
    assert path.exists(), "the pinned Supabase CLI is missing: run `npm install` (scripts/test.sh does)"
    return str(path)


@pytest.fixture
def api_env(clean_env, db_url):
    """The Management API stand-in (tests/standin_query.py) on the test database, and the variables that name it."""
    with serve(query_route(db_url, API_REF, API_TOKEN)) as api:
        clean_env.setenv("SUPABASE_API_URL", api.url)
        clean_env.setenv("SUPABASE_ACCESS_TOKEN", API_TOKEN)
        clean_env.setenv("SUPABASE_PROJECT_REF", API_REF)
        yield api

