"""The `cli` route: the pinned `supabase db push`, its output shown as it arrives."""

import subprocess

from kit import db
from kit.errors import ConnectError, KitError, Refused
from kit.migrations import workdir
from kit.process import child_env, dbname
from kit.redact import redact, url_host
from kit.settings import Settings

# Lines of the CLI's output that name a known failure, and the kit error each becomes.
CONNECT_HINTS = ("failed to connect", "password authentication failed", "connection refused", "dial error",
                 "no such host", "i/o timeout")
LOST_HINTS = ("terminating connection", "server closed the connection", "unexpected EOF", "connection reset")


def argv(settings: Settings, include_all: bool) -> list[str]:
    args = [workdir.supabase_cli(settings), "db", "push", f"--remote={dbname(settings, settings.db_url)}",
            "--yes", "--workdir", str(workdir.project_dir(settings))]
    return args + (["--include-all"] if include_all else [])


def run(settings: Settings, plan, output=None) -> list[str]:
    """Run `supabase db push`; return its output lines, or raise a kit error that says what failed."""
    lines: list[str] = []
    process = subprocess.Popen(argv(settings, plan.include_all), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                               env=child_env(settings.db_url, {"SUPABASE_YES": "1"}))
    try:
        for line in process.stdout:
            line = redact(line.rstrip("\n"), settings.secrets)
            lines.append(line)
            if output:
                output(line)
    finally:
        code = process.wait()
    if code != 0:
        raise failure(settings, lines, code)
    return lines


def failure(settings: Settings, lines: list[str], code: int) -> KitError:
    text = "\n".join(lines)
    # The CLI echoes the failing statement after the error, and that source holds every `raise` text
    # of the migration: only the ERROR line says which one was raised.
    raised = [line for line in lines if "ERROR:" in line and "llm name keys:" in line]
    for marker in ("refusing to migrate", "could not lock the LLM tables", "llm name keys:"):
        hit = next((line for line in raised if marker in line), None)
        if hit:
            return Refused(_from(hit, "llm name keys:"))
    if "Remote migration versions not found" in text:
        return Refused(f"the database's migration history has versions that {workdir.project_dir(settings)}"
                       "/supabase/migrations lacks (`npx supabase migration list` names them); nothing was "
                       "changed: run from the repo that has them (--workdir), or `npx supabase migration fetch`")
    if any(hint in text.lower() for hint in CONNECT_HINTS):
        hit = next(line for line in lines if any(h in line.lower() for h in CONNECT_HINTS))
        return ConnectError(db.describe_connect_error(settings.db_url, hit, settings.secrets, settings.db_url_source))
    applying = [line.split("Applying migration ", 1)[1].rstrip(".") for line in lines if "Applying migration " in line]
    where = f" while applying {applying[-1]}" if applying else ""
    if any(hint in text for hint in LOST_HINTS):
        return ConnectError(f"the connection to {url_host(settings.db_url)} was lost{where}; its transaction "
                            "rolled back, so nothing of it was applied: run kit push again")
    errors = [line for line in lines if "ERROR:" in line] or \
             [line for line in lines if line.strip() and not line.startswith("Try rerunning")]
    last = errors[-1].strip() if errors else "no output"
    return KitError(f"supabase db push failed{where} (exit {code}), that file rolled back: {last}")


def _from(line: str, marker: str) -> str:
    at = line.find(marker)
    text = line[at:] if at >= 0 else line
    return text.split(" (SQLSTATE")[0].strip()
