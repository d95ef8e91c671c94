"""`kit deploy`: the runbook in one call: preflight, backup, push, verify, smoke, report.

It stops at the first failing step, says what phase the database is in, and gives the exact
rollback command for the backup it took (or runs it, with rollback_on_failure).
"""

import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import psycopg

from kit import __version__, db, tls
from kit.backup import manifest, take as backup
from kit.checks import Check
from kit.deploy import report
from kit.errors import CheckFailed, ConnectError, Interrupted, KitError, Refused
from kit.files import utc_now
from kit.redact import mask_url, url_host
from kit.schema import status
from kit.schema.phases import CHANGED, Phase, PhaseReading
from kit.settings import Settings, db_password

STEPS = ("preflight", "backup", "push", "verify", "smoke", "report")
# One deploy per database at a time: a session-level advisory lock held for the whole run.
DEPLOY_LOCK_KEY = 0x6B69_7464_706C  # "kitdpl"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"


class Detail(Protocol):
    """What a step returns for the report: anything with its JSON object."""

    def as_dict(self) -> dict[str, Any]: ...


@dataclass
class Checked:
    """The checks a step ran, every one passed."""

    checks: list[Check]

    def as_dict(self) -> dict[str, Any]:
        return {"checks": [c.as_dict() for c in self.checks]}


@dataclass
class ReportFiles:
    markdown: str
    json: str

    def as_dict(self) -> dict[str, Any]:
        return {"markdown": self.markdown, "json": self.json}


@dataclass
class Step:
    name: str
    status: StepStatus = StepStatus.PENDING
    seconds: float = 0.0
    detail: Detail | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "seconds": self.seconds,
                "detail": self.detail.as_dict() if self.detail is not None else {}, "error": self.error}


@dataclass
class Deploy:
    """Everything the steps learn, and what the report says."""

    settings: Settings
    steps: list[Step] = field(default_factory=lambda: [Step(name) for name in STEPS])
    started: str = field(default_factory=utc_now)
    finished: str | None = None
    backup_path: str | None = None
    applied: list[str] = field(default_factory=list)
    phase: PhaseReading = field(default_factory=lambda: PhaseReading(Phase.UNKNOWN))
    versions: dict[str, str] = field(default_factory=dict)
    rollback_command: str | None = None
    rollback_backup: str | None = None  # the backup the rollback command uses (with the UUID maps)
    rollback_note: str | None = None  # why there is no rollback command, when there is none
    rolled_back: bool = False
    error: str | None = None
    exit_code: int = 0
    report_md: str | None = None
    report_json: str | None = None
    legacy_statements: list[dict] = field(default_factory=list)  # what preflight found, listed either way
    legacy_note: str | None = None
    conn: psycopg.Connection | None = field(default=None, repr=False)  # the deploy's connection, while it runs
    cleanups: list[Callable[[], None]] = field(default_factory=list, repr=False)  # run as run() ends, always

    def connection(self) -> psycopg.Connection:
        """The deploy's connection, rolled back to a clean state if a failed step left it in a transaction (a step
        run on its own, outside run(), opens one)."""
        if self.conn is None:
            self.conn = db.connect(self.settings)
        conn = self.conn
        if conn.closed or conn.broken:
            raise ConnectError(f"the connection to {url_host(self.settings.db_url)} was lost during the deploy")
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("rollback")
        return conn

    @property
    def ok(self) -> bool:
        return all(s.status == StepStatus.OK for s in self.steps)

    @property
    def failed_step(self) -> str | None:
        return next((s.name for s in self.steps if s.status in (StepStatus.FAILED, StepStatus.INTERRUPTED)), None)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "target": self.settings.label, "database": mask_url(self.settings.db_url),
                "started": self.started, "finished": self.finished, "phase": str(self.phase),
                "failed_step": self.failed_step, "error": self.error, "backup": self.backup_path,
                "applied": self.applied, "rollback_command": self.rollback_command,
                "rollback_backup": self.rollback_backup, "rollback_note": self.rollback_note,
                "rolled_back": self.rolled_back, "versions": self.versions,
                "steps": [s.as_dict() for s in self.steps], "report": self.report_md,
                "report_json": self.report_json, "legacy_statements": self.legacy_statements,
                "legacy_statements_note": self.legacy_note}


Observer = Callable[[str, Step, Deploy], None]
StepFunction = Callable[[Deploy], Detail | None]


def run(settings: Settings, step_functions: dict[str, StepFunction], *, rollback_on_failure: bool = False,
        observe: Observer | None = None) -> Deploy:
    """Run every step in order; never raises for a step's failure: the Deploy says what happened."""
    deploy = Deploy(settings)
    observe = observe or (lambda event, step, d: None)
    try:
        # holds the deploy lock; the steps' own reads and writes use it too. The pooler probe's second session
        # connects while it does (a connection costs round trips at a distance).
        db.refuse_pooler_port(settings)
        with db.beside(settings) as second, db.session(settings) as conn:
            db.refuse_transaction_pooler(settings, conn=conn, second=second)
            _take_deploy_lock(conn, settings)
            deploy.conn = conn
            for step in deploy.steps[:-1]:
                if not _run_step(deploy, step, step_functions[step.name], observe):
                    break
            if deploy.failed_step:
                _after_failure(deploy, step_functions, rollback_on_failure, observe)
            elif deploy.backup_path:
                _choose_rollback(deploy)
            _finish(deploy, observe)
    finally:
        deploy.conn = None
        for cleanup in deploy.cleanups:
            cleanup()
    return deploy


