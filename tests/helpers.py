"""What more than one test module uses: paths, the test password, SQL helpers and shared test data."""

import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from kit import settings as settings_mod
from kit.migrations import history, workdir
from kit.statements import mark

ROOT = Path(__file__).resolve().parents[1]
SQL_DIR = ROOT / "kit" / "sql"
STATES = Path(__file__).parent / "states"
MATRIX = STATES / "matrix"
TEAM = Path(__file__).parent / "team_repo"
CHANGE_FILE = ROOT / "supabase" / "migrations" / "20261124120000_llm_name_keys.sql"
# The change migration as teams copied it before its steps became pg_temp functions: one DO block that
# returns after its blockers in a READ ONLY transaction (kit status must still read those repos).
OLDER_COPY = Path(__file__).parent / "older_copy" / "20261124120000_llm_name_keys.sql"
PG_MAJOR = os.environ.get("KIT_TEST_PG_MAJOR") or "17"

# A superuser that must log in with a password, for the wrong-password and secrets tests.
PASSWORD_USER = "kit_secret_user"
PASSWORD = "Pw-d0nt-Leak-7f3a9c"

# The service-role key the PostgREST stand-in accepts; built at run time: no key-shaped string in the repository.
KEY = "service-" + secrets.token_hex(16)

VERSIONS = ["20240101000000", "20261124120000"]
TEAM_VERSIONS = ["20231110080000", "20240315093000", "20250201120000"]
# The project and access token the Management API stand-in (tests/standin_query.py) answers for.
API_REF = "abcdefghijklmnopqrst"
API_TOKEN = "kit-test-token-" + "5" * 20

# Every usage row, and every provider and model with its UUID: what a cycle must give back.
ROWS = "select coalesce(jsonb_agg(to_jsonb(u) order by to_jsonb(u)::text), '[]') from public.llm_usage u"
LOOKUPS = ("select 'p', name, id::text, null from llm_providers union all "
           "select 'm', name, id::text, provider_id::text from llm_models order by 1, 2")

# Each state in tests/states/blocker_*.sql and the one blocker the migration names for it.
BLOCKERS = {
    "blocker_duplicate_model": "model name 'gpt-4o' is used by 2 models (providers: groq, openai); "
                               "rename or merge them so each name is unique",
    "blocker_model_no_provider": "model 'orphan-model' has no provider that can be determined; set its provider_name",
    "blocker_view": "view usage_by_model_id depends on a UUID column; change or drop it first",
    "blocker_policy": "policy usage_with_model on llm_usage depends on a UUID column; change or drop it first",
    "blocker_trigger": "trigger models_provider_changed on llm_models depends on a UUID column; "
                       "change or drop it first",
    "blocker_function": "function usage_for_model(uuid) depends on a UUID column; change or drop it first",
    "blocker_foreign_key": "foreign key llm_budgets_model_id_fkey on llm_budgets depends on a UUID column; "
                           "change or drop it first",
    "blocker_usage_without_name": "2 llm_usage rows have no model_name and no model_id that finds a model",
}

# Migrations that pass the preflight and fail a later deploy step: file name, SQL, deploy's exit code.
FAILING_LATER = {
    "push": ("20261201000000_broken.sql", "select 1 / 0;\n", 8),
    "verify": ("20261201000000_no_rls.sql", "set local lock_timeout = '1s';\nset local statement_timeout = '5s';\n"
                                            "alter table public.llm_usage disable row level security;\n", 5),
    "smoke": ("20261201000000_no_insert.sql", "revoke insert on public.llm_usage from service_role;\n", 5),
}


def query(url: str, sql: str, params=None) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def one(conn: psycopg.Connection, statement: str, params=None):
    """The first value of the first row."""
    return conn.execute(statement, params).fetchone()[0]


