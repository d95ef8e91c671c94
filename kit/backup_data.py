"""data.sql and every table's row count, from one pass over the archive's data stream.

With one job the archive is not read back at all: pg_dump's output is written to database.dump and, as
it arrives, piped through `pg_restore --data-only` into data.sql, so the split costs little more wall
time than the dump itself. With --jobs the directory archive is read back once, after the dump.
"""

import fcntl
import hashlib
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from kit import pgtools
from kit.backup_archive import user_data
from kit.copy_stream import CopyReader
from kit.errors import BackupError
from kit.files import open_private
from kit.process import child_env, url_without_password
from kit.settings import Settings

REPLICA = b"SET session_replication_role = replica;\n\n"
HEADER = re.compile(rb"^-- (?:Data for )?Name: (.*?); Type: (.*?); Schema: (.*?); Owner: ")
TRAILER = b"-- PostgreSQL database dump complete"
CHUNK = 1 << 20
USAGE = "public.llm_usage"
LINK_COLUMNS = ("id", "provider_id", "model_id")
CUT = shutil.which("cut")  # POSIX; without it the kit picks the fields itself
LEADING = re.compile(rb"^(\d+)\t([^\t\n]*)\t([^\t\n]*)[\t\n]", re.M)


class Split:
    """Routes the whole data stream: the users' entries to data.sql, every COPY block counted."""

    def __init__(self, folder: Path, on_bytes, links: Path | None = None):
        self.folder, self.on_bytes = folder, on_bytes
        self._links = open_private(links, "wb") if links else None
        self._links_name = links.name if links else None
        self._cut: _Cut | None = None
        self.reader = CopyReader({USAGE: LINK_COLUMNS} if links else {}, self._usage, self._text, self._rows)
        self._writer = _Writer(open_private(folder / "data.sql", "wb"))
        self._writer.start()
        self.written = 0
        self._keep = True
        self._pending = [REPLICA]

    @property
    def digest(self):
        return self._writer.digest

    def feed(self, chunk: bytes) -> None:
        self.reader.feed(chunk)
        self._flush()
        self.on_bytes(self.written)

    def close(self) -> dict:
        self.reader.close()
        self._flush()
        self._finish()
        if self._cut:
            self._cut.finish()
        if self._links:
            self._links.close()
        self.on_bytes(self.written, done=True)
        return self.reader.counts

    def discard(self) -> None:
        """Close the files after a failure (the folder keeps its INCOMPLETE marker)."""
        self._writer.finish()
        if self._cut:
            self._cut.kill()
        if self._links:
            self._links.close()

    def _usage(self, table: str, columns: list[str], rows: bytes) -> None:
        """llm_usage's rows as the links file's CSV lines: id, provider_id, model_id (NULL as empty)."""
        if columns[:3] == list(LINK_COLUMNS) and (self._cut or CUT):
            self._cut = self._cut or _Cut(self._links, self._links_name)
            self._cut.feed(rows)
            return
        if columns[:3] == list(LINK_COLUMNS):
            lines = b"".join(b"%b,%b,%b\n" % row for row in LEADING.findall(rows))
        else:
            pick = [columns.index(c) for c in LINK_COLUMNS]
            lines = b"".join(b"%b,%b,%b\n" % tuple(f[i] for i in pick)
                             for f in (line.split(b"\t") for line in rows[:-1].split(b"\n")))
        self._links.write(lines.replace(b"\\N", b""))

    def _flush(self) -> None:
        if self._writer.error:
            self._finish()
        self._writer.queue.put(self._pending)
        self.written += sum(len(p) for p in self._pending)
        self._pending = []

    def _finish(self) -> None:
        error = self._writer.finish()
        if error:
            raise BackupError(f"writing data.sql failed: {error}; {self.folder} is marked incomplete: "
                              "free space or pass --out DIR, then take the backup again")

    def _text(self, text: bytes) -> None:
        if b"-- " not in text:
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
        self._pending.append(data)


