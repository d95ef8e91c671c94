"""Push the plan's SQL and the repo's migration under live load, side by side in one run.

Setup, the same for both: llm_usage holds 1,000,000 rows; 4 connections insert usage rows
continuously; one report transaction reads llm_usage and stays open for 8 s. The push starts
0.5 s into that report. Both pushes run the way `supabase db push` runs a file: one transaction
with its history row (kit.migrations.history.apply).

    .venv/bin/python benchmarks/migration_under_load.py [--rows 1000000] [--report-seconds 8]

Prints, per variant: push time, longest single insert, p99 insert latency, inserts, failed inserts.
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kit import settings as settings_mod  # noqa: E402
from kit.local import server as local  # noqa: E402
from kit.migrations import history, workdir  # noqa: E402

INSERT = ("insert into llm_usage (provider_name, model_name, agent_name, prompt_tokens, completion_tokens) "
          "values ('openai', 'gpt-4o', 'bench', 120, 40)")
LOAD_ROWS = """
insert into llm_usage (provider_id, model_id, provider_name, model_name, agent_name, prompt_tokens, completion_tokens)
select case when g % 3 = 0 then p.id end, case when g % 3 = 0 then m.id end, p.name, m.name, 'bench', g % 4000, g % 900
from generate_series(1, {rows}) g
join lateral (select id, name, provider_id from llm_models where g > 0 order by name offset g % 9 limit 1) m on true
join llm_providers p on p.id = m.provider_id
"""


def build_template(admin_url: str, rows: int, as_postgres: bool = False) -> str:
    """bench_tpl: Supabase's roles and schemas (as the superuser), then the baseline, the local data and `rows`
    usage rows, as the superuser or, with as_postgres, as postgres; its URL as the user that built it."""
    s = settings_mod.load({}, environ={}, cwd=ROOT)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("create database bench_tpl")
    admin = admin_url.rsplit("/", 1)[0] + "/bench_tpl"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute((ROOT / "kit/sql/supabase_env.sql").read_text().encode())
    url = postgres_url(admin_url, "bench_tpl") if as_postgres else admin
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in history.split_statements(workdir.migrations(s)[0].sql):
            conn.execute(statement.encode(), prepare=False)
        conn.execute((ROOT / "kit/sql/local_data.sql").read_text().encode())
        conn.execute("truncate llm_usage")
        conn.execute(LOAD_ROWS.replace("{rows}", str(rows)).encode())
        conn.execute("vacuum analyze llm_usage")
    return url


def postgres_url(admin_url: str, database: str) -> str:
    """`database` as postgres, which is not a superuser (as on Supabase)."""
    port = admin_url.rsplit(":", 1)[1].split("/")[0]
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


class Inserter(threading.Thread):
    def __init__(self, url: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.url, self.stop, self.latencies, self.failed = url, stop, [], 0

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                start = time.perf_counter()
                try:
                    conn.execute(INSERT)
                    self.latencies.append(time.perf_counter() - start)
                except psycopg.Error:
                    self.failed += 1
                time.sleep(0.005)


def report_query(url: str, seconds: float, started: threading.Event) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("select count(*) from llm_usage")
        started.set()
        time.sleep(seconds)
        conn.rollback()


def run_variant(url: str, migration: workdir.Migration, report_seconds: float) -> dict:
    stop = threading.Event()
    inserters = [Inserter(url, stop) for _ in range(4)]
    for t in inserters:
        t.start()
    time.sleep(1.0)
    started = threading.Event()
    reader = threading.Thread(target=report_query, args=(url, report_seconds, started))
    reader.start()
    started.wait()
    time.sleep(0.5)
    push_start = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        history.apply(conn, migration)
    push_seconds = time.perf_counter() - push_start
    reader.join()
    time.sleep(1.0)
    stop.set()
    for t in inserters:
        t.join()
    latencies = sorted(x for t in inserters for x in t.latencies)
    return {"push_s": push_seconds, "max_ms": latencies[-1] * 1000,
            "p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000,
            "inserts": len(latencies), "failed": sum(t.failed for t in inserters)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--report-seconds", type=float, default=8.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kit-bench-"))
    s = settings_mod.load({"local_dir": str(folder)}, environ={}, cwd=ROOT)
    server = local.up(s, prepare_db=False)
    admin = server.admin_url  # a bare cluster: the superuser owns what the benchmark builds
    try:
        print(f"loading {args.rows:,} usage rows ...", flush=True)
        build_template(admin, args.rows)
        plan = workdir.Migration("20261124120000", "plan_sql_as_written", ROOT / "benchmarks/plan_migration.sql")
        repo = next(m for m in workdir.migrations(s) if m.name == "llm_name_keys")
        results = {}
        for label, migration in (("plan's SQL", plan), ("repo migration", repo)):
            name = "bench_" + migration.name
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"create database {name} template bench_tpl")
            results[label] = run_variant(admin.rsplit("/", 1)[0] + "/" + name, migration, args.report_seconds)
        print(f"\n{args.rows:,} rows, 4 inserters, one {args.report_seconds:g} s report transaction\n")
        print(f"{'variant':<16}{'push s':>8}{'longest insert ms':>19}{'p99 ms':>9}{'inserts':>9}{'failed':>8}")
        for label, r in results.items():
            print(f"{label:<16}{r['push_s']:>8.2f}{r['max_ms']:>19.1f}{r['p99_ms']:>9.1f}{r['inserts']:>9}{r['failed']:>8}")
    finally:
        local.destroy(s)


if __name__ == "__main__":
    main()
