"""`kit backup` takes a backup; `kit backup verify PATH`, `kit backup list` and `kit backup prune --keep N`."""

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from kit import project
from kit.backup import store as backup_store, take as backup, verify as backup_verify
from kit.cli.options import command
from kit.cli.output import Result, checks_text, progress, say, table
from kit.errors import SUCCESS, BackupError, ConfigError
from kit.local import server as local

HELP = ("Write DIR/<target>/<UTC time>/ with roles.sql, schema.sql, data.sql, history.sql (the split "
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
        "examples:\n  kit backup --db-url \"$SUPABASE_DB_URL\"\n  kit backup --jobs 4\n  kit backup --compress 6\n"
        "  kit backup verify backups/local/20261124T120000Z\n  kit backup list\n  kit backup prune --keep 3")
VERIFY = ("Check a backup folder: the checksums and pg_restore --list, then a restore into a throwaway server of "
          "the backup's major with contrib, comparing every table's row count with the snapshot's. "
          f"Exits {BackupError.exit_code} if a check fails.\n\n"
          "examples:\n  kit backup verify backups/local/20261124T120000Z\n"
          "  kit backup verify backups/local/20261124T120000Z --json")
LIST = ("Show the backups under DIR with their database, state and size.\n\n"
        "examples:\n  kit backup list\n  kit backup list --out /srv/backups --json")
PRUNE = ("Delete all but the newest N backups of each database under DIR, never the newest complete one.\n\n"
         "examples:\n  kit backup prune --keep 3\n  kit backup prune --keep 3 --out /srv/backups")
OUT = "where backups go (default: KIT_BACKUP_DIR or ./backups)"


def register(commands) -> None:
    p = command(commands, "backup", HELP, help="dump the database the way the dashboard's backup splits it")
    p.add_argument("--out", metavar="DIR", help=OUT)
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="dump the archive with N parallel workers, as a directory (database.dir/), same snapshot")
    p.add_argument("--compress", type=int, default=backup.COMPRESS, metavar="LEVEL",
                   help="gzip level of the archive, 0 (none) to 9 (default 1: half pg_dump's CPU of level 6, "
                        "an archive a quarter larger)")
    p.set_defaults(handler=cmd_backup)
    actions = p.add_subparsers(dest="action", help="verify PATH, list the backups, or prune old ones, instead of "
                               "taking a backup")
    v = command(actions, "verify", VERIFY, subcommand=True)
    v.add_argument("path", nargs="?", help="the backup folder to verify")
    v.set_defaults(handler=cmd_verify)
    listing = command(actions, "list", LIST, subcommand=True)
    listing.set_defaults(handler=cmd_list)
    prune = command(actions, "prune", PRUNE, subcommand=True)
    prune.add_argument("--keep", type=int, metavar="N", help="keep the newest N backups of each database")
    prune.set_defaults(handler=cmd_prune)
    for sub in (listing, prune):  # --out given before the subcommand's name (kit backup --out DIR list) is kept
        sub.add_argument("--out", metavar="DIR", default=argparse.SUPPRESS, help=OUT)


def cmd_verify(args, settings) -> Result:
    if not args.path:
        raise ConfigError("kit backup verify needs the backup folder: kit backup verify PATH")
    checks = backup_verify.verify(settings, Path(args.path), progress=progress(args))
    ok = all(c.ok for c in checks)
    return Result({"ok": ok, "path": args.path, "checks": [c.as_dict() for c in checks]}, checks_text(checks),
                  SUCCESS if ok else BackupError.exit_code)


def cmd_backup(args, settings) -> Result:
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs} is not a number of workers: pass 1 or more")
    if not 0 <= args.compress <= 9:
        raise ConfigError(f"--compress {args.compress} is not a gzip level: pass 0 (none) to 9")
    settings = local.resolve(settings)
    if settings.access_token and settings.project_ref:  # the manifest lists this project's platform backups
        plan = project.check(settings, database=True, project=True)
        if plan and not args.json:
            say(plan)
    with parts_display(args) as watch:
        taken = backup.take(settings, Path(args.out) if args.out else None, progress=progress(args), jobs=args.jobs,
                            watch=watch, compress=args.compress)
    m = taken.manifest
    rows = [(name, f"{f.bytes:,}", f.sha256[:16]) for name, f in m.files.items()]
    text = "\n".join([table(rows, ("file", "bytes", "sha256")),
                      f"{(m.bytes or 0) / 1e6:.1f} MB in {m.seconds} s ({m.mb_per_s} MB/s), "
                      f"{len(m.files)} files, UUID maps {'recorded' if m.maps else 'absent (already migrated)'}",
                      f"backup: {taken.path}"])
    return Result({"path": str(taken.path), "bytes": m.bytes, "seconds": m.seconds, "mb_per_s": m.mb_per_s,
                   "files": {name: f.as_dict() for name, f in m.files.items()}, "maps": bool(m.maps)}, text)


def cmd_list(args, settings) -> Result:
    base = backup_store.base_dir(settings, args.out)
    found = backup_store.find(base)
    rows = [(s.database, s.path.name, "complete" if s.complete else "INCOMPLETE", f"{s.bytes / 1e6:,.1f} MB",
             str(s.path)) for s in found]
    text = table(rows, ("database", "taken", "state", "size", "path")) if rows else f"no backups under {base}"
    return Result({"base": str(base), "backups": [s.as_dict() for s in found]}, text)


def cmd_prune(args, settings) -> Result:
    base = backup_store.base_dir(settings, args.out)
    if args.keep is None:
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
