"""`kit smoke`: LLM usage inserts the way agents make them, then cleaned up."""

from kit import project, smoke
from kit.cli.options import command, concurrency, concurrency_option, yes_option
from kit.cli.output import Result, confirm, progress, table
from kit.errors import SUCCESS, CheckFailed, ConfigError
from kit.local import server as local

HELP = ("Insert a usage row for every registered model and one for an unregistered model, read them "
        "back, make concurrent inserts (median and p95 latency), try an old client's payload that "
        f"still carries model_id, then delete every row this run wrote. Exits {CheckFailed.exit_code} if a check "
        f"fails, {ConfigError.exit_code} if a --set names no writable column or a NOT NULL column cannot be filled "
        "without one.\n\n"
        "routes:\n  rest  supabase-py (sync and async) against SUPABASE_URL with SUPABASE_SERVICE_ROLE_KEY"
        " (default when both are set)\n  sql   over the database connection, as PostgREST runs a "
        "request: one transaction, role service_role, JWT claims set\n\n"
        "It writes rows (and deletes them): a database or project that is not local needs --yes or "
        "a typed confirmation.\n\n"
        "rows are built from llm_usage as it is: known columns get meaningful values, an unknown NOT NULL "
        "column without a default is filled by its type (text, uuid, integers, numeric, timestamps, "
        "json, boolean, an enum's first label), or from --set; generated and identity columns are left "
        "out; rows are found again by their primary key, or by a run marker without one.\n\n"
        "examples:\n  kit smoke\n  kit smoke --via rest --yes --json\n  kit smoke --set tenant_id=acme")


def register(commands) -> None:
    p = command(commands, "smoke", HELP, help="insert, read back and delete LLM usage rows as the service role")
    p.add_argument("--via", choices=["rest", "sql"], help="rest (supabase-py) or sql (default: rest when configured)")
    concurrency_option(p, "concurrent inserts to time")
    yes_option(p, "do not ask before writing rows to a database or project that is not local (without a terminal, "
               "needed)")
    p.add_argument("--set", action="append", default=[], metavar="COLUMN=VALUE",
                   help="the value for an llm_usage column in every smoke row (repeatable)")
    p.set_defaults(handler=cmd_smoke)


def cmd_smoke(args, settings) -> Result:
    concurrency(args.concurrency)
    via = args.via or smoke.default_route(settings)
    if via == "sql":
        settings = local.resolve(settings)
    smoke.driver_for(settings, via, check_only=True)
    confirm([project.rest(settings) if via == "rest" else project.database(settings)], args.yes,
            "insert and delete smoke-test rows in")
    result = smoke.run(settings, via, concurrency=concurrency(args.concurrency), progress=progress(args),
                       overrides=parse_sets(args.set))
    return Result(result.as_dict(), text(result), SUCCESS if result.ok else CheckFailed.exit_code)


def parse_sets(items: list[str]) -> dict[str, str]:
    """--set COLUMN=VALUE flags as {column: value}."""
    overrides = {}
    for item in items:
        column, sep, value = item.partition("=")
        if not sep or not column:
            raise ConfigError(f"--set {item}: write COLUMN=VALUE, e.g. --set tenant_id=acme")
        overrides[column] = value
    return overrides


def text(result: smoke.SmokeResult) -> str:
    rows = [("PASS" if c.ok else "FAIL", c.name, f"{(c.seconds or 0) * 1000:.0f} ms", c.detail) for c in result.checks]
    failed = sum(not c.ok for c in result.checks)
    lines = [table(rows, ("result", "check", "time", "detail")),
             f"{len(result.checks) - failed} passed, {failed} failed (via {result.via}, run id {result.run_id})"]
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)