def _run_step(deploy: Deploy, step: Step, function: StepFunction, observe: Observer) -> bool:
    step.status = StepStatus.RUNNING
    observe("start", step, deploy)
    start = time.perf_counter()
    try:
        step.detail = function(deploy)
        step.status = StepStatus.OK
    except KeyboardInterrupt:
        step.status, step.error = StepStatus.INTERRUPTED, "interrupted by the operator (Ctrl-C)"
        deploy.error, deploy.exit_code = step.error, Interrupted.exit_code
    except KitError as exc:
        step.status, step.error = StepStatus.FAILED, str(exc)
        deploy.error, deploy.exit_code = str(exc), exc.exit_code
    step.seconds = time.perf_counter() - start
    observe("end", step, deploy)
    return step.status == StepStatus.OK


def _after_failure(deploy: Deploy, step_functions: dict[str, StepFunction], rollback_on_failure: bool,
                   observe: Observer) -> None:
    for step in deploy.steps:
        if step.status == StepStatus.PENDING:
            step.status = StepStatus.SKIPPED
    deploy.phase = _phase(deploy)
    if deploy.backup_path and deploy.phase.phase in CHANGED:
        _choose_rollback(deploy)
        if rollback_on_failure and deploy.rollback_backup:
            try:
                step_functions["rollback"](deploy)
                deploy.rolled_back = True
                deploy.phase = _phase(deploy)
            except (KitError, KeyboardInterrupt) as exc:
                deploy.error = f"{deploy.error}; the automatic rollback failed too: {exc}"


def _finish(deploy: Deploy, observe: Observer) -> None:
    step = deploy.steps[-1]
    deploy.phase = _phase(deploy)
    deploy.versions.setdefault("python", platform.python_version())
    deploy.versions.setdefault("kit", __version__)
    deploy.finished = utc_now()
    step.status = StepStatus.RUNNING
    observe("start", step, deploy)
    start = time.perf_counter()
    step.status = StepStatus.OK
    stamp = deploy.started.replace(":", "").replace("-", "")
    md, js = report.write(deploy.settings.cwd / deploy.settings.report_dir, stamp, deploy.settings.label,
                          deploy.as_dict(), deploy.settings.secrets)
    deploy.report_md, deploy.report_json = str(md), str(js)
    step.seconds = time.perf_counter() - start
    step.detail = ReportFiles(str(md), str(js))
    observe("end", step, deploy)


def _take_deploy_lock(conn: psycopg.Connection, settings: Settings) -> None:
    got = db.one(conn, "select pg_try_advisory_lock(%s)", (DEPLOY_LOCK_KEY,))
    if not got:
        raise Refused("another kit deploy is running against this database; wait for it to finish, "
                      "then run kit deploy again")


def _phase(deploy: Deploy) -> PhaseReading:
    """The phase now, on the deploy's connection (a new one when a failed step lost it)."""
    try:
        try:
            return status.read_phase(deploy.connection())
        except (KitError, psycopg.Error):
            with db.session(deploy.settings) as conn:
                return status.read_phase(conn)
    except (KitError, psycopg.Error):
        return PhaseReading(Phase.UNKNOWN, note="the database cannot be reached")


def _choose_rollback(deploy: Deploy) -> None:
    """The rollback command for this deploy's backup, or, when the database was migrated already when it
    was taken (no UUID maps in it), for the newest backup of this database taken before the migration."""
    taken = Path(deploy.backup_path or "")
    try:
        data = manifest.load(taken)
    except KitError:
        data = None
    has_maps = bool(data and data.maps)
    path = taken if has_maps else backup.latest_with_maps(deploy.settings, data.identity if data else None)
    if path is None:
        deploy.rollback_note = (f"the LLM tables were migrated before this deploy and {taken.parent} holds no "
                                "backup of this database from before the migration, so kit rollback cannot undo it "
                                "from here")
        return
    deploy.rollback_backup = str(path)
    deploy.rollback_command = rollback_command(deploy.settings, str(path))


PASSWORD_PLACEHOLDER = "'[YOUR-PASSWORD]'"


def program() -> str:
    """How this shell runs the kit again: `kit` when that is on PATH (or the kit was not started by its own script,
    e.g. `python -m kit`), else the path it was started by, e.g. `.venv/bin/kit` (the README's commands)."""
    started = sys.argv[0]
    if Path(started).name != "kit":
        return "kit"
    on_path = shutil.which("kit")
    if on_path and Path(on_path).resolve() == Path(started).resolve():
        return "kit"
    return shlex.quote(started)


def rollback_command(settings: Settings, backup_path: str) -> str:
    """The command that undoes this deploy, in the same shell and folder, with what it needs named in it.

    `kit rollback PATH` finds the database from the backup's manifest and its password where this deploy
    found it (the variable recorded there, looked for in the .env of --workdir too), so no URL or password is
    printed. A password given only inside --db-url is in no variable: the command then names PGPASSWORD, with
    a placeholder, never the password. --allow-plaintext goes with it when this deploy needed it.
    """
    args = [program(), "rollback", shlex.quote(backup_path), "--yes"]
    args += ["--workdir", shlex.quote(str(settings.workdir.resolve()))] if settings.workdir else []
    args += ["--allow-plaintext"] if settings.allow_plaintext and tls.check(settings) else []
    command = " ".join(args)
    if settings.db_url_from == "--db-url" and db_password(settings.db_url):
        return f"PGPASSWORD={PASSWORD_PLACEHOLDER} {command}"
    return command


def require_checks(checks: list[Check], what: str) -> Checked:
    failed = [c for c in checks if not c.ok]
    if failed:
        raise CheckFailed(f"{what}: {len(failed)} check(s) failed, first: {failed[0].name} ({failed[0].detail})")
    return Checked(checks)
