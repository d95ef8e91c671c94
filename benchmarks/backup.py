"""`kit backup` next to a plain `pg_dump -Fc` of the same database, in one run.

Setup: a local PostgreSQL (the local default's major, with contrib) whose llm_usage holds 1,000,000
rows (the plan's current state, a third of the rows with UUID links), built as
benchmarks/migration_under_load.py builds it, and a copy grown to 5,000,000 rows. Then, each as its
own process, timed by wall clock with its peak memory (the process and the tools it ran):

  1. pg_dump -Fc of the whole database (the alternative: what a careful operator runs by hand) and
     kit backup (one snapshot, one read: the archive, the split files, the manifest with the row
     counts and UUID maps), alternately, --repeat times each; the medians are compared;
  2. kit backup verify (checksums, pg_restore --list, a rehearsal restore into a throwaway server);
  3. kit backup of the 5M-row copy: peak memory against the 1M-row run;
  4. both dumps again while 4 connections insert usage rows: their insert p99 and longest insert;
  5. kit deploy of a copy of the 1M-row database while 2 connections insert: the longest insert,
     failed inserts, and whether every row written is there afterwards.

    .venv/bin/python benchmarks/backup.py [--rows 1000000] [--big-rows 5000000] [--repeat 3]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from kit import settings as settings_mod  # noqa: E402
from kit.local import pgtools, server as local  # noqa: E402
from migration_under_load import LOAD_ROWS, build_template, postgres_url  # noqa: E402

INSERT = ("insert into llm_usage (provider_name, model_name, agent_name, prompt_tokens, completion_tokens) "
          "values ('openai', 'gpt-4o', 'bench-writer', 120, 40) returning id")


def timed(argv: list[str], cwd: Path | None = None) -> dict:
    """Run argv; wall seconds and peak RSS (MB) of it and the children it waited for."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, cwd=cwd)
        out = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(argv[:4])} ... failed with exit code {os.waitstatus_to_exitcode(status)}: "
                             f"{errors.read().decode()[-2000:]}{out.decode()[-2000:]}")
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "out": out.decode()}


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


class Writers:
    def __init__(self, url: str, count: int):
        self.url, self.stop = url, threading.Event()
        self.timed: list[tuple[float, float]] = []  # (start, seconds) of each insert
        self.window = (0.0, float("inf"))
        self.ids: list[int] = []
        self.failed = 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                start = time.perf_counter()
                try:
                    self.ids.append(conn.execute(INSERT).fetchone()[0])
                    self.timed.append((start, time.perf_counter() - start))
                except psycopg.Error:
                    self.failed += 1
                time.sleep(0.005)

    def __enter__(self):
        for t in self.threads:
            t.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        time.sleep(0.2)
        self.stop.set()
        for t in self.threads:
            t.join()

    @property
    def latencies(self) -> list[float]:
        """The inserts that started while the measured command ran."""
        return [t for start, t in self.timed if self.window[0] <= start <= self.window[1]] or [0.0]

    def p99_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98] * 1000 if len(self.latencies) > 1 else 0.0

    def measure(self, run):
        start = time.perf_counter()
        result = run()
        self.window = (start, time.perf_counter())
        return result


