"""The `cli` route: the pinned `supabase db push`, its output shown as it arrives."""

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kit import db
from kit.errors import KitError, Refused, ToolMissing
from kit.migrations import workdir
from kit.migrations.plan import REFUSALS, connection_lost, file_failed
from kit.process import child_env, dbname, pipe
from kit.redact import redact, url_host
from kit.settings import Settings

# Client-side failures of the CLI's Go driver, which come with no SQLSTATE.
CONNECT_HINTS = ("failed to connect", "password authentication failed", "connection refused", "dial error",
                 "no such host", "i/o timeout")
LOST_HINTS = ("terminating connection", "server closed the connection", "unexpected EOF", "connection reset")
LOST_SQLSTATES = ("57P01", "57P02", "57P03")  # the server ended the session: terminated, crashed, shutting down
ERROR_LINE = re.compile(r"\b(?:ERROR|FATAL|PANIC): (.*?) \(SQLSTATE ([0-9A-Z]{5})\)")  # as the Go driver prints one


@dataclass
class Output:
    """What the CLI's output says went wrong."""

    file: str | None = None  # the file it was applying
    sqlstate: str | None = None
    reason: str = "no output"  # the database's message, or the CLI's last line
    connect: str | None = None  # the line about a connection that could not be made
    lost: bool = False  # the connection went while a file was applied
    unknown_remote: bool = False  # the database has versions the folder lacks


def argv(settings: Settings, include_all: bool, folder: Path | None = None) -> list[str]:
    args = [workdir.supabase_binary(settings), "db", "push", f"--remote={dbname(settings, db.database_url(settings))}",
            "--yes", "--workdir", str(folder or workdir.project_dir(settings))]
    return args + (["--include-all"] if include_all else [])


def run(settings: Settings, plan, output=None) -> list[str]:
    """Run `supabase db push`; return its output lines, or raise a kit error that says what failed."""
    lines: list[str] = []
    process = subprocess.Popen(argv(settings, plan.include_all, plan.folder), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                               env=child_env(db.database_url(settings), {"SUPABASE_YES": "1"}))
    try:
        for line in pipe(process.stdout):
            line = redact(line.rstrip("\n"), settings.secrets)
            lines.append(line)
            if output:
                output(line)
    finally:
        code = process.wait()
    if code != 0:
        raise failure(settings, lines, code)
    return lines


def failure(settings: Settings, lines: list[str], code: int) -> KitError:
    out = read_output(lines)
    host = url_host(settings.db_url)
    if out.sqlstate in REFUSALS:
        return Refused(out.reason)
    if out.unknown_remote:
        return Refused(f"the database's migration history has versions that {workdir.project_dir(settings)}"
                       "/supabase/migrations lacks (`npx supabase migration list` names them); nothing was "
                       "changed: run from the repo that has them (--workdir), or `npx supabase migration fetch`")
    if out.connect:
        return db.connect_error(db.database_url(settings), out.connect, settings.secrets, settings.db_url_source,
                                out.sqlstate)
    if out.lost or out.sqlstate in LOST_SQLSTATES or (out.sqlstate or "").startswith("08"):
        return connection_lost(host, out.file)
    if out.file:
        return file_failed(out.file, out.reason, out.sqlstate)
    return ToolMissing(f"supabase db push failed (exit {code}) before applying a file, so nothing was applied: "
                       f"{out.reason}")


def read_output(lines: list[str]) -> Output:
    """Classify the Supabase CLI's output: a child program's failure reaches the kit only as text.

    The database's errors come as `ERROR: message (SQLSTATE KB001)` (a failed connection as `... (FATAL:
    message (SQLSTATE 28P01))`), and the SQLSTATE is what decides; the CLI's own failures and its driver's
    client-side ones (refused, no such host, timeout, a connection lost) have no code, so their text is read.
    The CLI echoes the failing statement after the error, and that source holds every `raise` text of the
    migration: only the ERROR line says which one was raised.
    """
    out = Output()
    for line in lines:
        if line.startswith("Applying migration "):
            out.file = line.removeprefix("Applying migration ").rstrip(".")
        found = ERROR_LINE.search(line)
        if found and out.sqlstate is None:
            out.reason, out.sqlstate = found.group(1).strip(), found.group(2)
        lowered = line.lower()
        if out.connect is None and any(hint in lowered for hint in CONNECT_HINTS):
            out.connect = line
        out.lost = out.lost or any(hint in line for hint in LOST_HINTS)
        out.unknown_remote = out.unknown_remote or "Remote migration versions not found" in line
    if out.sqlstate is None:
        shown = [line for line in lines if line.strip() and not line.startswith("Try rerunning")]
        out.reason = shown[-1].strip() if shown else "no output"
    return out
