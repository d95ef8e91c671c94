"""The push plan every route shares: pending and applied versions, the history check, the lint, the push lock.

Each route (kit/push/) runs `prepare` before anything changes and applies the plan under the push lock,
so that one push at a time runs per database whatever the route.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from kit.errors import ConfigError, ConnectError, MigrationFailed, Refused
from kit.migrations import history, lint, workdir
from kit.migrations.workdir import Migration
from kit.settings import Settings

# One push per database: an advisory lock key every route takes ("kitpsh").
PUSH_LOCK_KEY = 0x6B69_7470_7368
LOCK_WAIT_S = 5.0
# SQLSTATEs the name-key migration raises (blockers, lock wait given up, tables missing) and the api route's
# guard raises (another push): refusals, whatever the route.
REFUSALS = ("KB001", "KB002", "KB003", "KB004")


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


def make_plan(settings: Settings, applied: list[str]) -> Plan:
    folder = workdir.folder(settings, applied)
    local = workdir.migrations_in(folder / "supabase" / "migrations")
    versions = {m.version for m in local}
    plan = Plan([m for m in local if m.version not in applied], applied, [v for v in applied if v not in versions],
                folder)
    if settings.expand:
        check_expand(plan, local)
    return plan


def check_expand(plan: Plan, local: list[Migration]) -> None:
    """--expand pushes the expand step and nothing that drops the UUID columns: refuse a folder without the
    expand file, or with a pending one-step or contract file (exit 2, nothing changed)."""
    where = f"{plan.folder}/supabase/migrations"
    if not any(m.name == workdir.EXPAND for m in local):
        raise ConfigError(f"--expand: {where} has no *_{workdir.EXPAND}.sql: add it with `kit init --expand "
                          f"--workdir {plan.folder}`, commit it, then run this again")
    dropping = [m.path.name for m in plan.pending if m.name in workdir.DROPS_UUIDS]
    if dropping:
        raise ConfigError(f"--expand: {dropping[0]} is pending in {where} too and drops the UUID columns; move it out "
                          "until no client uses them (kit status lists them), or run without --expand")


def file_failed(name: str, reason: str, sqlstate: str | None) -> MigrationFailed:
    """A file whose SQL failed, as every route reports it: its transaction rolled back with it."""
    code = f" (SQLSTATE {sqlstate})" if sqlstate else ""
    return MigrationFailed(f"{name} failed and rolled back, nothing of it was applied: {reason}{code}; fix the file, "
                           "then push again")


def connection_lost(host: str, name: str | None) -> ConnectError:
    """The connection went while a file was applied: its transaction went with it."""
    where = f" while applying {name}" if name else ""
    return ConnectError(f"the connection to {host} was lost{where}; its transaction rolled back, so nothing of it "
                        "was applied: run kit push again")


def check_history(plan: Plan) -> None:
    """Refuse when the database knows versions the local folder lacks, as `supabase db push` would."""
    if plan.unknown_remote:
        raise Refused(history.missing_advice(plan.unknown_remote, plan.folder))


def prepare(settings: Settings, route: str, applied: list[str], dry_run: bool, lint_files: bool) -> PushResult:
    """The plan, the history check and the lint: everything that runs before anything changes."""
    plan = make_plan(settings, applied)
    check_history(plan)
    result = PushResult(route, dry_run, [m.version for m in plan.pending], include_all=plan.include_all,
                        linted=lint_files)
    if lint_files:
        result.findings = lint.run(plan.pending, plan.folder or workdir.project_dir(settings))
        if not dry_run:
            lint.require_clean(result.findings)
    return result


def take_push_lock(conn: psycopg.Connection) -> tuple[bool, list[str]]:
    """One try at the push lock, and the history's versions: one round trip."""
    results, applied = history.with_versions(conn, [("select pg_try_advisory_lock(%s)", (PUSH_LOCK_KEY,))])
    return results[0][0][0], applied


def wait_for_push_lock(conn: psycopg.Connection, wait_s: float) -> list[str]:
    """Wait up to wait_s for another push to let go of the lock, then refuse; the history's versions once held."""
    deadline = time.monotonic() + wait_s
    while True:
        got, applied = take_push_lock(conn)
        if got:
            return applied
        if time.monotonic() >= deadline:
            holder = conn.execute("select pid from pg_locks where locktype = 'advisory' and granted "
                                  "and (classid::bigint << 32 | objid::bigint) = %s", (PUSH_LOCK_KEY,)).fetchone()
            who = f" (pid {holder[0]})" if holder else ""
            raise Refused(f"another push is running against this database{who}; nothing was applied: "
                          "wait for it to finish, then push again")
        time.sleep(0.2)


def release_push_lock(conn: psycopg.Connection) -> list[str]:
    """Let go of the push lock; the history's versions as it is left: one round trip."""
    return history.with_versions(conn, [("select pg_advisory_unlock(%s)", (PUSH_LOCK_KEY,))])[1]
