"""The transaction-mode pooler is recognised by what it does, not by its port.

Against a real PgBouncer (tests/pgbouncer.py) on a free port, in front of the real test server:
in transaction mode every command that needs session settings or advisory locks refuses before it
changes anything; in session mode the same commands work.
"""

import pytest

from tests.helpers import VERSIONS, query
from tests.pgbouncer import binary, pgbouncer
from tests.snapshot import data, schema

pytestmark = pytest.mark.skipif(binary() is None, reason="pgbouncer is not installed (scripts/test.sh installs it)")

REFUSAL = ("kit: error: 127.0.0.1:{port} is the transaction-mode pooler, where session settings and advisory locks "
           "do not hold; use the direct connection or the session pooler (port 5432)\n")


def through(db_url: str, port: int) -> str:
    """The same database, reached through the pooler on `port`."""
    return f"postgresql://postgres@127.0.0.1:{port}/{db_url.rsplit('/', 1)[1]}"


@pytest.mark.parametrize("argv", [["push", "--via", "direct", "--yes"], ["push", "--via", "cli", "--yes"],
                                  ["deploy", "--via", "direct", "--yes"]])
def test_a_transaction_pooler_on_any_port_is_refused_and_nothing_changes(argv, pg, db_url, run_kit, tmp_path,
                                                                          clean_env):
    clean_env.chdir(tmp_path)
    before = (schema(db_url), data(db_url))
    with pgbouncer(pg.port, "transaction") as port:
        assert port != 6543
        run = run_kit(*argv, "--db-url", through(db_url, port))
    assert run.code == 2
    assert run.err == REFUSAL.format(port=port)
    assert (schema(db_url), data(db_url)) == before
    assert not (tmp_path / "backups").exists() and not (tmp_path / "reports").exists()


def test_a_rollback_through_a_transaction_pooler_is_refused(pg, db_url, run_kit, tmp_path, clean_env):
    clean_env.chdir(tmp_path)
    backup = run_kit("backup", "--db-url", db_url, "--json")
    assert backup.code == 0, backup.err
    assert run_kit("push", "--via", "direct", "--db-url", db_url, "--yes").code == 0
    before = (schema(db_url), data(db_url))
    with pgbouncer(pg.port, "transaction") as port:
        run = run_kit("rollback", backup.json["path"], "--db-url", through(db_url, port), "--yes")
    assert run.code == 2
    assert run.err == REFUSAL.format(port=port)
    assert (schema(db_url), data(db_url)) == before


def test_a_session_pooler_is_accepted(pg, db_url, run_kit, clean_env):
    with pgbouncer(pg.port, "session") as port:
        run = run_kit("push", "--via", "direct", "--db-url", through(db_url, port), "--yes", "--json")
    assert run.code == 0, run.err
    assert run.json["applied"] == VERSIONS
    assert query(db_url, "select version from supabase_migrations.schema_migrations order by 1") == \
        [(v,) for v in VERSIONS]


@pytest.mark.parametrize("command", [("push", "--via", "direct"), ("deploy",)])
def test_supabases_documented_transaction_port_is_refused_without_connecting(command, run_kit):
    """Without a network, a connection attempt would end in exit 3 (the host does not resolve): exit 2 and this
    line say the port alone decided."""
    run = run_kit(*command, "--yes", "--db-url",
                  "postgresql://postgres.abcdefghijklmnopqrst:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres")
    assert run.code == 2
    assert run.err == ("kit: error: aws-0-eu-west-1.pooler.supabase.com:6543 is the transaction-mode pooler, where "
                       "session settings and advisory locks do not hold; use the direct connection or the session "
                       "pooler (port 5432)\n")
