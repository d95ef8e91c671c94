"""data.sql and every table's row count, from one pass over the archive's data stream.

With one job the archive is not read back at all: pg_dump's output is written to database.dump and, as
it arrives, piped through `pg_restore --data-only` into data.sql, so the split costs little more wall
time than the dump itself. With --jobs the directory archive is read back once, after the dump.
"""

import contextlib
import fcntl
import hashlib
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from kit import db
from kit.backup.archive import user_data
from kit.backup.contents import FileSum
from kit.backup.copy_stream import CopyReader
from kit.errors import BackupError, BackupIncomplete
from kit.files import open_private
from kit.local import pgtools
from kit.process import child_env, pipe
from kit.settings import Settings

REPLICA = b"SET session_replication_role = replica;\n\n"
HEADER = re.compile(rb"^-- (?:Data for )?Name: (.*?); Type: (.*?); Schema: (.*?); Owner: ")
TRAILER = b"-- PostgreSQL database dump complete"
CHUNK = 1 << 20
USAGE = "public.llm_usage"
LINK_COLUMNS = ("id", "provider_id", "model_id")
CUT = shutil.which("cut")  # POSIX; without it the kit picks the fields itself


class Split:
    """Routes the whole data stream: the users' entries to data.sql, every COPY block counted.

    It runs in the thread that reads the stream and writes as it goes: the big writes and the hashing
    release the GIL, and a hand-off to other threads cost more than it saved."""

    def __init__(self, folder: Path, on_bytes, links: Path | None = None, tables=(USAGE,), columns=LINK_COLUMNS):
        self.folder, self.on_bytes = folder, on_bytes
        self._links = open_private(links, "wb") if links else None
        self._links_name = links.name if links else None
        self._link_columns = list(columns)
        self._cut: _Cut | None = None
        self.reader = CopyReader({t: columns for t in tables} if links else {}, self._usage, self._text, self._rows)
        self._out = open_private(folder / "data.sql", "wb")
        self.digest = hashlib.sha256()
        self.written = 0
        self._keep = True
        self._write(REPLICA)

    def feed(self, chunk: bytes) -> None:
        self.reader.feed(chunk)
        self.on_bytes(self.written)

    def close(self) -> dict[str, int]:
        self.reader.close()
        unseen = [t for t in self.reader.want if t not in self.reader.counts] or ([] if self.reader.want else [USAGE])
        if self._links and unseen:  # every table pg_dump dumps has its COPY block, an empty table too
            raise BackupIncomplete(f"the dump holds no rows of {unseen[0]}, so {self._links_name} would miss them; "
                              f"{self.folder} is marked incomplete: take the backup again")
        self._close(self._out)
        if self._cut:
            self._cut.finish()
        if self._links:
            self._close(self._links)
        self.on_bytes(self.written, done=True)
        return self.reader.counts

    def discard(self) -> None:
        """Close the files after a failure (the folder keeps its INCOMPLETE marker)."""
        if self._cut:
            self._cut.kill()
        for handle in (self._out, self._links):
            try:
                if handle:
                    handle.close()
            except OSError:
                pass

    def _usage(self, table: str, columns: list[str], rows) -> None:
        """llm_usage's rows (or a partition's) as the links file's lines: the key, provider_id and model_id,
        tab-separated, NULL as \\N. `cut` picks them when they stand in that order in the table, else the kit."""
        links, links_name = self._links, self._links_name
        if links is None or links_name is None:  # the reader hands rows over only when there is a links file
            raise BackupError(f"{table}'s rows came without a links file to write them to; take the backup again")
        missing = [c for c in self._link_columns if c not in columns]
        if missing:
            raise BackupError(f"{table}'s rows in the dump have no column {missing[0]}; take the backup again "
                              "(the table changed while it was read?)")
        pick = [columns.index(c) for c in self._link_columns]
        fields = ",".join(str(i + 1) for i in pick)
        if self._cut and self._cut.fields != fields:
            self._cut.finish()  # the next table's columns stand elsewhere: its own cut, after this one is done
            self._cut = None
        if CUT and pick == sorted(pick):
            self._cut = self._cut or _Cut(links, links_name, fields)
            self._cut.feed(rows)
            return
        lines = (line.split(b"\t") for line in bytes(rows)[:-1].split(b"\n"))
        links.write(b"".join(b"\t".join(f[i] for i in pick) + b"\n" for f in lines))

    def _close(self, handle) -> None:
        try:
            handle.close()
        except OSError as exc:
            self._failed(Path(handle.name).name, exc)

    def _failed(self, name: str, exc: OSError):
        raise BackupIncomplete(f"writing {name} failed: {exc.strerror}; {self.folder} is marked incomplete: "
                          "free space or pass --out DIR, then take the backup again") from None

    def _text(self, text: bytes) -> None:
        if b"-- " not in text:  # text is a small piece: SQL and comments outside the COPY blocks
            if self._keep:
                self._write(text)
            return
        for line in text.splitlines(keepends=True):
            if line.startswith(b"-- "):
                match = HEADER.match(line)
                if match:
                    self._keep = user_data(match.group(3).decode(), match.group(1).decode())
                elif line.startswith(TRAILER):
                    self._keep = True
            if self._keep:
                self._write(line)

    def _rows(self, rows: bytes) -> None:
        if self._keep:
            self._write(rows)

    def _write(self, data: bytes) -> None:
        try:
            self._out.write(data)
        except OSError as exc:
            self._failed("data.sql", exc)
        self.digest.update(data)
        self.written += len(data)


