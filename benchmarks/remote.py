"""The kit at a distance: each command's wall time with 0 ms and with N ms of round-trip time to its database,
the sequential round trips that implies and the ones counted, next to what a user runs by hand.

Setup: a local PostgreSQL (the local default's major, with contrib), a template with the plan's tables,
the local default's providers and models and --rows usage rows (a third with UUID links), built as
benchmarks/migration_under_load.py builds it, and a copy of it migrated. Every run goes through the
latency proxy of tests/latency.py (so 0 ms pays the proxy's own cost too and the difference is the
delay alone), plaintext so the handshakes can be told apart; each run is its own process on a fresh
copy of the database, --repeat times (medians reported), at 0 ms and at each --rtt:

  pg_dump -Fc              the kit's own client programs (kit.local.clients.choose(settings).bin)
  supabase db push         node_modules/.bin/supabase, --remote=URL --yes --workdir (a copy of supabase/)
  kit status, kit backup, kit verify (on the migrated copy), kit smoke --via sql --yes,
  kit deploy --yes         its default push route (the CLI); its steps timed by the runbook's observe
                           callback in the child process, and the proxy's turns attributed to each step
                           by the turn's start; "outside the steps" is the whole less the steps (start-up,
                           the checks and the pooler probe before them, the lock, the phase read, the report)

Columns: wall at 0 ms, wall at N ms, the sequential round trips the difference implies ((t_N - t_0) / rtt),
the sequential round trips the proxy counted at N ms (turns after each connection's handshake, merged
where connections overlap), the chained count (each merged interval counted as the most turns one
connection has in it), the connections opened (each costs at least one more round trip for its startup,
which the counts leave out and the implied number includes). Ends with kit deploy / (pg_dump -Fc +
supabase db push) at each round-trip time.

    .venv/bin/python benchmarks/remote.py [--rtt 50] [--rtt 100 | --rtt 50,100] [--rows 20000] [--repeat 3]
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from kit import settings as settings_mod  # noqa: E402
from kit.local import clients, server as local  # noqa: E402
from migration_under_load import build_template, postgres_url  # noqa: E402
from tests.helpers import migrate_direct  # noqa: E402
from tests.latency import LatencyProxy  # noqa: E402

OBSERVE = "--observe-deploy"  # this file run as the deploy's child process, printing each step's start and end
STEPS = ("preflight", "backup", "push", "verify", "smoke")
# The rest of a deploy: the process starting, the checks before the steps, the pooler probe, the deploy
# lock, the phase read after them, the report.
OUTSIDE = "outside the steps"
KIT = [sys.executable, "-m", "kit"]


def observe_deploy(argv: list[str]) -> int:
    """`kit` with argv, its runbook's steps printed to stderr as JSON lines with their time.monotonic()."""
    from kit.cli import main as kit_main
    from kit.deploy import runbook

    real = runbook.run

    def run(settings, steps, **options):
        shown = options.get("observe") or (lambda event, step, deploy: None)

        def observe(event, step, deploy):
            print(json.dumps({"event": event, "step": step.name, "t": time.monotonic()}), file=sys.stderr, flush=True)
            shown(event, step, deploy)

        return real(settings, steps, **{**options, "observe": observe})

    runbook.run = run
    return kit_main(argv)


def child_env() -> dict:
    """The environment without the developer's database, project, kit or libpq settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "KIT_", "PG"))}


def timed(argv: list[str], cwd: Path) -> tuple[float, str]:
    """Run argv; its wall seconds and its stderr. Exits the benchmark when it fails."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=child_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ... exited {done.returncode}: "
                         f"{done.stderr[-2000:]}{done.stdout[-2000:]}")
    return seconds, done.stderr


class Bench:
    def __init__(self, args, folder: Path, admin_url: str, port: int):
        self.args, self.folder, self.admin_url, self.port = args, folder, admin_url, port
        self.project = folder / "project"  # a copy of supabase/ for --workdir: the CLI may write into it
        shutil.copytree(ROOT / "supabase", self.project / "supabase")
        shutil.copy(ROOT / ".squawk.toml", self.project / ".squawk.toml")
        self.copies = 0

    def fresh(self, template: str) -> str:
        self.copies += 1
        name = f"bench_run_{self.copies}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"create database {name} template {template} owner postgres")
        return name

    def drop(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"drop database {name} with (force)")

    def argv(self, command: str, url: str, work: Path) -> list[str]:
        workdir = ["--workdir", str(self.project)]
        return {
            "pg_dump -Fc": [str(self.pg_dump), "-Fc", "-f", str(work / "plain.dump"), "-d", url],
            "supabase db push": [str(ROOT / "node_modules/.bin/supabase"), "db", "push", f"--remote={url}", "--yes",
                                 "--workdir", str(self.project)],
            "kit status": KIT + ["status", "--db-url", url, "--json"] + workdir,
            "kit backup": KIT + ["backup", "--db-url", url, "--out", str(work / "backups"), "--json"],
            "kit verify": KIT + ["verify", "--db-url", url, "--json"] + workdir,
            "kit smoke --via sql": KIT + ["smoke", "--via", "sql", "--yes", "--db-url", url, "--json"],
            "kit deploy": [sys.executable, __file__, OBSERVE, "deploy", "--yes", "--db-url", url, "--json"] + workdir,
        }[command]

    def measure(self, command: str, rtt_ms: int) -> dict:
        """One run of `command` on a fresh database through the proxy: wall, counts, and the deploy's steps."""
        name = self.fresh("bench_migrated" if command == "kit verify" else "bench_tpl")
        work = Path(tempfile.mkdtemp(dir=self.folder))
        try:
            with LatencyProxy(self.port, rtt=rtt_ms / 1000) as proxy:
                url = proxy.url(postgres_url(self.admin_url, name))
                seconds, err = timed(self.argv(command, url, work), cwd=work)
                counted = proxy.window()
                result = {"wall": seconds, "counted": counted.round_trips, "chained": counted.chained,
                          "connections": counted.connections}
                if command == "kit deploy":
                    result["steps"] = steps = steps_of(err, proxy)
                    steps[OUTSIDE] = {key: result[key] - sum(steps[step][key] for step in STEPS)
                                      for key in ("wall", "counted", "chained", "connections")}
            return result
        finally:
            shutil.rmtree(work, ignore_errors=True)
            self.drop(name)


