"""`kit branch list|create|status|smoke|delete`: staging preview branches through the Management API."""

import sys

from kit import project, smoke
from kit.cli.output import Result, confirm, table
from kit.cli.smoke import text as smoke_text
from kit.cloud import branches
from kit.errors import ConfigError, Refused

HELP = """Preview branches of SUPABASE_PROJECT_REF, through the Management API (SUPABASE_ACCESS_TOKEN).

commands:
  list            every branch with its status
  create NAME     create a branch, then wait until its migrations and seed have run;
                  a failed step is named and exits 5
  status NAME     the branch and the steps of its latest action run
  smoke NAME      wait for the branch, fetch its API URL and service_role key, run kit smoke against it
  delete NAME     delete the branch (needs --yes or typing its name)

create, smoke and delete change a project: without a terminal they need --yes.
SUPABASE_DB_URL, when set, must name the same project as SUPABASE_PROJECT_REF.

examples:
  kit branch create pr-42 --git-branch feature/name-keys
  kit branch smoke pr-42 --json
  kit branch delete pr-42 --yes"""


def register(commands, common) -> None:
    p = commands.add_parser("branch", parents=[common], help="staging preview branches: list, create, status, "
                            "smoke, delete", description=HELP)
    p.add_argument("action", choices=["list", "create", "status", "smoke", "delete"])
    p.add_argument("name", nargs="?", help="the branch's name (or id, or project ref)")
    p.add_argument("--git-branch", metavar="BRANCH", help="create: the git branch the preview follows")
    p.add_argument("--wait-s", type=float, default=900, metavar="S",
                   help="create, smoke: how long to wait for migrations and seed (default 900)")
    p.add_argument("--poll-s", type=float, default=5, metavar="S", help="seconds between status checks (default 5)")
    p.add_argument("--concurrency", type=int, default=20, metavar="N", help="smoke: concurrent inserts (default 20)")
    p.add_argument("--yes", action="store_true", help="create, smoke, delete: do not ask")
    p.set_defaults(handler=cmd_branch)


def cmd_branch(args, settings) -> Result:
    if args.action != "list" and not args.name:
        raise ConfigError(f"kit branch {args.action} needs the branch's name: see kit branch list")
    say = None if args.json else (lambda message: print(f"... {message}", file=sys.stderr, flush=True))
    project.check(settings, database=bool(settings.db_url), project=True)
    if args.action == "list":
        found = branches.list_branches(settings)
        rows = [(b.name, b.status, b.ref, b.git_branch or "", b.created_at or "") for b in found]
        return Result({"branches": [b.as_dict() for b in found]},
                      table(rows, ("name", "status", "ref", "git branch", "created")) if rows else "no preview branches")
    if args.action == "create":
        confirm([project.management(settings)], args.yes, f"create preview branch {args.name!r} of")
        state = branches.create(settings, args.name, git_branch=args.git_branch, wait_s=args.wait_s,
                                poll_s=args.poll_s, progress=say)
        return Result(state.as_dict(), status_text(state))
    if args.action == "status":
        state = branches.status(settings, args.name)
        return Result(state.as_dict(), status_text(state), 0 if state.failed_step is None else 5)
    if args.action == "smoke":
        return smoke_branch(args, settings, say)
    return delete_branch(args, settings)


def smoke_branch(args, settings, say) -> Result:
    branch = branches.find(settings, args.name)
    branches.wait(settings, branch, wait_s=args.wait_s, poll_s=args.poll_s, progress=say)
    target = branches.smoke_settings(settings, branch)
    confirm([project.rest(target)], args.yes, f"insert and delete smoke-test rows in preview branch {branch.name!r},")
    result = smoke.run(target, "rest", concurrency=max(1, args.concurrency), progress=say)
    data = {**result.as_dict(), "branch": branch.name, "supabase_url": target.supabase_url}
    return Result(data, f"branch {branch.name} ({target.supabase_url})\n{smoke_text(result)}",
                  0 if result.ok else 5)


def delete_branch(args, settings) -> Result:
    branch = branches.find(settings, args.name)
    where = f"{project.management(settings)}"
    if not args.yes:
        if not sys.stdin.isatty():
            raise Refused(f"delete preview branch {branch.name!r} ({branch.ref}) of {where} needs confirmation: "
                          "pass --yes")
        typed = input(f"Delete preview branch {branch.name} ({branch.ref}) of {where}? Type its name to go on: ")
        if typed.strip() != branch.name:
            raise Refused("not confirmed; nothing deleted")
    branches.delete(settings, branch)
    return Result({"deleted": branch.name, "ref": branch.ref}, f"deleted preview branch {branch.name} ({branch.ref})")


def status_text(state: branches.BranchStatus) -> str:
    b = state.branch
    lines = [f"branch  {b.name} ({b.ref})", f"status  {b.status}"]
    if state.steps:
        lines.append(table([(s["name"], s["status"]) for s in state.steps], ("step", "status")))
    if state.failed_step:
        lines.append(f"failed step: {state.failed_step}")
    elif state.done:
        lines.append("ready: migrations and seed have run")
    return "\n".join(lines)
