"""`kit verify`: the target schema checked point by point; a failed check exits CheckFailed's code."""

from pathlib import Path

from kit import db
from kit.cli.options import command
from kit.cli.output import Result, checks_text
from kit.errors import SUCCESS, CheckFailed
from kit.local import server as local
from kit.schema import verify

HELP = ("Check from pg_catalog what the migration guarantees: names as keys (on one index each), no UUID columns "
        "or foreign keys, names not null, the history row. What it leaves alone (RLS, policies, the names' types, "
        "other foreign keys, columns, whole-table publications) is compared with the shape a backup recorded when "
        f"--backup is given, and shown as info otherwise. Exits {CheckFailed.exit_code} if any check fails.\n\n"
        "examples:\n  kit verify --db-url \"$SUPABASE_DB_URL\"\n"
        "  kit verify --backup backups/local/20261124T120000Z --json")


def register(commands) -> None:
    p = command(commands, "verify", HELP, help="check the target schema point by point")
    p.add_argument("--backup", metavar="PATH", help="a backup folder taken before the migration, to compare with")
    p.set_defaults(handler=cmd_verify)


def cmd_verify(args, settings) -> Result:
    settings = local.resolve(settings)
    with db.session(settings) as conn:
        checks = verify.run(conn, settings, Path(args.backup) if args.backup else None)
    ok = all(c.ok for c in checks)
    data = {"ok": ok, "checks": [c.as_dict() for c in checks]}
    return Result(data, checks_text(checks), SUCCESS if ok else CheckFailed.exit_code)
