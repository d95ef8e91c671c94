"""`kit deploy`: the runbook in one command, with live progress and a report."""

import sys
import time

from kit import project, smoke
from kit.cli.options import command, yes_option
from kit.cli.output import Result, confirm, say, table
from kit.cli.smoke import parse_sets
from kit.deploy import runbook as deploy, steps as deploy_steps
from kit.local import server as local
from kit.schema.phases import Phase

HELP = ("Run the runbook against one database and stop at the first problem, saying what state the "
        "database is in and the exact rollback command. With no configuration at all it starts the "
        "local default (embedded PostgreSQL) and deploys there.\n\n"
        "In two steps, while old clients still send or read the UUID columns: `kit deploy --expand` keys the "
        "tables by name and keeps the UUID columns for them (the tables are then `expanded`); a later "
        "`kit deploy` on an expanded database pushes the contract, which drops them, and refuses while "
        "pg_stat_statements still lists such clients. In your app's repo, `kit init --expand` adds the "
        "expand file and a later `kit init` the contract file.\n\n"
        "examples:\n  kit deploy\n  kit deploy --expand --target production\n"
        "  kit deploy --target staging --yes --json\n"
        "  kit deploy --db-url \"$SUPABASE_DB_URL\" --rollback-on-failure")


def register(commands) -> None:
    p = command(commands, "deploy", HELP, help="preflight, backup, push, verify, smoke, report: the whole runbook")
    yes_option(p, "do not ask before changing a database or project that is not local (without a terminal, needed)")
    p.add_argument("--rollback-on-failure", action="store_true",
                   help="if a step after the push fails, run the printed rollback command")
    p.add_argument("--via", choices=["cli", "api", "direct"], help="how to push (default: cli when installed)")
    p.add_argument("--allow-legacy-statements", action="store_true",
                   help="deploy even though pg_stat_statements lists clients that still use the UUID columns "
                        "(they will fail after the migration or the contract)")
    p.add_argument("--expand", action="store_true",
                   help="push the expand step alone: names become the keys, the UUID columns stay for old clients")
    p.add_argument("--no-lint", action="store_true",
                   help="skip squawk on the pending files (findings otherwise stop the deploy in preflight)")
    p.add_argument("--set", action="append", default=[], metavar="COLUMN=VALUE",
                   help="a value for an llm_usage column in every smoke row, as `kit smoke --set` (repeatable)")
    p.set_defaults(handler=cmd_deploy)


def cmd_deploy(args, settings) -> Result:
    notes: list[str] = []
    settings = local.resolve(settings, notes)
    for note in notes if not args.json else ():
        say(f"note: {note}")
    rest = smoke.default_route(settings) == "rest"
    uses_project = bool(settings.project_ref) and (args.via == "api" or bool(settings.access_token))
    plan = project.check(settings, database=True, project=uses_project, rest=rest)
    if plan and not args.json:
        say(plan)
    destinations = [project.database(settings)]
    if args.via == "api":
        from kit.cloud.management import ManagementAPI  # here, not above: its HTTP client adds to start-up

        ManagementAPI.from_settings(settings)  # a missing token or project ref stops here, before the backup
        destinations.append(project.management(settings))
    destinations += [project.rest(settings)] if rest else []
    confirm(destinations, args.yes, "deploy the LLM name-key migration to")
    progress = Progress(enabled=not args.json)
    steps = deploy_steps.functions(via=args.via, allow_legacy_statements=args.allow_legacy_statements,
                                   smoke_overrides=parse_sets(args.set), lint_files=not args.no_lint)
    result = deploy.run(settings, steps, rollback_on_failure=args.rollback_on_failure,
                        observe=progress)
    progress.close()
    data = result.as_dict()
    return Result(data, summary(result), result.exit_code)


def summary(result: deploy.Deploy) -> str:
    # A failed step's error is printed once, on the FAILED line below (a refusal can be a paragraph long).
    rows = [(s.name, s.status, f"{s.seconds:.2f}s") for s in result.steps]
    lines = [table(rows, ("step", "result", "time")), ""]
    if result.ok:
        lines.append(f"deployed to {result.settings.label}; the LLM tables are {result.phase}")
        if result.phase.phase == Phase.EXPANDED:
            lines.append("old clients keep working; once kit status lists none of them, kit deploy pushes the "
                         "contract (in your app's repo, add it first with kit init)")
        lines += _rollback_lines(result)
    else:
        lines.append(f"FAILED at {result.failed_step}: {result.error}")
        lines.append(f"the LLM tables are now: {result.phase}")
        if result.rolled_back:
            lines.append("rolled back with the backup taken by this deploy")
        elif result.rollback_command or result.rollback_note:
            lines += _rollback_lines(result)
        else:
            lines.append("nothing was changed by the push; no rollback is needed")
    if result.legacy_statements or result.legacy_note:
        lines.append(f"legacy statements: {len(result.legacy_statements) or 'none'}"
                     + (f" ({result.legacy_note})" if result.legacy_note else ""))
    lines.append(f"report: {result.report_md}")
    return "\n".join(lines)


def _rollback_lines(result: deploy.Deploy) -> list[str]:
    if result.rollback_command and result.rollback_backup != result.backup_path:
        return [f"to roll back (with the newest backup taken before the migration): {result.rollback_command}"]
    if result.rollback_command:
        return [f"to roll back: {result.rollback_command}"]
    return [f"no rollback command: {result.rollback_note}"] if result.rollback_note else []


class Progress:
    """A live list of steps on a terminal (rich), plain lines on stderr otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.live = None
        self.started: dict[str, float] = {}
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(console=Console(stderr=True), refresh_per_second=8, transient=False)
            self.live.start()
        self.deploy: deploy.Deploy | None = None

    def __call__(self, event: str, step: deploy.Step, result: deploy.Deploy) -> None:
        self.deploy = result
        if event == "start":
            self.started[step.name] = time.perf_counter()
        if self.live is not None:
            self.live.update(self._render())
        elif self.enabled:
            if event == "start":
                print(f"[{step.name}] ...", file=sys.stderr, flush=True)
            else:  # the error itself follows once, in the summary
                print(f"[{step.name}] {step.status} in {step.seconds:.2f}s", file=sys.stderr, flush=True)

    def _render(self):
        from rich.spinner import Spinner
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        marks = {"ok": "[green]✔[/]", "failed": "[red]✘[/]", "interrupted": "[red]■[/]", "skipped": "·",
                 "pending": "·"}
        for step in self.deploy.steps if self.deploy else []:
            if step.status == deploy.StepStatus.RUNNING:
                elapsed = time.perf_counter() - self.started.get(step.name, time.perf_counter())
                grid.add_row(Spinner("dots"), step.name, f"{elapsed:.1f}s")
            else:
                grid.add_row(marks.get(step.status, "?"), step.name,
                             f"{step.seconds:.1f}s" if step.status in ("ok", "failed") else step.status)
        return grid

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