def steps_of(stderr: str, proxy: LatencyProxy) -> dict:
    """Each step's wall seconds, counted round trips and connections, from the child's observe lines."""
    times: dict = {}
    for line in stderr.splitlines():
        if line.startswith('{"event"'):
            event = json.loads(line)
            times.setdefault(event["step"], {})[event["event"]] = event["t"]
    steps = {}
    for step in STEPS:
        start, end = times[step]["start"], times[step]["end"]
        window = proxy.window(start, end)
        steps[step] = {"wall": end - start, "counted": window.round_trips, "chained": window.chained,
                       "connections": window.connections}
    return steps


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


COMMANDS = ("pg_dump -Fc", "supabase db push", "kit status", "kit backup", "kit verify", "kit smoke --via sql",
            "kit deploy")


def run(args, bench: Bench) -> dict:
    """{rtt_ms: {command: [runs]}}; the commands interleaved, each repeat at every rtt in turn."""
    results: dict = {rtt: {c: [] for c in COMMANDS} for rtt in [0] + args.rtt}
    for n in range(args.repeat):
        for rtt in results:
            print(f"repeat {n + 1}/{args.repeat}, {rtt} ms ...", flush=True)
            for command in COMMANDS:
                results[rtt][command].append(bench.measure(command, rtt))
    return results


def row(label: str, zero: list[dict], far: list[dict], rtt: int) -> str:
    t0, tn = median(zero, "wall"), median(far, "wall")
    return (f"{label:<28}{t0:>9.2f}{tn:>10.2f}{(tn - t0) / (rtt / 1000):>10.0f}"
            f"{median(far, 'counted'):>10.0f}{median(far, 'chained'):>10.0f}{median(far, 'connections'):>8.0f}")


def report(args, results: dict, server_version: str, pg_dump: str) -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    print(f"\n{os.cpu_count()} cores ({cpu}), load average {os.getloadavg()[0]:.1f}; Python "
          f"{platform.python_version()}; PostgreSQL {server_version}; {pg_dump}")
    print(f"{args.rows:,} usage rows; each run its own process on a fresh database, through the latency proxy; "
          f"medians of {args.repeat}")
    for rtt in args.rtt:
        zero, far = results[0], results[rtt]
        print(f"\n{'command':<28}{'0 ms s':>9}{f'{rtt} ms s':>10}{'implied':>10}{'counted':>10}{'chained':>10}"
              f"{'conns':>8}")
        for command in COMMANDS:
            print(row(command, zero[command], far[command], rtt))
            if command == "kit deploy":
                for step in STEPS + (OUTSIDE,):
                    print(row(f"  {step}", [r["steps"][step] for r in zero[command]],
                              [r["steps"][step] for r in far[command]], rtt))
    print("\nkit deploy / (pg_dump -Fc + supabase db push):")
    for rtt, by in results.items():
        alternative = median(by["pg_dump -Fc"], "wall") + median(by["supabase db push"], "wall")
        print(f"  at {rtt:>3} ms: {median(by['kit deploy'], 'wall'):.2f} / {alternative:.2f} s = "
              f"{median(by['kit deploy'], 'wall') / alternative:.1f}x")


def main() -> None:
    if sys.argv[1:2] == [OBSERVE]:
        raise SystemExit(observe_deploy(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rtt", action="append", metavar="MS",
                        help="round-trip time in ms (repeatable, or a comma-separated list; default 50)")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    args.rtt = sorted({int(ms) for given in (args.rtt or ["50"]) for ms in given.split(",")} - {0})
    if not args.rtt or args.repeat < 1:
        parser.error("--rtt needs a time above 0 ms and --repeat at least 1")
    folder = Path(tempfile.mkdtemp(prefix="kit-bench-remote-"))
    s = settings_mod.load({"local_dir": str(folder / "pg")}, environ={}, cwd=ROOT)
    server = local.up(s, prepare_db=False)
    try:
        print(f"loading {args.rows:,} usage rows ...", flush=True)
        url = build_template(server.admin_url, args.rows, as_postgres=True)
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute("create database bench_migrated template bench_tpl owner postgres")
            version = conn.execute("show server_version").fetchone()[0]
        migrate_direct(postgres_url(server.admin_url, "bench_migrated"))
        bench = Bench(args, folder, server.admin_url, server.port)
        chosen = clients.choose(settings_mod.load({"db_url": url}, environ={}, cwd=ROOT))
        bench.pg_dump = chosen.bin / "pg_dump"
        report(args, run(args, bench), version, chosen.describe())
    finally:
        local.destroy(s)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
