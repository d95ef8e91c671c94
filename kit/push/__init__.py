"""`kit push`: pick the route (Supabase CLI, psycopg or Management API) and apply the pending migration files.

Whatever the route, the history table stays the one `supabase db push` reads and writes, a
file and its history row commit together, and one push at a time runs per database.
"""

from kit import db
from kit.errors import KitError
from kit.migrations import history, workdir
from kit.migrations.plan import LOCK_WAIT_S, PushResult, check_history, make_plan, prepare, push_lock
from kit.push import api as push_api, cli as push_cli
from kit.push.direct import apply_direct
from kit.settings import Settings

ROUTES = ("cli", "direct", "api")


def default_route(settings: Settings) -> str:
    try:
        workdir.supabase_cli(settings)
    except KitError:
        return "direct"
    return "cli"


def run(settings: Settings, via: str | None = None, *, dry_run: bool = False, lint_files: bool = True,
        output=None, lock_wait_s: float = LOCK_WAIT_S) -> PushResult:
    """Push every pending file; `output(line)` receives the Supabase CLI's output as it arrives."""
    route = via or default_route(settings)
    if route == "api":
        return push_api.run(settings, dry_run=dry_run, lint_files=lint_files, lock_wait_s=lock_wait_s)
    db.refuse_transaction_pooler(settings)
    with db.session(settings) as conn:
        result = prepare(settings, route, history.applied_versions(conn), dry_run, lint_files)
        if dry_run or not result.pending:
            return result
        with push_lock(conn, lock_wait_s):
            plan = make_plan(settings, history.applied_versions(conn))
            check_history(plan)
            if route == "direct":
                apply_direct(conn, settings, plan.pending, output)
            else:
                push_cli.run(settings, plan, output)
            result.applied = [v for v in history.applied_versions(conn) if v not in plan.applied]
    return result
