"""`kit push`: pick the route (Supabase CLI, psycopg or Management API) and apply the pending migration files.

Whatever the route, the history table stays the one `supabase db push` reads and writes, a
file and its history row commit together, and one push at a time runs per database.
"""

from contextlib import nullcontext

import psycopg

from kit import db
from kit.errors import KitError
from kit.migrations import workdir
from kit.migrations.plan import (
    LOCK_WAIT_S,
    PushResult,
    check_history,
    make_plan,
    prepare,
    release_push_lock,
    take_push_lock,
    wait_for_push_lock,
)
from kit.push import cli as push_cli
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
        output=None, lock_wait_s: float = LOCK_WAIT_S, conn: psycopg.Connection | None = None) -> PushResult:
    """Push every pending file; `output(line)` receives the Supabase CLI's output as it arrives. Given `conn` (a
    deploy's, already known not to be a transaction pooler's), the push uses it rather than connecting."""
    route = via or default_route(settings)
    if route == "api":
        from kit.push import api as push_api  # here, not above: its HTTP client adds to start-up

        return push_api.run(settings, dry_run=dry_run, lint_files=lint_files, lock_wait_s=lock_wait_s)
    if conn is None:
        db.refuse_transaction_pooler(settings)
    with nullcontext(conn) if conn is not None else db.session(settings) as conn:
        locked, applied = take_push_lock(conn)
        try:
            result = prepare(settings, route, applied, dry_run, lint_files)
            if dry_run or not result.pending:
                return result
            if not locked:
                applied, locked = wait_for_push_lock(conn, lock_wait_s), True
            plan = make_plan(settings, applied)
            check_history(plan)
            if route == "direct":
                apply_direct(conn, settings, plan.pending, output)
            else:
                push_cli.run(settings, plan, output)
            after, locked = release_push_lock(conn), False
            result.applied = [v for v in after if v not in plan.applied]
        finally:
            if locked and not conn.closed and not conn.broken:
                release_push_lock(conn)
    return result
