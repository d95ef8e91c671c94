"""`kit backup`: take a backup of the database, from one exported snapshot.

One pg_dump archive; the split `supabase db dump` documents, the row counts derived from it; the
UUID maps read in the snapshot's own transaction; a manifest.

The folder holds MARKER until the manifest is written, last: an interrupted backup (Ctrl-C, a
killed connection, a full disk) keeps its marker and is never offered for rollback.
"""

import json
import re
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg

from kit import db
from kit.backup import archive as backup_archive, data as backup_data, identity, manifest
from kit.backup.store import MARKER, base_dir, target_dir
from kit.errors import BackupError, BackupIncomplete, ConfigError, ConnectError, Interrupted, KitError
from kit.files import open_private, utc_now
from kit.local import clients, pgtools
from kit.redact import mask_url
from kit.settings import Settings

ARCHIVE = "database.dump"
ARCHIVE_DIR = "database.dir"
# gzip at level 1 rather than pg_dump's default 6: half pg_dump's CPU for an archive about a quarter larger
# (data.sql beside it is plain text anyway); every pg_restore reads it. This pg_dump has no lz4 or zstd.
# --compress 0 stores it uncompressed: less CPU, but on two cores no shorter wall time, and ten times the size.
COMPRESS = 1
RESERVED_ROLES = re.compile(r"^(postgres|anon|authenticated|service_role|authenticator|dashboard_user|pgbouncer|"
                            r"supabase_\w*|pgsodium_\w*|pg_\w*|cli_login_\w*)$")
# A line of roles.sql that creates, alters or comments on a role; group 1 is the role (kit rollback --full reads
# it too).
ROLE_LINE = re.compile(r'^(?:CREATE|ALTER|COMMENT ON) ROLE "?([^" ;]+)"?')
BEGIN_SQL = "begin isolation level repeatable read, read only"
SNAPSHOT_SQL = ("select pg_export_snapshot(), to_char(clock_timestamp() at time zone 'UTC', "
                "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), case when pg_is_in_recovery() then pg_last_wal_replay_lsn() "
                "else pg_current_wal_lsn() end::text")
Watch = Callable[..., None]  # watch(part, bytes, done=False)


@dataclass
class Backup:
    path: Path
    manifest: manifest.Manifest


def take(settings: Settings, out_dir: Path | None = None, progress=None, *, jobs: int = 1, watch=None,
         compress: int = COMPRESS, conn: psycopg.Connection | None = None) -> Backup:
    """Dump the database once, from one exported snapshot, and derive every other file from that archive.

    `progress(message)` gets a line per stage; `watch(part, bytes, done)` gets each part's size as it grows.
    Given `conn` (autocommit; a deploy's), the snapshot is taken on it and it stays open.
    """
    say = progress or (lambda message: None)
    watch = watch or (lambda part, nbytes, done=False: None)
    clients.choose(settings)  # no client that can reach the database (TLS): exit 6 before the folder is made
    own = conn is None
    conn = conn or db.connect(settings)  # a refused connection (TLS, password): nothing written yet
    try:
        server = db.server_version(conn)  # pg_dump older than the server: exit 6, nothing written yet either
        tools = clients.choose(settings, server_major=pgtools.major(server))
        client = pgtools.require_client_for(settings, server, tools.version)
        settings = clients.pinned(settings, tools)  # pg_dump, pg_dumpall and pg_restore from one folder
        folder = _new_folder(settings, out_dir)
    except BaseException:
        if own:
            conn.close()
        raise
    started, clock = utc_now(), time.perf_counter()
    split = None
    try:
        archive = folder / (ARCHIVE_DIR if jobs > 1 else ARCHIVE)
        with _snapshot(conn, own, [*manifest.reads(), db.IDENTITY_SQL]) as (snap, results):
            facts = manifest.collect_from(conn, results[:-1], folder, links_from_dump=True)  # in the snapshot
            ident = identity.from_row(results[-1][0], settings)
            say(f"snapshot {snap['id']} at {snap['taken_at']} (WAL {snap['wal_lsn']})")
            roles = _Beside(_roles, settings, folder / "roles.sql")  # needs no snapshot: beside the dump
            from_dump = bool(facts.maps and facts.maps.usage_from == "dump")
            split = backup_data.Split(folder, lambda n, done=False: watch("data.sql", n, done),
                                      links=folder / manifest.LINKS if from_dump else None,
                                      **(_usage_rows(facts.maps) if facts.maps and from_dump else {}))
            counts, known = _archive(settings, archive, snap["id"], jobs, watch, split, compress)
            roles.result()
            watch("roles.sql", (folder / "roles.sql").stat().st_size, True)
        if counts is None:
            counts = backup_data.from_archive(settings, archive, split)
        known["data.sql"] = (split.written, split.digest.hexdigest())
        links = _Beside(manifest.sha256, folder / manifest.LINKS) if from_dump else None  # beside the split files
        entries = backup_archive.parse_list(_listing(settings, archive))
        parts = backup_archive.split(entries)
        for name in ("schema.sql", "history.sql"):
            _derive(settings, folder, archive, name, parts[name])
            watch(name, (folder / name).stat().st_size, True)
        if links:
            known[manifest.LINKS] = ((folder / manifest.LINKS).stat().st_size, links.result())
        data = manifest.build(folder, settings, facts, counts, known=known, server=server, client=client,
                              started=started, finished=utc_now(), seconds=time.perf_counter() - clock, snapshot=snap,
                              archive=archive.name, jobs=jobs, compress=compress,
                              extensions=backup_archive.extensions(entries), identity=ident,
                              platform=_platform(settings))
        manifest.save(folder, data)
        (folder / MARKER).unlink()
    except BaseException as exc:
        if split is not None:
            split.discard()
        if isinstance(exc, KeyboardInterrupt):
            raise Interrupted(f"interrupted; {folder} is marked incomplete (the database was only read): take the "
                              "backup again") from None
        if isinstance(exc, OSError) and exc.strerror:
            raise BackupIncomplete(f"writing the backup failed: {exc.strerror}; {folder} is marked incomplete: free "
                                   "space or pass --out DIR, then take the backup again") from None
        if isinstance(exc, ConnectError):
            raise ConnectError(f"{exc}; {folder} is marked incomplete: take the backup again") from None
        if not isinstance(exc, BackupError) or isinstance(exc, BackupIncomplete):
            raise
        raise BackupIncomplete(f"{exc}; {folder} is marked incomplete: take the backup again") from None
    say(f"backup complete: {folder}")
    return Backup(folder, data)


