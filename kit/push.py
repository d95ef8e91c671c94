"""`kit push`: apply the pending migration files through the Supabase CLI, psycopg or the Management API.

Whatever the route, the history table stays the one `supabase db push` reads and writes, a
file and its history row commit together, and one push at a time runs per database.
"""

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from kit import db, history, lint, workdir
from kit.errors import ConnectError, KitError, Refused
from kit.redact import redact, url_host
from kit.settings import Settings
from kit.workdir import Migration

ROUTES = ("cli", "direct", "api")
# One push per database: an advisory lock key every route takes ("kitpsh").
PUSH_LOCK_KEY = 0x6B69_7470_7368
LOCK_WAIT_S = 5.0
# SQLSTATEs the name-key migration raises: blockers, lock wait given up, tables missing.
REFUSALS = ("KB001", "KB002", "KB003")


@dataclass
class Plan:
    pending: list[Migration]
    applied: list[str]
    unknown_remote: list[str]
    folder: Path | None = None

    @property
    def include_all(self) -> bool:
        """The CLI skips a pending file older than the newest applied one unless told --include-all."""
        newest = max((int(v) for v in self.applied), default=-1)
        return any(int(m.version) < newest for m in self.pending)


@dataclass
class PushResult:
    via: str
    dry_run: bool
    pending: list[str]
    applied: list[str] = field(default_factory=list)
    include_all: bool = False
    findings: list[lint.Finding] = field(default_factory=list)
    linted: bool = True

    def as_dict(self) -> dict:
        return {"ok": True, "via": self.via, "dry_run": self.dry_run, "pending": self.pending,
                "applied": self.applied, "include_all": self.include_all, "linted": self.linted,
                "findings": [f.as_dict() for f in self.findings]}


def default_route(settings: Settings) -> str:
    try:
        workdir.supabase_cli(settings)
    except KitError:
        return "direct"
    return "cli"


def make_plan(settings: Settings, applied: list[str]) -> Plan:
    local = workdir.migrations(settings)
    versions = {m.version for m in local}
    return Plan([m for m in local if m.version not in applied], applied,
                [v for v in applied if v not in versions], workdir.project_dir(settings))


def check_history(plan: Plan) -> None:
    """Refuse when the database knows versions the local folder lacks, as `supabase db push` would."""
    if plan.unknown_remote:
        raise Refused(history.missing_advice(plan.unknown_remote, plan.folder))


def run(settings: Settings, via: str | None = None, *, dry_run: bool = False, lint_files: bool = True,
        output=None, lock_wait_s: float = LOCK_WAIT_S) -> PushResult:
    """Push every pending file; `output(line)` receives the Supabase CLI's output as it arrives."""
    route = via or default_route(settings)
    if route == "api":
        from kit import push_api

        return push_api.run(settings, dry_run=dry_run, lint_files=lint_files, lock_wait_s=lock_wait_s)
    db.refuse_transaction_pooler(settings)
    with db.session(settings) as conn:
        result = prepare(settings, route, history.applied_versions(conn), dry_run, lint_files)
        if dry_run or not result.pending:
            return result
        with push_lock(conn, lock_wait_s):
            plan = make_plan(settings, history.applied_versions(conn))
            check_history(plan)
            if route == "direct":
                apply_direct(conn, settings, plan.pending, output)
            else:
                from kit import push_cli

                push_cli.run(settings, plan, output)
            result.applied = [v for v in history.applied_versions(conn) if v not in plan.applied]
    return result


def prepare(settings: Settings, route: str, applied: list[str], dry_run: bool, lint_files: bool) -> PushResult:
    """The plan, the history check and the lint: everything that runs before anything changes."""
    plan = make_plan(settings, applied)
    check_history(plan)
    result = PushResult(route, dry_run, [m.version for m in plan.pending], include_all=plan.include_all,
                        linted=lint_files)
    if lint_files:
        result.findings = lint.run(plan.pending, workdir.project_dir(settings))
        if not dry_run:
            lint.require_clean(result.findings)
    return result


@contextmanager
def push_lock(conn: psycopg.Connection, wait_s: float):
    """Hold the push lock for the block; wait up to wait_s for another push, then refuse."""
    deadline = time.monotonic() + wait_s
    while not conn.execute("select pg_try_advisory_lock(%s)", (PUSH_LOCK_KEY,)).fetchone()[0]:
        if time.monotonic() >= deadline:
            holder = conn.execute("select pid from pg_locks where locktype = 'advisory' and granted "
                                  "and (classid::bigint << 32 | objid::bigint) = %s", (PUSH_LOCK_KEY,)).fetchone()
            who = f" (pid {holder[0]})" if holder else ""
            raise Refused(f"another push is running against this database{who}; nothing was applied: "
                          "wait for it to finish, then push again")
        time.sleep(0.2)
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("select pg_advisory_unlock(%s)", (PUSH_LOCK_KEY,))


def apply_direct(conn: psycopg.Connection, settings: Settings, pending: list[Migration], output=None) -> None:
    """One transaction per file, its history row inside it, exactly as the CLI writes it."""
    for migration in pending:
        if output:
            output(f"Applying migration {migration.path.name}...")
        try:
            history.apply(conn, migration)
        except psycopg.Error as exc:
            raise migration_error(migration, exc, settings) from None


def migration_error(migration: Migration, exc: psycopg.Error, settings: Settings) -> KitError:
    message = redact(" ".join((exc.diag.message_primary or str(exc) or "").split()), settings.secrets)
    if exc.diag.sqlstate in REFUSALS:
        return Refused(message)
    if isinstance(exc, psycopg.OperationalError) or exc.sqlstate is None:
        return ConnectError(f"the connection to {url_host(settings.db_url)} was lost while applying "
                            f"{migration.path.name}; its transaction rolled back, so nothing of it was applied: "
                            "run kit push again")
    return KitError(f"{migration.path.name} failed and rolled back, nothing of it was applied: {message}")
