"""The steps `kit deploy` runs, each a function of the Deploy that returns what the report shows."""

import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit import db, push, smoke
from kit.backup import take as backup, verify as backup_verify
from kit.backup.store import target_dir
from kit.deploy.runbook import Checked, Deploy, StepFunction, require_checks
from kit.errors import CheckFailed, ConfigError, KitError, Refused
from kit.local import clients, pgtools
from kit.migrations import lint, workdir
from kit.migrations.plan import PushResult, check_history, make_plan
from kit.rollback import in_place as rollback
from kit.schema import catalog, legacy, status, verify
from kit.schema.phases import UNFINISHED, Phase, PhaseReading
from kit.settings import Settings
from kit.smoke import SmokeResult
from kit.smoke.rows import check_inputs
from kit.smoke.sql import shape_of

Progress = Callable[[str], None] | None


@dataclass
class Preflight:
    """What the preflight found: the phase, the history, the blockers and the lint's findings."""

    phase: Phase
    pending: list[str]
    applied: list[str]
    blockers: list[str]
    suggestions: list[str]
    legacy_statements: str
    linted: bool
    lint_findings: list[lint.Finding]

    def as_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "pending": self.pending, "applied": self.applied, "blockers": self.blockers,
                "suggestions": self.suggestions, "legacy_statements": self.legacy_statements, "linted": self.linted,
                "lint_findings": [f.as_dict() for f in self.lint_findings]}


@dataclass
class BackupTaken:
    """The backup the deploy took, its files and its verification."""

    path: Path
    files: dict[str, dict[str, Any]]
    verified: Checked

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "files": self.files, **self.verified.as_dict()}


def functions(via: str | None = None, progress: Progress = None, allow_legacy_statements: bool = False,
              smoke_overrides: dict[str, str] | None = None, lint_files: bool = True) -> dict[str, StepFunction]:
    """Step name -> function(deploy); `via` picks the push route; the lint runs in preflight."""
    return {
        "preflight": lambda d: preflight(d, allow_legacy_statements, lint_files, smoke_overrides),
        "backup": lambda d: backup_step(d, progress),
        "push": lambda d: push_step(d, via, progress),
        "verify": verify_step,
        "smoke": lambda d: smoke_step(d, smoke_overrides),
        "rollback": rollback_step,
    }


def preflight(deploy: Deploy, allow_legacy_statements: bool = False, lint_files: bool = True,
              smoke_overrides: dict[str, str] | None = None) -> Preflight:
    settings = deploy.settings
    conn = deploy.connection()
    deploy.versions["server"] = db.server_version(conn)
    survey = status.survey(conn, settings)
    st, found = survey.status, survey.legacy
    if st.locked_by:
        deploy.phase = PhaseReading(st.phase)
        raise Refused(f"the LLM tables are locked by {st.locked_by}, so the preflight could not check them; "
                      "nothing was changed: deploy again when that session ends")
    usage = survey.catalog.tables.get("llm_usage") if survey.catalog else None
    deploy.legacy_statements, deploy.legacy_note = found.as_list(), found.note
    plan = make_plan(settings, st.applied)
    check_history(plan)
    deploy.phase = PhaseReading(st.phase)
    deploy.versions.update(tool_versions(settings, pgtools.major(deploy.versions["server"])))
    refuse_phase(settings, st)
    if st.blockers:
        raise Refused(f"{len(st.blockers)} blocker(s) stop the migration, nothing was changed: "
                      + "; ".join(st.blockers))
    drops = [m for m in plan.pending if m.name in workdir.DROPS_UUIDS]
    if found.statements and drops and st.phase in UNFINISHED and not allow_legacy_statements:
        raise Refused(legacy.refusal(found, expanded=st.phase == Phase.EXPANDED))
    if usage is not None:
        smoke_inputs(usage, smoke_overrides or {})
    findings = lint.run(plan.pending, plan.folder or workdir.project_dir(settings)) if lint_files else []
    lint.require_clean(findings, "deploy")
    return Preflight(st.phase, st.pending, st.applied, st.blockers, st.suggestions, legacy.summary_line(found),
                     lint_files, findings)