@contextmanager
def _snapshot(conn: psycopg.Connection, close: bool, reads: list):
    """A REPEATABLE READ, read-only transaction held open on `conn` while pg_dump reads its exported snapshot;
    it is begun, exported and `reads` run in it in one round trip. Yields (the snapshot, the reads' results); the
    transaction is rolled back afterwards, and the connection closed when `close`."""
    try:
        try:
            results = db.batch(conn, [(BEGIN_SQL, None), (SNAPSHOT_SQL, None), *reads])
            snap_id, taken_at, lsn = results[1][0]
            yield {"id": snap_id, "taken_at": taken_at, "wal_lsn": lsn,
                   "how": "pg_export_snapshot() in a REPEATABLE READ transaction, pg_dump --snapshot"}, results[2:]
            conn.execute("rollback")
        finally:
            if close:
                conn.close()
    except db.BatchFailed as failed:  # take() adds the folder it leaves marked incomplete
        raise BackupError(f"reading the database for the backup failed ({db.error_line(failed.error)})") from None
    except psycopg.Error as exc:
        if conn.closed or conn.broken:  # a lost connection exits 3, as everywhere
            raise ConnectError(f"the connection to {conn.info.host}:{conn.info.port} was lost while reading the "
                               f"database for the backup ({db.error_line(exc)})") from None
        raise BackupError(f"reading the database for the backup failed ({db.error_line(exc)})") from None


def _usage_rows(maps: manifest.Maps) -> dict[str, list[str]]:
    """Where the split finds llm_usage's rows and which of their columns go into the links file."""
    return {"tables": maps.usage_tables or [], "columns": maps.usage_columns or []}