def run_file(url: str, sql: str) -> None:
    """Run a setup file; its statements carry the kit's mark, so kit status never takes them for a client's."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in history.split_statements(sql):
            conn.execute(mark(statement).encode(), prepare=False)


def make_templates(admin, as_postgres) -> None:
    """On a fresh server: kit_tpl_supabase (a Supabase project's skeleton) and kit_tpl_before (the plan's
    current state with the local default's data). admin(db) and as_postgres(db) give a database's URL."""
    query(admin("postgres"), "create database kit_tpl_supabase")
    run_file(admin("kit_tpl_supabase"), (SQL_DIR / "supabase_env.sql").read_text())
    query(admin("postgres"), "create database kit_tpl_before template kit_tpl_supabase owner postgres")
    s = settings_mod.load({}, environ={}, cwd=ROOT)
    run_file(as_postgres("kit_tpl_before"), workdir.migrations(s)[0].sql)
    run_file(as_postgres("kit_tpl_before"), (SQL_DIR / "local_data.sql").read_text())


def new_database(admin_url: str, template: str = "kit_tpl_before") -> str:
    """A new database made from `template`, owned by postgres; its name."""
    name = f"t_{secrets.token_hex(6)}"
    query(admin_url, f'create database "{name}" template "{template}" owner postgres')
    return name


def migrate_direct(url: str) -> None:
    s = settings_mod.load({"db_url": url}, environ={}, cwd=ROOT)
    with psycopg.connect(url, autocommit=True) as conn:
        for migration in workdir.migrations(s):
            if migration.version not in history.applied_versions(conn):
                history.apply(conn, migration)


def grow(url: str, rows: int) -> None:
    """Add usage rows like local_data.sql's: one in three carries the UUIDs."""
    query(url, """
        insert into public.llm_usage (provider_id, model_id, provider_name, model_name, agent_name,
                                      prompt_tokens, completion_tokens, metadata)
        select case when g % 3 = 0 then p.id end, case when g % 3 = 0 then m.id end, p.name, m.name, 'bulk',
               g % 500, g % 70, jsonb_build_object('bulk', g)
        from generate_series(1, %s) g
        join lateral (select * from public.llm_models order by name offset (g % 9) limit 1) m on true
        join public.llm_providers p on p.id = m.provider_id""".replace("%s", str(rows)))


def remote(url: str) -> str:
    """The test database under a host name that is not local (libpq connects to hostaddr)."""
    head, name = url.rsplit("/", 1)
    port = head.rsplit(":", 1)[1]
    return f"postgresql://postgres@db.example.invalid:{port}/{name}?hostaddr=127.0.0.1"


def history_rows(url: str) -> list[tuple]:
    return query(url, "select version, name, statements from supabase_migrations.schema_migrations order by version")


def take(run_kit, url: str, out: Path, *extra) -> Path:
    """`kit backup` of url into out; the backup's folder."""
    run = run_kit("backup", "--db-url", url, "--out", str(out), "--json", *extra)
    assert run.code == 0, run.err
    return Path(run.json["path"])


def workdir_with(tmp_path: Path, name: str, sql: str) -> Path:
    """A copy of the repo's supabase/ folder with one more migration, `name`."""
    folder = tmp_path / "project"
    shutil.copytree(ROOT / "supabase", folder / "supabase")
    shutil.copy(ROOT / ".squawk.toml", folder / ".squawk.toml")
    (folder / "supabase" / "migrations" / name).write_text(sql)
    return folder


def workdir_with_change(tmp_path: Path, sql: str) -> Path:
    """A copy of the repo's supabase/ folder whose change migration (llm_name_keys) holds `sql`."""
    folder = tmp_path / "project"
    shutil.copytree(ROOT / "supabase", folder / "supabase")
    (folder / "supabase" / "migrations" / CHANGE_FILE.name).write_text(sql)
    return folder


def cli_list(cli: str, url: str, workdir: Path = ROOT) -> dict:
    """`supabase migration list` of url: local version (or remote, where there is none) -> remote version."""
    out = subprocess.run([cli, "migration", "list", f"--remote={url}", "--workdir", str(workdir),
                          "--output-format", "json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return {m["local"] or m["remote"]: m["remote"] for m in json.loads(out.stdout)["migrations"]}


def free_port() -> int:
    """A local port nothing listens on (until something takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def silent_port() -> Iterator[int]:
    """A local port that accepts connections and never speaks PostgreSQL: a host that does not answer."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield silent.getsockname()[1]


def rest_env(clean_env, url: str, key: str = KEY) -> None:
    """The environment of a smoke test through the REST API at url."""
    clean_env.setenv("SUPABASE_URL", url)
    clean_env.setenv("SUPABASE_SERVICE_ROLE_KEY", key)


class Terminal(io.StringIO):
    """A stdin that says it is a terminal, so the kit asks."""

    def isatty(self) -> bool:
        return True


@contextmanager
def report_holding_llm_usage(url: str, seconds: float = 3.0) -> Iterator[None]:
    """A report transaction in a thread that reads llm_usage and keeps its ACCESS SHARE lock for `seconds`; the
    body runs once the lock is held, and the report is waited for at the end."""
    started = threading.Event()

    def hold() -> None:
        with psycopg.connect(url) as conn:
            conn.execute("select count(*) from llm_usage")
            started.set()
            time.sleep(seconds)
            conn.rollback()

    reader = threading.Thread(target=hold)
    reader.start()
    started.wait(5)
    try:
        yield
    finally:
        reader.join()


def inserts_while(url: str, step: Callable[[], object]) -> tuple[list[str], bool]:
    """Hold llm_usage in a 3 s report transaction, start `step` (a migration waiting for its lock), then try five
    inserts with a 1 s statement_timeout: how each insert ended, and whether `step` was still waiting after them."""
    with report_holding_llm_usage(url):
        stepper = threading.Thread(target=step)
        stepper.start()
        time.sleep(0.5)
        outcomes = []
        with psycopg.connect(url, autocommit=True, options="-c statement_timeout=1000") as conn:
            for _ in range(5):
                try:
                    conn.execute("insert into llm_usage (provider_name, model_name) values ('openai', 'gpt-4o')")
                    outcomes.append("inserted")
                except psycopg.errors.QueryCanceled:
                    outcomes.append("timed out")
                time.sleep(0.1)
        waiting = stepper.is_alive()
    stepper.join(30)
    return outcomes, waiting

