"""`kit backup`, `kit backup verify` and `kit rollback`."""

import sys
import time
from contextlib import contextmanager
from pathlib import Path

from kit import db
from kit.backup import identity, manifest, store as backup_store, take as backup, verify as backup_verify
from kit.cli.output import Result, checks_text, confirm, say, table
from kit import project
from kit.errors import ConnectError
from kit.local import server as local
from kit.redact import url_host
from kit.rollback import full as rollback_full, in_place as rollback
from kit.settings import db_password


def register(commands, common) -> None:
    p = commands.add_parser(
        "backup", parents=[common], help="dump the database the way the dashboard's backup splits it",
        description="Write DIR/<target>/<UTC time>/ with roles.sql, schema.sql, data.sql, history.sql (the split "
                    "`supabase db dump` documents), database.dump (pg_restore archive) and manifest.json "
                    "(snapshot, versions, checksums, row counts, the LLM tables' UUID maps). One pg_dump reads the "
                    "data once, from a snapshot exported by a REPEATABLE READ transaction; every other file is "
                    "derived from its archive, so writers can keep inserting. Uses the kit's own PostgreSQL 18 "
                    "pg_dump, so no Docker is needed.\n\n"
                    "`kit backup verify PATH` checks the checksums and pg_restore --list, then restores into a "
                    "throwaway server of the backup's major with contrib and compares every table's row count with "
                    "the snapshot's.\n\n"
                    "`kit backup list` shows the backups under DIR with their database and size; `kit backup prune "
                    "--keep N` deletes all but the newest N of each database, never the newest complete one.\n\n"
                    "examples:\n  kit backup --db-url \"$SUPABASE_DB_URL\"\n  kit backup --jobs 4\n"
                    "  kit backup verify backups/local/20261124T120000Z\n  kit backup list\n  kit backup prune --keep 3")
    p.add_argument("action", nargs="?", choices=["verify", "list", "prune"],
                   help="verify PATH, list the backups, or prune old ones, instead of taking a backup")
    p.add_argument("path", nargs="?", help="the backup folder to verify")
    p.add_argument("--out", metavar="DIR", help="where backups go (default: KIT_BACKUP_DIR or ./backups)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="dump the archive with N parallel workers, as a directory (database.dir/), same snapshot")
    p.add_argument("--keep", type=int, metavar="N", help="with prune: keep the newest N backups of each database")
    p.set_defaults(handler=cmd_backup)
    p = commands.add_parser(
        "rollback", parents=[common], help="undo the migration in place from a backup, losing no row",
        description="In place (the default): bring back the UUID columns, keys and foreign keys with the UUIDs "
                    "recorded in the backup, link every usage row (rows written after the migration too) "
                    "through its names, and remove the migration's history row so the next push applies it "
                    "again. Polite: 100 ms lock attempts, and the long update runs without the exclusive lock.\n\n"
                    "--full restores the whole backup as Supabase documents it (roles, schema, data with "
                    "session_replication_role = replica, history) in one transaction, into a fresh project or a "
                    "database with the Supabase skeleton; a failure leaves the database as it was.\n\n"
                    "Without --db-url or --target, the database is the one the backup's manifest names, with "
                    "the password from the variable the backup found it in (else PGPASSWORD or ~/.pgpass, else "
                    "a prompt). A backup of another database is refused (exit 4) before anything is written.\n\n"
                    "examples:\n  kit rollback backups/local/20261124T120000Z --yes\n"
                    "  kit rollback backups/prod/20261124T120000Z --full --db-url postgresql://postgres@127.0.0.1:5432/restore")
    p.add_argument("path", help="the backup folder (from kit backup or kit deploy)")
    p.add_argument("--full", action="store_true", help="restore the whole backup, in one transaction, into a database without tables of its own")
    p.add_argument("--yes", action="store_true", help="do not ask (needed for a database that is not local)")
    p.set_defaults(handler=cmd_rollback)


def _say(args):
    return None if args.json else (lambda message: print(f"... {message}", file=sys.stderr, flush=True))


def cmd_backup(args, settings) -> Result:
    if args.action == "verify":
        if not args.path:
            from kit.errors import ConfigError

            raise ConfigError("kit backup verify needs the backup folder: kit backup verify PATH")
        checks = backup_verify.verify(settings, Path(args.path), progress=_say(args))
        ok = all(c.ok for c in checks)
        return Result({"ok": ok, "path": args.path, "checks": [c.as_dict() for c in checks]}, checks_text(checks),
                      0 if ok else 7)
    if args.action in ("list", "prune"):
        return _store(args, settings)
    if args.jobs < 1:
        from kit.errors import ConfigError

        raise ConfigError(f"--jobs {args.jobs} is not a number of workers: pass 1 or more")
    settings = local.resolve(settings)
    if settings.access_token and settings.project_ref:  # the manifest lists this project's platform backups
        plan = project.check(settings, database=True, project=True)
        if plan and not args.json:
            say(plan)
    with parts_display(args) as watch:
        taken = backup.take(settings, Path(args.out) if args.out else None, progress=_say(args), jobs=args.jobs,
                            watch=watch)
    m = taken.manifest
    rows = [(name, f"{f['bytes']:,}", f["sha256"][:16]) for name, f in m["files"].items()]
    text = "\n".join([table(rows, ("file", "bytes", "sha256")),
                      f"{m['bytes'] / 1e6:.1f} MB in {m['seconds']} s ({m['mb_per_s']} MB/s), "
                      f"{len(m['files'])} files, UUID maps {'recorded' if m['maps'] else 'absent (already migrated)'}",
                      f"backup: {taken.path}"])
    return Result({"path": str(taken.path), **{k: m[k] for k in ("bytes", "seconds", "mb_per_s", "files")},
                   "maps": bool(m["maps"])}, text)


def _store(args, settings) -> Result:
    base = Path(args.out) if args.out else settings.backup_dir
    base = base if base.is_absolute() else settings.cwd / base
    if args.action == "list":
        found = backup_store.find(base)
        rows = [(s.database, s.path.name, "complete" if s.complete else "INCOMPLETE", f"{s.bytes / 1e6:,.1f} MB",
                 str(s.path)) for s in found]
        text = table(rows, ("database", "taken", "state", "size", "path")) if rows else f"no backups under {base}"
        return Result({"base": str(base), "backups": [s.as_dict() for s in found]}, text)
    if args.keep is None:
        from kit.errors import ConfigError

        raise ConfigError("kit backup prune needs --keep N: the number of backups to keep per database")
    kept, deleted = backup_store.prune(base, args.keep)
    lines = [f"deleted {s.path} ({s.database}, {s.bytes / 1e6:,.1f} MB)" for s in deleted]
    lines.append(f"kept {len(kept)} backup(s), deleted {len(deleted)} "
                 f"({sum(s.bytes for s in deleted) / 1e6:,.1f} MB)")
    return Result({"kept": [s.as_dict() for s in kept], "deleted": [s.as_dict() for s in deleted]}, "\n".join(lines))


@contextmanager
def parts_display(args):
    """watch(part, bytes, done) for backup.take: rich bars with bytes and MB/s on a terminal, else one line per part."""
    if args.json:
        yield None
        return
    if sys.stderr.isatty():
        from rich.progress import DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        with Progress(TextColumn("{task.description:<28}"), DownloadColumn(), TransferSpeedColumn(),
                      transient=False) as bars:
            tasks, started = {}, {}

            def live(part, nbytes, done=False):
                if part not in tasks:
                    tasks[part], started[part] = bars.add_task(part, total=None), time.perf_counter()
                bars.update(tasks[part], completed=nbytes, total=nbytes if done else None)
                if done:
                    seconds = max(time.perf_counter() - started[part], 1e-3)
                    bars.update(tasks[part], description=f"{part} {nbytes / 1e6 / seconds:,.1f} MB/s")

            yield live
        return
    started = {}

    def plain(part, nbytes, done=False):
        started.setdefault(part, time.perf_counter())
        if done:
            seconds = time.perf_counter() - started[part]
            rate = nbytes / 1e6 / max(seconds, 1e-3)
            print(f"... {part}: {nbytes / 1e6:,.1f} MB in {seconds:.1f} s ({rate:,.1f} MB/s)",
                  file=sys.stderr, flush=True)

    yield plain


def _with_password(settings):
    """Reach the database; when it wants a password the URL lacks and there is a terminal, ask for it."""
    import getpass

    try:
        with db.session(settings):
            return settings
    except ConnectError as exc:
        if db_password(settings.db_url) or not str(exc).startswith("wrong password"):
            raise
        if not sys.stdin.isatty():
            raise ConnectError(f"{url_host(settings.db_url)} wants a password and {settings.db_url_from or 'the URL'} "
                               "has none: set PGPASSWORD, pass --db-url with the password, or run on a terminal to "
                               "be asked") from None
    from kit.process import url_without_password

    password = getpass.getpass(f"password for {url_without_password(settings.db_url)}: ")
    return settings.with_db_url(identity.with_password(settings.db_url, password))


def cmd_rollback(args, settings) -> Result:
    if args.full:
        settings = local.resolve(settings)
        outcome = rollback_full.restore(settings, Path(args.path), yes=args.yes, progress=_say(args))
        return Result({"ok": True, **outcome}, f"restored {args.path} into {outcome['database']}")
    if not (args.db_url or args.target):  # the backup knows its database
        settings = identity.database_of(settings, manifest.load(Path(args.path)))
    settings = _with_password(local.resolve(settings))
    confirm([project.database(settings)], args.yes, "roll back the LLM name-key migration on")
    outcome = rollback.in_place(settings, Path(args.path), progress=_say(args))
    if not outcome["changed"]:
        return Result({"ok": True, **outcome}, "nothing to roll back: the LLM tables are keyed by UUID already")
    text = (f"rolled back: the LLM tables are {outcome['phase']}; {outcome['usage_rows']:,} usage rows, "
            f"{outcome['linked_from_backup']:,} linked as the backup recorded, {outcome['linked_by_name']:,} "
            f"through their names; history row {outcome['history_removed'] or '(none)'} removed, so the next "
            "push applies the migration again")
    if outcome.get("links_lost"):
        gone = outcome.get("names_gone") or []
        shown = ", ".join(gone[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
        text += (f"\n{outcome['links_lost']:,} recorded link(s) point to a provider or model renamed or deleted "
                 f"since the backup (no longer there: {shown or 'unknown'}) and were left NULL")
    if outcome.get("unprovable"):
        text += (f"\nllm_usage has no primary key: {outcome['unprovable_rows']:,} row(s) were linked through names "
                 "their backup rows were not all linked to; their original link cannot be proven: " + "; ".join(
                     f"{u['provider_name']}/{u['model_name']}: {u['rows_now']:,} row(s) now, "
                     f"{u['backup_rows_otherwise_linked']:,} otherwise linked in the backup" for u in outcome["unprovable"]))
    return Result({"ok": True, **outcome}, text)