class _Beside(threading.Thread):
    """Runs fn(*args) in a thread; result() waits, then returns what it returned or raises what it raised."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True)
        self.fn, self.args, self.value, self.error = fn, args, None, None
        self.start()

    def run(self) -> None:
        try:
            self.value = self.fn(*self.args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            self.error = exc

    def result(self):
        self.join()
        if self.error is not None:
            raise self.error
        return self.value


def _archive(settings: Settings, archive: Path, snapshot: str, jobs: int, watch: Watch, split: backup_data.Split,
             compress: int) -> tuple[dict[str, int] | None, dict[str, tuple[int, str]]]:
    """The one read of the table data: pg_dump of the whole database from the exported snapshot. With one job
    its output also streams into the split as it is written. Returns the row counts when the split has them
    already (one job), and the (bytes, sha256) known of the files."""
    args = [f"--snapshot={snapshot}", "--quote-all-identifiers", f"--compress={compress}"]
    def on_bytes(n: int) -> None:
        watch(archive.name, n)

    if jobs > 1:
        pgtools.watched(settings, "pg_dump", ["--format=directory", f"--jobs={jobs}", f"--file={archive}", *args],
                        grows=archive, on_bytes=on_bytes, url=settings.db_url, what=f"writing {archive.name}")
        watch(archive.name, pgtools.size(archive), True)
        return None, {}
    result, written = backup_data.dump_and_split(settings, archive, ["--format=custom", *args], split, on_bytes)
    watch(archive.name, written.bytes, True)
    return result, {archive.name: (written.bytes, written.sha256)}


def _listing(settings: Settings, archive: Path) -> str:
    out: list[bytes] = []
    pgtools.stream(settings, "pg_restore", ["--list", str(archive)], out.append, what=f"listing {archive.name}")
    return b"".join(out).decode()


def _derive(settings: Settings, folder: Path, archive: Path, name: str, entries) -> None:
    path = folder / name
    if not entries:
        with open_private(path) as handle:
            handle.write("-- nothing of this part is in the database\n")
        return
    listing = backup_archive.write_list(folder / ".restore.list", entries)
    try:
        with open_private(path, "wb") as handle:
            pgtools.stream(settings, "pg_restore", ["--use-list", str(listing), "--file", "-", str(archive)],
                           handle.write, what=f"writing {name}")
    finally:
        listing.unlink(missing_ok=True)


def _new_folder(settings: Settings, out_dir: Path | None) -> Path:
    base = base_dir(settings, out_dir)
    folder = target_dir(settings, out_dir) / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    try:
        folder.mkdir(parents=True, mode=0o700)
        folder.chmod(0o700)
        (folder / MARKER).write_text(json.dumps({"note": "this backup did not finish; it is never used for a "
                                                 "rollback", "database": mask_url(settings.db_url)}) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write a backup under {base}: {exc.strerror}; pass --out DIR or set "
                          "KIT_BACKUP_DIR to a writable folder") from None
    return folder


def _roles(settings: Settings, path: Path) -> None:
    # --database: pg_dumpall ignores the URL's database and would connect to `postgres` (or template1) instead
    url = urlsplit(db.database_url(settings))
    database = unquote(url.path.lstrip("/")) or url.username or "postgres"
    result = pgtools.run(settings, "pg_dumpall", ["--roles-only", "--no-role-passwords", f"--database={database}"],
                         what="writing roles.sql")
    kept = [line for line in result.stdout.decode().splitlines() if not _reserved(line)]
    with open_private(path, "wb") as handle:
        handle.write(("\n".join(kept) + "\n").encode())


def _reserved(line: str) -> bool:
    """CREATE/ALTER/COMMENT of a reserved role, or a membership granted to one."""
    match = ROLE_LINE.match(line)
    if match:
        return bool(RESERVED_ROLES.match(match.group(1)))
    match = re.match(r'^GRANT "?[^" ]+"? TO "?([^" ;]+)"?', line)
    return bool(match and RESERVED_ROLES.match(match.group(1)))


def _platform(settings: Settings) -> dict[str, Any] | None:
    if not (settings.access_token and settings.project_ref):
        return None
    from kit.cloud.management import ManagementAPI  # here, not above: its HTTP client adds to every backup's start-up

    try:
        api = ManagementAPI.from_settings(settings)
        return api.get(f"/v1/projects/{settings.project_ref}/database/backups")
    except KitError as exc:
        return {"error": str(exc)}


def latest_with_maps(settings: Settings, of: manifest.Identity | None = None) -> Path | None:
    """The newest complete backup of this target that holds UUID maps (taken before the migration), or None.
    Given `of` (the identity of the database now), only a backup of that same database: one label folder can
    hold several (every local default is filed under `local`)."""
    for candidate in sorted(target_dir(settings).glob(f"*/{manifest.NAME}"), key=lambda p: p.parent.name, reverse=True):
        if (candidate.parent / MARKER).exists():
            continue
        try:
            data = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        found = manifest.Manifest.from_json(data) if isinstance(data, dict) else None
        if found and found.maps and (of is None or identity.same_database(found.identity, of)):
            return candidate.parent
    return None
