"""`kit branch list|create|status|smoke|delete`: staging preview branches through the Management API."""

import sys

from kit import project, smoke
from kit.cli.options import command, concurrency, concurrency_option, yes_option
from kit.cli.output import Result, confirm, progress, table
from kit.cli.smoke import text as smoke_text
from kit.cloud import branches
from kit.errors import SUCCESS, BranchFailed, CheckFailed, ConfigError, Refused

HELP = f"""Preview branches of SUPABASE_PROJECT_REF, through the Management API (SUPABASE_ACCESS_TOKEN).

commands:
  list            every branch with its status
  create NAME     create a branch, then wait until its migrations and seed have run;
                  a failed step is named and exits {BranchFailed.exit_code}
  status NAME     the branch and the steps of its latest action run
  smoke NAME      wait for the branch, fetch its API URL and service_role key, run kit smoke against it
  delete NAME     delete the branch (needs --yes or typing its name)

Each command's own options: kit branch COMMAND --help.

create, smoke and delete change a project: without a terminal they need --yes.
SUPABASE_DB_URL, when set, must name the same project as SUPABASE_PROJECT_REF.

examples:
  kit branch create pr-42 --git-branch feature/name-keys
  kit branch smoke pr-42 --json
  kit branch delete pr-42 --yes"""

SUBCOMMANDS = {
    "list": "Every preview branch of SUPABASE_PROJECT_REF with its status.\n\nexamples:\n  kit branch list --json",
    "create": "Create a preview branch, then wait until its migrations and seed have run; a failed step is named "
              f"and exits {BranchFailed.exit_code}. Without a terminal it needs --yes.\n\n"
              "examples:\n  kit branch create pr-42 --git-branch feature/name-keys --yes",
    "status": f"The branch and the steps of its latest action run; exits {BranchFailed.exit_code} when a step "
              "failed.\n\n"
              "examples:\n  kit branch status pr-42 --json",
    "smoke": "Wait for the branch, fetch its API URL and service_role key, and run kit smoke against it (rest "
             f"route); exits {CheckFailed.exit_code} when a check fails. Without a terminal it needs --yes.\n\n"
             "examples:\n  kit branch smoke pr-42 --json\n  kit branch smoke \"$GIT_BRANCH\" --wait-s 1200 --yes",
    "delete": "Delete the preview branch (needs --yes, or typing its name on a terminal).\n\n"
              "examples:\n  kit branch delete pr-42 --yes",
}


def register(commands) -> None:
    p = command(commands, "branch", HELP, help="staging preview branches: list, create, status, smoke, delete")
    actions = p.add_subparsers(dest="action", required=True)
    for name, description in SUBCOMMANDS.items():
        s = command(actions, name, description, subcommand=True)
        if name != "list":
            s.add_argument("name", nargs="?", help="the branch's name (or id, or project ref)")
        if name == "create":
            s.add_argument("--git-branch", metavar="BRANCH", help="the git branch the preview follows")
        if name in ("create", "smoke"):
            s.add_argument("--wait-s", type=float, default=900, metavar="S",
                           help="how long to wait for migrations and seed (default 900)")
            s.add_argument("--poll-s", type=float, default=5, metavar="S",
                           help="seconds between status checks (default 5)")
        if name == "smoke":
            concurrency_option(s, "concurrent inserts")
        if name in ("create", "smoke", "delete"):
            yes_option(s, "do not ask")
        s.set_defaults(handler=HANDLERS[name])


def _ready(args, settings) -> None:
    """Every subcommand but list names a branch; every one needs the token and the project ref."""
    if args.action != "list" and not args.name:
        raise ConfigError(f"kit branch {args.action} needs the branch's name: see kit branch list")
    project.check(settings, database=bool(settings.db_url), project=True)


def cmd_list(args, settings) -> Result:
    _ready(args, settings)
    found = branches.list_branches(settings)
    rows = [(b.name, b.status, b.ref, b.git_branch or "", b.created_at or "") for b in found]
    return Result({"branches": [b.as_dict() for b in found]},
                  table(rows, ("name", "status", "ref", "git branch", "created")) if rows else "no preview branches")


def cmd_create(args, settings) -> Result:
    _ready(args, settings)
    confirm([project.management(settings)], args.yes, f"create preview branch {args.name!r} of")
    state = branches.create(settings, args.name, git_branch=args.git_branch, wait_s=args.wait_s,
                            poll_s=args.poll_s, progress=progress(args))
    return Result(state.as_dict(), status_text(state))


def cmd_status(args, settings) -> Result:
    _ready(args, settings)
    state = branches.status(settings, args.name)
    return Result(state.as_dict(), status_text(state),
                  SUCCESS if state.failed_step is None else BranchFailed.exit_code)


def cmd_smoke(args, settings) -> Result:
    concurrency(args.concurrency)
    _ready(args, settings)
    say = progress(args)
    branch = branches.find(settings, args.name)
    branches.wait(settings, branch, wait_s=args.wait_s, poll_s=args.poll_s, progress=say)
    target = branches.smoke_settings(settings, branch)
    confirm([project.rest(target)], args.yes, f"insert and delete smoke-test rows in preview branch {branch.name!r},")
    result = smoke.run(target, "rest", concurrency=args.concurrency, progress=say)
    data = {**result.as_dict(), "branch": branch.name, "supabase_url": target.supabase_url}
    return Result(data, f"branch {branch.name} ({target.supabase_url})\n{smoke_text(result)}",
                  SUCCESS if result.ok else CheckFailed.exit_code)


def cmd_delete(args, settings) -> Result:
    _ready(args, settings)
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


HANDLERS = {"list": cmd_list, "create": cmd_create, "status": cmd_status, "smoke": cmd_smoke, "delete": cmd_delete}


def status_text(state: branches.BranchStatus) -> str:
    b = state.branch
    lines = [f"branch  {b.name} ({b.ref})", f"status  {b.status}"]
    if state.steps:
        lines.append(table([(s.name, s.status) for s in state.steps], ("step", "status")))
    if state.failed_step:
        lines.append(f"failed step: {state.failed_step}")
    elif state.done:
        lines.append("ready: migrations and seed have run")
    return "\n".join(lines)
