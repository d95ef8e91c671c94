"""`kit rollback PATH`: undo the migration in place from a backup, or restore the whole backup with --full."""

import getpass
import sys
from pathlib import Path

from kit import db, project
from kit.backup import identity, manifest
from kit.cli.options import command, yes_option
from kit.cli.output import Result, confirm, progress
from kit.errors import ConnectError, PasswordRefused, Refused
from kit.local import server as local
from kit.process import url_without_password
from kit.redact import url_host
from kit.rollback import full as rollback_full, in_place as rollback
from kit.schema.phases import Phase
from kit.settings import db_password

HELP = ("In place (the default): bring back the UUID columns, keys and foreign keys with the UUIDs "
        "recorded in the backup, link every usage row (rows written after the migration too) "
        "through its names, and remove the migration's history row so the next push applies it "
        "again. Polite: 100 ms lock attempts, and the long update runs without the exclusive lock.\n\n"
        "--full restores the whole backup as Supabase documents it (roles, schema, data with "
        "session_replication_role = replica, history) in one transaction, into a fresh project or a "
        "database with the Supabase skeleton; a failure leaves the database as it was.\n\n"
        "Without --db-url or --target, the database is the one the backup's manifest names, with "
        "the password from the variable the backup found it in (else PGPASSWORD or ~/.pgpass, else "
        f"a prompt). A backup of another database is refused (exit {Refused.exit_code}) before anything is written.\n\n"
        "examples:\n  kit rollback backups/local/20261124T120000Z --yes\n"
        "  kit rollback backups/prod/20261124T120000Z --full --db-url postgresql://postgres@127.0.0.1:5432/restore")


def register(commands) -> None:
    p = command(commands, "rollback", HELP, help="undo the migration in place from a backup, losing no row")
    p.add_argument("path", help="the backup folder (from kit backup or kit deploy)")
    p.add_argument("--full", action="store_true",
                   help="restore the whole backup, in one transaction, into a database without tables of its own")
    yes_option(p, "do not ask (needed for a database that is not local)")
    p.set_defaults(handler=cmd_rollback)


def _with_password(settings):
    """Reach the database; when it wants a password the URL lacks and there is a terminal, ask for it."""
    try:
        with db.session(settings):
            return settings
    except PasswordRefused:
        if db_password(settings.db_url):
            raise
        if not sys.stdin.isatty():
            raise ConnectError(f"{url_host(settings.db_url)} wants a password and {settings.db_url_from or 'the URL'} "
                               "has none: set PGPASSWORD, pass --db-url with the password, or run on a terminal to "
                               "be asked") from None
    password = getpass.getpass(f"password for {url_without_password(settings.db_url)}: ")
    return settings.with_db_url(identity.with_password(settings.db_url, password))


def cmd_rollback(args, settings) -> Result:
    if args.full:
        settings = local.resolve(settings)
        restored = rollback_full.restore(settings, Path(args.path), yes=args.yes, progress=progress(args))
        return Result({"ok": True, **restored.as_dict()}, f"restored {args.path} into {restored.database}")
    if not (args.db_url or args.target):  # the backup knows its database
        settings = identity.database_of(settings, manifest.load(Path(args.path)))
    settings = _with_password(local.resolve(settings))
    confirm([project.database(settings)], args.yes, "roll back the LLM name-key migration on")
    outcome = rollback.in_place(settings, Path(args.path), progress=progress(args))
    if outcome.linked is None:
        return Result({"ok": True, **outcome.as_dict()},
                      "nothing to roll back: the LLM tables are keyed by UUID already")
    linked = outcome.linked
    text = (f"rolled back: the LLM tables are {outcome.phase}; {outcome.usage_rows:,} usage rows, "
            f"{linked.linked_from_backup:,} linked as the backup recorded, {outcome.linked_by_name:,} "
            f"through their names; history row {outcome.history_removed or '(none)'} removed, so the next "
            "push applies the migration again")
    if outcome.phase == Phase.EXPANDED:  # rolled back to a backup taken between the two steps
        text += "\nthe expand step stays; the next kit deploy pushes the contract again"
    if linked.links_lost:
        gone = linked.names_gone
        shown = ", ".join(gone[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
        text += (f"\n{linked.links_lost:,} recorded link(s) point to a provider or model renamed or deleted "
                 f"since the backup (no longer there: {shown or 'unknown'}) and were left NULL")
    if outcome.unprovable:
        text += (f"\nllm_usage has no primary key: {outcome.unprovable_rows:,} row(s) were linked through names "
                 "their backup rows were not all linked to; their original link cannot be proven: " + "; ".join(
                     f"{u.provider_name}/{u.model_name}: {u.rows_now:,} row(s) now, "
                     f"{u.backup_rows_otherwise_linked:,} otherwise linked in the backup" for u in outcome.unprovable))
    return Result({"ok": True, **outcome.as_dict()}, text)