def refuse_phase(settings: Settings, st: status.Status) -> None:
    """Refuse a database a rollback left part-way (UUID columns back, the history row of a change that drops them
    still there), an expanded one whose folder has no contract to push, and --expand on a migrated one."""
    view = workdir.migrations(settings, st.applied)
    dropping = [m.version for m in view if m.name in workdir.DROPS_UUIDS]
    if st.phase in (Phase.PARTIAL, Phase.EXPANDED) and set(dropping) & set(st.applied):
        raise Refused("the LLM tables are part-way through a rollback (UUID columns back, history row still "
                      f"present): run {finish_rollback(settings)} again to finish it, then deploy")
    if st.phase == Phase.EXPANDED and not settings.expand and not any(m.name == workdir.CONTRACT for m in view):
        folder = workdir.project_dir(settings)
        raise ConfigError(f"the LLM tables are expanded and {folder}/supabase/migrations has no "
                          f"*_{workdir.CONTRACT}.sql: once kit status lists no client of the UUID columns, add it with "
                          f"`kit init --workdir {folder}`, commit it, then deploy")
    if settings.expand and st.phase == Phase.MIGRATED:
        raise Refused("--expand: the LLM tables are migrated already (no UUID column is left), so there is nothing "
                      "to expand and no old client can use them; nothing was changed: run kit deploy without --expand")


def finish_rollback(settings: Settings) -> str:
    """The rollback command to run again: with the newest backup taken before the migration, when one is here."""
    found = backup.latest_with_maps(settings)
    if found is None:
        return (f"`kit rollback PATH` (PATH: the backup taken before the migration; none with UUID maps under "
                f"{target_dir(settings)})")
    return f"`kit rollback {shlex.quote(str(found))}`"


def smoke_inputs(usage: catalog.Table, overrides: dict[str, str]) -> None:
    """The smoke step's --set flags and NOT NULL columns, judged on llm_usage as the migration leaves it
    (its UUID columns gone), so a bad flag stops the deploy before the backup and the push (exit 2)."""
    check_inputs(shape_of(usage, without=catalog.UUID_COLUMNS["llm_usage"]), overrides)


def tool_versions(settings: Settings, server_major: int) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        found["supabase_cli"] = (workdir.supabase_cli_version(settings)
                                 or _version([workdir.supabase_cli(settings), "--version"]))
    except KitError:
        found["supabase_cli"] = "not installed"
    found["pg_dump"] = clients.choose(settings, server_major=server_major).version
    return found


def _version(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def backup_step(deploy: Deploy, progress: Progress = None) -> BackupTaken:
    early = backup_verify.EarlyServer(deploy.settings, pgtools.major(deploy.versions["server"]))
    try:
        taken = backup.take(deploy.settings, progress=progress, conn=deploy.connection())
        deploy.backup_path = str(taken.path)
        checks = backup_verify.verify(deploy.settings, taken.path, progress=progress, early=early)
    finally:
        early.close(wait=False)  # its stop (about 0.4 s) overlaps the push; run() joins it before it returns
        deploy.cleanups.append(early.join)
    verified = require_checks(checks, "the backup's verification")
    return BackupTaken(taken.path, {name: f.as_dict() for name, f in taken.manifest.files.items()}, verified)


def push_step(deploy: Deploy, via: str | None, progress: Progress = None) -> PushResult:
    result = push.run(deploy.settings, via, output=progress, lint_files=False,  # preflight linted (or --no-lint)
                      conn=deploy.connection())
    deploy.applied = result.applied
    return result


def verify_step(deploy: Deploy) -> Checked:
    checks = verify.run(deploy.connection(), deploy.settings, Path(deploy.backup_path) if deploy.backup_path else None)
    return require_checks(checks, "verify")


def smoke_step(deploy: Deploy, overrides: dict[str, str] | None = None) -> SmokeResult:
    result = smoke.run(deploy.settings, overrides=overrides, conn=deploy.connection())
    if not result.ok:
        failed = [c for c in result.checks if not c.ok]
        first = failed[0] if failed else None
        raise CheckFailed(f"smoke: {len(failed)} check(s) failed" + (f", first: {first.name} ({first.detail})"
                                                                       if first else ""))
    return result


def rollback_step(deploy: Deploy) -> rollback.Outcome:
    return rollback.in_place(deploy.settings, Path(deploy.rollback_backup or deploy.backup_path or ""))