class _Cut(threading.Thread):
    """`cut -f1-3` keeps the leading three fields of llm_usage's rows in another process, fed by this thread;
    a second thread turns its tab-separated lines into the links file's CSV as they come: the per-row work
    stays off the stream."""

    def __init__(self, links, name: str):
        super().__init__(daemon=True)
        self.queue = queue.Queue(maxsize=4)
        self.child = subprocess.Popen([CUT, "-f1-3"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL)
        for pipe in (self.child.stdin, self.child.stdout):
            _widen(pipe)
        self.error: str | None = None
        self.name = name
        self.out = threading.Thread(target=self._convert, args=(links,), daemon=True)
        self.out.start()
        self.start()

    def feed(self, rows: bytes) -> None:
        self.queue.put(rows)

    def run(self) -> None:
        rows = b""
        try:
            while (rows := self.queue.get()) is not None:
                self.child.stdin.write(rows)
        except OSError:
            pass  # cut stopped; its exit code says why
        finally:
            while rows is not None:  # let the reader go on after a failure
                rows = self.queue.get()
            self.child.stdin.close()

    def _convert(self, links) -> None:
        rest = b""
        try:
            for chunk in iter(lambda: self.child.stdout.read(CHUNK), b""):
                data = rest + chunk
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                links.write(data[:cut].replace(b"\t", b",").replace(b"\\N", b""))
            links.write(rest.replace(b"\t", b",").replace(b"\\N", b""))
        except OSError as exc:
            self.error = exc.strerror
            self.child.kill()

    def finish(self) -> None:
        self.queue.put(None)
        self.join()
        self.out.join()
        if self.error:
            raise BackupError(f"writing {self.name} failed: {self.error}")
        if self.child.wait() != 0:
            raise BackupError(f"cut picking llm_usage's links failed (exit {self.child.returncode})")

    def kill(self) -> None:
        self.child.kill()
        self.queue.put(None)
        self.join()
        self.out.join()
        self.child.wait()


class _Writer(threading.Thread):
    """Writes and hashes data.sql beside the thread that reads the stream."""

    def __init__(self, out):
        super().__init__(daemon=True)
        self.out, self.queue = out, queue.Queue(maxsize=2)
        self.digest = hashlib.sha256()
        self.error: str | None = None

    def run(self) -> None:
        while (pieces := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.out.writelines(pieces)
                except OSError as exc:
                    self.error = exc.strerror
                for piece in pieces:
                    self.digest.update(piece)

    def finish(self) -> str | None:
        if self.is_alive():
            self.queue.put(None)
            self.join()
        try:
            self.out.close()
        except OSError as exc:
            self.error = self.error or exc.strerror
        return self.error


def from_archive(settings: Settings, archive: Path, split: Split) -> dict:
    """Read a finished archive's data once (the --jobs path)."""
    try:
        pgtools.stream(settings, "pg_restore", ["--data-only", "--file", "-", str(archive)], split.feed,
                       what="reading the archive's data")
    except BaseException:
        split.discard()
        raise
    return split.close()


def dump_and_split(settings: Settings, archive: Path, pg_dump_args: list[str], split: Split,
                   on_archive_bytes, written: dict) -> dict:
    """pg_dump to database.dump and, at the same time, through pg_restore into the split: one read of the data."""
    url = settings.db_url
    dump_argv = [pgtools.tool(settings, "pg_dump"), *pg_dump_args, f"--dbname={url_without_password(url)}"]
    restore_argv = [pgtools.tool(settings, "pg_restore"), "--data-only", "--file", "-"]
    with tempfile.TemporaryFile() as dump_err, tempfile.TemporaryFile() as restore_err, \
            open_private(archive, "wb") as out:
        dump = subprocess.Popen(dump_argv, stdout=subprocess.PIPE, stderr=dump_err, stdin=subprocess.DEVNULL,
                                env=child_env(url), umask=0o077)
        restore = subprocess.Popen(restore_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=restore_err,
                                   umask=0o077)
        for pipe in (dump.stdout, restore.stdin, restore.stdout):
            _widen(pipe)
        tee = _Tee(dump.stdout, out, restore.stdin, on_archive_bytes)
        tee.start()
        try:
            for chunk in iter(lambda: restore.stdout.read(CHUNK), b""):
                split.feed(chunk)
        except BaseException:
            for child in (dump, restore):
                child.kill()
            raise
        finally:
            tee.join()
            restore.stdout.close()
            dump.wait()
            restore.wait()
        if tee.error is not None:
            raise BackupError(f"writing {archive.name} failed: {tee.error}; {archive.parent} is marked incomplete: "
                              "free space or pass --out DIR, then take the backup again")
        for child, errors, name, what in ((dump, dump_err, "pg_dump", f"writing {archive.name}"),
                                          (restore, restore_err, "pg_restore", "splitting the data")):
            if child.returncode != 0:
                errors.seek(0)
                raise pgtools.failed(settings, f"{name} {what}", errors.read(), child.returncode)
    written.update(bytes=tee.written, sha256=tee.digest.hexdigest())
    return split.close()


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
            try:
                self.sink.close()
            except BrokenPipeError:
                pass


def _widen(pipe) -> None:
    """A 1 MB pipe buffer (Linux): fewer wake-ups between pg_dump, pg_restore and the kit."""
    try:
        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), CHUNK)
    except OSError:
        pass
