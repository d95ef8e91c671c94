"""`kit push`: apply pending migrations through the Supabase CLI, psycopg or the Management API."""

import sys

from kit import project, push
from kit.cli.options import command, yes_option
from kit.cli.output import Result, confirm, say, table
from kit.cloud.management import ManagementAPI
from kit.local import server as local
from kit.redact import mask_url

HELP = ("Apply the migrations in supabase/migrations that the database's history table lacks. Every "
        "route writes the history rows `supabase db push` reads, each file with its row in one "
        "transaction. Pending files are linted with squawk first; a second push against the same "
        "database waits briefly, then refuses.\n\n"
        "routes:\n  cli     the pinned `supabase db push --remote=URL` (default when installed)\n"
        "  direct  psycopg, one transaction per file\n"
        "  api     Management API POST /v1/projects/REF/database/query "
        "(SUPABASE_ACCESS_TOKEN, SUPABASE_PROJECT_REF)\n\n"
        "examples:\n  kit push --dry-run\n  kit push --via direct --db-url \"$SUPABASE_DB_URL\" --yes\n"
        "  kit push --via api --yes --json")


def register(commands) -> None:
    p = command(commands, "push", HELP, help="apply pending migrations (cli, direct or api), linted, one at a time")
    p.add_argument("--via", choices=push.ROUTES,
                   help="how to push (default: cli when the CLI is installed, else direct)")
    p.add_argument("--dry-run", action="store_true", help="list what would run, lint it, change nothing")
    yes_option(p, "do not ask before pushing to a database that is not local or through the Management API "
               "(without a terminal, needed)")
    p.add_argument("--no-lint", action="store_true", help="skip squawk (findings otherwise stop the push)")
    p.add_argument("--expand", action="store_true",
                   help="push the expand step alone (the first of the change's two steps; see kit deploy --help)")
    p.set_defaults(handler=cmd_push)


def cmd_push(args, settings) -> Result:
    api = args.via == "api"
    if not api:
        settings = local.resolve(settings)
    if api:
        ManagementAPI.from_settings(settings)  # a missing token or project ref is named before anything else
    plan = project.check(settings, database=bool(settings.db_url), project=api)
    if plan and not args.json:
        say(plan)
    if not args.dry_run:
        confirm([project.management(settings) if api else project.database(settings)], args.yes,
                "push migrations to")
    show = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    result = push.run(settings, args.via, dry_run=args.dry_run, lint_files=not args.no_lint, output=show)
    data = {**result.as_dict(), "database": mask_url(settings.db_url) if not api else None, "plan": plan}
    return Result(data, text(result))


def text(result: push.PushResult) -> str:
    lines = []
    if result.findings:
        lines.append(table([(f.file, f.line, f.rule, f.message) for f in result.findings],
                           ("file", "line", "rule", "finding")))
    if result.dry_run:
        pending = ", ".join(result.pending) or "nothing, the database is up to date"
        lines.append(f"would apply via {result.via}: {pending}")
        if result.include_all:
            lines.append("(with --include-all: a pending file is older than the newest applied one)")
        return "\n".join(lines)
    if not result.pending:
        return "nothing to push: every local migration is in the history table"
    lines.append(f"applied via {result.via}: {', '.join(result.applied) or 'nothing'}")
    return "\n".join(lines)
