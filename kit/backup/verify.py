"""`kit backup verify`: checksums, `pg_restore --list`, then a rehearsal restore into a throwaway PostgreSQL."""

import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import psycopg
import psycopg.sql

from kit import db
from kit.backup import manifest
from kit.backup.contents import Manifest, Rehearsal
from kit.checks import Check
from kit.errors import BackupError, ToolMissing
from kit.files import utc_now
from kit.local import pgserver, pgtools, server
from kit.settings import Settings

ROLES_SQL = """
do $roles$
declare name text;
begin
  foreach name in array array['postgres', 'anon', 'authenticated', 'service_role', 'authenticator', 'supabase_admin',
                              'supabase_auth_admin', 'supabase_storage_admin', 'dashboard_user', 'pgbouncer']
  loop
    if not exists (select 1 from pg_roles where rolname = name) then
      execute format('create role %I nologin', name);
    end if;
  end loop;
end
$roles$;
"""


class EarlyServer(threading.Thread):
    """A throwaway server for a rehearsal restore, started in a thread while the backup is still being taken
    (its start, about a second of initdb and start-up, then costs no wall time); stopped by close()."""

    def __init__(self, settings: Settings, server_major: int):
        super().__init__(daemon=True)
        self.settings, self.major = settings, first_major(server_major)
        self.ready, self.done = threading.Event(), threading.Event()
        self.url: str | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            with server.temporary(self.settings, self.major) as url:
                self.url = url
                self.ready.set()
                self.done.wait()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by use()
            self.error = exc
        finally:
            self.ready.set()

    def use(self, major: int) -> str | None:
        """Its superuser URL when it is of `major`; None otherwise (the caller starts its own)."""
        self.ready.wait()
        if self.error is not None and major == self.major:
            raise self.error
        return self.url if major == self.major else None

    def close(self, wait: bool = True) -> None:
        """Stop and delete it; with wait=False in this thread's own time (join() it before the process ends)."""
        self.done.set()
        if wait:
            self.join()


def first_major(server_major: int) -> int:
    """The major a rehearsal of a backup of `server_major` starts from: it, else the next newer one installed."""
    return next((m for m in pgserver.MAJORS if m >= server_major), max(pgserver.MAJORS))


def verify(settings: Settings, path: Path, progress: Callable[[str], None] | None = None, rehearse: bool = True,
           early: EarlyServer | None = None) -> list[Check]:
    """Checksums, pg_restore --list and the rehearsal restore (into `early` when it is of the right major)."""
    say = progress or (lambda message: None)
    path = Path(path)
    say("checking checksums")
    data = manifest.load(path)
    archive = path / data.archive_name
    checks = [Check("checksums", True, f"{len(data.files)} file(s) match manifest.json")]
    say(f"listing {archive.name}")
    listing = subprocess.run([pgtools.tool(settings, "pg_restore"), "--list", str(archive)],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL)
    entries = [line for line in listing.stdout.splitlines() if line and not line.startswith(";")]
    if listing.returncode != 0:
        raise BackupError(f"{archive.name} in {path} cannot be read by pg_restore: "
                          f"{(listing.stderr.strip().splitlines() or ['no output'])[-1]}")
    checks.append(Check("pg_restore --list", True, f"{len(entries)} archive entries"))
    if rehearse:
        major, bindir = rehearsal_server(settings, data)
        say(f"rehearsal restore into a throwaway PostgreSQL {major} ({bindir})")
        check, server_name = rehearsal(settings, path, data, major, bindir, early.use(major) if early else None)
        checks.append(check)
        data.rehearsal = Rehearsal(check.ok, server_name, utc_now(), check.detail)
        manifest.save(path, data)  # manifest.json itself is not among the checksummed files
    return checks


def rehearsal_server(settings: Settings, data: Manifest) -> tuple[int, Path]:
    """The backup's major (or the next newer one installed) whose server has every extension the backup creates."""
    needed = set(data.extensions or []) - {"plpgsql"}
    first = pgtools.major(str(data.server or settings.pg_major))
    tried: list[tuple[int, list[str]]] = []
    for major in [m for m in pgserver.MAJORS if m >= first] or [max(pgserver.MAJORS)]:
        try:
            bindir = pgserver.server_bin(settings, major)
        except ToolMissing:
            continue
        missing = sorted(needed - extensions(bindir))
        if not missing:
            return major, bindir
        tried.append((major, missing))
    if not tried:
        raise BackupError(f"no PostgreSQL server of major {first} or newer is installed for the rehearsal restore: "
                          "run `npm install` in the kit's folder")
    major, missing = tried[0]
    raise BackupError(f"the backup needs the extension {missing[0]}, which no PostgreSQL server here has "
                      f"(PostgreSQL {major} lacks it): install a server with it and verify again")


def extensions(bindir: Path) -> set[str]:
    """The extensions a server can create: its share folder's *.control files."""
    for share in (bindir.parent / "share" / "postgresql" / "extension", bindir.parent / "share" / "extension"):
        if share.is_dir():
            return {p.stem for p in share.glob("*.control")}
    return set()


def rehearsal(settings: Settings, path: Path, data: Manifest, major: int, bindir: Path,
              url: str | None = None) -> tuple[Check, str]:
    """Restore the archive into a throwaway server (`url`, else one started here) and compare every table's row
    count with the snapshot's. Returns the check and the server it ran on (`PostgreSQL 17.2 (17)`)."""
    start = time.perf_counter()
    archive = path / data.archive_name
    jobs = min(int(data.jobs or 1), 4) if archive.is_dir() else 1
    with (nullcontext(url) if url else server.temporary(settings, major)) as reached:
        with psycopg.connect(reached, autocommit=True) as conn:
            conn.execute(ROLES_SQL.encode())
            version = db.one(conn, "show server_version")
        pgtools.psql_file(settings, reached, path / "roles.sql")
        pgtools.restore_archive(settings, reached, archive, ["--no-owner", "--no-acl"], jobs=jobs,
                                what="in the rehearsal restore")
        counts = _counts(reached, data.row_counts)
    wrong = [f"{t}: {counts.get(t)} restored, {n} in the snapshot" for t, n in data.row_counts.items()
             if counts.get(t) != n]
    seconds = time.perf_counter() - start
    rows = sum(data.row_counts.values())
    detail = "; ".join(wrong) if wrong else (f"{len(counts)} table(s), {rows:,} rows, every count equal to the "
                                             f"snapshot's, on PostgreSQL {version} ({bindir.parent.name}), "
                                             f"{seconds:.1f} s")
    return Check("rehearsal restore", not wrong, detail), f"PostgreSQL {version} ({bindir.parent.name})"


def _counts(url: str, tables: dict[str, int]) -> dict[str, int]:
    counts = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name in tables:
            schema, table = name.split(".", 1)
            counts[name] = db.one(conn, psycopg.sql.SQL("select count(*) from {}").format(
                psycopg.sql.Identifier(schema, table)))
    return counts
