"""`kit init`: add the name-key change to your app's own supabase/migrations."""

from kit.cli.options import command
from kit.cli.output import Result
from kit.errors import ConfigError
from kit.init import add as init
from kit.migrations import workdir

HELP = f"""Add the LLM name-key migration to the supabase/migrations of your app's repo (--workdir, else the
current folder), as a new file whose version is later than every file there and, when a database is
configured (--db-url, --target, SUPABASE_DB_URL), every version in that database's history. Preview
branches and `supabase db push` then build from your own history, the change last.

The kit's baseline (which creates the three tables in their UUID shape) is added only when nothing in
your migrations creates them; --with-baseline or --no-baseline decides instead. No existing file is
ever changed (only --with-env-example appends lines to .env.example). Run again, it names the file
that is there and adds nothing. Bad input (no supabase/ folder, a folder it cannot write, a file of
the kit's name with other content) is one line and exit {ConfigError.exit_code}, with nothing written.

In two steps, for teams whose old clients still send or read the UUID columns: --expand adds the expand
step (*_llm_name_keys_expand.sql: names become the keys, the UUID columns stay for old clients); run
later without --expand in a folder that has it, kit init adds the contract step
(*_llm_name_keys_contract.sql), which drops them. Each gets its own new version.

examples:
  kit init --workdir ../your-app
  kit init --workdir ../your-app --expand       # step 1 of 2; later `kit init --workdir ../your-app`
  kit init --workdir ../your-app --target production --with-workflow --with-env-example"""


def register(commands) -> None:
    p = command(commands, "init", HELP, help="add the change to your app's supabase/migrations")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--with-baseline", dest="baseline", action="store_const", const=True,
                       help="add the kit's baseline even though your migrations create the tables")
    which.add_argument("--no-baseline", dest="baseline", action="store_const", const=False,
                       help="never add the baseline")
    p.add_argument("--with-workflow", action="store_true",
                   help="write .github/workflows/llm-preview-smoke.yml (smoke-tests each preview branch)")
    p.add_argument("--with-env-example", action="store_true",
                   help="append the kit's variables that .env.example lacks (else they are only listed)")
    p.add_argument("--expand", action="store_true",
                   help="add the expand step (the first of two; a later kit init adds the contract)")
    p.set_defaults(handler=cmd_init)


def cmd_init(args, settings) -> Result:
    result = init.run(settings, baseline=args.baseline, workflow=args.with_workflow,
                      env_example=args.with_env_example)
    return Result(result.as_dict(), text(result))


def text(result: init.InitResult) -> str:
    what = {init.CHANGE: "the change", workdir.EXPAND: "the expand step", workdir.CONTRACT: "the contract step"}[
        result.step]
    if result.already:
        lines = [f"{what} is already there: {result.change}; nothing added"]
    else:
        lines = [f"added {name}" for name in result.added if name.startswith("supabase/")]
    lines.append(f"baseline: {result.baseline}")
    if result.database_versions is not None:
        lines.append(f"the configured database's history has {result.database_versions} version(s); "
                     f"{result.change} sorts after all of them")
    extras = result.extras
    lines.append(f"workflow: {extras.workflow}")
    lines.append(f".env.example: {extras.env}" + (f" ({', '.join(extras.env_missing)})" if extras.env_missing else ""))
    if extras.seed_warning:
        lines.append(f"warning: {extras.seed_warning}")
    lines += ["", "review the file, commit it, then either:"] + [f"  {c}" for c in result.next_commands]
    return "\n".join(lines)
