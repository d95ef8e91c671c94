"""PostgreSQL servers that speak TLS, with a certificate authority and server certificate the test makes.

`offer_tls(data, certs, only=False)` turns TLS on in a server's data folder and keeps its pg_hba.conf:
the server *offers* TLS and still accepts plain connections, as a Supabase project does unless
"Enforce SSL" is on (the session's server in conftest.py is one). `tls_server(folder)` starts a
Supabase-shaped server whose pg_hba.conf has `hostssl` lines only: a plain connection is refused.

The certificate names `localhost`, 127.0.0.1, the machine's own host name (which /etc/hosts maps to
loopback) and WRONG_HOST is not among them: under verify-full, WRONG_HOST (reached through hostaddr) is
a wrong host name.
"""

import shutil
import socket
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from kit import settings as settings_mod
from kit.local import server as local
from tests.helpers import PG_MAJOR, ROOT, make_templates, new_database

HBA = """\
local all all trust
{kind} all supabase_admin 127.0.0.1/32 trust
{kind} all all 127.0.0.1/32 trust
{kind} all all ::1/128 trust
"""
WRONG_HOST = "wrong-name.kit-test.invalid"


@dataclass
class Certificates:
    ca: Path  # the CA that signed the server's certificate
    other_ca: Path  # a CA that did not
    cert: Path
    key: Path


@dataclass
class TlsServer:
    port: int
    certs: Certificates
    admin_url: str

    def url(self, database: str, host: str = "127.0.0.1", query: str = "") -> str:
        """`database` as postgres (not a superuser), at `host`, with the URL's query `query`."""
        return f"postgresql://postgres@{host}:{self.port}/{database}" + (f"?{query}" if query else "")

    def admin(self, database: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + database + "?sslmode=require"

    def make_db(self, template: str = "kit_tpl_before") -> str:
        """A new database from a template (kit_tpl_before, kit_tpl_supabase); its name."""
        return new_database(self.admin("postgres"), template)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, stdin=subprocess.DEVNULL)


def make_certificates(folder: Path, names: list[str]) -> Certificates:
    """A CA, a server certificate it signs for `names` (and 127.0.0.1), and an unrelated CA."""
    folder.mkdir(parents=True, exist_ok=True)
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=kit test {ca}",
                 "-keyout", str(folder / f"{ca}.key"), "-out", str(folder / f"{ca}.crt"))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}",
             "-keyout", str(folder / "server.key"), "-out", str(folder / "server.csr"))
    alt = ",".join([f"DNS:{n}" for n in names] + ["IP:127.0.0.1"])
    (folder / "ext.cnf").write_text(f"subjectAltName={alt}\n")
    _openssl("x509", "-req", "-in", str(folder / "server.csr"), "-CA", str(folder / "ca.crt"),
             "-CAkey", str(folder / "ca.key"), "-CAcreateserial", "-days", "2",
             "-extfile", str(folder / "ext.cnf"), "-out", str(folder / "server.crt"))
    return Certificates(folder / "ca.crt", folder / "other-ca.crt", folder / "server.crt", folder / "server.key")


def host_alias() -> str | None:
    """A host name that is not `localhost` and resolves to 127.0.0.1 here (the machine's own), or None."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)}
    except OSError:
        return None
    return name if addresses == {"127.0.0.1"} and name != "localhost" else None


def offer_tls(data: Path, certs: Path, *, only: bool) -> Certificates:
    """Turn TLS on in a server's data folder (a reload applies it). only=True rewrites pg_hba.conf to
    `hostssl` lines only; only=False keeps its lines, so plain connections still work."""
    made = make_certificates(certs, ["localhost"] + ([host_alias()] if host_alias() else []))
    for source, name in ((made.cert, "server.crt"), (made.key, "server.key")):
        shutil.copy(source, data / name)
        (data / name).chmod(0o600)
        shutil.chown(data / name, data.owner(), data.group())
    if only:
        (data / "pg_hba.conf").write_text(HBA.format(kind="hostssl"))
    with open(data / "postgresql.conf", "a") as conf:
        conf.write("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
    return made


@contextmanager
def tls_server(folder: Path):
    """A running server on a free port that refuses plain connections, Supabase-shaped, with the templates
    kit_tpl_supabase and kit_tpl_before; stopped and deleted afterwards."""
    s = settings_mod.load({"local_dir": str(folder / "cluster"), "pg_major": PG_MAJOR}, environ={}, cwd=ROOT)
    cluster = local.cluster_dir(s)
    started = local.start_cluster(s, cluster, int(PG_MAJOR))
    try:
        made = offer_tls(started.data_dir, folder / "certs", only=True)
        admin = f"postgresql://{local.ADMIN}@127.0.0.1:{started.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:  # still plain: the new pg_hba.conf is not loaded
            conn.execute("select pg_reload_conf()")
        srv = TlsServer(started.port, made, admin)
        make_templates(srv.admin, lambda db: srv.url(db, query="sslmode=require"))
        yield srv
    finally:
        local.stop_cluster(s, cluster, int(PG_MAJOR))
        shutil.rmtree(cluster, ignore_errors=True)
