"""`kit backup` next to a plain `pg_dump -Fc` of the same database, in one run.

Setup: a local PostgreSQL whose llm_usage holds 1,000,000 rows (the plan's current state, a third
of the rows with UUID links), built as benchmarks/migration_under_load.py builds it. Then, each
as its own process, timed by wall clock with its peak memory (the process and the tools it ran):

  1. pg_dump -Fc of the whole database (the alternative: what a careful operator runs by hand);
  2. kit backup (roles, schema, data and history files, the custom-format archive, the manifest
     with row counts and UUID maps);
  3. kit backup verify (checksums, pg_restore --list, a rehearsal restore into a throwaway
     PostgreSQL with every table's row count compared).

    .venv/bin/python benchmarks/backup.py [--rows 1000000]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from kit import local, pgtools, settings as settings_mod  # noqa: E402
from migration_under_load import build_template  # noqa: E402


def timed(argv: list[str]) -> dict:
    """Run argv; wall seconds and peak RSS (MB) of it and the children it waited for."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv[:3])} ... failed with exit code {os.waitstatus_to_exitcode(status)}")
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "out": out.decode()}


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kit-bench-backup-"))
    s = settings_mod.load({"local_dir": str(folder / "pg")}, environ={}, cwd=ROOT)
    server = local.up(s, prepare_db=False)
    try:
        print(f"loading {args.rows:,} usage rows ...", flush=True)
        build_template(server.url, args.rows)
        url = server.url.rsplit("/", 1)[0] + "/bench_tpl"
        kit = [sys.executable, "-m", "kit"]
        plain = timed([pgtools.tool(s, "pg_dump"), "-Fc", "-f", str(folder / "plain.dump"), "-d", url])
        plain["mb"] = size_mb(folder / "plain.dump")
        backup = timed(kit + ["backup", "--db-url", url, "--out", str(folder / "backups"), "--json"])
        path = Path(json.loads(backup["out"])["path"])
        backup["mb"] = size_mb(path)
        verify = timed(kit + ["backup", "verify", str(path), "--json"])
        rehearsal = next(c for c in json.loads(verify["out"])["checks"] if c["name"].startswith("rehearsal"))
        print(f"\n{args.rows:,} usage rows; each run is its own process\n")
        print(f"{'run':<28}{'wall s':>8}{'peak MB':>9}{'output MB':>11}")
        for label, r in (("pg_dump -Fc", plain), ("kit backup", backup), ("kit backup verify", verify)):
            print(f"{label:<28}{r['seconds']:>8.2f}{r['peak_mb']:>9.0f}{r.get('mb', 0):>11.1f}")
        print(f"\nkit backup / pg_dump -Fc: {backup['seconds'] / plain['seconds']:.2f}x the time, "
              f"{backup['mb'] / plain['mb']:.2f}x the bytes")
        print(f"rehearsal restore: {rehearsal['detail']}")
    finally:
        local.down(s)


if __name__ == "__main__":
    main()
