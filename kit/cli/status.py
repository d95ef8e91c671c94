"""`kit status`: the LLM tables' phase, pending migrations, blockers and legacy statements (read-only)."""

from kit import db
from kit.cli.options import command
from kit.cli.output import Result
from kit.errors import ToolMissing
from kit.local import clients, server as local
from kit.migrations import workdir
from kit.redact import mask_url
from kit.schema import legacy, status
from kit.schema.phases import Phase

HELP = ("Report the LLM tables' phase (absent, before, partial, expanded, migrated), the migrations not yet in "
        "the history table, what blocks the change, and the statements in pg_stat_statements that still use the "
        "UUID columns (legacy_statements). Changes nothing.\n\n"
        "With --expand, the blockers are those of the expand step (the first of the two steps).\n\n"
        "examples:\n  kit status\n  kit status --db-url \"$SUPABASE_DB_URL\" --json\n"
        "  kit status --workdir ../your-app --target staging")


def register(commands) -> None:
    p = command(commands, "status", HELP, help="phase, pending migrations and blockers (read-only)")
    p.add_argument("--expand", action="store_true",
                   help="list the blockers of the expand step (see kit deploy --expand)")
    p.set_defaults(handler=cmd_status)


def cmd_status(args, settings) -> Result:
    settings = local.resolve(settings)
    with db.session(settings) as conn:
        survey = status.survey(conn, settings)
        st, found = survey.status, survey.legacy
        encryption = db.encryption(conn)
        server_major = conn.info.server_version // 10000
    try:
        pg_dump = clients.choose(settings, server_major=server_major).describe()
    except ToolMissing as exc:
        pg_dump = f"none usable: {exc}"
    data = {"phase": st.phase, "pending": st.pending, "blockers": st.blockers, "applied": st.applied,
            "unknown_remote": st.unknown_remote, "suggestions": st.suggestions, "blockers_note": st.blockers_note,
            "database": mask_url(settings.db_url), "tls": encryption, "pg_dump": pg_dump,
            "legacy_statements": found.as_list(), "legacy_statements_note": found.note}
    lines = [f"database  {mask_url(settings.db_url)}", f"tls       {encryption}", f"pg_dump   {pg_dump}",
             f"phase     {st.phase}",
             f"applied   {', '.join(st.applied) or 'none'}", f"pending   {', '.join(st.pending) or 'none'}"]
    if st.unknown_remote:
        lines.append(f"unknown   {', '.join(st.unknown_remote)} (in the database's history, not in "
                     f"{workdir.project_dir(settings)}/supabase/migrations: run from the repo that has them, "
                     "--workdir DIR, or `npx supabase migration fetch`)")
    lines.append(f"blockers  {st.blockers_note or len(st.blockers) or 'none'}")
    lines += [f"  - {b}" for b in st.blockers]
    if st.suggestions:
        lines.append("suggest   (after the migration, outside it)")
        lines += [f"  - {n}" for n in st.suggestions]
    lines += legacy_lines(found, st.phase)
    return Result(data, "\n".join(lines))


def legacy_lines(found: legacy.Legacy, phase: Phase) -> list[str]:
    lines = [f"legacy    {legacy.summary_line(found)}"]
    lines += [f"  - {s.calls} calls by {s.role}, {s.mean_ms:.3f} ms mean: {s.query}" for s in found.statements]
    if found.statements and phase == Phase.MIGRATED:
        lines.append(f"  these ran before the migration; those clients now fail. Once fixed: `{found.reset_sql}`")
    elif found.statements and phase == Phase.EXPANDED:
        lines.append("  they work while the tables are expanded; kit deploy (the contract) refuses while they are "
                     f"listed: fix those clients, then `{found.reset_sql}`")
    elif found.statements:
        lines.append(f"  fix those clients, then `{found.reset_sql}`")
    return lines