class _Cut:
    """`cut -f` keeps the links file's fields of llm_usage's rows in another process and writes them
    straight into the links file (COPY text: tab-separated, NULL as \\N): the per-row work stays off the
    stream. It writes to a file, never back to the kit, so feeding it cannot deadlock."""

    def __init__(self, links, name: str, fields: str):
        links.flush()
        self.child = subprocess.Popen([CUT or "cut", f"-f{fields}"], stdin=subprocess.PIPE, stdout=links,
                                      stderr=subprocess.PIPE)
        self.stdin, self.stderr = pipe(self.child.stdin), pipe(self.child.stderr)
        _widen(self.stdin)
        self.name, self.fields = name, fields
        self.broken = False

    def feed(self, rows: bytes) -> None:
        if not self.broken:
            try:
                self.stdin.write(rows)
            except OSError:
                self.broken = True  # cut stopped; its exit code says why

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            self.stdin.close()
        errors = self.stderr.read().decode(errors="replace").strip()
        if self.child.wait() != 0:
            detail = errors.splitlines()[-1] if errors else f"exit {self.child.returncode}"
            raise BackupError(f"writing {self.name} failed: {detail}")

    def kill(self) -> None:
        self.child.kill()
        self.child.wait()


def from_archive(settings: Settings, archive: Path, split: Split) -> dict[str, int]:
    """Read a finished archive's data once (the --jobs path)."""
    try:
        pgtools.stream(settings, "pg_restore", ["--data-only", "--file", "-", str(archive)], split.feed,
                       what="reading the archive's data")
    except BaseException:
        split.discard()
        raise
    return split.close()


def dump_and_split(settings: Settings, archive: Path, pg_dump_args: list[str], split: Split,
                   on_archive_bytes: Callable[[int], None]) -> tuple[dict[str, int], FileSum]:
    """pg_dump to database.dump and, at the same time, through pg_restore into the split: one read of the data.
    Returns the split's row counts and the archive's size and SHA-256, hashed as it was written."""
    url = db.database_url(settings)
    dump_argv = [pgtools.tool(settings, "pg_dump"), *pg_dump_args, *pgtools.connect_args(settings, url)]
    restore_argv = [pgtools.tool(settings, "pg_restore"), "--data-only", "--file", "-"]
    with tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as restore_err, \
            open_private(archive, "wb") as out:
        dump = subprocess.Popen(dump_argv, stdout=subprocess.PIPE, stderr=dump_err, stdin=subprocess.DEVNULL,
                                env=child_env(url), umask=0o077)
        restore = subprocess.Popen(restore_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=restore_err,
                                   umask=0o077)
        source, sink, split_in = pipe(dump.stdout), pipe(restore.stdin), pipe(restore.stdout)
        for stream in (source, sink, split_in):
            _widen(stream)
        tee = _Tee(source, out, sink, on_archive_bytes)
        tee.start()
        try:
            for chunk in iter(lambda: split_in.read(CHUNK), b""):
                split.feed(chunk)
        except BaseException:
            for child in (dump, restore):
                child.kill()
            raise
        finally:
            tee.join()
            split_in.close()
            dump.wait()
            restore.wait()
        if tee.error is not None:
            raise BackupIncomplete(f"writing {archive.name} failed: {tee.error}; {archive.parent} is marked "
                                   "incomplete: free space or pass --out DIR, then take the backup again")
        for child, errors, name, what in ((dump, dump_err, "pg_dump", f"writing {archive.name}"),
                                          (restore, restore_err, "pg_restore", "splitting the data")):
            if child.returncode != 0:
                errors.seek(0)
                raise pgtools.failed(settings, f"{name} {what}", errors.read(), child.returncode)
    return split.close(), FileSum(tee.written, tee.digest.hexdigest())


class _Tee(threading.Thread):
    """Copies pg_dump's output to the archive file and to pg_restore's input."""

    def __init__(self, source, out, sink, on_bytes):
        super().__init__(daemon=True)
        self.source, self.out, self.sink, self.on_bytes = source, out, sink, on_bytes
        self.error: str | None = None
        self.digest = hashlib.sha256()
        self.written = 0

    def run(self) -> None:
        try:
            for chunk in iter(lambda: self.source.read(CHUNK), b""):
                self.out.write(chunk)
                self.digest.update(chunk)
                self.written += len(chunk)
                self.sink.write(chunk)
                self.on_bytes(self.written)
        except BrokenPipeError:
            pass  # pg_restore stopped; its exit code says why
        except OSError as exc:
            self.error = exc.strerror
        finally:
            self.source.close()
            with contextlib.suppress(BrokenPipeError):
                self.sink.close()


def _widen(pipe) -> None:
    """A 1 MB pipe buffer (Linux): fewer wake-ups between pg_dump, pg_restore and the kit."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), CHUNK)