def copy_db(admin_url: str, source: str, name: str) -> str:
    """A copy owned by postgres; the URL as postgres, which is not a superuser (as on Supabase)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"create database {name} template {source} owner postgres")
    return postgres_url(admin_url, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kit-bench-backup-"))
    s = settings_mod.load({"local_dir": str(folder / "pg")}, environ={}, cwd=ROOT)
    server = local.up(s, prepare_db=False)
    try:
        run(args, folder, s, server.admin_url)
    finally:
        local.destroy(s)


def run(args, folder: Path, s, admin_url: str) -> None:
    print(f"loading {args.rows:,} usage rows ...", flush=True)
    url = build_template(admin_url, args.rows, as_postgres=True)
    kit = [sys.executable, "-m", "kit"]
    pg_dump = pgtools.tool(s, "pg_dump")

    def plain(target: str, tag: str) -> dict:
        out = folder / f"plain-{tag}.dump"
        result = timed([pg_dump, "-Fc", "-f", str(out), "-d", target])
        result["mb"] = size_mb(out)
        out.unlink()
        return result

    def backup(target: str, tag: str) -> dict:
        result = timed(kit + ["backup", "--db-url", target, "--out", str(folder / f"backups-{tag}"), "--json"])
        result["path"] = Path(json.loads(result["out"])["path"])
        result["mb"] = size_mb(result["path"])
        return result

    plains, backups = [], []
    for n in range(args.repeat):
        plains.append(plain(url, str(n)))
        backups.append(backup(url, str(n)))
    p, b = (sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2] for runs in (plains, backups))
    verify = timed(kit + ["backup", "verify", str(b["path"]), "--json"])
    rehearsal = next(c for c in json.loads(verify["out"])["checks"] if c["name"].startswith("rehearsal"))

    print(f"growing a copy to {args.big_rows:,} rows ...", flush=True)
    big_url = copy_db(admin_url, "bench_tpl", "bench_big")
    with psycopg.connect(big_url, autocommit=True) as conn:
        conn.execute(LOAD_ROWS.replace("{rows}", str(args.big_rows - args.rows)).encode())
        conn.execute("vacuum analyze llm_usage")
    big = backup(big_url, "big")

    with Writers(url, 4) as plain_writers:
        plain_loaded = plain_writers.measure(lambda: plain(url, "loaded"))
    with Writers(url, 4) as kit_writers:
        kit_loaded = kit_writers.measure(lambda: backup(url, "loaded"))

    deploy_url = copy_db(admin_url, "bench_tpl", "bench_deploy")
    (folder / "deploy").mkdir()
    with Writers(deploy_url, 2) as deploy_writers:
        deploy = deploy_writers.measure(lambda: timed(kit + ["deploy", "--db-url", deploy_url, "--json", "--debug"],
                                                      cwd=folder / "deploy"))
    with psycopg.connect(deploy_url) as conn:
        missing = conn.execute("select count(*) from unnest(%s::bigint[]) i where not exists "
                               "(select 1 from llm_usage u where u.id = i)", (deploy_writers.ids,)).fetchone()[0]

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    print(f"\n{args.rows:,} usage rows; each run is its own process; median of {args.repeat}; "
          f"{os.cpu_count()} CPUs ({cpu}), load average {os.getloadavg()[0]:.1f}\n")
    print(f"{'run':<44}{'wall s':>8}{'peak MB':>9}{'output MB':>11}")
    for label, r in (("pg_dump -Fc", p), ("kit backup", b), ("kit backup verify", verify),
                     (f"kit backup, {args.big_rows:,} rows", big)):
        print(f"{label:<44}{r['seconds']:>8.2f}{r['peak_mb']:>9.0f}{r.get('mb', 0):>11.1f}")
    pairs = ", ".join(f"{k['seconds']:.2f}/{d['seconds']:.2f}" for k, d in zip(backups, plains, strict=True))
    print(f"\nkit backup / pg_dump -Fc: {b['seconds'] / p['seconds']:.2f}x the time "
          f"(runs: {pairs} s), "
          f"{b['mb'] / p['mb']:.2f}x the bytes")
    print(f"peak memory, {args.big_rows:,} against {args.rows:,} rows: {big['peak_mb']:.0f} / {b['peak_mb']:.0f} MB "
          f"= {big['peak_mb'] / b['peak_mb']:.2f}x")
    print(f"rehearsal restore: {rehearsal['detail']}")
    print("\nunder 4 writers (insert p99 / longest / failed during the dump):")
    for label, r, w in (("pg_dump -Fc", plain_loaded, plain_writers), ("kit backup", kit_loaded, kit_writers)):
        print(f"  {label:<14}{r['seconds']:>6.2f} s   p99 {w.p99_ms():6.1f} ms   longest "
              f"{max(w.latencies) * 1000:6.1f} ms   failed {w.failed}   inserts {len(w.latencies)}")
    print(f"\nkit deploy under 2 writers: {deploy['seconds']:.1f} s, exit ok; inserts {len(deploy_writers.latencies)}, "
          f"failed {deploy_writers.failed}, p99 {deploy_writers.p99_ms():.1f} ms, longest "
          f"{max(deploy_writers.latencies) * 1000:.1f} ms; rows written and missing afterwards: {missing}")


if __name__ == "__main__":
    main()
