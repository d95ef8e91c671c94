"""`kit backup verify`: checksums, `pg_restore --list`, then a rehearsal restore into a throwaway PostgreSQL."""

import subprocess
import time
from pathlib import Path

import psycopg
import psycopg.sql

from kit import manifest, pgserver, pgtools
from kit.errors import BackupError
from kit.settings import Settings
from kit.verify import Check

API_ROLES = (Path(__file__).parent / "sql" / "supabase_env.sql").read_text().split("grant anon,")[0]


def verify(settings: Settings, path: Path, progress=None, rehearse: bool = True) -> list[Check]:
    say = progress or (lambda message: None)
    path = Path(path)
    say("checking checksums")
    data = manifest.load(path)
    checks = [Check("checksums", True, f"{len(data['files'])} file(s) match manifest.json")]
    say("listing database.dump")
    listing = subprocess.run([pgtools.tool(settings, "pg_restore"), "--list", str(path / "database.dump")],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL)
    entries = [line for line in listing.stdout.splitlines() if line and not line.startswith(";")]
    if listing.returncode != 0:
        raise BackupError(f"database.dump in {path} cannot be read by pg_restore: "
                          f"{(listing.stderr.strip().splitlines() or ['no output'])[-1]}")
    checks.append(Check("pg_restore --list", True, f"{len(entries)} archive entries"))
    if rehearse:
        say("rehearsal restore into a throwaway PostgreSQL")
        checks.append(rehearsal(settings, path, data))
    return checks


def rehearsal(settings: Settings, path: Path, data: dict) -> Check:
    """Restore database.dump into a throwaway server of the backup's major and compare every table's row count."""
    start = time.perf_counter()
    major = pgtools.major(str(data.get("server") or settings.pg_major))
    with pgserver.temporary(settings, major) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(API_ROLES.encode())
        pgtools.psql_file(settings, url, path / "roles.sql")
        pgtools.run(settings, "pg_restore", ["--exit-on-error", "--no-owner", str(path / "database.dump")],
                    url=url, what="in the rehearsal restore")
        counts = _counts(url, data["row_counts"])
    wrong = [f"{t}: {counts.get(t)} restored, {n} in the manifest" for t, n in data["row_counts"].items()
             if counts.get(t) != n]
    seconds = time.perf_counter() - start
    detail = "; ".join(wrong) if wrong else f"{len(counts)} table(s), row counts equal, {seconds:.1f} s"
    return Check("rehearsal restore", not wrong, detail)


def _counts(url: str, tables: dict) -> dict:
    counts = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name in tables:
            schema, table = name.split(".", 1)
            counts[name] = conn.execute(psycopg.sql.SQL("select count(*) from {}").format(
                psycopg.sql.Identifier(schema, table))).fetchone()[0]
    return counts
